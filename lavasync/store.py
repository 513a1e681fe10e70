"""State stores: what a restarted bot process needs to take its music back.

A store keeps each node's session id and each player's state (node, track, position and when it
was read, paused, volume, filters, end time, voice). A :class:`~lavasync.Client` given a store
writes to it as things change (at most every ``save_interval`` seconds, on the dispatcher
thread) and on close; a new Client given the same store resumes those sessions, and rebuilds
the players from the store where a session has expired meanwhile.

Write your own by subclassing :class:`StateStore` (``load`` / ``save`` of a JSON-ready dict),
for example on Redis or a database.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Union

__all__ = ["JsonFileStore", "MemoryStore", "StateStore"]

FORMAT_VERSION = 1


class StateStore:
    """Base class: ``load()`` returns the last saved dict (``{}`` if none); ``save(state)``.

    Implementations must be thread-safe; lavasync calls them from its dispatcher thread and from
    ``close()``.
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
    """Keeps the state in a JSON file, replaced atomically on each save. Thread-safe.

    A missing file loads as ``{}``; an unreadable one raises ``ValueError`` naming it (a corrupt
    store should not silently drop every player).
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
            raise ValueError(f"state store {self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"state store {self.path} does not hold a JSON object")
        return data

    def save(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
