"""Fault controls of the FakeNode: break things on purpose, from any thread.

Crash and revive, drop or freeze sockets, stall every answer, fail, stall or reset chosen REST
answers, rate limits, voice delays and failures, player events (stuck, exception, finished,
voice closed) and raw frames. :mod:`lavasync.testing` lists them by purpose.
"""

from __future__ import annotations

import copy
import math
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Optional

from . import _wire
from ._core import (
    OPEN,
    _NodeCore,
    _now_ms,
    _Response,
)
from ._sessions import FakeSession, _Player, _Track


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


class _Faults(_NodeCore):
    """The fault controls: public, stable API for breaking things on purpose. Every method may
    be called from any thread while clients are connected."""

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

    def _playing(self, guild_id: int, session_id: Optional[str]) -> tuple[_Player, _Track]:
        """The guild's player and its current track (caller holds the lock); ValueError if it
        plays nothing."""
        player = self._find_player(guild_id, session_id)
        if player.track is None:
            raise ValueError(f"guild {guild_id} has no track")
        return player, player.track

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
            player, _ = self._playing(guild_id, session_id)
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
            player, track = self._playing(guild_id, session_id)
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
            player, track = self._playing(guild_id, session_id)
            threshold = self.stuck_threshold_ms if threshold_ms is None else threshold_ms
            self._event(
                player,
                "TrackStuckEvent",
                track=track.json(player.position()),
                thresholdMs=threshold,
            )
            self._player_update(player)
