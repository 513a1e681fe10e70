"""FakeNode: a Lavalink v4 stand-in on 127.0.0.1, written from PROTOCOL.md.

HTTP/1.1 and WebSocket (RFC 6455) over plain sockets, standard library only. It keeps sessions,
players, positions and voice state the way a 4.2.2 server does, records every request and
handshake, and has controls to break things on purpose (drop sockets, stall, crash and revive).

Threads, all named ``fakenode-...`` and joined by :meth:`FakeNode.close`: one accept thread,
one thread per client connection (REST keep-alive connection or WebSocket reader), and one
scheduler thread that runs every timer (stats, playerUpdates, track ends, session expiry,
cleanup), whatever the number of players.

Thread-safety: every public method may be called from any thread. State is guarded by one
re-entrant lock; messages to a WebSocket are written under it, so their order is the order in
which the server produced them, and a REST request's events are on the wire before its reply.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, unquote

from ..codec import decode_blob, encode_info, parse_source_fields, with_position
from ..models.track import Track
from . import _wire
from ._catalogue import (
    BUILTIN_TRACKS,
    DEFAULT_FILTERS,
    DEFAULT_SOURCES,
    FILTER_DEFAULTS,
    LOAD_FAILED_MESSAGE,
    PROBE_NAMES,
    SEARCH_PREFIXES,
    STREAM_LENGTH,
    make_info,
    probe_data,
    track_json,
)
from ._dialects import make_dialect
from ._scheduler import Scheduler, Timer
from ._wire import Headers

log = logging.getLogger("lavasync.testing")

__all__ = ["FakeNode", "FakeSession", "RecordedHandshake", "RecordedRequest"]

OPEN = "open"
PAUSED = "paused"
DESTROYED = "destroyed"

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_SEND_TIMEOUT = 5.0
_CLOSE_GRACE = 2.0
_SESSION_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_DECODE_FAILED = "Failed to decode track due to a mismatching version or missing source manager"
_VOICE_BLANK = "token, endpoint, sessionId and channelId must be provided in voice state"
_BOOL_WORDS = {"true": True, "on": True, "yes": True, "1": True}
_BOOL_WORDS.update({"false": False, "off": False, "no": False, "0": False})


# --------------------------------------------------------------------------- records


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


# --------------------------------------------------------------------------- state


class _Track:
    """A track instance loaded in a player: what is needed to write its JSON at any position."""

    __slots__ = (
        "end_time",
        "info",
        "original",
        "plugin_info",
        "source_data",
        "user_data",
        "version",
    )

    def __init__(
        self,
        original: str,
        info: dict[str, Any],
        source_data: bytes,
        version: int,
        plugin_info: dict[str, Any],
    ) -> None:
        self.original = original
        self.info = info
        self.source_data = source_data
        self.version = version
        self.plugin_info = plugin_info
        self.user_data: dict[str, Any] = {}
        self.end_time: Optional[int] = None

    @property
    def length(self) -> int:
        return int(self.info["length"])

    @property
    def is_stream(self) -> bool:
        return bool(self.info["isStream"])

    def encode(self, position: int) -> str:
        """Re-encode as the server does (a version 3 blob) with ``position`` embedded."""
        position = max(0, min(position, _I64_MAX))
        if (
            self.version == 3
            or not self.source_data
            or self.info["sourceName"] in ("http", "local")
        ):
            info = dict(self.info, position=position)
            return encode_info(info, source_data=self.source_data, version=3)
        return with_position(self.original, position)

    def json(self, position: int) -> dict[str, Any]:
        info = dict(self.info, position=max(0, position))
        return track_json(self.encode(position), info, self.plugin_info, self.user_data)


class _Player:
    __slots__ = (
        "base_mono",
        "base_pos",
        "base_src",
        "connected",
        "destroyed",
        "filters",
        "gen",
        "guild_id",
        "last_poll",
        "paused",
        "ping",
        "session",
        "timers",
        "track",
        "voice",
        "volume",
    )

    def __init__(self, session: FakeSession, guild_id: int) -> None:
        self.session = session
        self.guild_id = guild_id
        self.track: Optional[_Track] = None
        self.volume = 100
        self.paused = False
        self.filters: dict[str, Any] = {}
        self.voice: dict[str, Any] = {
            "token": "",
            "endpoint": "",
            "sessionId": "",
            "channelId": None,
        }
        self.connected = False
        self.ping = -1
        now = time.monotonic()
        self.base_pos = 0
        self.base_src = 0  # track time at base_mono (differs from base_pos under a timescale)
        self.base_mono = now
        self.last_poll = now
        self.gen = 0
        self.timers: list[Timer] = []
        self.destroyed = False

    @property
    def running(self) -> bool:
        return self.track is not None and self.connected and not self.paused

    @property
    def speed(self) -> float:
        ts = self.filters.get("timescale")
        if not ts:
            return 1.0
        value = float(ts.get("speed", 1.0)) * float(ts.get("rate", 1.0))
        return value if value > 0 and math.isfinite(value) else 1.0

    def position(self, now: Optional[float] = None) -> int:
        """The reported position: it advances at wall-clock rate whatever the timescale is
        (lavaplayer stamps output frames from the start or seek target, PROTOCOL.md)."""
        if self.track is None:
            return 0
        pos = self.base_pos
        if self.running:
            now = time.monotonic() if now is None else now
            pos += int((now - self.base_mono) * 1000.0)
            target = self.end_target()
            if target is not None:
                pos = min(pos, max(target, self.base_pos))
        return max(0, pos)

    def source_position(self, now: Optional[float] = None) -> int:
        """How far into the track's own time playback is (advances at speed x rate)."""
        if self.track is None:
            return 0
        pos = self.base_src
        if self.running:
            now = time.monotonic() if now is None else now
            pos += int((now - self.base_mono) * 1000.0 * self.speed)
        return max(0, pos)

    def end_target(self) -> Optional[int]:
        """The reported position at which the track ends: its length is reached in track time
        (early under a timescale > 1), an endTime in reported position."""
        track = self.track
        if track is None:
            return None
        length = track.length
        target = None
        if not (track.is_stream or length >= STREAM_LENGTH or length < 0):
            target = self.base_pos + int(max(0, length - self.base_src) / self.speed)
        if track.end_time is not None and (target is None or track.end_time < target):
            target = track.end_time
        return target

    def state(self) -> dict[str, Any]:
        return {
            "time": _now_ms(),
            "position": self.position(),
            "connected": self.connected,
            "ping": self.ping,
        }

    def json(self) -> dict[str, Any]:
        track = self.track
        return {
            "guildId": str(self.guild_id),
            "track": None if track is None else track.json(self.position()),
            "volume": self.volume,
            "paused": self.paused,
            "state": self.state(),
            "voice": dict(self.voice),
            "filters": copy.deepcopy(self.filters),
        }


class FakeSession:
    """State of one Lavalink session on a :class:`FakeNode` (a live view; read, don't write).

    ``state`` is ``"open"``, ``"paused"`` or ``"destroyed"``. ``queued`` are the messages held
    while paused; ``sent`` the most recent messages written to (or held for) its socket.
    Attribute reads are safe from any thread; values may change right after.
    """

    def __init__(self, node: FakeNode, session_id: str, user_id: int, client_name: str) -> None:
        self._node = node
        self.session_id = session_id
        self.user_id = user_id
        self.client_name = client_name
        self.resuming = False
        self.timeout = 60
        self.state = OPEN
        self.virtual = False
        self.resume_count = 0
        self._players: dict[int, _Player] = {}
        self._queue: list[dict[str, Any]] = []
        self._sent: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._received: list[str] = []
        self._ws: Optional[_WsConn] = None
        self._stats_gen = 0
        self._expiry_token = 0

    @property
    def connected(self) -> bool:
        """True while the session is OPEN (a socket is attached, or it is a virtual session)."""
        return self.state == OPEN

    @property
    def players(self) -> dict[int, dict[str, Any]]:
        """guild id -> the REST Player JSON as it is now."""
        with self._node._lock:
            return {gid: p.json() for gid, p in self._players.items()}

    @property
    def queued(self) -> list[dict[str, Any]]:
        with self._node._lock:
            return copy.deepcopy(self._queue)

    @property
    def sent(self) -> list[dict[str, Any]]:
        with self._node._lock:
            return copy.deepcopy(list(self._sent))

    @property
    def received(self) -> list[str]:
        """Text frames the client sent (v4 clients should send none; the server ignores them)."""
        with self._node._lock:
            return list(self._received)

    def __repr__(self) -> str:
        return (
            f"<FakeSession {self.session_id} {self.state} resuming={self.resuming} "
            f"timeout={self.timeout} players={len(self._players)}>"
        )


class _WsConn:
    __slots__ = ("closing", "frozen", "held", "lost", "session", "sock")

    def __init__(self, sock: socket.socket, session: FakeSession) -> None:
        self.sock = sock
        self.session = session
        self.closing = False
        self.lost = False
        self.frozen = False  # half-open: nothing goes out, nothing that comes in is noticed
        self.held: list[bytes] = []


# --------------------------------------------------------------------------- routes

_SID = r"(?P<sid>[^/]+)"
_GID = r"(?P<gid>[^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(p), m)
    for p, m in [
        (r"/version", {"GET": "version"}),
        (r"/v4/info", {"GET": "info"}),
        (r"/v4/stats", {"GET": "stats"}),
        (r"/v4/loadtracks", {"GET": "loadtracks"}),
        (r"/v4/decodetrack", {"GET": "decodetrack"}),
        (r"/v4/decodetracks", {"POST": "decodetracks"}),
        (rf"/v4/sessions/{_SID}/players", {"GET": "get_players"}),
        (
            rf"/v4/sessions/{_SID}/players/{_GID}",
            {"GET": "get_player", "PATCH": "patch_player", "DELETE": "delete_player"},
        ),
        (rf"/v4/sessions/{_SID}", {"PATCH": "patch_session"}),
        (r"/v4/routeplanner/status", {"GET": "routeplanner_status"}),
        (r"/v4/routeplanner/free/address", {"POST": "routeplanner_free_address"}),
        (r"/v4/routeplanner/free/all", {"POST": "routeplanner_free_all"}),
        (r"/v4/websocket", {"GET": "websocket"}),
    ]
]


def _parse_long(text: str) -> Optional[int]:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if _I64_MIN <= value <= _I64_MAX else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _I64_MIN <= value <= _I64_MAX


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class _Fault:
    """One REST fault rule: which requests it matches and how many it still affects."""

    kind: str  # "fail", "stall" or "reset"
    method: Optional[str]
    path: Optional[str]
    count: Optional[int]  # None: every matching request until cleared
    status: int = 500
    message: str = ""
    keep: int = 0  # reset: bytes of the body sent before the reset

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path in path
        )


