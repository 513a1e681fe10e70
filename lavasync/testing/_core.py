"""What every room of the FakeNode shares: records, small HTTP types, helpers and _NodeCore.

A FakeNode is assembled from rooms, one concern each, as mixins over :class:`_NodeCore`:

* ``_http.py``: the HTTP server (listening, accepting, TLS, one thread per connection, REST
  dispatch, auth, error bodies, recording);
* ``_ws.py``: the WebSocket server (handshake, reader loop, frame writes, socket loss);
* ``_sessions.py``: sessions and players (message delivery, stats, positions, timers, voice);
* ``_routes.py``: the REST route handlers (bind, check and apply each route);
* ``_tracks.py``: the track catalogue (load results, search, playlists, decoding);
* ``_faults.py``: the fault controls (kill/revive, drops, stalls, REST faults, rate limits,
  player events, raw frames);
* ``node.py``: ``FakeNode`` itself (constructor, lifecycle, what a test observes).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import _wire
from ._dialects import Dialect
from ._scheduler import Scheduler
from ._wire import Headers

if TYPE_CHECKING:
    from ._faults import _Fault
    from ._sessions import FakeSession, _Player, _Track
    from ._ws import _WsConn


log = logging.getLogger("lavasync.testing")

OPEN = "open"
PAUSED = "paused"
DESTROYED = "destroyed"

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_SEND_TIMEOUT = 5.0
_CLOSE_GRACE = 2.0


@dataclass(frozen=True)
class RecordedRequest:
    """One REST request as the fake node received it, with the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    json: Any
    status: int
    time: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class RecordedHandshake:
    """One WebSocket upgrade attempt; ``accepted`` means a session was opened or resumed."""

    headers: Headers
    accepted: bool
    status: int
    session_id: Optional[str]
    resumed: bool


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: Optional[str] = None,
        headers: Optional[list[tuple[str, str]]] = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


def _json_response(status: int, payload: Any) -> _Response:
    return _Response(status, _wire.json_bytes(payload), "application/json")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _parse_long(text: str) -> Optional[int]:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if _I64_MIN <= value <= _I64_MAX else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _I64_MIN <= value <= _I64_MAX


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bad_body(why: str) -> _HttpError:
    return _HttpError(400, f"Failed to read request: {why}")


