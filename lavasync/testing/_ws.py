"""WebSocket server of the FakeNode (RFC 6455 over the HTTP connection's socket).

The handshake checks what Lavalink checks (password, User-Id, upgrade headers, version, key),
opens or resumes a session, and the connection's thread becomes its reader
(``fakenode-ws-<session>``): pings are answered, client text frames recorded and ignored,
close codes recorded.
"""

from __future__ import annotations

import re
import socket
import threading
from typing import Any, Optional

from . import _wire
from ._core import (
    _CLOSE_GRACE,
    OPEN,
    PAUSED,
    RecordedHandshake,
    _NodeCore,
    _parse_long,
    log,
)
from ._sessions import FakeSession


class _WsConn:
    __slots__ = ("closing", "frozen", "held", "lost", "session", "sock")

    def __init__(self, sock: socket.socket, session: FakeSession) -> None:
        self.sock = sock
        self.session = session
        self.closing = False
        self.lost = False
        self.frozen = False  # half-open: nothing goes out, nothing that comes in is noticed
        self.held: list[bytes] = []


class _WebSocketServer(_NodeCore):
    """The WebSocket side: the ``/v4/websocket`` upgrade, the reader loop of each socket,
    frame writes (under ``_lock``, so messages go out in the order they were produced) and
    what happens to a session when its socket goes."""

    @property
    def ws_close_codes(self) -> list[int]:
        """The close code of every client-side WebSocket close, in order: the code of its
        Close frame (1005 without a code), or 1006 for a socket dropped without one."""
        with self._lock:
            return list(self._ws_close_codes)

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
