"""FakeNode: a Lavalink v4 stand-in on 127.0.0.1, written from PROTOCOL.md.

HTTP/1.1 and WebSocket (RFC 6455) over plain sockets, standard library only. It keeps sessions,
players, positions and voice state the way a 4.2.2 server does, records every request and
handshake, and has controls to break things on purpose (drop sockets, stall, crash and revive).

One class, assembled from rooms (mixins), one concern each, so a reader finds each in its own
module: the HTTP server (``_http.py``), the WebSocket server (``_ws.py``), sessions and players
(``_sessions.py``), the REST routes (``_routes.py``), the track catalogue (``_tracks.py``) and
the fault controls (``_faults.py``); the state they share is declared in ``_core.py``. This
module holds the constructor, the lifecycle and what a test observes.

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
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, Callable, Optional

from . import _wire
from ._catalogue import (  # noqa: F401 (still importable from here, as before the split)
    BUILTIN_TRACKS,
    DEFAULT_FILTERS,
    DEFAULT_SOURCES,
    FILTER_DEFAULTS,
    LOAD_FAILED_MESSAGE,
    PROBE_NAMES,
    SEARCH_PREFIXES,
    STREAM_LENGTH,
)
from ._core import DESTROYED, OPEN, PAUSED, RecordedHandshake, RecordedRequest
from ._dialects import make_dialect
from ._faults import _Fault, _Faults
from ._http import _HttpServer
from ._routes import _Routes
from ._scheduler import Scheduler
from ._sessions import FakeSession, _Sessions
from ._tracks import _Tracks
from ._ws import _WebSocketServer, _WsConn

__all__ = ["FakeNode", "FakeSession", "RecordedHandshake", "RecordedRequest"]


class FakeNode(_Faults, _Routes, _Tracks, _HttpServer, _WebSocketServer, _Sessions):
    """A Lavalink v4 server stand-in on loopback, for tests (yours and lavasync's).

    ``with FakeNode() as fake: ...`` starts it on a free port; ``fake.uri`` and
    ``fake.password`` are what a client needs. See the module docstring for threads and
    thread-safety. Intervals are in seconds; make them small in tests.

    The fault controls (``kill``/``revive``, ``drop_connections``, ``close_websockets``,
    ``freeze_websockets``, ``expire_session``, ``stop_answering``/``resume_answering``,
    ``stall_answers``/``release_answers``, ``reset_mid_body``, ``fail_next``, ``clear_faults``,
    ``rate_limit``, ``refuse_connections``, ``add_route``, ``stuck_track``, ``fail_track``,
    ``finish_track``, ``close_voice``, ``emit``, ``send_raw``, ``burst``, ``set_voice_delay``,
    ``set_voice_failure``) are public API, listed by purpose in :mod:`lavasync.testing` and in
    the testing guide.
    """

    def __init__(
        self,
        password: str = "youshallnotpass",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stats_interval: float = 60.0,
        player_update_interval: Optional[float] = None,
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
        if player_update_interval is None:  # Lavalink: every 5 s; NodeLink: every 2 s
            player_update_interval = self._dialect.player_update_interval
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

    def set_route_planner(self, status: Optional[dict[str, Any]]) -> None:
        """RoutePlannerStatus JSON for ``/v4/routeplanner/status``; None = no planner (204)."""
        with self._lock:
            self._route_planner = copy.deepcopy(status)

    def add_route(self, method: str, path: str, handler: Callable[[RecordedRequest], Any]) -> None:
        """A plugin-style route (exact path). ``handler(request)`` returns ``(status, json)``
        or a JSON value (200); None means 204. Auth is checked first, as for every route."""
        with self._lock:
            self._custom_routes[(method.upper(), path)] = handler

    def __repr__(self) -> str:
        return f"<FakeNode {self.name} {self.uri} sessions={len(self._sessions)}>"
