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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

__all__ = ["JsonFileStore", "MemoryStore", "StateStore"]

FORMAT_VERSION = 1

log = logging.getLogger("lavasync.store")

_K = TypeVar("_K")
_V = TypeVar("_V")


def _everything(guild_id: int) -> bool:
    return True


class StateStore:
    """Base class of the state stores: per-guild writes, session ids per node, guild leases.

    lavasync calls :meth:`load_state` once when a Client starts, then :meth:`write` from its
    ``lavasync-store`` thread with only what changed since the last write (and once more from
    ``close()``). ``owner`` names the process (its identity): session ids are kept per owner,
    since a Lavalink session belongs to one WebSocket, and leases say which owner may rebuild a
    guild. The defaults suit one process: :meth:`claim` grants every lease.

    A subclass may implement only the whole-state ``load()``/``save(state)`` pair (the 0.1
    interface): the defaults here keep a copy of the whole state and save it on each write.
    Implementations must be thread-safe; a failing call raises (lavasync logs, retries later
    and keeps the changes).
    """

    #: Who this process is for session ids and leases (None: the Client picks one).
    identity: Optional[str] = None

    def load(self) -> dict[str, Any]:
        """The whole state: ``{"nodes": {name: {"session_id": ..}}, "players": [..]}``."""
        raise NotImplementedError

    def save(self, state: dict[str, Any]) -> None:
        """Replace the whole state (only called by the default :meth:`write`)."""
        raise NotImplementedError

    def load_state(self, owner: str, owns: Callable[[int], bool] = _everything) -> dict[str, Any]:
        """``owner``'s node session ids and the stored players of the guilds ``owns`` accepts:
        ``{"nodes": {name: {"session_id": str}}, "players": [player dict, ...]}``."""
        state = self.load()
        if not isinstance(state, dict):
            return state
        players = state.get("players")
        if isinstance(players, list):
            with _LEGACY_LOCK:
                self.__dict__["_lavasync_whole"] = copy.deepcopy(state)
            state = dict(state)
            state["players"] = [p for p in players if not isinstance(p, dict) or _owned(p, owns)]
        return state

    def load_guild(self, guild_id: int) -> Optional[dict[str, Any]]:
        """One guild's stored player (None if there is none)."""
        for data in self.load().get("players", ()):
            if isinstance(data, dict) and _guild_key(data) == guild_id:
                return data
        return None

    def write(
        self,
        owner: str,
        players: Mapping[int, Optional[dict[str, Any]]],
        nodes: Mapping[str, Optional[str]],
    ) -> set[int]:
        """Store each changed player (None: delete the guild) and each changed node's session id
        (None: forget it). Returns the guilds refused because another owner holds their lease."""
        with _LEGACY_LOCK:
            whole = self.__dict__.get("_lavasync_whole")
            if not isinstance(whole, dict):
                loaded = self.load()
                whole = copy.deepcopy(loaded) if isinstance(loaded, dict) else {}
            merged = _merge(whole, players, nodes)
            self.__dict__["_lavasync_whole"] = merged
            self.save(copy.deepcopy(merged))
        return set()

    def claim(self, owner: str, guild_ids: Iterable[int]) -> set[int]:
        """Take or renew the leases of ``guild_ids`` for ``owner``; returns those it holds now."""
        return set(guild_ids)

    def release(self, owner: str, guild_ids: Iterable[int]) -> None:
        """Give up ``owner``'s leases of ``guild_ids`` (another process may take them at once)."""

    def close(self) -> None:
        """Free what the store holds (connections); the Client does not call it."""


_LEGACY_LOCK = threading.Lock()


def _guild_key(data: Mapping[str, Any]) -> Optional[int]:
    try:
        return int(data["guild_id"])
    except (KeyError, TypeError, ValueError):
        return None


def _owned(data: Mapping[str, Any], owns: Callable[[int], bool]) -> bool:
    guild = _guild_key(data)
    return guild is not None and owns(guild)