def _bad_body(why: str) -> _HttpError:
    return _HttpError(400, f"Failed to read request: {why}")


# --------------------------------------------------------------------------- the node


class FakeNode:
    """A Lavalink v4 server stand-in on loopback, for tests (yours and lavasync's).

    ``with FakeNode() as fake: ...`` starts it on a free port; ``fake.uri`` and
    ``fake.password`` are what a client needs. See the module docstring for threads and
    thread-safety. Intervals are in seconds; make them small in tests.

    The fault controls (``drop_connections``, ``close_websockets``, ``expire_session``,
    ``kill``/``revive``, ``stop_answering``/``resume_answering``, ``refuse_connections``,
    ``add_route``, ``stuck_track``, ``fail_track``, ``finish_track``, ``close_voice``, ``emit``,
    ``send_raw``, ``burst``, ``set_voice_delay``, ``set_voice_failure``) are public API, listed
    by purpose in :mod:`lavasync.testing`.
    """

    def __init__(
        self,
        password: str = "youshallnotpass",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stats_interval: float = 60.0,
        player_update_interval: float = 5.0,
        version: Optional[str] = None,
        name: str = "fake",
        cleanup_threshold: float = 60.0,
        source_managers: tuple[str, ...] = DEFAULT_SOURCES,
        disabled_filters: tuple[str, ...] = (),
        plugin_filters: tuple[str, ...] = (),
        plugins: tuple[tuple[str, str], ...] = (),
        stuck_threshold_ms: int = 10_000,
        ssl_context: Optional[ssl.SSLContext] = None,
        dialect: str = "lavalink",
    ) -> None:
        # dialect: "lavalink" (4.2), "nodelink" (NodeLink 3.7's deviations) or "lavalink-v3"
        # (an old server lavasync must refuse); the shapes live in _dialects.py
        self._dialect = make_dialect(dialect)
        self.dialect = self._dialect.name
        version = version if version is not None else self._dialect.default_version
        if stats_interval <= 0 or player_update_interval <= 0 or cleanup_threshold <= 0:
            raise ValueError("intervals must be positive")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ValueError("ssl_context must be a server-side ssl.SSLContext")
        #: With a (server-side) context, every connection is TLS: https:// and wss://.
        self.ssl_context = ssl_context
        self.password = password
        self.host = host
        self.port = port
        self.name = name
        self.version = version
        self.stats_interval = float(stats_interval)
        self.player_update_interval = float(player_update_interval)
        self.cleanup_threshold = float(cleanup_threshold)
        self.source_managers = tuple(source_managers)
        self.disabled_filters = frozenset(disabled_filters)
        self.plugin_filters = tuple(plugin_filters)
        self.plugins = tuple(plugins)
        self.stuck_threshold_ms = stuck_threshold_ms

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._scheduler = Scheduler(f"fakenode-scheduler-{name}")
        self._sessions: dict[str, FakeSession] = {}
        self._requests: list[RecordedRequest] = []
        self._handshakes: list[RecordedHandshake] = []
        self._accepted_sessions: list[str] = []
        self._listener: Optional[socket.socket] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._ws_conns: list[_WsConn] = []
        self._conn_seq = 0
        self._started = False
        self._closed = False
        self._killed = False
        self._epoch = 0
        self._answering = True
        self._refusing: Optional[str] = None
        self._voice_delay = 0.0
        self._voice_failure = False
        self._faults: list[_Fault] = []  # REST fault rules (fail_next, stall_answers, ...)
        self._release_gen = 0  # bumped by release_answers(): held answers go out
        self._route_planner: Optional[dict[str, Any]] = None
        self._load_results: dict[str, dict[str, Any]] = {}
        self._catalogue: dict[str, dict[str, Any]] = {}
        self._plugin_info: dict[tuple[str, str], dict[str, Any]] = {}
        self._track_seq = 0
        self._started_mono = time.monotonic()
        self._custom_routes: dict[tuple[str, str], Callable[[RecordedRequest], Any]] = {}
        self._rate: Optional[tuple[int, float, float]] = None  # limit, window s, block s
        if self._dialect.default_rate_limit is not None:
            self._rate = (*self._dialect.default_rate_limit, 0.0)
        self._rate_hits: deque[float] = deque()
        self._rate_blocked_until = 0.0
        self._ws_close_codes: list[int] = []
        for track in BUILTIN_TRACKS:
            self._register(track)

    # ------------------------------------------------------------------ lifecycle

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with an ssl_context; valid after start)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def ws_uri(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}/v4/websocket"

    def start(self) -> FakeNode:
        """Bind and start serving; returns self. Starting twice is a no-op."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this FakeNode was closed")
            if self._started:
                return self
            self._started = True
            self._started_mono = time.monotonic()
        self._scheduler.start()
        self._listen()
        return self

    def __enter__(self) -> FakeNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Shut down like a server stopping (WebSockets get close 1001); joins every thread."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._epoch += 1
            self._answering = True
            self._cond.notify_all()
            conns = list(self._ws_conns)
        self._stop_listening(timeout)
        for conn in conns:
            with self._lock:
                if not conn.lost and not conn.closing:
                    self._write(conn, _wire.encode_frame(_wire.OP_CLOSE, _wire.close_payload(1001)))
                    conn.closing = True
        with self._lock:
            for session in list(self._sessions.values()):
                self._destroy_session(session)
        self._shutdown_all_sockets()
        self._scheduler.stop(max(0.0, deadline - time.monotonic()))
        self._join_conns(deadline)

    def kill(self, *, lose_sessions: bool = False) -> None:
        """Crash: stop listening and cut every connection without a close frame.

        Sessions stay in memory (resuming ones PAUSED, others destroyed) so a :meth:`revive`
        within the resume window can resume them; ``lose_sessions=True`` forgets all of them.
        """
        with self._cond:
            if self._closed or self._killed or not self._started:
                return
            self._killed = True
            self._epoch += 1
            self._cond.notify_all()
            for conn in list(self._ws_conns):
                self._ws_lost(conn)
            if lose_sessions:
                for session in list(self._sessions.values()):
                    self._destroy_session(session)
        self._stop_listening(5.0)
        self._shutdown_all_sockets()
        self._join_conns(time.monotonic() + 5.0)

    def revive(self) -> None:
        """Listen again on the same port after :meth:`kill`."""
        with self._lock:
            if self._closed or not self._killed:
                return
            self._killed = False
        self._listen()

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        wake_r, wake_w = socket.socketpair()
        self._listener, self._wake_r, self._wake_w = sock, wake_r, wake_w
        thread = threading.Thread(
            target=self._accept_loop,
            args=(sock, wake_r),
            name=f"fakenode-accept-{self.port}",
            daemon=True,
        )
        self._accept_thread = thread
        thread.start()

    def _stop_listening(self, timeout: float) -> None:
        thread, wake_w = self._accept_thread, self._wake_w
        self._accept_thread = None
        if wake_w is not None:
            try:
                wake_w.send(b"x")
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        while True:
            try:
                ready, _, _ = select.select([listener, wake], [], [])
            except (OSError, ValueError):
                return
            if wake in ready:
                return
            try:
                sock, _ = listener.accept()
            except OSError:
                continue
            with self._lock:
                if self._closed or self._killed:
                    sock.close()
                    return
                if self._refusing == "close":
                    sock.close()
                    continue
                self._conn_seq += 1
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(_SEND_TIMEOUT)
                thread = threading.Thread(
                    target=self._serve,
                    args=(sock,),
                    name=f"fakenode-http-{self.port}-{self._conn_seq}",
                    daemon=True,
                )
                self._conns[sock] = thread
            thread.start()

    def _shutdown_all_sockets(self) -> None:
        with self._lock:
            socks = list(self._conns)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _join_conns(self, deadline: float) -> None:
        while True:
            with self._lock:
                threads = [t for t in self._conns.values() if t is not threading.current_thread()]
            if not threads:
                return
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST request since start (or :meth:`clear_requests`), oldest first; a copy."""
        with self._lock:
            return list(self._requests)

    @property
    def handshakes(self) -> list[RecordedHandshake]:
        with self._lock:
            return list(self._handshakes)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_request(
        self, method: str, path: str, timeout: float = 5.0, *, count: int = 1
    ) -> RecordedRequest:
        """The ``count``-th recorded request with this method whose path starts with ``path``."""
        method = method.upper()

        def found() -> list[RecordedRequest]:
            return [r for r in self._requests if r.method == method and r.path.startswith(path)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(found()) >= count, timeout):
                raise TimeoutError(f"no {method} {path} (#{count}) within {timeout} s")
            return found()[count - 1]

    def wait_for_connection(self, timeout: float = 5.0, *, count: int = 1) -> str:
        """Session id of the ``count``-th accepted WebSocket (new or resumed)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._accepted_sessions) >= count, timeout):
                raise TimeoutError(f"no WebSocket connection #{count} within {timeout} s")
            return self._accepted_sessions[count - 1]

    def wait_for_message(
        self,
        session_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> dict[str, Any]:
        """The ``count``-th message sent to a session (see ``FakeSession.sent``) that matches
        ``predicate``; TimeoutError if it does not come in time."""
        with self._cond:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(session_id)
            hits: list[dict[str, Any]] = []

            def check() -> bool:
                hits[:] = [m for m in session._sent if predicate(m)]
                return len(hits) >= count

            if not self._cond.wait_for(check, timeout):
                raise TimeoutError(f"{len(hits)} matching messages, wanted {count}")
            return copy.deepcopy(hits[count - 1])

    def wait_session(self, session_id: str, state: str, timeout: float = 5.0) -> None:
        """Block until a session is ``"open"``, ``"paused"`` or ``"destroyed"`` (gone)."""
        if state not in (OPEN, PAUSED, DESTROYED):
            raise ValueError(f"unknown session state {state!r}")

        def reached() -> bool:
            session = self._sessions.get(session_id)
            return (session.state if session is not None else DESTROYED) == state

        with self._cond:
            if not self._cond.wait_for(reached, timeout):
                raise TimeoutError(f"session {session_id} did not become {state} in {timeout} s")

    # ------------------------------------------------------------------ state access

    @property
    def sessions(self) -> dict[str, FakeSession]:
        """Live sessions (open and paused) by id; a copy of the map, the values are live."""
        with self._lock:
            return dict(self._sessions)

    def session_ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def player(self, session_id: str, guild_id: int) -> Optional[dict[str, Any]]:
        """The REST Player JSON of a player as it is now, or None."""
        with self._lock:
            session = self._sessions.get(session_id)
            p = None if session is None else session._players.get(int(guild_id))
            return None if p is None else p.json()

    def create_session(self, *, user_id: int = 1, resuming: bool = False, timeout: int = 60) -> str:
        """Open a session without a WebSocket (a test shortcut for REST-only tests).

        It behaves as OPEN; its messages are only recorded (``sessions[id].sent``).
        """
        with self._lock:
            session = self._new_session(user_id, "virtual")
            session.virtual = True
            session.resuming = resuming
            session.timeout = timeout
            self._send(session, {"op": "ready", "resumed": False, "sessionId": session.session_id})
            self._stats_tick(session)
            return session.session_id

    # ------------------------------------------------------------------ catalogue

    def _register(self, track: dict[str, Any]) -> None:
        info = track["info"]
        self._catalogue[info["identifier"]] = track
        if info.get("uri"):
            self._catalogue.setdefault(info["uri"], track)
        if track.get("pluginInfo"):
            key = (info["sourceName"], info["identifier"])
            self._plugin_info[key] = dict(track["pluginInfo"])

    def add_track(
        self,
        title: str = "Fake Track",
        *,
        length: int = 30_000,
        author: str = "lavasync",
        identifier: Optional[str] = None,
        source_name: str = "http",
        uri: Optional[str] = None,
        is_stream: bool = False,
        artwork_url: Optional[str] = None,
        isrc: Optional[str] = None,
        probe: str = "mp3",
        plugin_info: Optional[Mapping[str, Any]] = None,
    ) -> Track:
        """Add a track to the catalogue and return it as a :class:`lavasync.Track`.

        ``track.encoded`` is a real v3 blob that decodes and plays; the track loads by
        identifier (and uri) through ``/v4/loadtracks``. ``track.to_wire()`` gives the Track
        JSON (for :meth:`set_load_result`). ``is_stream`` makes it a live stream (length 2^63-1).
        """
        unknown_ok = self.dialect == "nodelink" and length == -1  # NodeLink's unknown length
        if (
            not isinstance(length, int)
            or isinstance(length, bool)
            or (length < 0 and not unknown_ok)
        ):
            raise ValueError("length must be a non-negative int")
        with self._lock:
            self._track_seq += 1
            n = self._track_seq
            if identifier is None:
                if source_name in ("http", "local"):
                    identifier = uri or f"https://fake.invalid/{self.name}/{n}.mp3"
                else:
                    identifier = f"fake{n:07d}"
            if uri is None and source_name in ("http", "local"):
                uri = identifier
            info = make_info(
                title=title,
                author=author,
                length=STREAM_LENGTH if is_stream else length,
                identifier=identifier,
                source_name=source_name,
                uri=uri,
                is_stream=is_stream,
                artwork_url=artwork_url,
                isrc=isrc,
            )
            data = probe_data(probe) if source_name in ("http", "local") else b""
            track = track_json(encode_info(info, source_data=data), info, dict(plugin_info or {}))
            self._register(track)
            wire = copy.deepcopy(track)
        return Track.from_wire(wire)

    def set_load_result(self, identifier: str, result: dict[str, Any]) -> None:
        """Answer exactly this LoadResult JSON for ``identifier`` (loadtracks and PATCH)."""
        with self._lock:
            self._load_results[identifier] = copy.deepcopy(result)

    def set_route_planner(self, status: Optional[dict[str, Any]]) -> None:
        """RoutePlannerStatus JSON for ``/v4/routeplanner/status``; None = no planner (204)."""
        with self._lock:
            self._route_planner = copy.deepcopy(status)

    def add_route(self, method: str, path: str, handler: Callable[[RecordedRequest], Any]) -> None:
        """A plugin-style route (exact path). ``handler(request)`` returns ``(status, json)``
        or a JSON value (200); None means 204. Auth is checked first, as for every route."""
        with self._lock:
            self._custom_routes[(method.upper(), path)] = handler

    def _load(self, identifier: str) -> dict[str, Any]:
        with self._lock:
            if identifier in self._load_results:
                return copy.deepcopy(self._load_results[identifier])
            if identifier == "fake:empty":
                return {"loadType": "empty", "data": None}
            if identifier == "fake:error":
                return {"loadType": "error", "data": self._load_error()}
            if identifier.startswith("fake:playlist"):
                return self._playlist(identifier)
            for prefix, source in SEARCH_PREFIXES.items():
                if identifier.startswith(prefix) and source in self.source_managers:
                    return self._search(identifier[len(prefix) :].strip(), source)
            track = self._catalogue.get(identifier)
            if track is not None and track["info"]["sourceName"] in self.source_managers:
                return {"loadType": "track", "data": copy.deepcopy(track)}
            return {"loadType": "empty", "data": None}

    def _load_error(self) -> dict[str, Any]:
        cause = f"com.sedmelluq.discord.lavaplayer.tools.FriendlyException: {LOAD_FAILED_MESSAGE}"
        return {
            "message": LOAD_FAILED_MESSAGE,
            "severity": "fault",
            "cause": cause,
            "causeStackTrace": f"{cause}\n\tat lavalink.server.util.LoadingKt.loadAudioItem"
            "(loading.kt:20)\nCaused by: java.io.IOException: fake node load failure\n",
        }

    def _playlist(self, identifier: str) -> dict[str, Any]:
        rest = identifier[len("fake:playlist") :]
        if rest.startswith(":") and rest[1:].isdigit():
            n = int(rest[1:])
            tracks = []
            for i in range(1, n + 1):
                key = f"fakepl{n}-{i:05d}"
                track = self._catalogue.get(key)
                if track is None:
                    info = make_info(
                        title=f"Playlist track {i} of {n}",
                        author="lavasync",
                        length=180_000 + i,
                        identifier=key,
                        source_name="youtube",
                        uri=f"https://www.youtube.com/watch?v={key}",
                    )
                    track = track_json(encode_info(info), info)
                    self._register(track)
                tracks.append(track)
            name = f"Fake playlist of {n}"
        elif rest == "":
            tracks = [t for t in BUILTIN_TRACKS if t["info"]["sourceName"] in self.source_managers]
            name = "Fake playlist"
        else:
            return {"loadType": "empty", "data": None}
        data = {"info": {"name": name, "selectedTrack": -1}, "pluginInfo": {}, "tracks": tracks}
        return {"loadType": "playlist", "data": copy.deepcopy(data)}

    def _search(self, query: str, source: str) -> dict[str, Any]:
        if not query:
            return {"loadType": "empty", "data": None}
        words = query.lower().split()
        seen: set[str] = set()
        hits = []
        for track in self._catalogue.values():
            info = track["info"]
            text = f"{info['title']} {info['author']}".lower()
            matches = info["sourceName"] == source and all(w in text for w in words)
            if matches and info["identifier"] not in seen:
                seen.add(info["identifier"])
                hits.append(track)
        if not hits:
            for i in range(1, 6):
                ident = f"{source[:2]}{abs(hash((query, i))) % 10**10:010d}"
                uri = (
                    f"https://www.youtube.com/watch?v={ident}"
                    if source == "youtube"
                    else f"https://{source}.com/fake/{ident}"
                )
                info = make_info(
                    title=f"{query} (result {i})",
                    author=f"{source} artist {i}",
                    length=120_000 + 1000 * i,
                    identifier=ident,
                    source_name=source,
                    uri=uri,
                )
                track = track_json(encode_info(info), info)
                self._register(track)
                hits.append(track)
        return {"loadType": "search", "data": copy.deepcopy(hits)}

    def _decode(self, encoded: str) -> _Track:
        """Decode a blob as the server would; _HttpError 500 on any failure."""
        try:
            blob = decode_blob(encoded)
        except ValueError as exc:
            raise _HttpError(500, str(exc)) from None
        info = blob.info
        source = info["sourceName"]
        if source not in self.source_managers:
            raise _HttpError(500, _DECODE_FAILED)
        if source in ("http", "local"):
            probe = parse_source_fields(source, blob.source_data, blob.version).get("probeInfo")
            if not probe or probe.split("|")[0] not in PROBE_NAMES:
                raise _HttpError(500, _DECODE_FAILED)
        plugin_info = self._plugin_info.get((source, info["identifier"]), {})
        return _Track(encoded, dict(info), blob.source_data, blob.version, dict(plugin_info))

    # ------------------------------------------------------------------ test controls

    def emit(self, payload: dict[str, Any], *, session_id: Optional[str] = None) -> None:
        """Send a message to one session (queued if it is paused) or to every open session."""
        with self._lock:
            for session in self._targets(session_id):
                self._send(session, copy.deepcopy(payload))

    def send_raw(
        self, text: Any, *, session_id: Optional[str] = None, binary: bool = False
    ) -> None:
        """Write one raw text (or binary) frame to connected sockets; never queued."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        frame = _wire.encode_frame(_wire.OP_BINARY if binary else _wire.OP_TEXT, data)
        with self._lock:
            for session in self._targets(session_id):
                if session._ws is not None:
                    self._write(session._ws, frame)

    def burst(
        self, payload: dict[str, Any], count: int, *, session_id: Optional[str] = None
    ) -> None:
        """Write ``count`` copies of one message to open sockets as fast as possible.

        A load generator for ingest benchmarks and tests: every frame is encoded first and all
        are written with one ``sendall``, so the receiver, not the fake, is the bottleneck.
        Burst frames are not recorded in ``FakeSession.sent`` and never queued.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be a whole number >= 0")
        data = _wire.encode_frame(_wire.OP_TEXT, _wire.json_bytes(payload)) * count
        with self._lock:
            for session in self._targets(session_id):
                if session.state == OPEN and session._ws is not None and not session._ws.closing:
                    self._write(session._ws, data)

    def _targets(self, session_id: Optional[str]) -> list[FakeSession]:
        if session_id is None:
            return [s for s in self._sessions.values() if s.state == OPEN]
        session = self._sessions.get(session_id)
        if session is None:
            raise KeyError(f"no session {session_id!r}")
        return [session]

    def drop_connections(self) -> None:
        """Cut every WebSocket (no close frame); sessions go PAUSED if resuming, else die."""
        with self._lock:
            conns = list(self._ws_conns)
            for conn in conns:
                self._ws_lost(conn)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close_websockets(self, code: int = 1000, reason: str = "") -> None:
        """Close every WebSocket with a close frame (``code``, ``reason``)."""
        with self._lock:
            for conn in list(self._ws_conns):
                self._ws_close(conn, code, reason)

    def freeze_websockets(self) -> None:
        """Make every open WebSocket half-open: the server keeps its sessions OPEN and goes on
        believing the socket works, but nothing it sends arrives, pings go unanswered, and
        what the client sends (a close frame, the TCP close) is never noticed. REST still
        answers, so the old sessions stay routable. New connections are normal."""
        with self._lock:
            for conn in self._ws_conns:
                conn.frozen = True

    def stop_answering(self) -> None:
        """Stall: sockets stay open but nothing is sent, pings go unanswered, REST hangs."""
        with self._lock:
            self._answering = False

    def resume_answering(self) -> None:
        """End a stall: held messages are written in order and waiting REST calls proceed."""
        with self._cond:
            self._answering = True
            for conn in list(self._ws_conns):
                held, conn.held = conn.held, []
                for data in held:
                    self._write(conn, data)
            self._cond.notify_all()

    def refuse_connections(self, refuse: bool = True, *, how: str = "503") -> None:
        """While set, new requests and handshakes get HTTP 503 (``how="close"``: the TCP
        connection is closed at once)."""
        if how not in ("503", "close"):
            raise ValueError("how must be '503' or 'close'")
        with self._lock:
            self._refusing = how if refuse else None

    def expire_session(self, session_id: str) -> None:
        """Destroy a session now, as if its resume window ran out (an open one loses its
        socket)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(f"no session {session_id!r}")
            conn = session._ws
            self._destroy_session(session)
        if conn is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_voice_delay(self, seconds: float) -> None:
        """A voice PATCH blocks this long (the real one waits for Discord's handshake)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._voice_delay = float(seconds)

    def set_voice_failure(self, fail: bool) -> None:
        """While set, a voice connect answers 500 ``Failed to connect to voice server``."""
        with self._lock:
            self._voice_failure = bool(fail)

    # ------------------------------------------------------------------ REST faults

    def fail_next(
        self,
        method: Optional[str] = None,
        path_substring: Optional[str] = None,
        *,
        status: int = 500,
        count: Optional[int] = 1,
        message: Optional[str] = None,
    ) -> None:
        """Answer the next ``count`` matching REST requests with ``status`` and Lavalink's error
        JSON, **without** applying them (``count=None``: every one until :meth:`clear_faults`).

        Matching: ``method`` (None: any) and ``path_substring`` found in the request path (None:
        any). ``message`` defaults to the status's reason phrase; pass ``"Session not found"``
        with 404 to mimic a session paused on the server (PROTOCOL.md §4).
        """
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        text = _wire.reason_phrase(status) if message is None else message
        self._add_fault(_Fault("fail", None, path_substring, count, status, text), method)

    def stall_answers(
        self,
        path_substring: Optional[str] = None,
        method: Optional[str] = None,
        count: Optional[int] = None,
    ) -> None:
        """Apply matching REST requests (state changes, events go out) but hold their HTTP
        answers until :meth:`release_answers`, the client hangs up, or the node dies/closes.

        The client sees a read timeout for a change the node made: a lost answer. ``count``
        limits how many requests are held (None: every matching one until released).
        """
        self._add_fault(_Fault("stall", None, path_substring, count), method)

    def release_answers(self) -> None:
        """Send every held answer (to clients still listening) and stop stalling."""
        with self._cond:
            self._faults = [f for f in self._faults if f.kind != "stall"]
            self._release_gen += 1
            self._cond.notify_all()

    def reset_mid_body(
        self,
        path_substring: Optional[str] = None,
        method: Optional[str] = None,
        count: Optional[int] = 1,
        *,
        keep: int = 8,
    ) -> None:
        """Apply matching REST requests, then send the status line, the headers and ``keep``
        bytes of the body, and reset the TCP connection (RST: SO_LINGER 0).

        The node made the change; the client gets a connection reset instead of the answer.
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError("keep must be a whole number of bytes >= 0")
        self._add_fault(_Fault("reset", None, path_substring, count, keep=keep), method)

    def clear_faults(self) -> None:
        """Forget every REST fault rule (``fail_next``, ``stall_answers``, ``reset_mid_body``)
        and release held answers."""
        with self._cond:
            self._faults.clear()
            self._release_gen += 1
            self._cond.notify_all()

    def _add_fault(self, fault: _Fault, method: Optional[str]) -> None:
        if fault.count is not None and (
            isinstance(fault.count, bool) or not isinstance(fault.count, int) or fault.count < 1
        ):
            raise ValueError("count must be a whole number >= 1, or None")
        if method is not None:
            if not isinstance(method, str) or not method:
                raise ValueError("method must be an HTTP method name or None")
            fault.method = method.upper()
        if fault.path is not None and not isinstance(fault.path, str):
            raise ValueError("path_substring must be a string or None")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kinds: tuple[str, ...], method: str, path: str) -> Optional[_Fault]:
        """The first rule of ``kinds`` matching this request, with one use counted."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _hold_answer(self, sock: socket.socket) -> bool:
        """Wait until released (True), or the client hung up / the node died (False)."""
        with self._cond:
            gen, epoch = self._release_gen, self._epoch
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._release_gen != gen or self._epoch != epoch or self._closed,
                    0.05,
                )
                if self._epoch != epoch or self._closed:
                    return False
                if self._release_gen != gen:
                    return True
            if not self._peer_alive(sock):
                return False

    @staticmethod
    def _send_and_reset(sock: socket.socket, data: bytes) -> None:
        """Write ``data``, then abort the connection with a RST instead of a FIN."""
        try:
            sock.sendall(data)
        except OSError:
            pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _find_player(self, guild_id: int, session_id: Optional[str]) -> _Player:
        guild_id = int(guild_id)
        if session_id is not None:
            session = self._sessions.get(session_id)
            player = None if session is None else session._players.get(guild_id)
            if player is None:
                raise KeyError(f"no player for guild {guild_id} in session {session_id!r}")
            return player
        found = [s._players[guild_id] for s in self._sessions.values() if guild_id in s._players]
        if not found:
            raise KeyError(f"no player for guild {guild_id}")
        if len(found) > 1:
            raise ValueError(f"guild {guild_id} has players in several sessions: give session_id")
        return found[0]

    def close_voice(
        self,
        guild_id: int,
        code: int = 4014,
        reason: str = "",
        by_remote: bool = True,
        *,
        session_id: Optional[str] = None,
    ) -> None:
        """Discord closed the voice socket: WebSocketClosedEvent, then playerUpdate."""
        with self._lock:
            player = self._find_player(guild_id, session_id)
            self._freeze(player)
            player.connected = False
            if not by_remote:
                player.ping = -1
            self._reschedule(player)
            self._event(
                player, "WebSocketClosedEvent", code=code, reason=reason, byRemote=by_remote
            )
            self._player_update(player)

    def finish_track(self, guild_id: int, *, session_id: Optional[str] = None) -> None:
        """End the current track now with reason ``finished``."""
        with self._lock:
            player = self._find_player(guild_id, session_id)
            if player.track is None:
                raise ValueError(f"guild {guild_id} has no track")
            self._end_track(player, "finished")

    def fail_track(
        self,
        guild_id: int,
        *,
        session_id: Optional[str] = None,
        message: Optional[str] = "Something broke when playing the track.",
        severity: str = "fault",
        cause: str = "java.lang.RuntimeException: fake playback failure",
        reason: str = "loadFailed",
    ) -> None:
        """TrackExceptionEvent, then TrackEndEvent (``loadFailed`` unless told otherwise)."""
        with self._lock:
            player = self._find_player(guild_id, session_id)
            track = player.track
            if track is None:
                raise ValueError(f"guild {guild_id} has no track")
            exception = {
                "message": message,
                "severity": severity,
                "cause": cause,
                "causeStackTrace": f"{cause}\n\tat lavasync.testing.FakeNode.fail_track\n",
            }
            self._event(
                player,
                "TrackExceptionEvent",
                track=track.json(player.position()),
                exception=exception,
            )
            self._end_track(player, reason)

    def stuck_track(
        self,
        guild_id: int,
        *,
        session_id: Optional[str] = None,
        threshold_ms: Optional[int] = None,
    ) -> None:
        """TrackStuckEvent, then a playerUpdate; the track keeps its place (as on the server)."""
        with self._lock:
            player = self._find_player(guild_id, session_id)
            track = player.track
            if track is None:
                raise ValueError(f"guild {guild_id} has no track")
            threshold = self.stuck_threshold_ms if threshold_ms is None else threshold_ms
            self._event(
                player,
                "TrackStuckEvent",
                track=track.json(player.position()),
                thresholdMs=threshold,
            )
            self._player_update(player)

    # ------------------------------------------------------------------ messages

    def rate_limit(self, limit: int, window: float = 10.0, block_for: float = 0.0) -> None:
        """Answer 429 past ``limit`` REST requests per ``window`` seconds (as NodeLink and
        proxies do), for ``block_for`` seconds (at least until the window ends), with
        ``Retry-After``; every answer carries ``X-RateLimit-Limit/Remaining/Reset`` (epoch ms).
        ``limit=0`` turns it off."""
        if limit < 0 or window <= 0 or block_for < 0:
            raise ValueError("rate_limit needs limit >= 0, window > 0 and block_for >= 0")
        with self._lock:
            self._rate = (int(limit), float(window), float(block_for)) if limit else None
            self._rate_hits.clear()
            self._rate_blocked_until = 0.0

    @property
    def ws_close_codes(self) -> list[int]:
        """The close code of every client-side WebSocket close, in order: the code of its
        Close frame (1005 without a code), or 1006 for a socket dropped without one."""
        with self._lock:
            return list(self._ws_close_codes)

    def _api(self) -> list[tuple[str, str]]:
        return self._dialect.api_headers

    def _rate_check(self) -> Optional[_Response]:
        """Count one REST request; a 429 response when over the limit."""
        with self._lock:
            if self._rate is None:
                return None
            limit, window, block_for = self._rate
            now = time.monotonic()
            hits = self._rate_hits
            while hits and hits[0] <= now - window:
                hits.popleft()
            if now < self._rate_blocked_until:
                wait = self._rate_blocked_until - now
            elif len(hits) >= limit:
                wait = max(block_for, hits[0] + window - now)
                self._rate_blocked_until = now + wait
            else:
                hits.append(now)
                return None
        body = _wire.json_bytes(
            {
                "timestamp": _now_ms(),
                "status": 429,
                "error": "Too Many Requests",
                "message": "Too many requests, please try again later.",
                "path": "",
            }
        )
        return _Response(429, body, "application/json", [("Retry-After", f"{wait:.3f}")])

    def _rate_headers(self) -> list[tuple[str, str]]:
        with self._lock:
            if self._rate is None:
                return []
            limit, window, _ = self._rate
            now = time.monotonic()
            hits = self._rate_hits
            remaining = 0 if now < self._rate_blocked_until else max(0, limit - len(hits))
            oldest = hits[0] if hits else now
            reset_at = max(oldest + window, self._rate_blocked_until)
        reset_ms = math.ceil((time.time() + max(0.0, reset_at - now)) * 1000)
        return [
            ("X-RateLimit-Limit", str(limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset_ms)),
        ]

    def _dialect_events(self, player: _Player, kind: str, **fields: Any) -> None:
        for type_, extra in self._dialect.extra_events(kind, **fields):
            msg = {"op": "event", "type": type_, "guildId": str(player.guild_id), **extra}
            self._send(player.session, msg)

    def _patch_events(self, player: _Player, body: dict[str, Any], created: bool) -> None:
        if created:
            self._dialect_events(player, "created")
        if body.get("voice") is not None and player.connected:
            self._dialect_events(player, "connected")
        if "paused" in body:
            self._dialect_events(player, "paused", paused=player.paused)
        if "volume" in body:
            self._dialect_events(player, "volume", volume=player.volume)
        if "filters" in body:
            self._dialect_events(player, "filters", filters=copy.deepcopy(player.filters))
        if "position" in body and "track" not in body and "encodedTrack" not in body:
            self._dialect_events(player, "seek", position=player.position())

    def _write(self, conn: _WsConn, data: bytes) -> None:
        """Write a frame to a socket (caller holds the lock); a failed write drops it."""
        if conn.lost or conn.frozen:
            return
        if not self._answering:
            conn.held.append(data)
            return
        try:
            conn.sock.sendall(data)
        except OSError:
            self._ws_lost(conn)
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _send(self, session: FakeSession, message: dict[str, Any]) -> None:
        """Deliver a message per §4: open -> socket; paused -> queue (playerUpdate dropped)."""
        if session.state == OPEN:
            session._sent.append(message)
            if session._ws is not None and not session._ws.closing:
                self._write(
                    session._ws, _wire.encode_frame(_wire.OP_TEXT, _wire.json_bytes(message))
                )
            self._cond.notify_all()
        elif session.state == PAUSED and message.get("op") != "playerUpdate":
            session._queue.append(message)

    def _event(self, player: _Player, type_: str, **fields: Any) -> None:
        if player.destroyed and type_ not in ("TrackEndEvent", "WebSocketClosedEvent"):
            return
        msg = {"op": "event", "type": type_, "guildId": str(player.guild_id)}
        msg.update(fields)
        self._send(player.session, self._dialect.event(msg))

    def _player_update(self, player: _Player) -> None:
        msg = {"op": "playerUpdate", "guildId": str(player.guild_id), "state": player.state()}
        self._send(player.session, msg)

    def _stats(self) -> dict[str, Any]:
        players = playing = 0
        for session in self._sessions.values():
            if session.state != OPEN:
                continue
            for p in session._players.values():
                players += 1
                if p.track is not None and not p.paused:
                    playing += 1
        return {
            "players": players,
            "playingPlayers": playing,
            "uptime": int((time.monotonic() - self._started_mono) * 1000),
            "memory": {
                "free": 200_000_000,
                "used": 56_435_456,
                "allocated": 256_435_456,
                "reservable": 4_294_967_296,
            },
            "cpu": {"cores": os.cpu_count() or 1, "systemLoad": 0.0, "lavalinkLoad": 0.0},
        }

    def _stats_tick(self, session: FakeSession, gen: int = -1, when: float = 0.0) -> None:
        """Send stats now and every stats_interval (fixed rate); gen -1 starts the series."""
        with self._lock:
            if session.state == DESTROYED:
                return
            if gen == -1:
                session._stats_gen += 1
                when = time.monotonic()
            elif gen != session._stats_gen:
                return
            msg: dict[str, Any] = {"op": "stats"}
            msg.update(self._stats())
            msg["frameStats"] = None
            self._send(session, self._dialect.stats(msg, rest=False))
            nxt = when + self.stats_interval
            self._scheduler.call_at(nxt, self._stats_tick, session, session._stats_gen, nxt)

    # ------------------------------------------------------------------ sessions

    def _new_session(self, user_id: int, client_name: str) -> FakeSession:
        while True:
            sid = "".join(secrets.choice(_SESSION_ALPHABET) for _ in range(16))
            if sid not in self._sessions:
                break
        session = FakeSession(self, sid, user_id, client_name)
        self._sessions[sid] = session
        return session

    def _destroy_session(self, session: FakeSession) -> None:
        if session.state == DESTROYED:
            return
        session.state = DESTROYED
        session._expiry_token += 1
        session._stats_gen += 1
        for player in list(session._players.values()):
            self._drop_player(player)
        session._players.clear()
        session._queue.clear()
        self._sessions.pop(session.session_id, None)
        self._cond.notify_all()

    def _ws_lost(self, conn: _WsConn) -> None:
        """The socket of a session is gone (any cause); idempotent. Caller holds the lock."""
        if conn.lost:
            return
        conn.lost = True
        if conn in self._ws_conns:
            self._ws_conns.remove(conn)
        session = conn.session
        if session._ws is not conn:
            return
        session._ws = None
        if session.state != OPEN:
            return
        if session.resuming and not self._closed:
            session.state = PAUSED
            session._expiry_token += 1
            token = session._expiry_token
            if session.timeout <= 0:
                self._destroy_session(session)
            else:
                self._scheduler.call_later(session.timeout, self._expire, session, token)
        else:
            self._destroy_session(session)
        self._cond.notify_all()

    def _expire(self, session: FakeSession, token: int) -> None:
        with self._lock:
            if session.state == PAUSED and session._expiry_token == token:
                self._destroy_session(session)

    def _ws_close(self, conn: _WsConn, code: Optional[int], reason: str) -> None:
        """Server-initiated close handshake; the session is handled as disconnected at once."""
        if conn.lost or conn.closing:
            return
        self._write(conn, _wire.encode_frame(_wire.OP_CLOSE, _wire.close_payload(code, reason)))
        conn.closing = True
        self._ws_lost(conn)
        self._scheduler.call_later(_CLOSE_GRACE, self._force_close, conn)

    def _force_close(self, conn: _WsConn) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ players

    def _get_or_create(self, session: FakeSession, guild_id: int) -> _Player:
        player = session._players.get(guild_id)
        if player is None:
            player = _Player(session, guild_id)
            session._players[guild_id] = player
        return player

    def _freeze(self, player: _Player) -> None:
        """Fold elapsed play time into base_pos before a state change."""
        now = time.monotonic()
        src, pos = player.source_position(now), player.position(now)
        player.base_src, player.base_pos = src, pos
        player.base_mono = now
        if player.connected:
            player.last_poll = now

    def _reschedule(self, player: _Player) -> None:
        """Re-arm the end and cleanup timers after a state change (call after _freeze)."""
        player.gen += 1
        for timer in player.timers:
            timer.cancel()
        player.timers = []
        if player.track is None or player.destroyed:
            return
        gen = player.gen
        if player.running:
            target = player.end_target()
            if target is not None:
                due = player.base_mono + max(0, target - player.base_pos) / 1000.0
                player.timers.append(self._scheduler.call_at(due, self._on_end_due, player, gen))
        if not player.connected:
            due = player.last_poll + self.cleanup_threshold
            player.timers.append(self._scheduler.call_at(due, self._on_cleanup, player, gen))

    def _on_end_due(self, player: _Player, gen: int) -> None:
        with self._lock:
            if player.gen == gen and player.track is not None and not player.destroyed:
                self._freeze(player)
                self._end_track(player, "finished")

    def _on_cleanup(self, player: _Player, gen: int) -> None:
        with self._lock:
            if player.gen == gen and player.track is not None and not player.destroyed:
                self._end_track(player, "cleanup")

    def _end_track(self, player: _Player, reason: str) -> None:
        track = player.track
        if track is None:
            return
        self._freeze(player)
        ended = track.json(player.base_pos)
        player.track = None
        player.base_pos = player.base_src = 0
        self._reschedule(player)
        self._event(player, "TrackEndEvent", track=ended, reason=reason)

    def _start_track(self, player: _Player, track: _Track, position: int) -> None:
        if player.track is not None:
            self._end_track(player, "replaced")
        now = time.monotonic()
        player.track = track
        player.base_pos = max(0, position) if not track.is_stream else 0
        player.base_src = player.base_pos
        player.base_mono = now
        player.last_poll = now
        self._reschedule(player)
        self._event(player, "TrackStartEvent", track=track.json(player.base_pos))
        self._player_update(player)
        # the periodic task starts with zero delay at the same moment; its first tick is sent
        # here so the sequence is deterministic (end -> start -> playerUpdate x2)
        self._player_update(player)
        nxt = now + self.player_update_interval
        self._scheduler.call_at(nxt, self._periodic_update, player, track, nxt)

    def _periodic_update(self, player: _Player, track: _Track, when: float) -> None:
        with self._lock:
            if player.track is not track or player.destroyed or player.session.state == DESTROYED:
                return
            if not player.paused or self._dialect.updates_while_paused:
                self._player_update(player)
            nxt = when + self.player_update_interval
            self._scheduler.call_at(nxt, self._periodic_update, player, track, nxt)

    def _drop_player(self, player: _Player) -> None:
        """Forget a player silently (its session is gone)."""
        player.destroyed = True
        player.track = None
        self._reschedule(player)

    def _connect_voice(self, player: _Player, voice: dict[str, Any]) -> None:
        """Step 1 of a PATCH: (re)connect voice; blocks for the voice delay without the lock."""
        if player.connected and voice == player.voice:
            return
        if player.connected:
            self._freeze(player)
            player.connected = False
            player.ping = -1
            self._reschedule(player)
            self._event(player, "WebSocketClosedEvent", code=1000, reason="", byRemote=False)
            self._player_update(player)
        delay = self._voice_delay
        if delay > 0:
            epoch = self._epoch
            self._cond.wait_for(lambda: self._epoch != epoch, delay)
            if self._epoch != epoch:
                raise _HttpError(500, "Failed to connect to voice server")
        if self._voice_failure:
            raise _HttpError(500, "Failed to connect to voice server")
        if player.destroyed:
            return
        self._freeze(player)
        player.voice = dict(voice)
        player.connected = True
        player.ping = self._dialect.ping_on_connect
        self._reschedule(player)
        self._scheduler.call_later(0.0, self._voice_ready, player)

    def _voice_ready(self, player: _Player) -> None:
        with self._lock:
            if player.connected and not player.destroyed:
                self._player_update(player)

    # ------------------------------------------------------------------ HTTP serving

    def _tls_accept(self, sock: socket.socket) -> Optional[socket.socket]:
        """The TLS server handshake on an accepted socket (on its own thread, so a slow or
        refusing client blocks nobody); None if it failed, e.g. the client did not trust us."""
        assert self.ssl_context is not None
        try:
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.debug("fake node %s: TLS handshake failed: %s", self.name, exc)
            with self._lock:
                self._conns.pop(sock, None)
            sock.close()
            return None
        with self._lock:  # the TLS socket replaces the (now detached) plain one
            thread = self._conns.pop(sock, None)
            if thread is None or self._closed or self._killed:
                tls.close()
                return None
            self._conns[tls] = thread
        return tls

    def _serve(self, sock: socket.socket) -> None:
        if self.ssl_context is not None:
            tls = self._tls_accept(sock)
            if tls is None:
                return
            sock = tls
        reader = _wire.make_reader(sock)
        try:
            while True:
                try:
                    req = _wire.read_request(reader)
                except _wire.ProtocolError as exc:
                    self._send_bytes(sock, self._error_bytes(400, str(exc), "/", False, False))
                    return
                except (OSError, ConnectionError):
                    return
                if req is None:
                    return
                with self._cond:
                    if self._refusing == "close":
                        return
                    refused = self._refusing is not None
                    if not refused and not self._wait_answering():
                        return
                if refused:
                    self._answer_refused(sock, req)
                    return
                if not self._peer_alive(sock):
                    return
                if not self._dialect.v4_routes and req.path.startswith("/v4/"):
                    self._record(req, 404)
                    self._send_bytes(
                        sock, self._error_bytes(404, "Not Found", req.path, False, False)
                    )
                    return
                if req.path == "/v4/websocket" and req.method == "GET":
                    self._handshake(sock, reader, req)
                    return
                if not self._answer_rest(sock, req):
                    return
        finally:
            with self._lock:
                self._conns.pop(sock, None)
            try:
                sock.close()
            except OSError:
                pass

    def _wait_answering(self) -> bool:
        """Block while the node is stalled (caller holds the lock); False if it died meanwhile."""
        epoch = self._epoch
        self._cond.wait_for(lambda: self._answering or self._epoch != epoch or self._closed)
        return self._epoch == epoch and not self._closed

    @staticmethod
    def _peer_alive(sock: socket.socket) -> bool:
        """False if the client hung up while the request waited (a stalled node)."""
        try:
            ready, _, _ = select.select([sock], [], [], 0)
            if ready:  # peek at the TCP stream (an SSLSocket's own recv takes no flags)
                return socket.socket.recv(sock, 1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False
        return True

    @staticmethod
    def _send_bytes(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False

    def _answer_refused(self, sock: socket.socket, req: _wire.HttpRequest) -> None:
        if req.path == "/v4/websocket":
            with self._cond:
                hs = RecordedHandshake(req.headers, False, 503, None, False)
                self._handshakes.append(hs)
                self._cond.notify_all()
        else:
            self._record(req, 503)
        body = self._error_json(503, "Service Unavailable", req.path, False)
        self._send_bytes(
            sock,
            _wire.build_response(
                503, body, content_type="application/json", keep_alive=False, api=self._api()
            ),
        )

    def _error_json(self, status: int, message: str, path: str, trace: bool) -> bytes:
        payload: dict[str, Any] = {
            "timestamp": _now_ms(),
            "status": status,
            "error": _wire.reason_phrase(status),
        }
        if trace:
            payload["trace"] = (
                f"lavalink.server.FakeNodeException: {message}\n"
                "\tat lavasync.testing.FakeNode._answer_rest(node.py)\n"
            )
        payload["message"] = message
        payload["path"] = path
        payload, _ = self._dialect.error_body(status, message, payload)
        return _wire.json_bytes(payload)

    def _error_bytes(
        self, status: int, message: str, path: str, trace: bool, keep_alive: bool
    ) -> bytes:
        body = self._error_json(status, message, path, trace)
        return _wire.build_response(
            status, body, content_type="application/json", keep_alive=keep_alive, api=self._api()
        )

    def _record(self, req: _wire.HttpRequest, status: int) -> None:
        query = parse_qs(req.query_string, keep_blank_values=True)
        parsed: Any = None
        if req.body:
            try:
                parsed = json.loads(req.body.decode("utf-8"))
            except ValueError:
                parsed = None
        rec = RecordedRequest(
            req.method, req.path, query, req.headers, req.body, parsed, status, time.time()
        )
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()

    def _answer_rest(self, sock: socket.socket, req: _wire.HttpRequest) -> bool:
        path = unquote(req.path)
        query = parse_qs(req.query_string, keep_blank_values=True)
        trace = query.get("trace", [""])[0] == "true"
        failing = self._take_fault(("fail",), req.method, path)
        try:
            if failing is not None:
                raise _HttpError(failing.status, failing.message)
            response = self._rate_check() or self._dispatch(req, path, query)
        except _HttpError as exc:
            response = _Response(
                exc.status,
                self._error_json(exc.status, exc.message, path, trace),
                "application/json",
            )
        except Exception as exc:  # a bug in the fake: still answer like Spring would
            log.exception("fake node: handler failed")
            message = f"{type(exc).__name__}: {exc}"
            response = _Response(
                500, self._error_json(500, message, path, trace), "application/json"
            )
        self._record(req, response.status)
        keep = req.keep_alive
        data = _wire.build_response(
            response.status,
            b"" if req.method == "HEAD" else response.body,
            response.headers + self._rate_headers(),
            content_type=response.content_type,
            keep_alive=keep,
            api=self._api(),
        )
        late = (
            None if failing is not None else self._take_fault(("stall", "reset"), req.method, path)
        )
        if late is not None and late.kind == "stall" and not self._hold_answer(sock):
            return False
        if late is not None and late.kind == "reset":
            head = data.index(b"\r\n\r\n") + 4
            partial = min(late.keep, max(0, len(data) - head - 1))  # never the whole body
            self._send_and_reset(sock, data[: head + partial])
            return False
        return self._send_bytes(sock, data) and keep

    def _dispatch(
        self, req: _wire.HttpRequest, path: str, query: dict[str, list[str]]
    ) -> _Response:
        custom = self._custom_routes.get((req.method, path))
        params: dict[str, str] = {}
        handler_name: Optional[str] = None
        if custom is None:
            allowed: Optional[dict[str, str]] = None
            for pattern, methods in _ROUTES:
                m = pattern.fullmatch(path)
                if m:
                    allowed, params = methods, m.groupdict()
                    break
            if allowed is None:
                if any(p == path for (_, p) in self._custom_routes):
                    raise _HttpError(405, f"Request method '{req.method}' is not supported")
                raise _HttpError(404, f"No static resource {path.lstrip('/')}.")
            handler_name = allowed.get(req.method)
            if handler_name is None:
                allow = ", ".join(sorted(allowed))
                error = _HttpError(405, f"Request method '{req.method}' is not supported")
                body = self._error_json(405, error.message, path, False)
                return _Response(405, body, "application/json", [("Allow", allow)])
        auth = req.headers.get("Authorization")
        if auth is None or (auth != self.password and self.dialect == "nodelink"):
            _, text = self._dialect.error_body(401, "", {})
            return _Response(401, text or b"", "text/plain" if text else None)
        if auth != self.password:
            return _Response(403)
        if custom is not None:
            return self._run_custom(custom, req, query)
        assert handler_name is not None
        handler: Callable[..., _Response] = getattr(self, f"_h_{handler_name}")
        return handler(req, params, query)

    def _run_custom(
        self,
        handler: Callable[[RecordedRequest], Any],
        req: _wire.HttpRequest,
        query: dict[str, list[str]],
    ) -> _Response:
        parsed = None
        if req.body:
            try:
                parsed = json.loads(req.body.decode("utf-8"))
            except ValueError:
                parsed = None
        rec = RecordedRequest(req.method, req.path, query, req.headers, req.body, parsed, 0)
        result = handler(rec)
        if result is None:
            return _Response(204)
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
            status, payload = result
            if payload is None:
                return _Response(status)
            return _json_response(status, payload)
        return _json_response(200, result)

    # ------------------------------------------------------------------ binding helpers

    @staticmethod
    def _json_body(req: _wire.HttpRequest) -> Any:
        ctype = req.headers.get("Content-Type")
        if not req.body and ctype is None:
            raise _HttpError(400, "Required request body is missing")
        media = (ctype or "application/octet-stream").split(";")[0].strip().lower()
        if media != "application/json" and not (
            media.startswith("application/") and media.endswith("+json")
        ):
            raise _HttpError(
                415, f"Content-Type '{ctype or 'application/octet-stream'}' is not supported"
            )
        if not req.body:
            raise _HttpError(400, "Required request body is missing")
        try:
            return json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _HttpError(400, f"JSON parse error: {exc}") from None

    def _guild(self, params: dict[str, str]) -> int:
        raw = params["gid"]
        refused = self._dialect.check_guild(raw)
        if refused is not None:
            raise _HttpError(400, refused)
        value = _parse_long(raw)
        if value is None:
            raise _HttpError(
                400,
                "Failed to convert value of type 'java.lang.String' to required type 'long'; "
                f'For input string: "{raw}"',
            )
        return value

    def _session(self, params: dict[str, str]) -> FakeSession:
        session = self._sessions.get(params["sid"])
        if session is None or session.state != OPEN:
            raise _HttpError(404, "Session not found")
        return session

    # ------------------------------------------------------------------ REST handlers

    def _h_version(self, req: _wire.HttpRequest, params: Any, query: Any) -> _Response:
        accept = req.headers.get("Accept", "*/*").lower()
        if "application/json" in accept and "*/*" not in accept and "text/plain" not in accept:
            ctype = "application/json"
        else:
            ctype = "text/plain;charset=UTF-8"
        return _Response(200, self.version.encode("utf-8"), ctype)

    def _h_info(self, req: Any, params: Any, query: Any) -> _Response:
        m = re.fullmatch(
            r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?",
            self.version,
        )
        if m:
            version: dict[str, Any] = {
                "semver": self.version,
                "major": int(m.group(1)),
                "minor": int(m.group(2)),
                "patch": int(m.group(3)),
                "preRelease": m.group(4) or "",
            }
        else:
            version = {
                "semver": self.version,
                "major": 0,
                "minor": 0,
                "patch": 0,
                "preRelease": None,
            }
        filters = [f for f in DEFAULT_FILTERS if f not in self.disabled_filters]
        filters += [f for f in self.plugin_filters if f not in self.disabled_filters]
        started = int(time.time() * 1000) - int((time.monotonic() - self._started_mono) * 1000)
        info = {
            "version": version,
            "buildTime": started,
            "git": {"branch": "main", "commit": "fa4e0de", "commitTime": started},
            "jvm": "17.0.12",
            "lavaplayer": "2.2.6",
            "sourceManagers": list(self.source_managers),
            "filters": filters,
            "plugins": [{"name": n, "version": v} for n, v in self.plugins],
        }
        return _json_response(200, self._dialect.info(info))

    def _h_stats(self, req: Any, params: Any, query: Any) -> _Response:
        with self._lock:
            stats: dict[str, Any] = {"frameStats": None}
            stats.update(self._stats())
        return _json_response(200, self._dialect.stats(stats, rest=True))

    def _h_loadtracks(self, req: Any, params: Any, query: dict[str, list[str]]) -> _Response:
        if "identifier" not in query:
            raise _HttpError(
                400,
                "Required request parameter 'identifier' for method parameter type String is "
                "not present",
            )
        return _json_response(200, self._dialect.load_result(self._load(query["identifier"][0])))

    def _h_decodetrack(self, req: Any, params: Any, query: dict[str, list[str]]) -> _Response:
        values = query.get("encodedTrack") or query.get("track")
        if not values:
            raise _HttpError(400, "No track to decode provided")
        encoded = values[0]
        with self._lock:
            track = self._decode(encoded)
        info = dict(track.info)
        return _json_response(200, track_json(encoded, info, track.plugin_info))

    def _h_decodetracks(self, req: _wire.HttpRequest, params: Any, query: Any) -> _Response:
        body = self._json_body(req)
        if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
            raise _bad_body("expected a JSON array of strings")
        if not body:
            raise _HttpError(400, "No tracks to decode provided")
        out = []
        with self._lock:
            for encoded in body:
                track = self._decode(encoded)
                out.append(track_json(encoded, dict(track.info), track.plugin_info))
        return _json_response(200, out)

    def _h_get_players(self, req: Any, params: dict[str, str], query: Any) -> _Response:
        with self._lock:
            session = self._session(params)
            players = [self._dialect.player(p.json()) for p in session._players.values()]
            return _json_response(200, players)

    def _h_get_player(self, req: Any, params: dict[str, str], query: Any) -> _Response:
        guild_id = self._guild(params)
        with self._lock:
            session = self._session(params)
            player = session._players.get(guild_id)
            if player is None and self._dialect.get_creates_player:
                player = self._get_or_create(session, guild_id)
                self._dialect_events(player, "created")
            if player is None:
                raise _HttpError(404, "Player not found")
            return _json_response(200, self._dialect.player(player.json()))

    def _h_delete_player(self, req: Any, params: dict[str, str], query: Any) -> _Response:
        guild_id = self._guild(params)
        with self._lock:
            session = self._session(params)
            player = session._players.get(guild_id)
            if player is not None:
                if player.track is not None:
                    self._end_track(player, "stopped")
                was_connected = player.connected
                self._freeze(player)
                player.connected = False
                player.ping = -1
                player.destroyed = True
                self._reschedule(player)
                del session._players[guild_id]
                self._dialect_events(player, "destroyed")
                if was_connected:
                    self._event(
                        player, "WebSocketClosedEvent", code=1000, reason="", byRemote=False
                    )
                    self._player_update(player)
        return _Response(204)

    def _h_patch_session(
        self, req: _wire.HttpRequest, params: dict[str, str], query: Any
    ) -> _Response:
        body = self._json_body(req)
        if not isinstance(body, dict):
            raise _bad_body("expected a JSON object")
        if "resuming" in body and not isinstance(body["resuming"], bool):
            raise _bad_body("'resuming' must be a boolean")
        if "timeout" in body and not _is_int(body["timeout"]):
            raise _bad_body("'timeout' must be an integer")
        with self._lock:
            session = self._session(params)
            if "resuming" in body:
                session.resuming = body["resuming"]
            if "timeout" in body:
                session.timeout = body["timeout"]
            return _json_response(200, {"resuming": session.resuming, "timeout": session.timeout})

    def _h_routeplanner_status(self, req: Any, params: Any, query: Any) -> _Response:
        with self._lock:
            status = copy.deepcopy(self._route_planner)
        return _Response(204) if status is None else _json_response(200, status)

    def _h_routeplanner_free_address(
        self, req: _wire.HttpRequest, params: Any, query: Any
    ) -> _Response:
        body = self._json_body(req)
        if not isinstance(body, dict) or not isinstance(body.get("address"), str):
            raise _bad_body('expected {"address": string}')
        with self._lock:
            if self._route_planner is None:
                raise _HttpError(500, "Can't access disabled route planner")
            address = body["address"]
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise _HttpError(400, f"Invalid address: {address}") from None
            details = self._route_planner.get("details") or {}
            failing = details.get("failingAddresses")
            if isinstance(failing, list):
                details["failingAddresses"] = [
                    f for f in failing if f.get("failingAddress", "").lstrip("/") != address
                ]
        return _Response(204)

    def _h_routeplanner_free_all(self, req: Any, params: Any, query: Any) -> _Response:
        with self._lock:
            if self._route_planner is None:
                raise _HttpError(500, "Can't access disabled route planner")
            details = self._route_planner.get("details") or {}
            if isinstance(details.get("failingAddresses"), list):
                details["failingAddresses"] = []
        return _Response(204)

    def _h_websocket(self, req: Any, params: Any, query: Any) -> _Response:
        raise _HttpError(400, 'Can "Upgrade" only to "WebSocket".')

    # ------------------------------------------------------------------ PATCH player

    def _check_filters(self, filters: Any) -> None:
        """Binding-level checks of a Filters object (400 on wrong shapes)."""
        if not isinstance(filters, dict):
            raise _bad_body("'filters' must be an object")
        for key in ("volume", "equalizer", "pluginFilters"):
            if key in filters and filters[key] is None:
                raise _bad_body(f"'filters.{key}' must not be null")
        if "volume" in filters and not _is_number(filters["volume"]):
            raise _bad_body("'filters.volume' must be a number")
        if "equalizer" in filters:
            bands = filters["equalizer"]
            if not isinstance(bands, list):
                raise _bad_body("'filters.equalizer' must be an array")
            for band in bands:
                if not isinstance(band, dict) or not _is_int(band.get("band")):
                    raise _bad_body("an equalizer band needs an integer 'band'")
                if "gain" in band and not _is_number(band["gain"]):
                    raise _bad_body("'gain' must be a number")
        if "pluginFilters" in filters and not isinstance(filters["pluginFilters"], dict):
            raise _bad_body("'filters.pluginFilters' must be an object")
        for name, defaults in FILTER_DEFAULTS.items():
            value = filters.get(name)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _bad_body(f"'filters.{name}' must be an object or null")
            for key in defaults:
                if key in value and not _is_number(value[key]):
                    raise _bad_body(f"'filters.{name}.{key}' must be a number")

    def _normalise_filters(self, filters: dict[str, Any]) -> dict[str, Any]:
        """The Filters object as the server reports it (all fields of configured filters)."""
        out: dict[str, Any] = {}
        if "volume" in filters:
            out["volume"] = float(filters["volume"])
        if "equalizer" in filters:
            out["equalizer"] = [
                {"band": b["band"], "gain": float(b.get("gain", 1.0))} for b in filters["equalizer"]
            ]
        for name, defaults in FILTER_DEFAULTS.items():
            value = filters.get(name)
            if value is not None:
                out[name] = {k: float(value.get(k, d)) for k, d in defaults.items()}
        plugin = filters.get("pluginFilters")
        if plugin:
            kept = {k: v for k, v in plugin.items() if k in self.plugin_filters}
            if kept:
                out["pluginFilters"] = copy.deepcopy(kept)
        return out

    def _bind_update(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _bad_body("expected a JSON object")
        for key in ("track", "identifier", "position", "volume", "paused", "filters", "voice"):
            if key in body and body[key] is None:
                raise _bad_body(f"'{key}' must not be null")
        if "track" in body:
            t = body["track"]
            if not isinstance(t, dict):
                raise _bad_body("'track' must be an object")
            if "encoded" in t and t["encoded"] is not None and not isinstance(t["encoded"], str):
                raise _bad_body("'track.encoded' must be a string or null")
            if "identifier" in t and not isinstance(t["identifier"], str):
                raise _bad_body("'track.identifier' must be a string")
            if "userData" in t and not isinstance(t["userData"], dict):
                raise _bad_body("'track.userData' must be an object")
        encoded = body.get("encodedTrack")
        if encoded is not None and not isinstance(encoded, str):
            raise _bad_body("'encodedTrack' must be a string or null")
        if "identifier" in body and not isinstance(body["identifier"], str):
            raise _bad_body("'identifier' must be a string")
        for key in ("position", "volume"):
            if key in body and not _is_int(body[key]):
                raise _bad_body(f"'{key}' must be an integer")
        if "endTime" in body and body["endTime"] is not None and not _is_int(body["endTime"]):
            raise _bad_body("'endTime' must be an integer or null")
        if "paused" in body and not isinstance(body["paused"], bool):
            raise _bad_body("'paused' must be a boolean")
        if "filters" in body:
            self._check_filters(body["filters"])
        if "voice" in body:
            v = body["voice"]
            if not isinstance(v, dict):
                raise _bad_body("'voice' must be an object")
            for key in ("token", "endpoint", "sessionId", "channelId"):
                if key not in v:
                    raise _bad_body(f"field '{key}' is required in voice")
            for key in ("token", "endpoint", "sessionId"):
                if not isinstance(v[key], str):
                    raise _bad_body(f"'voice.{key}' must be a string")
            if v["channelId"] is not None and not isinstance(v["channelId"], str):
                raise _bad_body("'voice.channelId' must be a string or null")

    def _h_patch_player(
        self, req: _wire.HttpRequest, params: dict[str, str], query: dict[str, list[str]]
    ) -> _Response:
        guild_id = self._guild(params)
        raw_nr = query.get("noReplace", [""])[0]
        if raw_nr.strip() == "":
            no_replace = False
        elif raw_nr.strip().lower() in _BOOL_WORDS:
            no_replace = _BOOL_WORDS[raw_nr.strip().lower()]
        else:
            raise _HttpError(
                400,
                "Failed to convert value of type 'java.lang.String' to required type 'boolean'; "
                f"Invalid boolean value [{raw_nr}]",
            )
        body = self._json_body(req)
        self._bind_update(body)
        refused = self._dialect.patch_error(body)
        if refused is not None:
            raise _HttpError(*refused)
        with self._lock:
            session = self._session(params)
            # the handler's own cheap checks, before any state is touched
            track_req: Optional[dict[str, Any]] = None
            if "track" in body:
                if "encodedTrack" in body or "identifier" in body:
                    raise _HttpError(400, "Cannot specify both track and encodedTrack/identifier")
                track_req = body["track"]
            elif "encodedTrack" in body or "identifier" in body:
                track_req = {}
                if "encodedTrack" in body:
                    track_req["encoded"] = body["encodedTrack"]
                if "identifier" in body:
                    track_req["identifier"] = body["identifier"]
            if track_req is not None and "encoded" in track_req and "identifier" in track_req:
                raise _HttpError(400, "Cannot specify both encodedTrack and identifier")
            if "filters" in body:
                names = [k for k in body["filters"] if k in self.disabled_filters]
                names += [
                    k
                    for k in (body["filters"].get("pluginFilters") or {})
                    if k in self.disabled_filters
                ]
                if names:
                    raise _HttpError(
                        400, f"Following filters are disabled in the config: {', '.join(names)}"
                    )
            voice = body.get("voice")
            if voice is not None:
                channel = voice["channelId"]
                if (
                    not voice["token"].strip()
                    or not voice["endpoint"].strip()
                    or not voice["sessionId"].strip()
                    or channel is None
                    or not channel.strip()
                ):
                    raise _HttpError(400, _VOICE_BLANK)
            end_time = body.get("endTime")
            if end_time is not None and end_time <= 0:
                raise _HttpError(400, "End time must be greater than 0")

            created = guild_id not in session._players
            player = self._get_or_create(session, guild_id)
            new_track = track_req is not None and (
                "encoded" in track_req or "identifier" in track_req
            )

            # 1. voice
            if voice is not None:
                channel_id = _parse_long(voice["channelId"].strip())
                if channel_id is None:
                    raise _HttpError(500, f'For input string: "{voice["channelId"]}"')
                wanted = {
                    "token": voice["token"],
                    "endpoint": voice["endpoint"],
                    "sessionId": voice["sessionId"],
                    "channelId": str(channel_id),
                }
                self._connect_voice(player, wanted)
            # 2. paused
            if "paused" in body and not new_track:
                self._freeze(player)
                player.paused = body["paused"]
                self._reschedule(player)
            # 3. userData
            current = None if new_track else player.track
            if track_req is not None and "userData" in track_req and current is not None:
                current.user_data = copy.deepcopy(track_req["userData"])
            # 4. volume
            if "volume" in body:
                player.volume = max(0, min(1000, body["volume"]))
            # 5. position (seek)
            if "position" in body and not new_track and player.track is not None:
                self._seek(player, body["position"])
            # 6. endTime on the current track
            if end_time is not None and not new_track and player.track is not None:
                self._freeze(player)
                if end_time <= player.base_pos:
                    player.track.end_time = None
                else:
                    player.track.end_time = end_time
                self._reschedule(player)
            # 7. filters
            if "filters" in body:
                for band in body["filters"].get("equalizer", []):
                    if not 0 <= band["band"] < 15:
                        raise _HttpError(500, f"Index {band['band']} out of bounds for length 15")
                self._freeze(player)
                player.filters = self._normalise_filters(body["filters"])
                self._reschedule(player)
                self._player_update(player)
            # 8. track
            if (
                new_track
                and track_req is not None
                and not (no_replace and player.track is not None)
            ):
                self._freeze(player)
                player.paused = body.get("paused", False)
                self._reschedule(player)
                if "encoded" in track_req and track_req["encoded"] is None:
                    if player.track is not None:
                        self._end_track(player, "stopped")
                else:
                    track = self._resolve(track_req)
                    start = (
                        body["position"] if "position" in body else track.info.get("position", 0)
                    )
                    track.user_data = copy.deepcopy(track_req.get("userData", {}))
                    if end_time is not None:
                        track.end_time = end_time
                    self._start_track(player, track, int(start))
            self._patch_events(player, body, created)
            return _json_response(200, self._dialect.player(player.json()))

    def _resolve(self, track_req: dict[str, Any]) -> _Track:
        if "encoded" in track_req:
            return self._decode(track_req["encoded"])
        result = self._load(track_req["identifier"])
        kind = result.get("loadType")
        if kind == "track":
            data = result["data"]
            return self._decode(data["encoded"])
        if kind in ("playlist", "search"):
            raise _HttpError(400, "Cannot play a playlist or search result")
        if kind == "error":
            raise _HttpError(400, LOAD_FAILED_MESSAGE)
        raise _HttpError(400, "No matches found for identifier")

    def _seek(self, player: _Player, position: int) -> None:
        track = player.track
        assert track is not None
        if not track.is_stream:
            self._freeze(player)
            player.base_pos = player.base_src = max(0, position)
            if track.end_time is not None and player.base_pos >= track.end_time:
                self._end_track(player, "finished")
            else:
                self._reschedule(player)
        self._player_update(player)

    # ------------------------------------------------------------------ WebSocket

    def _handshake(self, sock: socket.socket, reader: Any, req: _wire.HttpRequest) -> None:
        headers = req.headers

        def reject(status: int, extra: Optional[list[tuple[str, str]]] = None) -> None:
            with self._cond:
                self._handshakes.append(RecordedHandshake(headers, False, status, None, False))
                self._cond.notify_all()
            body = self._dialect.handshake_refusal(status)
            ctype = "text/plain" if body else None
            self._send_bytes(
                sock,
                _wire.build_response(
                    status, body, extra, content_type=ctype, keep_alive=False, api=self._api()
                ),
            )

        auth = headers.get("Authorization")
        if auth is None or auth != self.password:
            reject(401)
            return
        raw_user = headers.get("User-Id", "").strip()
        if not raw_user or (raw_user.isdigit() and int(raw_user) == 0):
            reject(400)
            return
        if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in {
            t.strip().lower() for t in headers.get("Connection", "").split(",")
        }:
            reject(400)
            return
        if headers.get("Sec-WebSocket-Version") != "13":
            reject(426, [("Sec-WebSocket-Version", "13")])
            return
        key = headers.get("Sec-WebSocket-Key", "")
        if not _wire.valid_ws_key(key):
            reject(400)
            return
        user_id = _parse_long(raw_user) if re.fullmatch(r"[0-9]+", raw_user) else None
        with self._cond:
            wanted = headers.get("Session-Id")
            resumed = False
            session: Optional[FakeSession] = None
            if user_id is not None:
                old = self._sessions.get(wanted) if wanted else None
                if old is not None and old.state == PAUSED and not old.virtual:
                    session, resumed = old, True
                else:
                    session = self._new_session(user_id, headers.get("Client-Name", ""))
            response = _wire.build_response(
                101,
                headers=[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", _wire.ws_accept(key)),
                    ("Session-Resumed", "true" if resumed else "false"),
                ],
            )
            if session is None:
                self._handshakes.append(RecordedHandshake(headers, False, 101, None, False))
                self._cond.notify_all()
                self._send_bytes(sock, response)
                self._send_bytes(
                    sock, _wire.encode_frame(_wire.OP_CLOSE, _wire.close_payload(1011, ""))
                )
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                conn = None
            else:
                conn = _WsConn(sock, session)
                if not self._send_bytes(sock, response):
                    if not resumed:
                        self._destroy_session(session)
                    return
                threading.current_thread().name = f"fakenode-ws-{session.session_id}"
                self._ws_conns.append(conn)
                session._ws = conn
                session.state = OPEN
                session._expiry_token += 1
                self._handshakes.append(
                    RecordedHandshake(headers, True, 101, session.session_id, resumed)
                )
                self._accepted_sessions.append(session.session_id)
                sid = session.session_id
                self._send(session, {"op": "ready", "resumed": resumed, "sessionId": sid})
                if resumed:
                    session.resume_count += 1
                    queued, session._queue = session._queue, []
                    for msg in queued if self._dialect.replays_on_resume else ():
                        self._send(session, msg)
                    for player in session._players.values():
                        self._player_update(player)
                else:
                    self._stats_tick(session)
                self._cond.notify_all()
        if conn is None:
            self._drain(reader)
            return
        self._ws_read_loop(conn, reader)

    @staticmethod
    def _drain(reader: Any) -> None:
        try:
            while True:
                frame = _wire.read_frame(reader)
                if frame.opcode == _wire.OP_CLOSE:
                    return
        except (OSError, ConnectionError, _wire.ProtocolError):
            return

    def _ws_read_loop(self, conn: _WsConn, reader: Any) -> None:
        parts: list[bytes] = []
        kind = 0
        try:
            while True:
                frame = _wire.read_frame(reader)
                op = frame.opcode
                if conn.frozen:  # a half-open socket: whatever the client sends is lost
                    if op == _wire.OP_CLOSE:
                        return
                    continue
                if op == _wire.OP_PING:
                    with self._lock:
                        if self._answering and not conn.lost:
                            self._write(conn, _wire.encode_frame(_wire.OP_PONG, frame.payload))
                elif op == _wire.OP_PONG:
                    continue
                elif op == _wire.OP_CLOSE:
                    with self._lock:
                        code_in = frame.payload[:2]
                        self._ws_close_codes.append(
                            int.from_bytes(code_in, "big") if len(code_in) == 2 else 1005
                        )
                        self._cond.notify_all()
                        if not conn.closing:
                            code = frame.payload[:2] if len(frame.payload) >= 2 else b""
                            conn.closing = True
                            try:
                                conn.sock.sendall(_wire.encode_frame(_wire.OP_CLOSE, code))
                            except OSError:
                                pass
                        self._ws_lost(conn)
                    return
                elif op in (_wire.OP_TEXT, _wire.OP_BINARY, _wire.OP_CONT):
                    if op != _wire.OP_CONT:
                        kind, parts = op, []
                    parts.append(frame.payload)
                    if not frame.fin:
                        continue
                    data = b"".join(parts)
                    parts = []
                    with self._lock:
                        if kind == _wire.OP_BINARY:
                            self._ws_close(conn, 1003, "Binary messages not supported")
                        else:
                            text = data.decode("utf-8", "replace")
                            log.warning("fake node: ignoring a client text frame: %.200s", text)
                            conn.session._received.append(text)
                else:
                    with self._lock:
                        self._ws_close(conn, 1002, "")
        except (OSError, ConnectionError, _wire.ProtocolError):
            with self._lock:
                if not conn.closing and not conn.lost and not self._closed and not self._killed:
                    self._ws_close_codes.append(1006)  # the client left without a Close frame
                    self._cond.notify_all()
        finally:
            with self._lock:
                if not conn.frozen:  # the server never learns that a half-open socket died
                    self._ws_lost(conn)

    def __repr__(self) -> str:
        return f"<FakeNode {self.name} {self.uri} sessions={len(self._sessions)}>"
