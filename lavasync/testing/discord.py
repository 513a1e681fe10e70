"""FakeDiscordGateway: a loopback Discord gateway (v10, JSON) over a real WebSocket.

Written from Discord's gateway documentation: HELLO with ``heartbeat_interval``; IDENTIFY →
READY (``session_id``, ``resume_gateway_url``, ``shard``) then one GUILD_CREATE per guild of
the shard; heartbeats answered with ACKs; RESUME on the resume URL → the missed dispatches in
order, then RESUMED; INVALID_SESSION (``d``: resumable) when a resume cannot be honoured; OP 4
→ the bot's VOICE_STATE_UPDATE (+ VOICE_SERVER_UPDATE with an invented endpoint and token when
it joins a channel). Close codes as Discord sends them: 4001 unknown opcode, 4002 decode error
(or a frame over 4096 bytes), 4003 not authenticated, 4004 bad token, 4005 identified twice,
4008 over 120 payloads in 60 s on one connection (every payload the bot sends counts,
heartbeats, IDENTIFY and RESUME included: whether Discord counts heartbeats is unconfirmed, so
the fake takes the strict reading), 4010 invalid shard, 4013 invalid intents.

Given a :class:`~lavasync.testing.FakeNode`, the voice side follows Discord's: a kick or a
shard's lost connection closes the guild's Lavalink voice socket with 4014, a deleted channel
with 4022, as the voice server would.

Controls (any thread): :meth:`drop` (no close frame), :meth:`close_shard` (a close code),
:meth:`refuse_next_resume`, :meth:`invalidate_session`, :meth:`request_reconnect`,
:meth:`stop_acking`, :meth:`delete_channel`, :meth:`kick`, :meth:`move`, :meth:`dispatch`.
Records: :meth:`received` (every payload a shard sent), :attr:`identifies`, :attr:`resumes`.
The one REST route, ``GET /api/v10/gateway/bot`` (:attr:`rest_url`), tells a library where
the gateway is.

``?compress=zlib-stream`` is supported (one zlib context per connection, binary frames).

Thread-safe: every public method may be called from any thread. Threads are named
``fakenode-discord-*`` and joined by :meth:`close`.
"""

from __future__ import annotations

import copy
import json
import secrets
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qs

from . import _wire

if TYPE_CHECKING:
    from .node import FakeNode

__all__ = ["FakeDiscordGateway"]

GUILDS = 1 << 0
GUILD_VOICE_STATES = 1 << 7
_MAX_FRAME = 4096
_SEND_TIMEOUT = 5.0


class _Session:
    __slots__ = ("backlog", "conn", "intents", "seq", "session_id", "shard")

    def __init__(self, session_id: str, shard: tuple[int, int], intents: int) -> None:
        self.session_id = session_id
        self.shard = shard
        self.intents = intents
        self.seq = 0
        self.backlog: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.conn: Optional[_Conn] = None


class _Conn:
    __slots__ = ("compress", "deflater", "lost", "path", "sent_times", "session", "sock")

    def __init__(self, sock: socket.socket, path: str, compress: bool) -> None:
        self.sock = sock
        self.path = path
        self.compress = compress
        self.deflater = zlib.compressobj() if compress else None
        self.session: Optional[_Session] = None
        self.lost = False
        self.sent_times: deque[float] = deque()


class _Voice:
    __slots__ = ("channel_id", "endpoint", "self_deaf", "self_mute", "session_id", "token")

    def __init__(self) -> None:
        self.channel_id: Optional[str] = None
        self.self_deaf = False
        self.self_mute = False
        self.session_id = secrets.token_hex(16)
        self.token = ""
        self.endpoint = ""


