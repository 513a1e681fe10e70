"""One Lavalink node: its REST client, its WebSocket reader thread, session, stats, reconnect.

The reader thread (``lavasync-ws-<name>``) receives frames, decodes them into typed events,
updates node and player state, and hands events to the client's buffers. Nothing else: it never
runs user code, never makes a REST call and never blocks on a full buffer. What a frame sets in
motion (enabling resuming after ``ready``, re-syncing or rebuilding players, failover) is handed
to the client's worker threads.

Liveness comes from the socket, not from the message stream: when nothing arrives for
``ping_interval`` the reader sends a ping, and a ping left unanswered for ``ping_timeout`` means
the socket is dead. A server that sends no ``stats`` for a long time is alive but its stats are
stale (:attr:`Node.stats_stale`), which only matters for node selection.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._server import ServerVersion, detect_server, lavalink_notes, v3_version
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    LavasyncError,
    LavasyncTimeoutError,
    NodeUnavailableError,
    RestError,
    TLSError,
    UnsupportedServerError,
)
from .models import Info, Stats
from .models.events import (
    Event,
    NodeConnectedEvent,
    NodeDisconnectedEvent,
    NodeReconnectingEvent,
    NodeResumedEvent,
    PlayerEvent,
    PlayerUpdateEvent,
    ReadyEvent,
    StatsEvent,
    parse_event,
)
from .rest import RestClient
from .transport.rest import RestTransport
from .transport.websocket import (
    PONG,
    SocketClosed,
    SocketTimeout,
    WebSocketConnection,
    websocket_url,
)

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Backoff", "Node", "NodeState"]

log = logging.getLogger("lavasync.node")

_raw_decode = json.JSONDecoder().raw_decode


class NodeState(enum.Enum):
    """Where a node's connection stands."""

    IDLE = "idle"  #: created, not started
    CONNECTING = "connecting"  #: opening the WebSocket (first time or after a drop)
    READY = "ready"  #: ``ready`` received; REST session routes work
    DISCONNECTED = "disconnected"  #: dropped; waiting to reconnect (session may still resume)
    FAILED = "failed"  #: gave up for good (wrong password, refused User-Id)
    CLOSED = "closed"  #: closed by the user


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect backoff with jitter: ``initial * factor**(n-1)``, capped, ±jitter."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2  #: fraction of the delay added or removed at random

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff jitter must be in [0, 1)")

    def delay(self, attempt: int) -> float:
        """The wait before connection attempt number ``attempt`` (1-based)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, base)


class Node:
    """One Lavalink node. Create it with :meth:`lavasync.Client.add_node`.

    Thread-safe: every public method and property may be used from any thread. ``rest`` is a
    thread-safe :class:`~lavasync.rest.RestClient` sharing one connection pool.
    """

    def __init__(
        self,
        client: Client,
        name: str,
        uri: str,
        password: str,
        *,
        regions: Sequence[str] = (),
        resume_timeout: Optional[int] = 60,
        session_id: Optional[str] = None,
        rest_timeout: Any = (5.0, 30.0),
        connect_timeout: float = 10.0,
        backoff: Optional[Backoff] = None,
        ping_interval: float = 15.0,
        ping_timeout: float = 10.0,
        stats_interval: float = 60.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a node needs a non-empty name")
        if not isinstance(password, str):
            raise ValueError("password must be a string")
        if resume_timeout is not None and (
            not isinstance(resume_timeout, int) or isinstance(resume_timeout, bool)
        ):
            raise ValueError("resume_timeout is a whole number of seconds, or None to disable")
        if resume_timeout is not None and resume_timeout < 0:
            raise ValueError("resume_timeout must be >= 0")
        for value, what in ((ping_interval, "ping_interval"), (ping_timeout, "ping_timeout")):
            if value <= 0:
                raise ValueError(f"{what} must be > 0")
        self._client = client
        self.name = name
        self.uri = uri.rstrip("/")
        self.ws_url = websocket_url(self.uri)
        self.regions: frozenset[str] = frozenset(r.lower() for r in regions)
        self.resume_timeout = resume_timeout
        self.connect_timeout = connect_timeout
        self.backoff = backoff or Backoff()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.stats_interval = stats_interval
        self._password = password
        self.rest = RestClient(
            RestTransport(
                self.uri,
                password,
                client_name=client.client_name,
                timeout=rest_timeout,
                # rebuilds and moves run move_concurrency calls at once: a connection each
                pool_maxsize=max(32, client.move_concurrency + 8),
                ssl_context=ssl_context,
            )
        )
        #: TLS settings for both transports of an ``https://`` node (None: system CAs).
        self.ssl_context = ssl_context
        self._last_error: Optional[LavasyncError] = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._state = NodeState.IDLE
        self._session_id: Optional[str] = session_id
        self._stats: Optional[Stats] = None
        self._stats_at = 0.0
        self._error: Optional[LavasyncError] = None
        self._conn: Optional[WebSocketConnection] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._replaying = False
        self._disconnected_at: Optional[float] = None
        self._connected_once = False
        self._generation = 0  # one per WebSocket connection: a late set-up cannot revive a dead one
        self._info: Optional[Info] = None
        self._version: Optional[ServerVersion] = None
        self._noted_version: Optional[str] = None  # the version already logged at INFO
        #: players assigned since the last stats report (so a burst does not all land here)
        self.recent_players = 0
        #: a draining node gets no new players (see :meth:`drain`)
        self.draining = False

    # ----------------------------------------------------------------- public state

    def __repr__(self) -> str:
        return f"<Node {self.name!r} {self.uri} {self._state.value}>"

    @property
    def state(self) -> NodeState:
        """Where the connection stands (:class:`NodeState`); changes on the reader thread."""
        return self._state

    @property
    def available(self) -> bool:
        """True while the node is ready for player calls."""
        return self._state is NodeState.READY

    is_ready = available

    @property
    def session_id(self) -> Optional[str]:
        """The Lavalink session id (from ``ready``); kept across a resume."""
        return self._session_id

    @property
    def stats(self) -> Optional[Stats]:
        """The latest ``stats`` the node sent over the WebSocket (None before the first)."""
        return self._stats

    @property
    def stats_stale(self) -> bool:
        """True when no ``stats`` came for 2 x ``stats_interval`` (or none came yet)."""
        at = self._stats_at
        return self._stats is None or time.monotonic() - at > 2 * self.stats_interval

    @property
    def info(self) -> Optional[Info]:
        """The server's ``/v4/info`` as read after the last ``ready`` (None before, or if that
        read failed): sources, filters, plugins. Read liberally: other servers' shapes fit."""
        return self._info

    @property
    def version(self) -> Optional[ServerVersion]:
        """Which server this is (Lavalink, NodeLink, ...) and its own version, from
        :attr:`info`; None until known. NodeLink 3.x reports 3.x here and speaks API v4."""
        return self._version

    @property
    def error(self) -> Optional[LavasyncError]:
        """Why the node gave up (state FAILED), else None."""
        return self._error

    @property
    def last_error(self) -> Optional[LavasyncError]:
        """The last connection error (refused, DNS, TLS, a refused handshake, a timeout), with
        the low-level error as its ``__cause__``; None once the node is ready."""
        if self._state is NodeState.READY:
            return None
        return self._last_error

    def _status(self) -> str:
        """``state`` or ``state (last error: ...)``, for error messages."""
        state = self._state
        error = self.last_error if state is not NodeState.FAILED else self._error
        return f"{state.value} (last error: {error})" if error is not None else state.value

    @property
    def players(self) -> list[Any]:
        """The players the client has on this node."""
        return self._client._players_on(self)

    # ----------------------------------------------------------------- lifecycle

    def connect(self) -> None:
        """Start the reader thread (connects in the background). Called by ``add_node``."""
        with self._lock:
            if self._thread is not None:
                return
            if self._state is NodeState.CLOSED:
                raise ClientClosedError(f"node {self.name!r} is closed")
            self._state = NodeState.CONNECTING
            self._thread = threading.Thread(
                target=self._run, name=f"lavasync-ws-{self.name}", daemon=True
            )
            self._thread.start()

    def wait_ready(self, timeout: Optional[float] = 10.0) -> None:
        """Block until the node is ready; raise on timeout, failure or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._state is not NodeState.READY:
                if self._state is NodeState.FAILED:
                    assert self._error is not None
                    raise self._error
                if self._state is NodeState.CLOSED:
                    raise ClientClosedError(f"node {self.name!r} is closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise NodeUnavailableError(
                        f"node {self.name!r} not ready after {timeout} s: {self._status()}",
                        errors={self.name: self.last_error},
                        states={self.name: self._state.value},
                    )
                self._cond.wait(remaining)

    def close(self, timeout: Optional[float] = 5.0) -> bool:
        """Stop the reader thread and close the socket and REST pool. Idempotent.

        Returns True if the thread exited within ``timeout``. The session is not destroyed:
        with resuming on, the server keeps the players playing until ``resume_timeout``.
        """
        with self._cond:
            self._state = NodeState.CLOSED
            self._stop.set()
            conn = self._conn
            thread = self._thread
            self._cond.notify_all()
        if conn is not None:
            conn.close_now(1000)  # a Close frame, then the socket shut: the reader wakes up
        exited = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            exited = not thread.is_alive()
        self.rest.close()
        return exited

    def session(self, timeout: Optional[float] = None) -> str:
        """The session id for a REST call, waiting (up to ``timeout``) while the node reconnects.

        Raises :class:`NodeUnavailableError` if the node is not ready in time, failed or closed.
        """
        if self._state is NodeState.READY and self._session_id:
            return self._session_id
        try:
            self.wait_ready(timeout if timeout is not None else self.connect_timeout)
        except NodeUnavailableError:
            raise  # wait_ready's own: it already says why
        except LavasyncTimeoutError as exc:
            raise NodeUnavailableError(str(exc)) from None
        except ClientClosedError:
            raise
        except LavasyncError as exc:
            raise NodeUnavailableError(f"node {self.name!r} failed: {exc}") from exc
        sid = self._session_id
        assert sid is not None
        return sid

    def drain(self, *, timeout: Optional[float] = None) -> int:
        """Move every player off this node (maintenance) and take no new ones.

        Same guarantees as failover: each player is rebuilt elsewhere from its state as of now.
        Returns how many moved. Set ``node.draining = False`` to take players again.
        """
        self.draining = True
        return self._client.move_players(self, None, reason="drain", timeout=timeout)

    def penalty(self) -> float:
        """The built-in load penalty (lower is better): :func:`lavasync.client.default_penalty`."""
        from .client import default_penalty

        return default_penalty(self)

    # ----------------------------------------------------------------- reader thread

    #: ``time.monotonic()`` when the node last became READY (for ``Client.health()``'s uptime)
    _ready_at: Optional[float] = None

    def _set_state(self, state: NodeState) -> None:
        with self._cond:
            if self._state is NodeState.CLOSED:
                return
            self._state = state
            self._cond.notify_all()

    def _emit(self, event: Event) -> None:
        self._client._emit(event)

    def _run(self) -> None:
        attempt = 0
        dropped = False  # a connection of this node was lost: the next one is a reconnect
        try:
            while not self._stop.is_set():
                self._set_state(NodeState.CONNECTING)
                conn = WebSocketConnection()
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._conn = conn  # so that close() can interrupt the handshake
                try:
                    conn.connect(
                        self.ws_url,
                        password=self._password,
                        user_id=self._client.user_id,
                        client_name=self._client.client_name,
                        session_id=self._session_id if self._resuming_enabled else None,
                        timeout=self.connect_timeout,
                        ssl_context=self.ssl_context,
                    )
                except RestError as exc:
                    self._last_error = exc
                    unsupported = self._unsupported_server(exc)
                    if unsupported is not None:
                        # a Lavalink v3 server will not grow a v4 API: fail fast, no retry loop
                        log.error("node %s: %s", self.name, unsupported)
                        self._fail(unsupported)
                        return
                    if isinstance(exc, AuthenticationError) or exc.status == 400:
                        # A wrong password or a refused User-Id will not fix itself: fail fast.
                        log.error("node %s refused the connection: %s", self.name, exc)
                        self._fail(exc)
                        return
                    attempt += 1  # 503 and friends: the node is up but not taking us yet
                    if not self._wait_before_retry(attempt, str(exc)):
                        return
                    continue
                except (ConnectionFailedError, LavasyncTimeoutError) as exc:
                    if self._stop.is_set():
                        return
                    if getattr(exc, "refused", False) and self._disconnected_at is not None:
                        # Nothing listens on the node's port: its process is gone, and a server
                        # that restarts has no sessions. Waiting out the resume window would only
                        # keep the music stopped: let the players move (or park) now.
                        log.warning(
                            "node %s refuses connections: its session cannot resume", self.name
                        )
                        self._disconnected_at = None
                        self._client._on_node_session_lost(self)
                    self._last_error = exc
                    if isinstance(exc, TLSError) and exc.certificate:
                        # An untrusted certificate will not fix itself either: fail fast.
                        log.error("node %s: %s", self.name, exc)
                        self._fail(exc)
                        return
                    attempt += 1
                    if not self._wait_before_retry(attempt, str(exc)):
                        return
                    continue
                self._last_error = None  # connected: the handshake went through
                if dropped:
                    self._observe("reconnect")
                if self._stop.is_set():
                    conn.close()
                    return
                try:
                    code, reason = self._read(conn)
                except Exception:  # a bug in handling must cost a reconnect, not the node
                    log.exception("node %s: the reader failed; reconnecting", self.name)
                    code, reason = None, "reader error"
                with self._lock:
                    self._conn = None
                    self._generation += 1
                    self.ping = None  # that socket's round trip says nothing about the next
                dropped = True
                conn.close()
                if self._stop.is_set():
                    return
                was_ready = self._state is NodeState.READY
                self._disconnected_at = time.monotonic()
                self._set_state(NodeState.DISCONNECTED)
                log.warning("node %s disconnected (%s %s)", self.name, code, reason)
                self._emit(NodeDisconnectedEvent(code, reason, True, node=self))
                self._client._on_node_disconnected(self)
                attempt = 0 if was_ready else attempt + 1
                if not self._wait_before_retry(max(1, attempt), reason or "disconnected"):
                    return
        except Exception:  # a bug must not leave callers waiting on a node that is gone
            log.exception("node %s reader thread crashed", self.name)
            self._fail(NodeUnavailableError(f"node {self.name!r} reader thread crashed"))

    def _probe_version(self) -> str:
        """``GET /version`` for the connector, sent from a worker (the reader sends no REST;
        it waits here only while connecting, when there is nothing to read). "" on failure."""
        limit = min(5.0, self.connect_timeout)
        try:
            future = self._client._workers.submit(lambda: self.rest.version(timeout=limit))
            return str(future.result(limit + 1.0))
        except Exception:  # unreachable, refused, closed, cancelled, timed out
            return ""

    def _unsupported_server(self, exc: RestError) -> Optional[UnsupportedServerError]:
        """A refused handshake from a Lavalink v3 server: its headers say so, or (a 404 on the
        v4 path) a short ``/version`` probe does."""
        found = v3_version(exc.headers)
        if found is None and exc.status == 404:
            text = self._probe_version()
            found = v3_version({}, text) if text else None
        elif found is not None and found.isdigit():
            # the header says v3: the full version makes a better message
            found = v3_version({}, self._probe_version()) or found
        if found is None:
            return None
        return UnsupportedServerError(
            f"node {self.name!r} runs Lavalink {found} (the v3 API); lavasync needs a "
            "Lavalink v4 server (4.0 or newer) or a server speaking its v4 API",
            version=found,
        )

    def _fetch_server_info(self) -> None:
        """Read ``/v4/info`` into :attr:`info`/:attr:`version` after ``ready``. Never raises:
        a node whose info cannot be read still works."""
        try:
            info = self.rest.info(timeout=min(5.0, self.connect_timeout))
            version = detect_server(info)
        except Exception as exc:  # knowing the server is a nicety, never fatal
            log.info("node %s: could not read /v4/info: %s", self.name, exc)
            return
        with self._lock:
            self._info = info
            self._version = version
        note = lavalink_notes(version)
        if note is not None and self._noted_version != version.semver:
            self._noted_version = version.semver
            log.info("node %s: %s", self.name, note)

    @property
    def _resuming_enabled(self) -> bool:
        return bool(self.resume_timeout)

    def _wait_before_retry(self, attempt: int, why: str) -> bool:
        """Back off before reconnecting; watch the resume window meanwhile. False if stopping."""
        delay = self.backoff.delay(attempt)
        log.info("node %s: reconnect attempt %d in %.2f s (%s)", self.name, attempt, delay, why)
        self._emit(NodeReconnectingEvent(attempt, delay, node=self))
        deadline = time.monotonic() + delay
        while True:
            self._check_resume_window()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return not self._stop.is_set()
            if self._stop.wait(min(remaining, 0.25)):
                return False

    def _check_resume_window(self) -> None:
        """Once the session can no longer resume, let the client move or park its players."""
        since = self._disconnected_at
        if since is None:
            return
        window = self.resume_timeout or 0
        if time.monotonic() - since >= window:
            self._disconnected_at = None
            self._client._on_node_session_lost(self)

    def _fail(self, exc: LavasyncError) -> None:
        with self._cond:
            self._error = exc
            if self._state is not NodeState.CLOSED:
                self._state = NodeState.FAILED
            self._cond.notify_all()
        self._emit(NodeDisconnectedEvent(None, str(exc), False, node=self))
        self._client._on_node_failed(self)

    def _read(self, conn: WebSocketConnection) -> tuple[Optional[int], str]:
        """Receive frames until the socket closes or looks dead; returns the close code/reason."""
        interval = self.ping_interval
        conn.set_timeout(interval)
        last_frame = time.monotonic()  # any frame, pongs included: proof the socket lives
        ping_sent: Optional[float] = None
        timed: Optional[float] = None  # when the ping awaiting its pong left (round-trip time)
        last_ping = last_frame
        handle = self._handle_frame
        recv = conn.recv
        while not self._stop.is_set():
            try:
                data = recv()
            except SocketTimeout:
                now = time.monotonic()
                if ping_sent is not None and now - ping_sent >= self.ping_timeout:
                    return None, "ping timeout"
                if now - last_frame >= interval and ping_sent is None:
                    ping_sent = timed = last_ping = now
                    if not conn.ping():
                        return None, "ping failed"
                    conn.set_timeout(min(interval, self.ping_timeout))
                continue
            except SocketClosed as exc:
                return exc.code, exc.reason
            now = time.monotonic()
            last_frame = now
            if ping_sent is not None:
                ping_sent = None
                conn.set_timeout(interval)
            if data:
                handle(data)
                if now - last_ping >= interval:
                    # a busy socket needs no ping to prove it lives, but one per interval
                    # keeps the round-trip time (node.ping) current
                    timed = last_ping = now
                    if not conn.ping():
                        return None, "ping failed"
            elif data is PONG and timed is not None:
                self._on_pong(now - timed)
                timed = None
        return 1000, "closed by the client"

    #: The WebSocket round-trip time in ms (the last ping's), None until a ping on the current
    #: connection was answered. ``Client.health()`` reports it.
    ping: Optional[float] = None

    def _on_pong(self, seconds: float) -> None:
        """A ping came back (reader thread): record its round trip."""
        self.ping = seconds * 1000.0
        metrics = getattr(self._client, "_metrics", None)
        if metrics is not None:
            metrics.ws_rtt(self.name, seconds)

    def _observe(self, what: str) -> None:
        """Report ``reconnect``/``resume`` of this node to the client's metrics hook."""
        metrics = getattr(self._client, "_metrics", None)
        if metrics is not None:
            getattr(metrics, what)(self.name)

    def _handle_frame(self, data: Any) -> None:
        """Decode one frame and route it. Bad frames are logged and skipped."""
        try:
            # str + the decoder's raw_decode: json.loads(bytes) sniffs the encoding on every call
            text = data.decode() if type(data) is bytes else data
            try:
                payload, end = _raw_decode(text)
            except ValueError:
                payload = end = None
            if end != len(text):
                payload = json.loads(text)  # whitespace around it, or bad JSON: the full check
        except Exception as exc:  # bad JSON, bad UTF-8, nesting deep enough for RecursionError
            log.warning(
                "node %s sent a frame that cannot be decoded (%s): %.200r",
                self.name,
                type(exc).__name__,
                data,
            )
            return
        if type(payload) is not dict or "op" not in payload:
            log.warning("node %s sent a frame without an op: %.200r", self.name, payload)
            return
        try:
            event = parse_event(payload, node=self, replayed=self._replaying)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            log.warning(
                "node %s sent a malformed %r frame (%s); skipped: %.300r",
                self.name,
                payload.get("op"),
                exc,
                payload,
            )
            return
        try:
            self._route(event)
        except Exception:
            log.exception("node %s: handling %r failed", self.name, event)

    def _route(self, event: Event) -> None:
        client = self._client
        cls = type(event)
        if cls is PlayerUpdateEvent:
            if self._replaying:
                # playerUpdates are never queued while a session is paused: the first one after a
                # resume is fresh, so the replay is over.
                self._replaying = False
                event.replayed = False
            client._on_player_event(self, event)  # type: ignore[arg-type]
        elif isinstance(event, PlayerEvent):
            client._on_player_event(self, event)
        elif cls is StatsEvent:
            self._stats = event.stats  # type: ignore[attr-defined]
            self._stats_at = time.monotonic()
            self.recent_players = 0
        elif cls is ReadyEvent:
            event.replayed = False
            client._emit(event)
            self._on_ready(event)  # type: ignore[arg-type]
            return
        client._emit(event)

    def _on_ready(self, event: ReadyEvent) -> None:
        """``ready`` (reader thread): record the session; a worker enables resuming and then
        makes the node READY (:meth:`_become_ready`), while players are re-synced or rebuilt."""
        sid = event.session_id
        old = self._session_id
        resumed = event.resumed and old == sid
        with self._lock:
            self._session_id = sid
            self._disconnected_at = None
            generation = self._generation
        self._replaying = resumed
        self._connected_once = True
        self._client._on_node_ready(self, sid, resumed, old, generation)

    def _become_ready(self, sid: str, generation: int, resumed: bool) -> bool:
        """Worker, once the session is set up: READY, unless the socket that sent ``ready`` is
        gone already. True if the node became ready."""
        with self._cond:
            if (
                self._generation != generation
                or self._session_id != sid
                or self._state is not NodeState.CONNECTING
            ):
                return False
            self._state = NodeState.READY
            self._ready_at = time.monotonic()
            self._cond.notify_all()
        log.info("node %s ready (session %s, resumed=%s)", self.name, sid, resumed)
        self._emit(NodeConnectedEvent(sid, resumed, node=self))
        if resumed:
            self._emit(NodeResumedEvent(sid, node=self))
            self._observe("resume")
        return True

    # ----------------------------------------------------------------- helpers for players

    def call(self, fn: Callable[[str], Any], *, timeout: Optional[float] = None) -> Any:
        """Run a REST call that needs the session id, waiting while the node reconnects.

        A 404 ``Session not found`` (NodeLink: ``The provided sessionId doesn't exist.``)
        answered while the session is paused on the server (the socket dropped but the reader
        has not noticed yet) is retried once the node is ready.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for attempt in range(3):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            sid = self.session(remaining)
            try:
                return fn(sid)
            except RestError as exc:
                text = exc.message.lower()
                paused = exc.status == 404 and ("session not found" in text or "sessionid" in text)
                if not paused or attempt == 2:
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if self._session_id == sid and self._state is NodeState.READY:
                    # The server paused our session before the reader saw the drop: wait for
                    # the reader to notice and reconnect, then try again.
                    self._await_state_change(sid, remaining)
        raise AssertionError("unreachable")

    def _enable_resuming(self, sid: str) -> None:
        """``PATCH /v4/sessions/{id}`` after each ``ready`` (worker thread)."""
        if not self._resuming_enabled:
            return
        try:
            self.rest.update_session(sid, resuming=True, timeout=self.resume_timeout)
        except LavasyncError as exc:
            log.warning("node %s: could not enable resuming: %s", self.name, exc)

    def _await_state_change(self, sid: str, timeout: Optional[float]) -> None:
        limit = min(timeout, 5.0) if timeout is not None else 5.0
        with self._cond:
            self._cond.wait_for(
                lambda: self._state is not NodeState.READY or self._session_id != sid, limit
            )
