"""Sessions and players of the FakeNode: the state a Lavalink session keeps and how it changes.

``FakeSession`` (public, read-only view), the player model (position at wall-clock rate, end
target under a timescale, end and cleanup timers) and message delivery: open -> socket,
paused -> queue (playerUpdates dropped), destroyed -> nowhere.
"""

from __future__ import annotations

import copy
import math
import os
import secrets
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Optional, cast

from ..codec import encode_info, with_position
from . import _wire
from ._catalogue import (
    STREAM_LENGTH,
    track_json,
)
from ._core import (
    _I64_MAX,
    DESTROYED,
    OPEN,
    PAUSED,
    _HttpError,
    _NodeCore,
    _now_ms,
)
from ._scheduler import Timer

if TYPE_CHECKING:
    from ._ws import _WsConn
    from .node import FakeNode

_SESSION_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


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


class _Sessions(_NodeCore):
    """Sessions and players: message delivery (PROTOCOL.md §4), stats, positions, track
    timers and voice. Every method here runs with ``_lock`` held by its caller (or takes it)."""

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

    def _new_session(self, user_id: int, client_name: str) -> FakeSession:
        while True:
            sid = "".join(secrets.choice(_SESSION_ALPHABET) for _ in range(16))
            if sid not in self._sessions:
                break
        # self is the FakeNode this room is part of
        session = FakeSession(cast("FakeNode", self), sid, user_id, client_name)
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

    def _expire(self, session: FakeSession, token: int) -> None:
        with self._lock:
            if session.state == PAUSED and session._expiry_token == token:
                self._destroy_session(session)

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
