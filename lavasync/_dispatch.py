"""Event delivery: bounded, coalescing event buffers and the listener thread.

How events reach the user (documented in the README):

* Every event goes to **both** consumers, independently: the poll buffer behind
  ``client.poll()`` / ``client.events()``, and the listeners registered with ``client.on`` /
  ``add_listener`` (run on the ``lavasync-dispatch`` thread). Neither steals from the other, so an
  event is seen once by each listener and once by ``poll()``; nothing is duplicated within a mode.
* The poll buffer can be switched off (``Client(poll_events=False)``) by bots that only use
  callbacks.
* Memory policy. Each buffer holds ``event_buffer_size`` events. Past half of that,
  ``playerUpdate`` and ``stats`` events are coalesced once it is full (the newest replaces the
  pending one for the same guild / node: latest wins). Then:

  - the **poll buffer** is a hard bound: when it is full, the *oldest* event is dropped and
    counted (``client.dropped_events``), and one WARNING is logged per overflow episode (an
    episode ends once the buffer drained back to half). A bot that never polls therefore holds
    at most ``event_buffer_size`` events;
  - the **listener buffer** only receives events some listener is registered for, and never
    drops them (its bound is soft for everything but ``playerUpdate`` / ``stats``): an event a
    listener wants is always delivered.

  The reader thread never blocks on a full buffer.
* The dispatcher survives anything a listener raises (``SystemExit`` and ``KeyboardInterrupt``
  included): it is logged, handed to the error hook, and the next listener runs. A listener may
  call ``client.close()``: the dispatcher thread exits as soon as that listener returns.
"""

from __future__ import annotations

import logging
import threading
import time
from _thread import allocate_lock as _allocate_lock
from collections import deque
from collections.abc import Hashable
from typing import Any, Callable, Optional

from .models.events import Event, PlayerUpdateEvent, StatsEvent

__all__ = ["Dispatcher", "EventBuffer", "ListenerRegistry"]

log = logging.getLogger("lavasync.dispatch")

Listener = Callable[[Any], Any]
ErrorHook = Callable[[BaseException, Event, Listener], Any]

_CLOSED = object()


def _coalesce_key(event: Any) -> Optional[Hashable]:
    """The key under which an event may replace an older pending one, or None if it never may."""
    cls = type(event)
    if cls is PlayerUpdateEvent:
        return (id(event.node), event.guild_id)
    if cls is StatsEvent:
        return id(event.node)
    return None


