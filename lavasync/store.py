"""State stores: what a restarted bot process needs to take its music back.

A store keeps each node's session id and each player's state (node, track, position and when it
was read, paused, volume, filters, end time, voice). A :class:`~lavasync.Client` given a store
writes to it on its ``lavasync-store`` thread: every change (a player destroyed included) is on
the store within ``save_interval`` seconds (the first change after a quiet period at once, the
changes during an interval together at its end), and once more on close. A new Client given the
same store resumes those sessions, and rebuilds the players from the store where a session has
expired meanwhile.

Write your own by subclassing :class:`StateStore` (``load`` / ``save`` of a JSON-ready dict),
for example on Redis or a database.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

__all__ = ["JsonFileStore", "MemoryStore", "StateStore"]

FORMAT_VERSION = 1

log = logging.getLogger("lavasync.store")


class StateStore:
    """Base class: ``load()`` returns the last saved dict (``{}`` if none); ``save(state)``.

    Implementations must be thread-safe; lavasync calls them from its ``lavasync-store`` thread
    and from ``close()``.
    """

    def load(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class MemoryStore(StateStore):
    """Keeps the state in memory: survives a Client, not the process. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._state)

    def save(self, state: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(state)
        with self._lock:
            self._state = snapshot


class JsonFileStore(StateStore):
    """Keeps the state in a JSON file, replaced atomically and durably on each save. Thread-safe.

    A save writes a temporary file next to the store, flushes and fsyncs it, renames it over the
    store and fsyncs the directory (not on Windows), so a crash or a power loss leaves either the
    old state or the new one, never an empty or partial file.

    A missing file loads as ``{}``. An empty or unreadable one is moved aside to
    ``<name>.corrupt-<timestamp>`` (kept for inspection) with a WARNING, and loads as ``{}``.
    """

    def __init__(self, path: Union[str, os.PathLike[str]]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any]:
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return {}
            try:
                data = json.loads(text)
            except ValueError as exc:
                why = f"not valid JSON ({exc})" if text.strip() else "empty"
            else:
                if isinstance(data, dict):
                    return data
                why = f"not a JSON object (a {type(data).__name__})"
            aside = self._move_aside()
            log.warning(
                "state store %s is %s: moved it to %s and starting with an empty store",
                self.path,
                why,
                aside if aside is not None else "(could not move it)",
            )
            return {}

    def _move_aside(self) -> Optional[Path]:
        """Rename the unreadable store to ``<name>.corrupt-<timestamp>`` (caller holds the lock)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        target = base
        n = 1
        while target.exists():
            n += 1
            target = base.with_name(f"{base.name}-{n}")
        try:
            os.replace(self.path, target)
        except OSError as exc:
            log.warning("could not move the unreadable state store %s aside: %s", self.path, exc)
            return None
        _fsync_directory(self.path.parent)
        return target

    def save(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, separators=(",", ":"), sort_keys=True)
        with self._lock:
            directory = self.path.parent
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())  # the data is on disk before the name points at it
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_directory(directory)  # and the rename itself is on disk


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable where the OS allows it (not Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the file itself is synced
    finally:
        os.close(fd)


class SaveScheduler:
    """The ``lavasync-store`` thread: trailing saves, at most one per ``interval``.

    :meth:`changed` (cheap, any thread, the reader included) asks for a save. The first change
    after a quiet period is saved at once; changes arriving within ``interval`` of the last save
    are saved together when it is up, so the last change is always saved within ``interval``
    (plus the time a save takes). Thread-safe.
    """

    def __init__(
        self, save: Callable[[], Any], interval: float, *, name: str = "lavasync-store"
    ) -> None:
        self._save = save
        self.interval = interval
        self._cond = threading.Condition(threading.Lock())
        self._pending = False
        self._stopping = False
        self._last: Optional[float] = None  # monotonic start of the last save
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        with self._cond:
            if self._started or self._stopping:
                return
            self._started = True
        self._thread.start()

    def changed(self) -> None:
        """Something to save changed: it will be saved within ``interval``."""
        with self._cond:
            if not self._pending:
                self._pending = True
                self._cond.notify()

    def _next(self) -> bool:
        """Wait until a save is due (True) or the scheduler stops (False)."""
        with self._cond:
            while not self._stopping:
                if self._pending:
                    if self._last is None:
                        break
                    remaining = self._last + self.interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                else:
                    self._cond.wait()
            if self._stopping:
                return False
            self._pending = False  # cleared before the snapshot: a later change sets it again
            self._last = time.monotonic()
            return True

    def _run(self) -> None:
        while self._next():
            try:
                self._save()
            except BaseException:  # a user store's failure must not end the thread
                log.exception("saving to the state store failed")

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop the thread (no save is started after this); True if it exited in ``timeout``.

        A save in progress finishes first. Callable from any thread, the store thread included.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            started = self._started
        if not started or threading.current_thread() is self._thread:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
