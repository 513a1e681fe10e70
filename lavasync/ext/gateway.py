"""A small synchronous Discord gateway shard on websocket-client, wired to a lavasync Client.

Enough for a script to join a voice channel and play with a bot token; not a Discord library.
One line wires it::

    client = lavasync.Client(user_id=BOT_ID)
    shard = GatewayShard(TOKEN, client=client)                # or shard=(0, 2), url=...
    group = lavasync.ext.gateway.connect(client, TOKEN, shards=2)   # every shard, paced

Then OP 4 from lavasync goes out through the shard that owns the guild
(``(guild_id >> 22) % shard_count``), every dispatch goes to ``client.handle_gateway`` with
its shard id, and a lost socket calls ``client.shard_lost(shard_id)`` (lavasync rejoins the
shard's voice channels when READY or RESUMED follows).

What it does (Discord's gateway documentation): IDENTIFY with intents (GUILDS |
GUILD_VOICE_STATES by default); the first heartbeat at ``interval * random()`` then every
interval, and a heartbeat without an ACK before the next one is a zombie connection (closed
with 4000, resumed); RESUME on ``resume_gateway_url`` with the last sequence number after a
drop, a RECONNECT or a resumable close; INVALID_SESSION ``true`` resumes, ``false`` waits 1-5 s
and IDENTIFYs afresh; reconnects back off; close codes 4004 and 4010-4014 stop the shard
(:attr:`GatewayShard.error`, raised by :meth:`GatewayShard.wait_ready` and
:meth:`GatewayShard.send`); :meth:`GatewayShard.send` keeps under 120 commands per 60 s;
``compress=True`` asks for ``zlib-stream`` transport compression.

Threads: one reader per shard, ``lavasync-gateway-<shard_id>``, which also sends heartbeats; it
runs the dispatch callbacks (keep them quick: never block in them, never call
``player.connect`` there: its answer arrives on this very thread). Joined by :meth:`close`.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import select
import struct
import threading
import time
import weakref
import zlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websocket

from ..errors import ClientClosedError, LavasyncError, LavasyncTimeoutError
from ..node import Backoff

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "DEFAULT_INTENTS",
    "DEFAULT_URL",
    "FATAL_CLOSE_CODES",
    "GUILDS",
    "GUILD_VOICE_STATES",
    "GatewayClosedError",
    "GatewayError",
    "GatewayShard",
    "IdentifyLimiter",
    "ShardGroup",
    "connect",
]

log = logging.getLogger("lavasync.ext.gateway")

DEFAULT_URL = "wss://gateway.discord.gg/"
GUILDS = 1 << 0
GUILD_VOICE_STATES = 1 << 7
DEFAULT_INTENTS = GUILDS | GUILD_VOICE_STATES
#: Close codes after which Discord says not to reconnect.
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})
#: Close codes that end the session: reconnect with a fresh IDENTIFY.
_NEW_SESSION_CODES = frozenset({4003, 4005, 4007, 4008, 4009})
_ZLIB_SUFFIX = b"\x00\x00\xff\xff"
_MAX_PAYLOAD = 4096
_THREAD_PREFIX = "lavasync-gateway-"

DispatchCallback = Callable[[dict[str, Any], int], Any]


class GatewayError(LavasyncError):
    """The gateway shard cannot do what was asked (not connected in time, stopped)."""


class GatewayClosedError(GatewayError):
    """Discord closed the shard with a code that forbids reconnecting (4004, 4010-4014)."""

    def __init__(self, code: int, reason: str = "") -> None:
        meaning = {
            4004: "authentication failed (bad token)",
            4010: "invalid shard",
            4011: "sharding required",
            4012: "invalid API version",
            4013: "invalid intents",
            4014: "disallowed intents (enable them in the developer portal)",
        }.get(code, "fatal close")
        super().__init__(
            f"gateway closed with {code}: {meaning}" + (f" ({reason})" if reason else "")
        )
        self.code = code
        self.reason = reason


class IdentifyLimiter:
    """Paces IDENTIFYs: ``max_concurrency`` buckets (``shard_id % max_concurrency``), one
    IDENTIFY per bucket every ``interval`` seconds (Discord: 5 s). Thread-safe."""

    def __init__(self, max_concurrency: int = 1, interval: float = 5.0) -> None:
        if max_concurrency < 1 or interval < 0:
            raise ValueError("max_concurrency must be >= 1 and interval >= 0")
        self.max_concurrency = max_concurrency
        self.interval = float(interval)
        self._lock = threading.Lock()
        self._next: dict[int, float] = {}

    def acquire(self, shard_id: int, stop: threading.Event) -> bool:
        """Wait for the shard's turn; False if ``stop`` was set meanwhile."""
        bucket = shard_id % self.max_concurrency
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(bucket, 0.0))
            self._next[bucket] = at + self.interval
        return not stop.wait(max(0.0, at - time.monotonic())) if at > now else not stop.is_set()