class FakeDiscordGateway:
    """A Discord gateway on 127.0.0.1 for one bot user.

    ``guilds`` maps guild ids to their voice channel ids (a guild is on shard
    ``(guild_id >> 22) % shard_count``); ``heartbeat_interval`` is in ms as in HELLO;
    ``shard_count`` None accepts whatever count IDENTIFY names (the first one wins).
    """

    def __init__(
        self,
        user_id: int,
        *,
        token: str = "fake-bot-token",
        guilds: Optional[Mapping[int, Iterable[int]]] = None,
        heartbeat_interval: int = 41_250,
        shard_count: Optional[int] = None,
        endpoint: str = "rotterdam1234.discord.media:443",
        node: Optional[FakeNode] = None,
        voice_dies_with_shard: bool = True,
        rate_limit: tuple[int, float] = (120, 60.0),
    ) -> None:
        self.user_id = int(user_id)
        self.token = token
        self.heartbeat_interval = int(heartbeat_interval)
        self.shard_count = shard_count
        self.endpoint = endpoint
        self.node = node
        self.voice_dies_with_shard = voice_dies_with_shard
        self.rate_limit = rate_limit
        self.host = "127.0.0.1"
        self.port = 0
        self._guilds: dict[int, list[int]] = {
            int(g): [int(c) for c in chans] for g, chans in (guilds or {}).items()
        }
        self._lock = threading.Condition(threading.RLock())
        self._sessions: dict[str, _Session] = {}
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._received: dict[int, list[dict[str, Any]]] = {}
        self._voice: dict[int, _Voice] = {}
        self._refuse_resume: set[Optional[int]] = set()
        self._no_ack: set[int] = set()
        self._close_codes: list[int] = []
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self._listener: Optional[socket.socket] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The gateway URL a bot connects to (what ``GET /gateway/bot`` would answer)."""
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_url(self) -> str:
        """READY's ``resume_gateway_url`` (another path, so a test can tell them apart)."""
        return f"ws://{self.host}:{self.port}/resume"

    @property
    def rest_url(self) -> str:
        """A REST base URL whose ``GET /gateway/bot`` answers with :attr:`url` (the only REST
        route served: enough for a library to find the gateway, e.g. hikari's ``rest_url``)."""
        return f"http://{self.host}:{self.port}/api/v10"

    def start(self) -> FakeDiscordGateway:
        """Bind and serve; returns self. Starting twice is a no-op."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this FakeDiscordGateway was closed")
            if self._listener is not None:
                return self
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            self._wake_r, self._wake_w = socket.socketpair()
            self._listener = sock
            thread = threading.Thread(
                target=self._accept_loop,
                args=(sock, self._wake_r),
                name=f"fakenode-discord-accept-{self.port}",
                daemon=True,
            )
            self._accept_thread = thread
        thread.start()
        return self

    def __enter__(self) -> FakeDiscordGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving: every connection gets close 1001; joins every thread. Idempotent."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = [s.conn for s in self._sessions.values() if s.conn is not None]
            for conn in conns:
                self._write_frame(conn, _wire.OP_CLOSE, _wire.close_payload(1001, "going away"))
            socks = list(self._conns)
            thread, self._accept_thread = self._accept_thread, None
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        while True:
            with self._lock:
                threads = [t for t in self._conns.values() if t is not threading.current_thread()]
            if not threads or time.monotonic() >= deadline:
                break
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
        for s in (self._listener, self._wake_r, self._wake_w):
            if s is not None:
                s.close()

    # ------------------------------------------------------------------ records

    def received(self, shard_id: int = 0) -> list[dict[str, Any]]:
        """Every payload that shard sent (any connection), parsed, in order; a copy."""
        with self._lock:
            return copy.deepcopy(self._received.get(shard_id, []))

    def received_ops(self, shard_id: int, op: int) -> list[dict[str, Any]]:
        """The payloads with opcode ``op`` that shard sent."""
        return [p for p in self.received(shard_id) if p.get("op") == op]

    @property
    def close_codes(self) -> list[int]:
        """Close codes the bot sent (1006: it left without a close frame)."""
        with self._lock:
            return list(self._close_codes)

    def connected(self, shard_id: int) -> bool:
        """That shard has a live, identified (or resumed) connection."""
        with self._lock:
            return self._live(shard_id) is not None

    def session_id(self, shard_id: int) -> Optional[str]:
        """The shard's current session id (None before IDENTIFY or once invalidated)."""
        with self._lock:
            for s in self._sessions.values():
                if s.shard[0] == shard_id:
                    return s.session_id
            return None

    def wait(self, predicate: Any, timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true (re-checked whenever the gateway changes)."""
        with self._lock:
            if not self._lock.wait_for(predicate, timeout):
                raise TimeoutError("FakeDiscordGateway: condition not met in time")

    def voice_state(self, guild_id: int) -> Optional[dict[str, Any]]:
        """What Discord holds for the bot in a guild: channel_id, session_id, token, endpoint."""
        with self._lock:
            v = self._voice.get(int(guild_id))
            if v is None:
                return None
            return {
                "channel_id": v.channel_id,
                "session_id": v.session_id,
                "token": v.token,
                "endpoint": v.endpoint,
            }

    def shard_of(self, guild_id: int) -> int:
        count = self.shard_count or 1
        return (int(guild_id) >> 22) % count

    # ------------------------------------------------------------------ controls

    def drop(self, shard_id: int, *, missed: Sequence[tuple[str, Any]] = ()) -> None:
        """Cut the shard's socket without a close frame; its session stays resumable.

        ``missed`` (event name, data) dispatches happen while the shard is away, before it can
        reconnect: a RESUME must replay them, in order, before RESUMED.
        """
        with self._lock:
            conn = self._live(shard_id)
            lost = self._voice_guilds(shard_id) if conn is not None else []
            if conn is not None:
                self._lose(conn)
            session = self._session_of(shard_id)
            if session is not None:
                for event, data in missed:
                    self._dispatch(session, event, data)
        self._voice_closed(lost, 4014, "Disconnected.")

    def close_shard(self, shard_id: int, code: int, reason: str = "") -> None:
        """Close the shard's socket with ``code``; 4007/4009 (and 4003) also end the session."""
        with self._lock:
            conn = self._live(shard_id)
            lost = self._voice_guilds(shard_id) if conn is not None else []
            if conn is not None:
                self._close(conn, code, reason)
            if code in (4003, 4007, 4009):
                self._forget(shard_id)
        self._voice_closed(lost, 4014, "Disconnected.")

    def refuse_next_resume(self, shard_id: Optional[int] = None) -> None:
        """The next RESUME (of that shard, or any) gets INVALID_SESSION ``false``."""
        with self._lock:
            self._refuse_resume.add(shard_id)

    def invalidate_session(self, shard_id: int, resumable: bool = False) -> None:
        """Send INVALID_SESSION now; ``resumable=False`` also forgets the session."""
        with self._lock:
            conn = self._live(shard_id)
            if conn is None:
                return
            self._send(conn, {"op": 9, "d": bool(resumable)})
            if not resumable:
                self._forget(shard_id)

    def request_reconnect(self, shard_id: int) -> None:
        """Send RECONNECT (op 7): the bot should resume on a new connection."""
        with self._lock:
            conn = self._live(shard_id)
            if conn is not None:
                self._send(conn, {"op": 7, "d": None})

    def stop_acking(self, shard_id: int, stop: bool = True) -> None:
        """Stop (or restart) answering the shard's heartbeats: a zombie connection."""
        with self._lock:
            if stop:
                self._no_ack.add(shard_id)
            else:
                self._no_ack.discard(shard_id)

    def dispatch(self, shard_id: int, event: str, data: Any) -> None:
        """Send a dispatch to the shard's session (kept for replay while it is disconnected)."""
        with self._lock:
            session = self._session_of(shard_id)
            if session is not None:
                self._dispatch(session, event, data)

    def kick(self, guild_id: int) -> None:
        """A member disconnected the bot: VOICE_STATE_UPDATE with ``channel_id: null``;
        the Lavalink voice socket closes with 4014."""
        gid = int(guild_id)
        with self._lock:
            v = self._voice_of(gid)
            v.channel_id = None
            self._guild_dispatch(gid, "VOICE_STATE_UPDATE", self._state_payload(gid, v))
        self._voice_closed([gid], 4014, "Disconnected.")

    def move(self, guild_id: int, channel_id: int, *, server_update: bool = True) -> None:
        """A member moved the bot: VOICE_STATE_UPDATE with the new channel (and a
        VOICE_SERVER_UPDATE with a new token, as after a join)."""
        gid = int(guild_id)
        with self._lock:
            v = self._voice_of(gid)
            v.channel_id = str(int(channel_id))
            self._guild_dispatch(gid, "VOICE_STATE_UPDATE", self._state_payload(gid, v))
            if server_update:
                v.token = secrets.token_hex(8)
                v.endpoint = self.endpoint
                self._guild_dispatch(gid, "VOICE_SERVER_UPDATE", self._server_payload(gid, v))

    def delete_channel(self, guild_id: int, channel_id: int) -> None:
        """CHANNEL_DELETE; if the bot was in that channel, its voice socket closes with 4022
        first (with a ``node``: Lavalink's WebSocketClosedEvent precedes the dispatch)."""
        gid, cid = int(guild_id), int(channel_id)
        with self._lock:
            chans = self._guilds.get(gid, [])
            if cid in chans:
                chans.remove(cid)
            v = self._voice.get(gid)
            was_in = v is not None and v.channel_id == str(cid)
            if was_in and v is not None:
                v.channel_id = None
        # The voice server ends the call before the dispatch goes out: a bot that destroys its
        # player on CHANNEL_DELETE must not beat the 4022 to the node (Discord's order between
        # the two is unspecified; this one is deterministic).
        if was_in:
            self._voice_closed([gid], 4022, "Call terminated.")
        with self._lock:
            payload = {"id": str(cid), "guild_id": str(gid), "type": 2, "name": f"voice-{cid}"}
            self._guild_dispatch(gid, "CHANNEL_DELETE", payload)

    # ------------------------------------------------------------------ internals: state

    def _live(self, shard_id: int) -> Optional[_Conn]:
        for s in self._sessions.values():
            if s.shard[0] == shard_id and s.conn is not None and not s.conn.lost:
                return s.conn
        return None

    def _session_of(self, shard_id: int) -> Optional[_Session]:
        for s in self._sessions.values():
            if s.shard[0] == shard_id:
                return s
        return None

    def _forget(self, shard_id: int) -> None:
        for sid, s in list(self._sessions.items()):
            if s.shard[0] == shard_id:
                del self._sessions[sid]
        self._lock.notify_all()

    def _voice_of(self, guild_id: int) -> _Voice:
        v = self._voice.get(guild_id)
        if v is None:
            v = self._voice[guild_id] = _Voice()
        return v

    def _voice_guilds(self, shard_id: int) -> list[int]:
        if not self.voice_dies_with_shard:
            return []
        return [
            g
            for g, v in self._voice.items()
            if v.channel_id is not None and self.shard_of(g) == shard_id
        ]

    def _voice_closed(self, guild_ids: list[int], code: int, reason: str) -> None:
        """Outside the lock: the guilds' Lavalink voice sockets close (a FakeNode's side)."""
        node = self.node
        if node is None:
            return
        for gid in guild_ids:
            for sid in node.session_ids():
                if node.player(sid, gid) is not None:
                    try:
                        node.close_voice(gid, code, reason, session_id=sid)
                    except KeyError:
                        pass

    def _state_payload(self, guild_id: int, v: _Voice) -> dict[str, Any]:
        return {
            "guild_id": str(guild_id),
            "channel_id": v.channel_id,
            "user_id": str(self.user_id),
            "member": {
                "user": self._user(),
                "roles": [],
                "joined_at": "2026-01-01T00:00:00.000000+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
            "session_id": v.session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": v.self_deaf,
            "self_mute": v.self_mute,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }

    def _user(self) -> dict[str, Any]:
        return {
            "id": str(self.user_id),
            "username": "lavasync-bot",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "mfa_enabled": False,
            "verified": True,
            "flags": 0,
            "public_flags": 0,
            "locale": "en-US",
        }

    def _server_payload(self, guild_id: int, v: _Voice) -> dict[str, Any]:
        return {"token": v.token, "guild_id": str(guild_id), "endpoint": v.endpoint}

    def _guild_dispatch(self, guild_id: int, event: str, data: Any) -> None:
        session = self._session_of(self.shard_of(guild_id))
        if session is not None:
            self._dispatch(session, event, data)

    def _dispatch(self, session: _Session, event: str, data: Any) -> None:
        session.seq += 1
        msg = {"op": 0, "s": session.seq, "t": event, "d": copy.deepcopy(data)}
        session.backlog.append(msg)
        if session.conn is not None and not session.conn.lost:
            self._send(session.conn, msg)
        self._lock.notify_all()

    # ------------------------------------------------------------------ internals: wire

    def _send(self, conn: _Conn, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        if conn.deflater is not None:
            data = conn.deflater.compress(data) + conn.deflater.flush(zlib.Z_SYNC_FLUSH)
            self._write_frame(conn, _wire.OP_BINARY, data)
        else:
            self._write_frame(conn, _wire.OP_TEXT, data)

    def _write_frame(self, conn: _Conn, opcode: int, payload: bytes) -> None:
        if conn.lost:
            return
        try:
            conn.sock.sendall(_wire.encode_frame(opcode, payload))
        except OSError:
            self._lose(conn)

    def _lose(self, conn: _Conn) -> None:
        """Cut a connection (no close frame); its session survives for a resume."""
        if conn.lost:
            return
        conn.lost = True
        if conn.session is not None and conn.session.conn is conn:
            conn.session.conn = None
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lock.notify_all()

    def _close(self, conn: _Conn, code: int, reason: str) -> None:
        self._write_frame(conn, _wire.OP_CLOSE, _wire.close_payload(code, reason))
        self._lose(conn)

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        count = 0
        for sock in _wire.accepted(listener, wake):
            with self._lock:
                if self._closed:
                    sock.close()
                    return
                count += 1
                sock.settimeout(_SEND_TIMEOUT)
                thread = threading.Thread(
                    target=self._serve,
                    args=(sock,),
                    name=f"fakenode-discord-{self.port}-{count}",
                    daemon=True,
                )
                self._conns[sock] = thread
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        reader = _wire.make_reader(sock)
        conn: Optional[_Conn] = None
        try:
            try:
                req = _wire.read_request(reader)
            except (_wire.ProtocolError, OSError, ConnectionError):
                return
            if req is None:
                return
            if req.method == "GET" and req.path.endswith("/gateway/bot"):
                self._answer_gateway_bot(sock, req.headers.get("Authorization", ""))
                return
            key = req.headers.get("Sec-WebSocket-Key", "")
            query = parse_qs(req.query_string)
            if (
                req.method != "GET"
                or req.headers.get("Upgrade", "").lower() != "websocket"
                or not _wire.valid_ws_key(key)
                or req.path not in ("/", "/resume")
            ):
                sock.sendall(_wire.build_response(404, b"", api=[], keep_alive=False))
                return
            sock.sendall(
                _wire.build_response(
                    101,
                    headers=[
                        ("Upgrade", "websocket"),
                        ("Connection", "Upgrade"),
                        ("Sec-WebSocket-Accept", _wire.ws_accept(key)),
                    ],
                    api=[],
                )
            )
            compress = query.get("compress", [""])[0] == "zlib-stream"
            conn = _Conn(sock, req.path, compress)
            with self._lock:
                if self._closed:
                    return
                if (
                    query.get("v", ["10"])[0] != "10"
                    or query.get("encoding", ["json"])[0] != "json"
                ):
                    self._close(conn, 4012, "Invalid API version")
                    return
                self._send(conn, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval}})
            self._read_loop(conn, reader)
        except OSError:
            pass
        finally:
            with self._lock:
                if conn is not None:
                    self._lose(conn)
                self._conns.pop(sock, None)
                self._lock.notify_all()
            try:
                sock.close()
            except OSError:
                pass

    def _answer_gateway_bot(self, sock: socket.socket, auth: str) -> None:
        """``GET /gateway/bot``: where to connect, how many shards, the IDENTIFY budget."""
        if auth != f"Bot {self.token}":
            body = json.dumps({"message": "401: Unauthorized", "code": 0}).encode()
            status = 401
        else:
            body = json.dumps(
                {
                    "url": self.url.rstrip("/"),
                    "shards": self.shard_count or 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 1000 - self.identifies,
                        "reset_after": 86_400_000,
                        "max_concurrency": 1,
                    },
                }
            ).encode()
            status = 200
        sock.sendall(
            _wire.build_response(
                status, body, content_type="application/json", keep_alive=False, api=[]
            )
        )

    def _read_loop(self, conn: _Conn, reader: Any) -> None:
        parts: list[bytes] = []
        try:
            while True:
                frame = _wire.read_frame(reader)
                op = frame.opcode
                if op == _wire.OP_CLOSE:
                    code = frame.payload[:2]
                    with self._lock:
                        self._close_codes.append(
                            int.from_bytes(code, "big") if len(code) == 2 else 1005
                        )
                        # 1000/1001 from the bot end its session
                        if code in (b"\x03\xe8", b"\x03\xe9") and conn.session is not None:
                            self._sessions.pop(conn.session.session_id, None)
                        self._write_frame(conn, _wire.OP_CLOSE, code)
                        self._lose(conn)
                    return
                if op == _wire.OP_PING:
                    with self._lock:
                        self._write_frame(conn, _wire.OP_PONG, frame.payload)
                    continue
                if op == _wire.OP_PONG:
                    continue
                parts.append(frame.payload)
                if not frame.fin:
                    continue
                data, parts = b"".join(parts), []
                with self._lock:
                    if conn.lost:
                        return
                    self._on_message(conn, data)
                    if conn.lost:
                        return
        except (OSError, ConnectionError, _wire.ProtocolError):
            with self._lock:
                if not conn.lost and not self._closed:
                    self._close_codes.append(1006)

    def _on_message(self, conn: _Conn, data: bytes) -> None:
        """One payload from the bot (lock held)."""
        if len(data) > _MAX_FRAME:
            self._close(conn, 4002, "Payload too large")
            return
        try:
            payload = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._close(conn, 4002, "Error while decoding payload.")
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("op"), int):
            self._close(conn, 4002, "Error while decoding payload.")
            return
        op, d = payload["op"], payload.get("d")
        shard = conn.session.shard[0] if conn.session is not None else None
        if shard is None and op == 2 and isinstance(d, dict):
            sh = d.get("shard")
            shard = sh[0] if isinstance(sh, list) and sh and isinstance(sh[0], int) else 0
        if shard is None and op == 6 and isinstance(d, dict):
            old = self._sessions.get(str(d.get("session_id")))
            shard = old.shard[0] if old is not None else -1
        self._received.setdefault(-1 if shard is None else shard, []).append(payload)
        self._lock.notify_all()
        if not self._rate_ok(conn):  # every payload counts: heartbeats, IDENTIFY, RESUME too
            self._close(conn, 4008, "Rate limited.")
            return
        if op == 1:
            self.heartbeats += 1
            if shard is None or shard not in self._no_ack:
                self._send(conn, {"op": 11})
        elif op == 2:
            self._identify(conn, d)
        elif op == 6:
            self._resume(conn, d)
        elif op in (3, 4, 8, 31):
            if conn.session is None:
                self._close(conn, 4003, "Not authenticated.")
            elif op == 4:
                self._voice_update(conn.session, d)
        else:
            self._close(conn, 4001, "Unknown opcode.")

    def _rate_ok(self, conn: _Conn) -> bool:
        limit, window = self.rate_limit
        now = time.monotonic()
        while conn.sent_times and now - conn.sent_times[0] >= window:
            conn.sent_times.popleft()
        conn.sent_times.append(now)
        return len(conn.sent_times) <= limit

    def _identify(self, conn: _Conn, d: Any) -> None:
        if conn.session is not None:
            self._close(conn, 4005, "Already authenticated.")
            return
        if not isinstance(d, dict) or d.get("token") != self.token:
            self._close(conn, 4004, "Authentication failed.")
            return
        intents = d.get("intents")
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0:
            self._close(conn, 4013, "Invalid intent(s).")
            return
        raw_shard = d.get("shard", [0, 1])
        if (
            not isinstance(raw_shard, list)
            or len(raw_shard) != 2
            or not all(isinstance(x, int) for x in raw_shard)
            or not 0 <= raw_shard[0] < raw_shard[1]
            or (self.shard_count is not None and raw_shard[1] != self.shard_count)
        ):
            self._close(conn, 4010, "Invalid shard.")
            return
        if self.shard_count is None:
            self.shard_count = raw_shard[1]
        shard = (raw_shard[0], raw_shard[1])
        self._forget(shard[0])  # a fresh IDENTIFY replaces the shard's old session
        self.identifies += 1
        session = _Session(secrets.token_hex(16), shard, intents)
        self._sessions[session.session_id] = session
        session.conn, conn.session = conn, session
        mine = sorted(g for g in self._guilds if self.shard_of(g) == shard[0])
        ready = {
            "v": 10,
            "user": self._user(),
            "guilds": [{"id": str(g), "unavailable": True} for g in mine],
            "session_id": session.session_id,
            "resume_gateway_url": self.resume_url,
            "shard": list(shard),
            "application": {"id": str(self.user_id), "flags": 0},
        }
        self._dispatch(session, "READY", ready)
        for g in mine:
            self._dispatch(session, "GUILD_CREATE", self._guild_create(g, intents))

    def _guild_create(self, guild_id: int, intents: int) -> dict[str, Any]:
        states = []
        v = self._voice.get(guild_id)
        if v is not None and v.channel_id is not None and intents & GUILD_VOICE_STATES:
            state = self._state_payload(guild_id, v)
            del state["guild_id"]  # GUILD_CREATE's voice states are partial
            states.append(state)
        return {
            "id": str(guild_id),
            "name": f"guild-{guild_id}",
            "unavailable": False,
            "member_count": 1,
            "owner_id": str(self.user_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_video_channel_users": 25,
            "max_members": 500000,
            "widget_enabled": False,
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "large": False,
            "roles": [
                {
                    "id": str(guild_id),
                    "name": "@everyone",
                    "color": 0,
                    "hoist": False,
                    "icon": None,
                    "unicode_emoji": None,
                    "position": 0,
                    "permissions": "104324673",
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "members": [],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "channels": [
                {
                    "id": str(c),
                    "type": 2,
                    "name": f"voice-{c}",
                    "guild_id": str(guild_id),
                    "position": n,
                    "permission_overwrites": [],
                    "bitrate": 64000,
                    "user_limit": 0,
                    "parent_id": None,
                    "nsfw": False,
                    "rtc_region": None,
                }
                for n, c in enumerate(self._guilds.get(guild_id, []))
            ],
            "voice_states": states,
        }

    def _resume(self, conn: _Conn, d: Any) -> None:
        if conn.session is not None:
            self._close(conn, 4005, "Already authenticated.")
            return
        if not isinstance(d, dict) or d.get("token") != self.token:
            self._close(conn, 4004, "Authentication failed.")
            return
        session = self._sessions.get(str(d.get("session_id")))
        seq = d.get("seq")
        refused = session is not None and (
            session.shard[0] in self._refuse_resume or None in self._refuse_resume
        )
        if session is not None and refused:
            self._refuse_resume.discard(session.shard[0])
            self._refuse_resume.discard(None)
            self._forget(session.shard[0])
            session = None
        if session is None or not isinstance(seq, int) or seq > session.seq:
            self._send(conn, {"op": 9, "d": False})
            return
        if session.backlog and seq < session.backlog[0]["s"] - 1:
            self._send(conn, {"op": 9, "d": False})  # too late: the missed events are gone
            return
        old = session.conn
        if old is not None:
            self._lose(old)
        self.resumes += 1
        session.conn, conn.session = conn, session
        for msg in list(session.backlog):
            if msg["s"] > seq:
                self._send(conn, msg)
        self._dispatch(session, "RESUMED", {})

    def _voice_update(self, session: _Session, d: Any) -> None:
        if not isinstance(d, dict):
            return
        try:
            gid = int(d["guild_id"])
        except (KeyError, TypeError, ValueError):
            return
        if self.shard_of(gid) != session.shard[0]:
            return  # Discord ignores voice updates sent through the wrong shard
        channel = d.get("channel_id")
        v = self._voice_of(gid)
        if channel is None:
            if v.channel_id is None:
                return
            v.channel_id = None
            self._dispatch(session, "VOICE_STATE_UPDATE", self._state_payload(gid, v))
            return
        # every join (first, again, or another channel) starts a new voice session
        v.channel_id = str(channel)
        v.self_deaf = d.get("self_deaf") is True
        v.self_mute = d.get("self_mute") is True
        v.token = secrets.token_hex(8)
        v.endpoint = self.endpoint
        self._dispatch(session, "VOICE_STATE_UPDATE", self._state_payload(gid, v))
        self._dispatch(session, "VOICE_SERVER_UPDATE", self._server_payload(gid, v))
