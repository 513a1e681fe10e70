"""Named worker threads for the work that follows from events with no caller waiting on it.

A node's reader thread only reads; what a frame sets in motion (enabling resuming after
``ready``, re-syncing or rebuilding players, failover moves, lost-player expiry and its OP 4
hook, voice follow-ups) runs here instead, so ingest never stalls behind REST or user code.

:class:`WorkerPool` starts threads on demand up to a bound and lets idle ones exit, so a quiet
client holds none. :meth:`WorkerPool.call_later` runs a function after a delay (a timer thread
hands it to the pool when due). :meth:`WorkerPool.close` drops what has not started, wakes
every thread and joins them: a task blocked in a network call is woken by closing the
transports first (the client does that).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Optional

__all__ = ["WorkerPool"]

log = logging.getLogger("lavasync.workers")


class WorkerPool:
    """Runs submitted functions on up to ``max_workers`` named threads.

    Thread-safe: :meth:`submit`, :meth:`call_later` and :meth:`close` may be called from any
    thread, including the pool's own (a task may submit more work; close from a task does not
    join the calling thread). Exceptions from tasks are logged, never propagated to a thread.
    """

    def __init__(self, name: str, max_workers: int, *, idle_timeout: float = 2.0) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.name = name
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._tasks: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._closed = False
        self._ids = itertools.count(1)
        # delayed calls: (due, seq, fn), served by one timer thread started on first use
        self._timers: list[tuple[float, int, Callable[[], Any]]] = []
        self._timer_thread: Optional[threading.Thread] = None
        self._timer_cond = threading.Condition(self._lock)

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn()`` on a worker; its Future is cancelled if the pool closes first."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                future.cancel()
                return future
            self._tasks.append((future, fn))
            if self._idle > len(self._tasks) - 1:
                self._cond.notify()
            elif len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self.name}-{next(self._ids)}", daemon=True
                )
                self._threads.add(thread)
                thread.start()
        return future

    def call_later(self, delay: float, fn: Callable[[], Any]) -> None:
        """Submit ``fn`` once ``delay`` seconds have passed (dropped if the pool closes first)."""
        with self._lock:
            if self._closed:
                return
            heapq.heappush(self._timers, (time.monotonic() + max(0.0, delay), next(self._ids), fn))
            if self._timer_thread is None:
                self._timer_thread = threading.Thread(
                    target=self._run_timers, name=f"{self.name}-timer", daemon=True
                )
                self._timer_thread.start()
            self._timer_cond.notify()

    def _run_timers(self) -> None:
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if self._timers and self._timers[0][0] <= now:
                        _, _, fn = heapq.heappop(self._timers)
                        break
                    wait = self._timers[0][0] - now if self._timers else None
                    self._timer_cond.wait(wait)
            self.submit(fn)

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                while not self._tasks and not self._closed:
                    self._idle += 1
                    woke = self._cond.wait(self.idle_timeout)
                    self._idle -= 1
                    if not woke and not self._tasks:
                        self._threads.discard(me)
                        return
                if self._closed:
                    self._threads.discard(me)
                    return
                future, fn = self._tasks.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # a task must never take its worker down
                log.exception("%s: a background task raised", self.name)
                future.set_exception(exc)
            else:
                future.set_result(result)

    def close(self, timeout: Optional[float] = None) -> bool:
        """Cancel tasks not started, wake idle threads, join the rest (not the calling one).

        True if every thread exited within ``timeout``.
        """
        with self._lock:
            self._closed = True
            pending = list(self._tasks)
            self._tasks.clear()
            self._timers.clear()
            threads = list(self._threads)
            timer = self._timer_thread
            self._cond.notify_all()
            self._timer_cond.notify_all()
        for future, _ in pending:
            future.cancel()
        if timer is not None:
            threads.append(timer)
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.current_thread()
        exited = True
        for thread in threads:
            if thread is me:
                continue
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            exited &= not thread.is_alive()
        return exited