class _NodeCore:
    """The state every room of a FakeNode shares (set by ``FakeNode.__init__``).

    The rooms (mixins) touch it only under ``_lock``; ``_cond`` is a Condition on that lock,
    notified on every change a test may wait for. For the type checker, this class also names
    the methods one room calls in another (the seams between rooms).
    """

    # configuration (see FakeNode.__init__)
    dialect: str
    ssl_context: Optional[ssl.SSLContext]
    password: str
    host: str
    port: int
    name: str
    version: str
    stats_interval: float
    player_update_interval: float
    cleanup_threshold: float
    source_managers: tuple[str, ...]
    disabled_filters: frozenset[str]
    plugin_filters: tuple[str, ...]
    plugins: tuple[tuple[str, str], ...]
    stuck_threshold_ms: int
    _dialect: Dialect

    # shared machinery
    _lock: threading.RLock
    _cond: threading.Condition
    _scheduler: Scheduler
    _started: bool
    _closed: bool
    _killed: bool
    _epoch: int  # bumped by kill and close: whatever waits on the old epoch gives up
    _started_mono: float

    # sessions and players (_sessions.py)
    _sessions: dict[str, FakeSession]
    _accepted_sessions: list[str]

    # HTTP server (_http.py)
    _listener: Optional[socket.socket]
    _wake_r: Optional[socket.socket]
    _wake_w: Optional[socket.socket]
    _accept_thread: Optional[threading.Thread]
    _conns: dict[socket.socket, threading.Thread]
    _conn_seq: int
    _requests: list[RecordedRequest]
    _custom_routes: dict[tuple[str, str], Callable[[RecordedRequest], Any]]

    # WebSocket server (_ws.py)
    _ws_conns: list[_WsConn]
    _handshakes: list[RecordedHandshake]
    _ws_close_codes: list[int]

    # track catalogue (_tracks.py)
    _load_results: dict[str, dict[str, Any]]
    _catalogue: dict[str, dict[str, Any]]
    _plugin_info: dict[tuple[str, str], dict[str, Any]]
    _track_seq: int
    _route_planner: Optional[dict[str, Any]]

    # fault controls (_faults.py)
    _answering: bool
    _refusing: Optional[str]
    _voice_delay: float
    _voice_failure: bool
    _faults: list[_Fault]
    _release_gen: int
    _rate: Optional[tuple[int, float, float]]
    _rate_hits: deque[float]
    _rate_blocked_until: float

    if TYPE_CHECKING:
        # The seams between rooms: what one room calls in another, for the type checker only
        # (the real methods are in the room named above each group).

        # sessions and players (_sessions.py)

        def _connect_voice(self, player: _Player, voice: dict[str, Any]) -> None:
            raise NotImplementedError

        def _destroy_session(self, session: FakeSession) -> None:
            raise NotImplementedError

        def _dialect_events(self, player: _Player, kind: str, **fields: Any) -> None:
            raise NotImplementedError

        def _end_track(self, player: _Player, reason: str) -> None:
            raise NotImplementedError

        def _event(self, player: _Player, type_: str, **fields: Any) -> None:
            raise NotImplementedError

        def _expire(self, session: FakeSession, token: int) -> None:
            raise NotImplementedError

        def _freeze(self, player: _Player) -> None:
            raise NotImplementedError

        def _get_or_create(self, session: FakeSession, guild_id: int) -> _Player:
            raise NotImplementedError

        def _new_session(self, user_id: int, client_name: str) -> FakeSession:
            raise NotImplementedError

        def _patch_events(self, player: _Player, body: dict[str, Any], created: bool) -> None:
            raise NotImplementedError

        def _player_update(self, player: _Player) -> None:
            raise NotImplementedError

        def _reschedule(self, player: _Player) -> None:
            raise NotImplementedError

        def _send(self, session: FakeSession, message: dict[str, Any]) -> None:
            raise NotImplementedError

        def _start_track(self, player: _Player, track: _Track, position: int) -> None:
            raise NotImplementedError

        def _stats(self) -> dict[str, Any]:
            raise NotImplementedError

        def _stats_tick(self, session: FakeSession, gen: int = -1, when: float = 0.0) -> None:
            raise NotImplementedError

        # WebSocket server (_ws.py)

        def _handshake(self, sock: socket.socket, reader: Any, req: _wire.HttpRequest) -> None:
            raise NotImplementedError

        def _write(self, conn: _WsConn, data: bytes) -> None:
            raise NotImplementedError

        def _ws_close(self, conn: _WsConn, code: Optional[int], reason: str) -> None:
            raise NotImplementedError

        def _ws_lost(self, conn: _WsConn) -> None:
            raise NotImplementedError

        # HTTP server (_http.py)

        def _api(self) -> list[tuple[str, str]]:
            raise NotImplementedError

        def _join_conns(self, deadline: float) -> None:
            raise NotImplementedError

        @staticmethod
        def _json_body(req: _wire.HttpRequest) -> Any:
            raise NotImplementedError

        def _listen(self) -> None:
            raise NotImplementedError

        @staticmethod
        def _peer_alive(sock: socket.socket) -> bool:
            raise NotImplementedError

        @staticmethod
        def _send_bytes(sock: socket.socket, data: bytes) -> bool:
            raise NotImplementedError

        def _shutdown_all_sockets(self) -> None:
            raise NotImplementedError

        def _stop_listening(self, timeout: float) -> None:
            raise NotImplementedError

        # track catalogue (_tracks.py)

        def _decode(self, encoded: str) -> _Track:
            raise NotImplementedError

        def _load(self, identifier: str) -> dict[str, Any]:
            raise NotImplementedError

        # fault controls (_faults.py)

        def _hold_answer(self, sock: socket.socket) -> bool:
            raise NotImplementedError

        def _rate_check(self) -> Optional[_Response]:
            raise NotImplementedError

        def _rate_headers(self) -> list[tuple[str, str]]:
            raise NotImplementedError

        @staticmethod
        def _send_and_reset(sock: socket.socket, data: bytes) -> None:
            raise NotImplementedError

        def _take_fault(self, kinds: tuple[str, ...], method: str, path: str) -> Optional[_Fault]:
            raise NotImplementedError