def _merge(
    whole: dict[str, Any],
    players: Mapping[int, Optional[dict[str, Any]]],
    nodes: Mapping[str, Optional[str]],
) -> dict[str, Any]:
    """``whole`` with the changes applied (players kept in their order; new ones appended)."""
    old_nodes = whole.get("nodes")
    new_nodes = dict(old_nodes) if isinstance(old_nodes, dict) else {}
    _update(new_nodes, {n: None if s is None else {"session_id": s} for n, s in nodes.items()})
    by_guild = _by_guild(whole.get("players"))
    _update(by_guild, players)
    merged = dict(whole)
    merged["version"] = FORMAT_VERSION
    merged["saved_at"] = int(time.time() * 1000)
    merged["nodes"] = new_nodes
    merged["players"] = list(by_guild.values())
    return merged


class MemoryStore(StateStore):
    """Keeps the state in memory: survives a Client, not the process. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, str] = {}
        self._players: dict[int, dict[str, Any]] = {}
        self.writes = 0  #: how many guild or node entries were written or deleted (for tests)

    def load(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._whole())

    def _whole(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "nodes": {name: {"session_id": sid} for name, sid in self._nodes.items()},
            "players": list(self._players.values()),
        }

    def save(self, state: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(state)
        nodes, players = _split(snapshot)
        with self._lock:
            self._nodes, self._players = nodes, players

    def load_state(self, owner: str, owns: Callable[[int], bool] = _everything) -> dict[str, Any]:
        with self._lock:
            state = self._whole()
            state["players"] = [p for g, p in self._players.items() if owns(g)]
            return copy.deepcopy(state)

    def load_guild(self, guild_id: int) -> Optional[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._players.get(guild_id))

    def write(
        self,
        owner: str,
        players: Mapping[int, Optional[dict[str, Any]]],
        nodes: Mapping[str, Optional[str]],
    ) -> set[int]:
        copies = {g: copy.deepcopy(d) for g, d in players.items()}
        with self._lock:
            _update(self._players, copies)
            _update(self._nodes, nodes)
            self.writes += len(players) + len(nodes)
        return set()


def _split(state: Any) -> tuple[dict[str, str], dict[int, dict[str, Any]]]:
    """A whole-state dict as (session id by node, player by guild); odd parts are skipped."""
    nodes: dict[str, str] = {}
    players: dict[int, dict[str, Any]] = {}
    if not isinstance(state, dict):
        return nodes, players
    raw_nodes = state.get("nodes")
    if isinstance(raw_nodes, dict):
        for name, entry in raw_nodes.items():
            if isinstance(entry, dict) and isinstance(entry.get("session_id"), str):
                nodes[str(name)] = entry["session_id"]
    return nodes, _by_guild(state.get("players"))


def _by_guild(raw: Any) -> dict[int, dict[str, Any]]:
    """A stored ``players`` list as player by guild (later entries win); odd entries skipped."""
    players: dict[int, dict[str, Any]] = {}
    if isinstance(raw, list):
        for data in raw:
            if isinstance(data, dict):
                guild = _guild_key(data)
                if guild is not None:
                    players[guild] = data
    return players


def _update(target: dict[_K, _V], changes: Mapping[_K, Optional[_V]]) -> None:
    """Apply ``changes`` to ``target``: a value replaces the entry, None deletes it."""
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value


class JsonFileStore(StateStore):
    """Keeps the state in a JSON file, replaced atomically and durably on each write. Thread-safe.

    One process, no server: the embedded default. A write rewrites the file, but only the
    changed guilds are serialised again (each guild's JSON text is kept), so a change costs
    little CPU; the file is written to a temporary file next to the store, flushed and fsynced,
    renamed over the store and the directory fsynced (not on Windows), so a crash or a power
    loss leaves either the old state or the new one, never an empty or partial file.

    A missing file loads as ``{}``. An empty or unreadable one is moved aside to
    ``<name>.corrupt-<timestamp>`` (kept for inspection) with a WARNING, and loads as ``{}``.
    """

    def __init__(self, path: Union[str, os.PathLike[str]]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._nodes: Optional[dict[str, str]] = None  # None: not read yet
        self._texts: dict[int, str] = {}  # guild -> its player's JSON text

    def load(self) -> dict[str, Any]:
        with self._lock:
            return self._read()

    def _read(self) -> dict[str, Any]:
        """The file's state (caller holds the lock); also primes the per-guild cache."""
        self._nodes, self._texts = {}, {}
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
                nodes, players = _split(data)
                self._nodes = nodes
                self._texts = {g: _dumps(p) for g, p in players.items()}
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

    def load_state(self, owner: str, owns: Callable[[int], bool] = _everything) -> dict[str, Any]:
        with self._lock:
            data = self._read()
            state = dict(data) if isinstance(data, dict) else {}
            state["nodes"] = {n: {"session_id": s} for n, s in (self._nodes or {}).items()}
            # the players just parsed from the file (fresh objects; the cache keeps texts):
            # parsing each guild's text again would double the cost of a restart
            players = _split(data)[1]
            state["players"] = [p for g, p in players.items() if owns(g)]
            return state

    def load_guild(self, guild_id: int) -> Optional[dict[str, Any]]:
        with self._lock:
            if self._nodes is None:
                self._read()
            text = self._texts.get(guild_id)
            return None if text is None else dict(json.loads(text))

    def save(self, state: dict[str, Any]) -> None:
        """Replace the file with ``state`` as it is (the whole-state interface)."""
        text = _dumps(state)
        with self._lock:
            self._nodes, self._texts = None, {}  # the next write reads the file again
            self._replace(text)

    def write(
        self,
        owner: str,
        players: Mapping[int, Optional[dict[str, Any]]],
        nodes: Mapping[str, Optional[str]],
    ) -> set[int]:
        texts = {g: None if d is None else _dumps(d) for g, d in players.items()}
        with self._lock:
            if self._nodes is None:
                self._read()
            assert self._nodes is not None
            _update(self._texts, texts)
            _update(self._nodes, nodes)
            self._flush()
        return set()

    def _flush(self) -> None:
        """Write the whole file from the cached texts (caller holds the lock)."""
        nodes = json.dumps(
            {n: {"session_id": s} for n, s in sorted((self._nodes or {}).items())},
            separators=(",", ":"),
        )
        text = (
            f'{{"nodes":{nodes},"players":[{",".join(self._texts.values())}],'
            f'"saved_at":{int(time.time() * 1000)},"version":{FORMAT_VERSION}}}'
        )
        self._replace(text)

    def _replace(self, text: str) -> None:
        """Put ``text`` in the file atomically and durably (caller holds the lock)."""
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


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


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
    (plus the time a save takes). A save may return a number of seconds: the thread runs it
    again that much later even without a change (lease renewals, retries after a failure).
    Thread-safe.
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
        self._wake: Optional[float] = None  # monotonic time a save asked to run again
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
                now = time.monotonic()
                if self._wake is not None and self._wake <= now:
                    break
                timeout = None if self._wake is None else self._wake - now
                if self._pending:
                    if self._last is None:
                        break
                    remaining = self._last + self.interval - now
                    if remaining <= 0:
                        break
                    timeout = remaining if timeout is None else min(timeout, remaining)
                self._cond.wait(timeout)
            if self._stopping:
                return False
            self._pending = False  # cleared before the snapshot: a later change sets it again
            self._wake = None
            self._last = time.monotonic()
            return True

    def _run(self) -> None:
        while self._next():
            again: Any = None
            try:
                again = self._save()
            except BaseException:  # a user store's failure must not end the thread
                log.exception("saving to the state store failed")
            if isinstance(again, (int, float)) and not isinstance(again, bool):
                with self._cond:
                    wake = time.monotonic() + max(0.0, float(again))
                    if self._wake is None or wake < self._wake:
                        self._wake = wake

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