class EventBuffer:
    """A FIFO of events with a bound and latest-wins coalescing of high-volume events.

    Thread-safe: any number of producers and consumers. ``put`` never blocks.

    Coalescing bookkeeping starts only once the buffer is half full, so the common case (a
    consumer that keeps up) costs one append: below half, events are stored bare; above, a
    coalescable event is stored in a one-item slot that a newer event for the same guild or
    node may overwrite in place, keeping its place in the line.

    With ``drop_oldest`` the bound is hard: a full buffer drops its oldest event for the new one
    (counted in :attr:`dropped`, one WARNING per overflow episode). Without it the bound is soft:
    events that cannot be coalesced are always kept.
    """

    def __init__(
        self, maxsize: int = 10_000, *, drop_oldest: bool = False, name: str = "event buffer"
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.name = name
        self._watermark = maxsize // 2
        self._items: deque[Any] = deque()
        self._pending: dict[Hashable, list[Any]] = {}  # key -> its slot still in the line
        self._lock = threading.Lock()
        # Consumers blocked in get(), oldest first: each waits on its own held lock, which put()
        # releases (what threading.Condition does, without its Python-level bookkeeping on
        # every put while a consumer waits, which is most of the time when it keeps up).
        self._sleepers: deque[Any] = deque()
        self._closed = False
        self._overflowing = False  # in an overflow episode (warned once; ends at the watermark)
        self.coalesced = 0  #: how many events were replaced by a newer one (for diagnostics)
        self.dropped = 0  #: how many events a full ``drop_oldest`` buffer dropped

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: Any) -> None:
        """Add an event; never blocks. Under pressure a newer playerUpdate/stats replaces it."""
        warn = False
        with self._lock:
            if self._closed:
                return
            items = self._items
            size = len(items)
            if size >= self._watermark:
                key = _coalesce_key(event)
                item: Any = event
                if key is not None:
                    slot = self._pending.get(key)
                    if slot is not None and size >= self.maxsize:
                        slot[0] = event
                        self.coalesced += 1
                        return
                    item = [event, key]
                if size >= self.maxsize and self.drop_oldest:
                    self._drop_oldest()
                    if not self._overflowing:
                        self._overflowing = warn = True
                if key is not None:
                    self._pending[key] = item
                items.append(item)
            else:
                items.append(event)
            if self._sleepers:
                self._sleepers.popleft().release()  # wake the longest-waiting consumer
        if warn:
            log.warning(
                "%s full (%d events): dropping the oldest unread ones (read them with "
                "client.poll()/events(), or pass Client(poll_events=False) if you only use "
                "listeners)",
                self.name,
                self.maxsize,
            )

    def _drop_oldest(self) -> None:
        """Drop the head of the line (caller holds the lock; the buffer is not empty)."""
        item = self._items.popleft()
        if type(item) is list:
            key = item[1]
            if self._pending.get(key) is item:
                del self._pending[key]
        self.dropped += 1

    def get(self, timeout: Optional[float] = None) -> Any:
        """The next event, or None after ``timeout`` seconds (None: wait forever) or when closed."""
        with self._lock:
            items = self._items
            if not items and (self._closed or not self._sleep(timeout)):
                return None
            item = items.popleft()
            if self._overflowing and len(items) <= self._watermark:
                self._overflowing = False  # caught up: a later overflow warns again
            if type(item) is list:  # a coalescing slot (events are never lists)
                key = item[1]
                if self._pending.get(key) is item:
                    del self._pending[key]
                return item[0]
            return item

    def _sleep(self, timeout: Optional[float]) -> bool:
        """Wait (lock held, released meanwhile) until an event is there: False on timeout or
        close."""
        lock = self._lock
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            waiter = _allocate_lock()
            waiter.acquire()
            self._sleepers.append(waiter)
            lock.release()
            try:
                if deadline is None:
                    waiter.acquire()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        waiter.acquire(True, remaining)
            finally:
                lock.acquire()
                try:
                    self._sleepers.remove(waiter)  # still there: not woken (timeout, error)
                except ValueError:
                    pass  # put() or close() took it out to wake this consumer
            if self._items:
                return True
            if self._closed or (deadline is not None and time.monotonic() >= deadline):
                return False

    def drain(self) -> list[Any]:
        """Remove and return every pending event."""
        with self._lock:
            items = [item[0] if type(item) is list else item for item in self._items]
            self._items.clear()
            self._pending.clear()
            self._overflowing = False
            return items

    def close(self) -> None:
        """Wake every waiting ``get``; later ``put`` calls are ignored."""
        with self._lock:
            self._closed = True
            sleepers = self._sleepers
            while sleepers:
                sleepers.popleft().release()

    @property
    def closed(self) -> bool:
        return self._closed