class _RateLimiter:
    """A sliding window of send times, shared by every connection of one shard."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()
        self._cond = threading.Condition()

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()

    def note(self) -> None:
        """A frame the shard must send anyway (heartbeat, IDENTIFY, RESUME)."""
        with self._cond:
            self._times.append(time.monotonic())

    def acquire(self, budget: int, deadline: Optional[float], stop: threading.Event) -> bool:
        """Take a slot once fewer than ``budget`` frames went out in the window."""
        with self._cond:
            while True:
                now = time.monotonic()
                self._trim(now)
                if len(self._times) < budget:
                    self._times.append(now)
                    return True
                if stop.is_set():
                    return False
                wait = self._times[0] + self.window - now
                if deadline is not None:
                    if now >= deadline:
                        return False
                    wait = min(wait, deadline - now)
                self._cond.wait(min(max(wait, 0.001), 0.5))


class _Lost(Exception):
    """The connection ended; ``action`` says what next: resume, identify, stop or fatal."""

    def __init__(self, action: str, why: str, code: Optional[int] = None, reason: str = "") -> None:
        super().__init__(why)
        self.ready = False
        self.action = action
        self.code = code
        self.reason = reason


def _gateway_url(base: str, compress: bool) -> str:
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query))
    query.update({"v": "10", "encoding": "json"})
    if compress:
        query["compress"] = "zlib-stream"
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


class GatewayShard:
    """One gateway connection (shard ``shard = (shard_id, shard_count)``), kept alive.

    ``on_dispatch(dispatch, shard_id)`` gets every dispatch (``{"op": 0, "t", "s", "d"}``) on
    the shard's thread; with ``client`` the dispatch first goes to ``client.handle_gateway``.

    Thread-safe: :meth:`send`, :meth:`update_voice_state`, :meth:`wait_ready` and :meth:`close`
    may be called from any thread; properties are snapshots.
    """

    def __init__(
        self,
        token: str,
        *,
        client: Optional[Client] = None,
        shard: tuple[int, int] = (0, 1),
        url: str = DEFAULT_URL,
        intents: int = DEFAULT_INTENTS,
        on_dispatch: Optional[DispatchCallback] = None,
        compress: bool = False,
        backoff: Optional[Backoff] = None,
        identify_limiter: Optional[IdentifyLimiter] = None,
        invalid_session_delay: tuple[float, float] = (1.0, 5.0),
        rate_limit: tuple[int, float] = (120, 60.0),
        connect_timeout: float = 10.0,
        properties: Optional[Mapping[str, str]] = None,
        start: bool = True,
    ) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be the bot's token (a non-empty string)")
        if (
            not isinstance(shard, (tuple, list))
            or len(shard) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
            or not 0 <= shard[0] < shard[1]
        ):
            raise ValueError(
                f"shard must be (shard_id, shard_count) with 0 <= id < count: {shard!r}"
            )
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0:
            raise ValueError("intents must be a non-negative int")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError(f"url must be a ws:// or wss:// URL, not {url!r}")
        if on_dispatch is not None and not callable(on_dispatch):
            raise ValueError("on_dispatch must be callable(dispatch, shard_id)")
        low, high = invalid_session_delay
        if not 0 <= low <= high:
            raise ValueError("invalid_session_delay must be (low, high) with 0 <= low <= high")
        limit, window = rate_limit
        if limit < 2 or window <= 0:
            raise ValueError("rate_limit must be (count >= 2, seconds > 0)")
        self.token = token
        self.shard_id, self.shard_count = int(shard[0]), int(shard[1])
        self.url = url
        self.intents = intents
        self.on_dispatch = on_dispatch
        self.compress = bool(compress)
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.invalid_session_delay = (float(low), float(high))
        self.connect_timeout = float(connect_timeout)
        self.properties = dict(
            properties or {"os": "linux", "browser": "lavasync", "device": "lavasync"}
        )
        self._identify = identify_limiter or IdentifyLimiter()
        self._rate = _RateLimiter(limit, window)
        # heartbeats, IDENTIFY and RESUME come out of the same window: keep room for them
        self._budget = max(1, limit - max(1, limit // 24))
        self._cond = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._wake_r, self._wake_w = _socketpair()
        self._ws: Optional[websocket.WebSocket] = None
        self._ready = False
        self._session_id: Optional[str] = None
        self._resume_url: Optional[str] = None
        self._seq: Optional[int] = None
        self._error: Optional[GatewayClosedError] = None
        self._latency: Optional[float] = None
        self._user_id: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._client = client
        self._client_handle: Optional[Callable[[dict[str, Any]], Any]] = None
        if client is not None:
            self._client_handle = _handle_gateway_for(client, self.shard_id)
            _router_for(client).add(self)
        if start:
            self.start()

    # ------------------------------------------------------------------ public

    @property
    def session_id(self) -> Optional[str]:
        with self._cond:
            return self._session_id

    @property
    def sequence(self) -> Optional[int]:
        """The last dispatch sequence number seen (what RESUME sends)."""
        with self._cond:
            return self._seq

    @property
    def ready(self) -> bool:
        """The current connection got READY or RESUMED."""
        with self._cond:
            return self._ready

    @property
    def latency(self) -> Optional[float]:
        """Seconds between the last heartbeat and its ACK (None before the first)."""
        with self._cond:
            return self._latency

    @property
    def user_id(self) -> Optional[int]:
        """The bot's user id from READY."""
        with self._cond:
            return self._user_id

    @property
    def error(self) -> Optional[GatewayClosedError]:
        """Why the shard stopped for good (a fatal close code), else None."""
        with self._cond:
            return self._error

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def owns(self, guild_id: int) -> bool:
        """This shard carries the guild's events: ``(guild_id >> 22) % shard_count``."""
        return (int(guild_id) >> 22) % self.shard_count == self.shard_id

    def start(self) -> None:
        """Start the shard's thread (idempotent)."""
        with self._cond:
            if self._stop.is_set():
                raise ClientClosedError("this gateway shard was closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"{_THREAD_PREFIX}{self.shard_id}", daemon=True
            )
        self._thread.start()

    def wait_ready(self, timeout: Optional[float] = 30.0) -> None:
        """Block until READY or RESUMED on the current connection. Raises the fatal
        :class:`GatewayClosedError`, :class:`ClientClosedError` once closed, or a timeout."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._ready or self._error is not None or self._stop.is_set(), timeout
            )
            self._raise_if_stopped()
            if not done:
                raise LavasyncTimeoutError(f"shard {self.shard_id}: not ready in {timeout} s")

    def send(self, payload: Mapping[str, Any], *, timeout: Optional[float] = 10.0) -> None:
        """Send a gateway command (``{"op": int, "d": ...}``), waiting up to ``timeout`` seconds
        for the shard to be connected and for room under the rate limit (120 per 60 s). If the
        socket fails under the send (the connection is being replaced), the command goes out on
        the next connection, within the same ``timeout``."""
        if not isinstance(payload, Mapping) or type(payload.get("op")) is not int:
            raise ValueError('payload must be a mapping like {"op": 4, "d": {...}}')
        if payload["op"] in (1, 2, 6):
            raise ValueError("heartbeats, IDENTIFY and RESUME are the shard's own business")
        try:
            text = json.dumps(dict(payload), separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload is not JSON-serialisable: {exc}") from None
        if len(text.encode("utf-8")) > _MAX_PAYLOAD:
            raise ValueError("payload is over Discord's 4096-byte limit")
        deadline = None if timeout is None else time.monotonic() + timeout
        # A socket that fails under us is being replaced (the reader thread closes it and
        # reconnects): wait for the next connection within the timeout and send there.
        failed: Optional[websocket.WebSocket] = None
        why = ""

        def usable() -> bool:
            return self._ready and self._ws is not None and self._ws is not failed

        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: usable() or self._error is not None or self._stop.is_set(),
                    None if deadline is None else max(0.0, deadline - time.monotonic()),
                )
                self._raise_if_stopped()
                if not usable():
                    raise LavasyncTimeoutError(
                        f"shard {self.shard_id}: not connected within {timeout} s"
                        + (f" (the last attempt failed: {why})" if why else "")
                        + "; command not sent"
                    )
            if not self._rate.acquire(self._budget, deadline, self._stop):
                self._raise_if_stopped()
                raise LavasyncTimeoutError(f"shard {self.shard_id}: rate limited for {timeout} s")
            with self._cond:
                ws = self._ws if usable() else None
            if ws is None:
                continue  # lost meanwhile: wait for the next connection
            try:
                ws.send(text)
                return
            except (OSError, websocket.WebSocketException) as exc:
                failed, why = ws, str(exc) or type(exc).__name__
                log.debug(
                    "shard %s: send failed (%s); waiting for the next connection",
                    self.shard_id,
                    why,
                )

    def update_voice_state(
        self,
        guild_id: int,
        channel_id: Optional[int],
        *,
        self_mute: bool = False,
        self_deaf: bool = False,
    ) -> None:
        """Send OP 4 for a guild of this shard (``channel_id`` None leaves)."""
        if not self.owns(guild_id):
            raise ValueError(f"guild {guild_id} is not on shard {self.shard_id}")
        self.send(
            {
                "op": 4,
                "d": {
                    "guild_id": str(int(guild_id)),
                    "channel_id": None if channel_id is None else str(int(channel_id)),
                    "self_mute": bool(self_mute),
                    "self_deaf": bool(self_deaf),
                },
            }
        )

    def close(self, timeout: float = 5.0) -> bool:
        """Close the connection (code 1000: the bot goes offline) and join the thread.
        Callable from any thread, idempotent; True when the thread ended in time."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        with self._cond:
            self._cond.notify_all()
            thread = self._thread
        with self._rate._cond:
            self._rate._cond.notify_all()
        if self._client is not None:
            _router_for(self._client).remove(self)
        if thread is None or thread is threading.current_thread():
            return thread is None
        thread.join(timeout)
        return not thread.is_alive()

    def __enter__(self) -> GatewayShard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GatewayShard {self.shard_id}/{self.shard_count} ready={self.ready}>"

    # ------------------------------------------------------------------ the thread

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            raise self._error
        if self._stop.is_set():
            raise ClientClosedError(f"shard {self.shard_id} is closed")

    def _run(self) -> None:
        attempt = 0
        action = "identify"
        try:
            while not self._stop.is_set():
                with self._cond:
                    can_resume = bool(self._session_id and self._seq is not None)
                resume = action == "resume" and can_resume
                if not resume:
                    with self._cond:
                        self._session_id = self._resume_url = None
                        self._seq = None
                    if not self._identify.acquire(self.shard_id, self._stop):
                        return
                url = (self._resume_url or self.url) if resume else self.url
                try:
                    ws = self._open(url)
                except Exception as exc:  # websocket-client raises many kinds
                    attempt += 1
                    delay = self.backoff.delay(attempt)
                    log.warning(
                        "shard %s: cannot connect to the gateway (%s); retrying in %.1f s",
                        self.shard_id,
                        exc,
                        delay,
                    )
                    self._stop.wait(delay)
                    continue
                reached_ready = False
                try:
                    reached_ready = self._serve(ws, resume)
                except _Lost as lost:
                    reached_ready = lost.ready
                    action = lost.action
                    log.info(
                        "shard %s: connection lost (%s); next: %s", self.shard_id, lost, action
                    )
                    if action == "fatal":
                        with self._cond:
                            self._error = GatewayClosedError(lost.code or 0, lost.reason)
                            self._cond.notify_all()
                        log.error("shard %s: %s; not reconnecting", self.shard_id, self._error)
                finally:
                    with self._cond:
                        self._ws = None
                        self._ready = False
                        self._cond.notify_all()
                    _close_quietly(ws)
                if reached_ready:
                    attempt = 0
                    self._report_lost()
                if action in ("fatal", "stop") or self._stop.is_set():
                    return
                if action == "identify-later":
                    low, high = self.invalid_session_delay
                    if self._stop.wait(random.uniform(low, high)):
                        return
                    action = "identify"
                elif not reached_ready:
                    attempt += 1
                    if self._stop.wait(self.backoff.delay(attempt)):
                        return
        finally:
            with self._cond:
                self._ws = None
                self._ready = False
                self._cond.notify_all()

    def _open(self, url: str) -> websocket.WebSocket:
        ws = websocket.create_connection(
            _gateway_url(url, self.compress),
            timeout=self.connect_timeout,
            enable_multithread=True,
            suppress_origin=True,
        )
        if self._stop.is_set():
            _close_quietly(ws)
            raise _Lost("stop", "closed while connecting")
        return ws

    def _serve(self, ws: websocket.WebSocket, resume: bool) -> bool:
        """Run one connection until it ends (raises :class:`_Lost`); True if it got ready."""
        inflator = zlib.decompressobj() if self.compress else None
        buffer = bytearray()
        state = {"ready": False}

        def lost(action: str, why: str, code: Optional[int] = None, reason: str = "") -> _Lost:
            exc = _Lost(action, why, code, reason)
            exc.ready = state["ready"]
            return exc

        hello = self._read(ws, inflator, buffer, time.monotonic() + self.connect_timeout, lost)
        if hello is None:
            raise lost("resume", "no HELLO in time")
        if hello.get("op") == 7:
            raise lost("resume", "RECONNECT instead of HELLO")
        if hello.get("op") != 10 or not isinstance(hello.get("d"), Mapping):
            raise lost("resume", f"expected HELLO, got op {hello.get('op')!r}")
        interval = hello["d"].get("heartbeat_interval")
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
            interval = 41_250
        interval_s = float(interval) / 1000.0
        with self._cond:
            self._ws = ws
            session_id, seq = self._session_id, self._seq
        if resume and session_id is not None:
            self._send_own(
                ws, {"op": 6, "d": {"token": self.token, "session_id": session_id, "seq": seq}}
            )
        else:
            self._send_own(
                ws,
                {
                    "op": 2,
                    "d": {
                        "token": self.token,
                        "intents": self.intents,
                        "properties": self.properties,
                        "shard": [self.shard_id, self.shard_count],
                    },
                },
            )
        next_beat = time.monotonic() + interval_s * random.random()
        acked = True
        sent_at = 0.0
        while True:
            if self._stop.is_set():
                self._close_handshake(ws)
                raise lost("stop", "closed")
            msg = self._read(ws, inflator, buffer, next_beat, lost)
            if msg is None:  # the heartbeat is due
                if self._stop.is_set():
                    continue
                if not acked:
                    try:
                        ws.send_close(4000, b"zombie")
                    except Exception:
                        pass
                    raise lost("resume", "no heartbeat ACK: zombie connection")
                with self._cond:
                    seq = self._seq
                self._send_own(ws, {"op": 1, "d": seq})
                acked, sent_at = False, time.monotonic()
                next_beat = sent_at + interval_s
                continue
            op = msg.get("op")
            if op == 0:
                self._on_dispatch(msg, state)
            elif op == 1:
                with self._cond:
                    seq = self._seq
                self._send_own(ws, {"op": 1, "d": seq})
            elif op == 11:
                acked = True
                with self._cond:
                    self._latency = time.monotonic() - sent_at if sent_at else None
            elif op == 7:
                try:
                    ws.send_close(4000, b"reconnect")
                except Exception:
                    pass
                raise lost("resume", "RECONNECT requested")
            elif op == 9:
                if msg.get("d") is True:
                    raise lost("resume", "INVALID_SESSION (resumable)")
                try:
                    ws.send_close(1000)  # the session is gone anyway
                except Exception:
                    pass
                raise lost("identify-later", "INVALID_SESSION")

    def _close_handshake(self, ws: websocket.WebSocket, timeout: float = 1.0) -> None:
        """Send close 1000 and wait (briefly) for the server's close frame, so the socket is
        not reset under the server before it read ours."""
        try:
            ws.send_close(1000)
        except Exception:
            return
        deadline = time.monotonic() + timeout
        sock = ws.sock
        while sock is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                ready, _, _ = select.select([sock], [], [], remaining)
                if not ready:
                    return
                frame = ws.recv_frame()  # type: ignore[no-untyped-call]
            except Exception:
                return
            if frame is None or frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                return

    def _on_dispatch(self, msg: dict[str, Any], state: dict[str, bool]) -> None:
        kind = msg.get("t")
        s = msg.get("s")
        data = msg.get("d")
        with self._cond:
            if isinstance(s, int) and not isinstance(s, bool):
                self._seq = s
            if kind == "READY" and isinstance(data, Mapping):
                sid = data.get("session_id")
                self._session_id = sid if isinstance(sid, str) else None
                rurl = data.get("resume_gateway_url")
                self._resume_url = rurl if isinstance(rurl, str) and rurl else None
                user = data.get("user")
                if isinstance(user, Mapping):
                    try:
                        self._user_id = int(user.get("id"))  # type: ignore[arg-type]
                    except (TypeError, ValueError):
                        pass
            if kind in ("READY", "RESUMED"):
                self._ready = True
                state["ready"] = True
                self._cond.notify_all()
        if kind == "READY":
            self._check_user()
        handle, callback = self._client_handle, self.on_dispatch
        if handle is not None:
            try:
                handle(msg)
            except Exception:
                log.exception("shard %s: client.handle_gateway raised on %s", self.shard_id, kind)
        if callback is not None:
            try:
                callback(msg, self.shard_id)
            except Exception:
                log.exception("shard %s: on_dispatch raised on %s", self.shard_id, kind)

    def _check_user(self) -> None:
        client, uid = self._client, self.user_id
        if client is not None and uid is not None and uid != client.user_id:
            log.warning(
                "shard %s: the token's bot user is %s but the lavasync Client has user_id %s",
                self.shard_id,
                uid,
                client.user_id,
            )

    def _report_lost(self) -> None:
        client = self._client
        if client is None:
            return
        try:
            client.shard_lost(self.shard_id)
        except ClientClosedError:
            pass
        except Exception:
            log.exception("shard %s: client.shard_lost raised", self.shard_id)

    def _send_own(self, ws: websocket.WebSocket, payload: dict[str, Any]) -> None:
        self._rate.note()
        try:
            ws.send(json.dumps(payload, separators=(",", ":")))
        except (OSError, websocket.WebSocketException) as exc:
            raise _Lost("resume", f"send failed: {exc}") from exc

    def _read(
        self,
        ws: websocket.WebSocket,
        inflator: Any,
        buffer: bytearray,
        until: float,
        lost: Callable[..., _Lost],
    ) -> Optional[dict[str, Any]]:
        """The next payload, or None once ``until`` passes (or the shard is closing)."""
        while True:
            sock = ws.sock
            if sock is None:
                raise lost("resume", "socket closed")
            pending = getattr(sock, "pending", None)
            if not (pending is not None and pending()):
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    ready, _, _ = select.select([sock, self._wake_r], [], [], remaining)
                except (OSError, ValueError) as exc:
                    raise lost("resume", f"select failed: {exc}") from exc
                if self._wake_r in ready:
                    return None
                if not ready:
                    return None
            try:
                frame = ws.recv_frame()  # type: ignore[no-untyped-call]
            except (OSError, websocket.WebSocketException) as exc:
                raise lost("resume", f"connection lost ({type(exc).__name__}: {exc})") from exc
            if frame is None:
                raise lost("resume", "connection lost")
            opcode = frame.opcode
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raw = bytes(frame.data or b"")
                code = struct.unpack("!H", raw[:2])[0] if len(raw) >= 2 else None
                reason = raw[2:].decode("utf-8", "replace")
                try:
                    ws.send_close(code or 1000)
                except Exception:
                    pass
                if code in FATAL_CLOSE_CODES:
                    raise lost("fatal", f"closed with {code}", code, reason)
                if code in _NEW_SESSION_CODES:
                    raise lost("identify", f"closed with {code} ({reason})", code, reason)
                raise lost("resume", f"closed with {code} ({reason})", code, reason)
            if opcode == websocket.ABNF.OPCODE_PING:
                try:
                    ws.pong(frame.data)
                except Exception:
                    pass
                continue
            if opcode == websocket.ABNF.OPCODE_PONG:
                continue
            data = frame.data if isinstance(frame.data, bytes) else str(frame.data).encode()
            buffer += data
            if not frame.fin:
                continue
            raw_msg = bytes(buffer)
            if inflator is not None:
                if not raw_msg.endswith(_ZLIB_SUFFIX):
                    continue
                try:
                    raw_msg = inflator.decompress(raw_msg)
                except zlib.error as exc:
                    raise lost("resume", f"bad zlib stream: {exc}") from exc
            buffer.clear()
            try:
                msg = json.loads(raw_msg.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                log.warning("shard %s: ignoring an undecodable payload", self.shard_id)
                continue
            if isinstance(msg, dict):
                return msg


def _close_quietly(ws: websocket.WebSocket) -> None:
    try:
        ws.shutdown()  # type: ignore[no-untyped-call]
    except Exception:
        pass


def _socketpair() -> tuple[Any, Any]:
    import socket

    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    return r, w


def _handle_gateway_for(client: Client, shard_id: int) -> Callable[[dict[str, Any]], Any]:
    """``client.handle_gateway`` with this shard's id."""
    return functools.partial(client.handle_gateway, shard_id=shard_id)


class _Router:
    """A client's ``send_gateway``: OP 4 to the shard that owns the guild."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shards: list[GatewayShard] = []

    def add(self, shard: GatewayShard) -> None:
        with self._lock:
            self._shards.append(shard)

    def remove(self, shard: GatewayShard) -> None:
        with self._lock:
            if shard in self._shards:
                self._shards.remove(shard)

    def __call__(self, guild_id: int, payload: dict[str, Any]) -> None:
        with self._lock:
            shards = list(self._shards)
        for shard in shards:
            if shard.owns(guild_id):
                shard.send(payload)
                return
        raise GatewayError(f"no gateway shard of this process owns guild {guild_id}")


_ROUTERS: weakref.WeakKeyDictionary[Any, _Router] = weakref.WeakKeyDictionary()
_ROUTERS_LOCK = threading.Lock()


def _router_for(client: Client) -> _Router:
    with _ROUTERS_LOCK:
        found = _ROUTERS.get(client)
        if found is None:
            if client.send_gateway is not None:
                raise ValueError(
                    "this Client already has a send_gateway hook; the gateway shard routes OP 4 "
                    "itself: create the Client without send_gateway"
                )
            router = _Router()
            _ROUTERS[client] = router
            client.send_gateway = router
            return router
        hooked = client.send_gateway is found
        if not hooked:
            raise ValueError("this Client's send_gateway hook was replaced after wiring shards")
        return found


class ShardGroup:
    """Every shard :func:`connect` started. Thread-safe; ``close()`` joins them all."""

    def __init__(self, shards: Sequence[GatewayShard]) -> None:
        self.shards = list(shards)

    def shard_for(self, guild_id: int) -> GatewayShard:
        for shard in self.shards:
            if shard.owns(guild_id):
                return shard
        raise KeyError(f"no shard of this group owns guild {guild_id}")

    def wait_ready(self, timeout: Optional[float] = 60.0) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for shard in self.shards:
            shard.wait_ready(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 5.0) -> bool:
        for shard in self.shards:
            shard._stop.set()
        deadline = time.monotonic() + timeout
        ok = True
        for shard in self.shards:
            ok = shard.close(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def __enter__(self) -> ShardGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    client: Client,
    token: str,
    *,
    shards: Union[int, Iterable[int]] = 1,
    shard_count: Optional[int] = None,
    url: str = DEFAULT_URL,
    max_concurrency: int = 1,
    identify_interval: float = 5.0,
    **options: Any,
) -> ShardGroup:
    """Start shards for ``client``: ``shards=N`` runs all N; ``shards=[0, 2], shard_count=4``
    runs some of them. IDENTIFYs are paced (``max_concurrency`` per ``identify_interval``).
    ``options`` go to :class:`GatewayShard` (``intents``, ``on_dispatch``, ``compress``...)."""
    if isinstance(shards, bool):
        raise ValueError("shards must be a count or shard ids")
    if isinstance(shards, int):
        if shards < 1:
            raise ValueError("shards must be >= 1")
        ids = list(range(shards))
        count = shard_count if shard_count is not None else shards
    else:
        ids = [int(s) for s in shards]
        if shard_count is None:
            raise ValueError("shard_count is needed when shards lists shard ids")
        count = shard_count
    if not ids or len(set(ids)) != len(ids) or not all(0 <= s < count for s in ids):
        raise ValueError(f"shard ids must be distinct and in range(0, {count})")
    limiter = options.pop("identify_limiter", None) or IdentifyLimiter(
        max_concurrency, identify_interval
    )
    started: list[GatewayShard] = []
    try:
        for sid in ids:
            started.append(
                GatewayShard(
                    token,
                    client=client,
                    shard=(sid, count),
                    url=url,
                    identify_limiter=limiter,
                    **options,
                )
            )
    except BaseException:
        ShardGroup(started).close()
        raise
    return ShardGroup(started)