class ListenerRegistry:
    """Listeners by event class. Thread-safe; a snapshot is taken per event, outside the lock.

    ``add`` and ``remove`` cost O(1) amortised however many listeners a class has (each class
    keeps its registrations in an insertion-ordered dict, plus where each listener's are), so
    registering thousands of listeners is linear, not quadratic.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0  # registration number: keys the ordered dicts below
        self._by_class: dict[type, dict[int, Listener]] = {}
        # cls -> listener -> its registration numbers, oldest first (hashable listeners only;
        # an unhashable callable is found by a scan, as list.remove would)
        self._where: dict[type, dict[Listener, deque[int]]] = {}
        self._cache: dict[type, tuple[Listener, ...]] = {}

    def add(self, cls: type, fn: Listener) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise ValueError(f"listeners are registered for an Event class, not {cls!r}")
        if not callable(fn):
            raise ValueError(f"listener {fn!r} is not callable")
        with self._lock:
            self._seq += 1
            seq = self._seq
            entries = self._by_class.get(cls)
            if entries is None:
                entries = self._by_class[cls] = {}
                self._where[cls] = {}
            entries[seq] = fn
            try:
                seqs = self._where[cls].get(fn)
            except TypeError:  # unhashable callable
                pass
            else:
                if seqs is None:
                    self._where[cls][fn] = deque((seq,))
                else:
                    seqs.append(seq)
            if self._cache:
                self._cache.clear()

    def remove(self, cls: type, fn: Listener) -> bool:
        """Remove one registration of ``fn`` for ``cls`` (its oldest); False if it was not
        registered."""
        with self._lock:
            entries = self._by_class.get(cls)
            if entries is None:
                return False
            where = self._where[cls]
            try:
                seqs = where.get(fn)
            except TypeError:  # unhashable callable: scan, oldest first
                seq = next((k for k, v in entries.items() if v == fn), None)
                if seq is None:
                    return False
            else:
                seq = None
                while seqs:  # skip a number a scan removed (an equal unhashable listener)
                    candidate = seqs.popleft()
                    if candidate in entries:
                        seq = candidate
                        break
                if seqs is not None and not seqs:
                    del where[fn]
                if seq is None:
                    return False
            del entries[seq]
            if not entries:
                del self._by_class[cls]
                del self._where[cls]
            if self._cache:
                self._cache.clear()
            return True

    def __bool__(self) -> bool:
        return bool(self._by_class)

    def for_event(self, event: Any) -> tuple[Listener, ...]:
        """Listeners for the event's class and its bases, in registration order per class."""
        cls = type(event)
        found = self._cache.get(cls)
        if found is not None:
            return found
        with self._lock:
            result: list[Listener] = []
            for klass in cls.__mro__:
                entries = self._by_class.get(klass)
                if entries:
                    result.extend(entries.values())
            found = tuple(result)
            self._cache[cls] = found
        return found


class Dispatcher:
    """The ``lavasync-dispatch`` thread: runs listeners for each event, in arrival order.

    Each listener is isolated: whatever it raises (``SystemExit`` included) is logged and handed
    to ``error_hook``, and the others still run; the thread only ends on :meth:`close`.
    Thread-safe: ``submit``, ``call_soon`` and ``close`` may be called from any thread, ``close``
    also from a listener.
    """

    def __init__(
        self,
        listeners: ListenerRegistry,
        *,
        maxsize: int = 10_000,
        error_hook: Optional[ErrorHook] = None,
        name: str = "lavasync-dispatch",
    ) -> None:
        self.listeners = listeners
        self.error_hook = error_hook
        self.buffer = EventBuffer(maxsize, name="listener buffer")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._stop_now = False  # closed from a listener: exit once it returns
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def submit(self, event: Any) -> None:
        """Queue an event for its listeners; a cheap no-op when nobody listens for its class."""
        if self.listeners.for_event(event):
            self.buffer.put(event)

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the dispatcher thread: follow-ups that must not run on a reader."""
        self.buffer.put(_Call(fn))

    def _run(self) -> None:
        get = self.buffer.get
        invoke = self._invoke
        while not self._stop_now:
            item = get(None)
            if item is None:
                return
            if type(item) is _Call:
                invoke(item.fn, None)
                continue
            for fn in self.listeners.for_event(item):
                invoke(fn, item)
                if self._stop_now:
                    break
        self.buffer.drain()  # closed from a listener: what was still queued is never run

    def _invoke(self, fn: Callable[..., Any], event: Any) -> None:
        # BaseException on purpose: a listener's SystemExit (a "!shutdown" command) or a stray
        # KeyboardInterrupt must not end the thread every listener and follow-up depends on.
        try:
            if event is None:
                fn()
            else:
                fn(event)
        except BaseException as exc:
            log.exception("listener %r raised on %r", fn, event)
            hook = self.error_hook
            if hook is not None:
                try:
                    hook(exc, event, fn)
                except BaseException:
                    log.exception("the listener error hook raised")

    def close(self, timeout: Optional[float] = None) -> bool:
        """Stop after the events already queued; True if the thread exited within ``timeout``.

        Called on the dispatcher thread itself (from a listener), it returns True at once and
        the thread exits as soon as that listener returns, without running what is still queued.
        """
        if threading.current_thread() is self._thread:
            self._stop_now = True
            self.buffer.close()
            return True
        self.buffer.close()
        if self._started:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


class _Call:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
