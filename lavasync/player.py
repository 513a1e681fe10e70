"""The Player facade: one guild's player, with blocking, thread-safe calls.

Two locks, with separate jobs:

* ``_call_lock`` serialises this player's REST calls (read state → PATCH → apply the answer), so
  concurrent callers cannot interleave and the local state always matches the last answered call.
  Only threads calling this player wait on it; the reader thread never takes it, and the voice
  PATCH is sent without it (it may block while Lavalink connects to Discord).
* ``_lock`` guards the state fields for short, non-blocking reads and writes; the node's reader
  thread takes it to apply ``playerUpdate`` and track events.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, cast

from .codec import check_blob
from .errors import (
    ClientClosedError,
    LavasyncError,
    LavasyncTimeoutError,
    PlayerDestroyedError,
    RestError,
)
from .models import (
    UNSET,
    Filters,
    PlayerInfo,
    PlayerState,
    Track,
    UpdatePlayer,
    UpdatePlayerTrack,
    snowflake,
)
from .models.events import (
    Event,
    PlayerUpdateEvent,
    TrackEndEvent,
    TrackStartEvent,
    WebSocketClosedEvent,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .client import Client
    from .node import Node
    from .queue import Queue
    from .voice import VoiceConnection

__all__ = ["Player"]

log = logging.getLogger("lavasync.player")

#: Java's Long.MAX_VALUE: the length Lavalink reports for streams.
UNKNOWN_LENGTH = 2**63 - 1


class Player:
    """One guild's player. Get it with :meth:`lavasync.Client.player`.

    Thread-safe: every method and property may be called from any thread. Calls on one player
    run one at a time, in the order they take its call lock; each blocks until Lavalink answered
    and returns the :class:`~lavasync.models.PlayerInfo` it answered, after the local state was
    updated to match it. A failed call re-reads the player from the node, so the local state is
    what the server has.
    """

    __slots__ = (
        "__weakref__",
        "_call_lk",
        "_client",
        "_cond",
        "_connected",
        "_destroyed",
        "_end_time",
        "_ends_for",
        "_filters_v",
        "_last_end",
        "_node",
        "_paused",
        "_ping",
        "_pos",
        "_queue",
        "_rebuild_for",
        "_seg",
        "_sent_any",
        "_started",
        "_state_lk",
        "_track",
        "_voice",
        "_volume",
        "_waiting_start",
        "guild_id",
    )

    def __init__(self, client: Client, guild_id: int, node: Node) -> None:
        self._client = client
        self.guild_id = guild_id
        self._node = node
        # Both locks and the empty Filters are made on first use (see _lazy): an idle player
        # (created, never called) is then about a third of the memory.
        self._call_lk: Optional[threading.Lock] = None
        self._state_lk: Optional[threading.Lock] = None
        self._cond: Optional[threading.Condition] = None  # made on first wait
        self._track: Optional[Track] = None
        self._paused = False
        self._volume = 100
        self._filters_v: Optional[Filters] = None  # None: none set yet (an empty Filters())
        self._connected = False
        self._ping = -1
        self._end_time: Optional[int] = None
        # (position ms, monotonic seconds when it was that): the base of interpolation
        self._pos: tuple[int, float] = (0, 0.0)
        # (reported position, track position, speed x rate) at the last start, seek or timescale
        # change: the base of track_position (see there)
        self._seg: tuple[int, int, float] = (0, 0, 1.0)
        self._started = 0  # TrackStartEvents seen
        self._waiting_start = 0  # the start number of the track the last play() started
        self._ends_for = -1  # the start number the last TrackEndEvent belongs to
        self._last_end: Optional[TrackEndEvent] = None
        self._destroyed: Optional[str] = None  # why, once destroyed
        self._voice: Optional[VoiceConnection] = None
        self._sent_any = False  # has the node heard of this player yet?
        #: the fresh session of its node this player must be rebuilt on before any other call
        self._rebuild_for: Optional[str] = None
        self._queue: Optional[Queue] = None  # the queue stored with this player

    @property
    def _call_lock(self) -> threading.Lock:
        """Serialises this player's calls (made on first use)."""
        lock = self._call_lk
        return lock if lock is not None else _lazy(self, "_call_lk", threading.Lock)

    @property
    def _lock(self) -> threading.Lock:
        """Guards the state fields (made on first use)."""
        lock = self._state_lk
        return lock if lock is not None else _lazy(self, "_state_lk", threading.Lock)

    @property
    def _filters(self) -> Filters:
        filters = self._filters_v
        return filters if filters is not None else _lazy(self, "_filters_v", Filters)

    @_filters.setter
    def _filters(self, filters: Filters) -> None:
        self._filters_v = filters

    def __repr__(self) -> str:
        title = self._track.info.title if self._track is not None else None
        return (
            f"<Player guild={self.guild_id} node={self._node.name!r} track={title!r} "
            f"paused={self._paused} connected={self._connected}>"
        )

    # ------------------------------------------------------------------ state (read-only)

    @property
    def node(self) -> Node:
        """The node this player lives on (changes when the player is moved)."""
        return self._node

    @property
    def track(self) -> Optional[Track]:
        """The current track as the node last reported it, or None when idle."""
        return self._track

    @property
    def paused(self) -> bool:
        """Whether playback is paused, as Lavalink last answered."""
        return self._paused

    @property
    def volume(self) -> int:
        """The player volume, 0..1000 (100 is unchanged), as Lavalink last answered."""
        return self._volume

    @property
    def filters(self) -> Filters:
        """The filters in effect, as Lavalink last answered (empty ``Filters()`` when none)."""
        return self._filters

    @property
    def connected(self) -> bool:
        """Lavalink's voice WebSocket to Discord is open (``state.connected``)."""
        return self._connected

    @property
    def ping(self) -> int:
        """Voice gateway round trip in ms (-1 when Lavalink holds no voice connection)."""
        return self._ping

    @property
    def end_time(self) -> Optional[int]:
        """Where the current track stops (ms: ``end`` of :meth:`play`); None plays to the end."""
        return self._end_time

    @property
    def channel_id(self) -> Optional[int]:
        """The voice channel the bot is in for this guild, as Discord last said."""
        voice = self._voice
        return voice.channel_id if voice is not None else None

    @property
    def voice_lost(self) -> bool:
        """The voice connection was lost (shard dropped, guild outage, a voice close code that
        needs a fresh join) and lavasync is rejoining :attr:`channel_id` by itself."""
        voice = self._voice
        return voice is not None and voice.lost

    @property
    def listeners(self) -> frozenset[int]:
        """User ids in the bot's voice channel, bots excluded, as the gateway told
        (GUILD_CREATE's ``voice_states`` and every VOICE_STATE_UPDATE fed to
        ``handle_gateway``). Empty when the bot is in no channel."""
        channel = self.channel_id
        if channel is None:
            return frozenset()
        return self._client._presence.listeners(self.guild_id, channel)

    @property
    def voice(self) -> Optional[VoiceConnection]:
        """The voice state machine (None before the first connect or voice update)."""
        return self._voice

    @property
    def queue(self) -> Optional[Queue]:
        """The :class:`~lavasync.Queue` made last for this player (restored with it), or None."""
        return self._queue

    @property
    def destroyed(self) -> bool:
        """True once the player was destroyed (by :meth:`destroy`, a kick, or its node)."""
        return self._destroyed is not None

    @property
    def position(self) -> int:
        """The position the server reports, in ms, interpolated since the last ``playerUpdate``.

        It advances at wall-clock rate whatever the timescale filter is, as the server's does
        (lavaplayer stamps output frames from the start or seek target), so under
        ``speed: 1.5`` a track ends while this reads about 2/3 of its length. Frozen while
        paused or while Lavalink has no voice connection; never negative; clamped to the
        track's length only when that is known (0 <= length < 2**63-1; NodeLink's -1 and
        Lavalink's 2**63-1 mean unknown). For how far into the track the listener is, read
        :attr:`track_position`.
        """
        track = self._track
        if track is None:
            return 0
        return _clamp(self._server_position(), track.info.length)

    @property
    def track_position(self) -> int:
        """How far into the track the listener is, in ms of the track's own time.

        Equal to :attr:`position` without a timescale filter. With one, the track advances at
        ``speed * rate`` times wall-clock rate while the server's position does not: lavasync
        follows the track time itself from each start and seek, across every timescale change
        it makes or reads back. This is the value to show against the track length, and what
        lavasync seeks to when it rebuilds the player elsewhere. Clamped like ``position``.
        """
        track = self._track
        if track is None:
            return 0
        server, base, factor = self._seg
        current = base + int((self._server_position() - server) * factor)
        return _clamp(current, track.info.length)

    def _server_position(self) -> int:
        """The reported position interpolated to now (not clamped)."""
        base, at = self._pos
        if self._paused or not self._connected or at == 0.0:
            return base
        return base + int((time.monotonic() - at) * 1000.0)

    # ------------------------------------------------------------------ calls

    def play(
        self,
        track: Union[Track, str],
        *,
        start: int = 0,
        end: Optional[int] = None,
        volume: Optional[int] = None,
        paused: bool = False,
        no_replace: bool = False,
        user_data: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> PlayerInfo:
        """Play a track (a Track or its encoded string) from ``start`` ms, until ``end`` ms.

        ``no_replace`` leaves a track that is already playing alone. ``user_data`` (a dict) is
        attached to the track and echoed in every event for it; a Track's own ``user_data`` is
        sent when none is given.
        """
        if isinstance(track, Track):
            encoded = track.encoded
            if user_data is None and track.user_data:
                user_data = track.user_data
        elif isinstance(track, str):
            encoded = track
        else:
            raise ValueError(f"play() takes a Track or an encoded track string, not {track!r}")
        if not encoded:
            raise ValueError("the encoded track is empty")
        if not isinstance(track, Track):  # a user's string: a bad blob would get a 500
            check_blob(encoded)
        _check_int(start, "start", 0)
        if end is not None:
            _check_int(end, "end", 1)
            if end <= start:
                raise ValueError(f"end ({end}) must be after start ({start})")
        if volume is not None:
            _check_volume(volume)
        if user_data is not None and not isinstance(user_data, Mapping):
            raise ValueError("user_data must be a dict")
        update = UpdatePlayer(
            track=UpdatePlayerTrack(
                encoded=encoded, user_data=dict(user_data) if user_data is not None else UNSET
            ),
            position=start,
            paused=bool(paused),
        )
        if end is not None:
            update.end_time = end
        if volume is not None:
            update.volume = volume
        return self._update(update, no_replace=no_replace, timeout=timeout, play=True)

    def stop(self, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Stop the current track (TrackEndEvent ``stopped``); the player stays."""
        return self._update(UpdatePlayer(track=UpdatePlayerTrack(encoded=None)), timeout=timeout)

    def pause(self, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Pause playback (the position freezes); returns Lavalink's answer."""
        return self.set_paused(True, timeout=timeout)

    def resume(self, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Resume paused playback; returns Lavalink's answer."""
        return self.set_paused(False, timeout=timeout)

    def set_paused(self, paused: bool, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Pause (``True``) or resume (``False``); ``paused`` must be a bool."""
        if not isinstance(paused, bool):
            raise ValueError("paused must be True or False")
        return self._update(UpdatePlayer(paused=paused), timeout=timeout)

    def seek(self, position: int, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Jump to ``position`` ms in the current track (ignored by the server when idle)."""
        _check_int(position, "position", 0)
        info = self._update(UpdatePlayer(position=position), timeout=timeout)
        self._track_seeked(position)
        return info

    def set_volume(self, volume: int, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Player volume 0..1000 (100 is unchanged; above 100 amplifies and may clip)."""
        _check_volume(volume)
        return self._update(UpdatePlayer(volume=volume), timeout=timeout)

    def set_end_time(self, end: int, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Stop the current track (as ``finished``) when it reaches ``end`` ms."""
        _check_int(end, "end", 1)
        return self._update(UpdatePlayer(end_time=end), timeout=timeout)

    def set_user_data(
        self, user_data: Mapping[str, Any], *, timeout: Optional[float] = None
    ) -> PlayerInfo:
        """Replace the current track's user data."""
        if not isinstance(user_data, Mapping):
            raise ValueError("user_data must be a dict")
        update = UpdatePlayer(track=UpdatePlayerTrack(user_data=dict(user_data)))
        return self._update(update, timeout=timeout)

    def set_filters(self, filters: Filters, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Replace the whole filter set (validated before anything is sent)."""
        if not isinstance(filters, Filters):
            raise ValueError(f"set_filters() takes a Filters object, not {filters!r}")
        return self._update(UpdatePlayer(filters=filters), timeout=timeout)

    def update_filters(self, *, timeout: Optional[float] = None, **changes: Any) -> PlayerInfo:
        """Change some filters and keep the others: ``update_filters(timescale=Timescale(...))``.

        A filter given as None is switched off.
        """
        with self._call(timeout):
            update = UpdatePlayer(filters=self._filters.replace(**changes))
            update.validate()
            return self._update_locked(update, timeout=timeout)

    def clear_filters(self, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Remove every filter (sends an empty ``Filters()``); returns Lavalink's answer."""
        return self.set_filters(Filters(), timeout=timeout)

    def update(
        self, update: UpdatePlayer, *, no_replace: bool = False, timeout: Optional[float] = None
    ) -> PlayerInfo:
        """Send any :class:`~lavasync.models.UpdatePlayer` (validated first)."""
        if not isinstance(update, UpdatePlayer):
            raise ValueError(f"update() takes an UpdatePlayer, not {update!r}")
        info = self._update(update, no_replace=no_replace, timeout=timeout)
        if update.position is not UNSET and not update.changes_track:
            self._track_seeked(update.position)
        return info

    def fetch(self, *, timeout: Optional[float] = None) -> PlayerInfo:
        """Read the player from the node and make the local state match it."""
        self._check_alive()
        if self._rebuild_for is not None:  # not on its node's new session yet: put it there
            with self._call(timeout):
                self._client._placement.ensure_placed(self, timeout)
        node = self._node

        def get(sid: str) -> PlayerInfo:
            if self._rebuild_for == sid:  # the node came back fresh while this call waited
                with self._call(timeout):
                    self._client._placement.ensure_placed(self, timeout)
            return node.rest.get_player(sid, self.guild_id, timeout=timeout)

        try:
            info: PlayerInfo = node.call(get, timeout=timeout)
        except RestError as exc:
            if _player_gone(exc) and self._node is node:
                self._forget_track()  # the node has no such player: local state must not say so
            raise
        self._apply_info(info)
        return info

    def destroy(self, *, timeout: Optional[float] = None) -> None:
        """Destroy the Lavalink player and forget this one (the bot stays in the channel:
        use :meth:`disconnect` to leave). Idempotent."""
        self._client._destroy_player(self, "destroyed", timeout=timeout)

    # ------------------------------------------------------------------ voice

    def connect(
        self,
        channel_id: int,
        *,
        self_deaf: bool = False,
        self_mute: bool = False,
        timeout: Optional[float] = 10.0,
    ) -> None:
        """Join a voice channel: OP 4 through the host's hook, then wait until Lavalink has the
        voice state (``timeout`` None: no limit). Raises
        :class:`~lavasync.errors.VoiceConnectTimeoutError` naming the Discord update that never
        came, or the voice PATCH's error; either way the bot leaves the channel again and no
        half state is left behind."""
        self._check_alive()
        self._voice_machine().connect(
            snowflake(channel_id, "channel_id"),
            self_deaf=self_deaf,
            self_mute=self_mute,
            timeout=timeout,
        )

    def move_to(
        self,
        channel_id: int,
        *,
        self_deaf: Optional[bool] = None,
        self_mute: Optional[bool] = None,
        timeout: Optional[float] = 10.0,
    ) -> None:
        """Move the bot to another voice channel of the guild (and Lavalink with it); as
        :meth:`connect`, ``timeout`` None means no limit."""
        self._check_alive()
        voice = self._voice_machine()
        voice.connect(
            snowflake(channel_id, "channel_id"),
            self_deaf=voice.self_deaf if self_deaf is None else self_deaf,
            self_mute=voice.self_mute if self_mute is None else self_mute,
            timeout=timeout,
        )

    def disconnect(self, *, timeout: Optional[float] = None) -> None:
        """Leave the voice channel (OP 4 with ``channel_id: null``) and destroy the player."""
        voice = self._voice
        if voice is not None:
            voice.leave()
        else:
            self._client._send_op4(self.guild_id, None, False, False)
        self._client._destroy_player(self, "disconnected", timeout=timeout)

    def wait_for_track_end(self, timeout: Optional[float] = None) -> TrackEndEvent:
        """Block until the current (or just started) track ends; return its TrackEndEvent.

        If that track already ended, returns at once. Raises
        :class:`~lavasync.errors.PlayerDestroyedError` if the player is destroyed or its node
        lost meanwhile, :class:`~lavasync.errors.LavasyncTimeoutError` on timeout.
        """
        with self._lock:
            if self._cond is None:
                self._cond = threading.Condition(self._lock)
            cond = self._cond
            target = max(self._waiting_start, self._started)

            def ended() -> bool:
                return self._destroyed is not None or (
                    self._last_end is not None and self._ends_for >= target
                )

            if not cond.wait_for(ended, timeout):
                raise LavasyncTimeoutError(
                    f"guild {self.guild_id}: no track end within {timeout} s"
                )
            if self._last_end is not None and self._ends_for >= target:
                return self._last_end
            raise PlayerDestroyedError(f"guild {self.guild_id}: player {self._destroyed}")

    # ------------------------------------------------------------------ internals

    def _voice_machine(self) -> VoiceConnection:
        voice = self._voice
        if voice is None:
            from .voice import VoiceConnection

            with self._lock:
                if self._voice is None:
                    self._voice = VoiceConnection(self._client, self)
                voice = self._voice
        return voice

    def _check_alive(self) -> None:
        if self._client.closed:
            raise ClientClosedError("the client is closed")
        if self._destroyed is not None:
            raise PlayerDestroyedError(f"guild {self.guild_id}: player {self._destroyed}")

    @contextmanager
    def _call(self, timeout: Optional[float]) -> Iterator[None]:
        lock = self._take_call_lock(timeout)
        try:
            yield
        finally:
            lock.release()

    def _take_call_lock(self, timeout: Optional[float]) -> threading.Lock:
        """Acquire the call lock (LavasyncTimeoutError after ``timeout``); the caller releases."""
        limit = self._client.call_timeout if timeout is None else timeout
        lock = self._call_lock
        if not lock.acquire(timeout=-1 if limit is None else limit):
            raise LavasyncTimeoutError(
                f"guild {self.guild_id}: another call on this player did not finish in {limit} s"
            )
        return lock

    def _update(
        self,
        update: UpdatePlayer,
        *,
        no_replace: bool = False,
        timeout: Optional[float] = None,
        play: bool = False,
    ) -> PlayerInfo:
        update.validate()
        self._check_alive()
        lock = self._take_call_lock(timeout)  # not _call(): no generator on the hot path
        try:
            return self._update_locked(update, no_replace=no_replace, timeout=timeout, play=play)
        finally:
            lock.release()

    def _update_locked(
        self,
        update: UpdatePlayer,
        *,
        no_replace: bool = False,
        timeout: Optional[float] = None,
        play: bool = False,
    ) -> PlayerInfo:
        """PATCH with the call lock held (``update`` already validated); apply the answer, or
        re-read the player on failure."""
        self._check_alive()
        limit = self._client.call_timeout if timeout is None else timeout
        self._client._placement.ensure_placed(self, limit)
        node = self._node
        started_before = self._started
        placement = self._client._placement

        def send(sid: str) -> PlayerInfo:
            if self._rebuild_for == sid:  # the node came back fresh while this call waited
                placement.ensure_placed(self, limit)
            return node.rest.update_player(
                sid, self.guild_id, update, no_replace=no_replace, timeout=limit
            )

        try:
            info: PlayerInfo = node.call(send, timeout=limit)
        except (ClientClosedError, PlayerDestroyedError):
            raise
        except LavasyncError as exc:
            # A timeout or a reset may have lost the answer to a change the node made: whatever
            # failed, local state becomes what the server has before the error is raised.
            log.info("guild %s: update failed (%s); re-reading the player", self.guild_id, exc)
            self._resync_after_failure(node, limit)
            raise
        with self._lock:
            if play and not (no_replace and info.track is not None and self._track is not None):
                self._waiting_start = started_before + 1
            if update.end_time is not UNSET:
                self._end_time = update.end_time
            elif play:
                self._end_time = None
        self._apply_info(info)
        return info

    def _resync_after_failure(self, node: Node, timeout: Optional[float]) -> None:
        """After a failed call, re-read the player (GET) and apply what the server has.

        Only while ``node`` is reachable and still this player's node; otherwise nothing changes
        (a resume re-syncs players, a fresh session rebuilds them from local state). A 404
        ``Session not found`` means the session is paused or reconnecting, never "player gone":
        only a 404 for the player itself (the session answered) clears the local track.
        """
        if self._node is not node or not node.available or self._destroyed is not None:
            return
        sid = node.session_id
        if not sid:
            return
        try:
            info = node.rest.get_player(sid, self.guild_id, timeout=timeout)
        except RestError as exc:
            if _player_gone(exc):
                self._forget_track()
            else:
                log.info("guild %s: re-reading the player failed: %s", self.guild_id, exc)
            return
        except LavasyncError as exc:
            log.info("guild %s: re-reading the player failed: %s", self.guild_id, exc)
            return
        self._apply_info(info)

    def _forget_track(self) -> None:
        """The node has no player for this guild: it plays nothing."""
        with self._lock:
            self._track = None
            self._paused = False

    def _apply_info(self, info: PlayerInfo) -> None:
        """Make the local state what the server answered (REST Player object)."""
        now = time.monotonic()
        with self._lock:
            self._sent_any = True
            self._track = info.track
            self._paused = info.paused
            self._volume = info.volume
            factor = _speed_factor(info.filters)
            if factor != self._seg[2]:  # a timescale change: the track time goes on from here
                server = self._server_position()
                self._seg = (server, self._track_time_at(server), factor)
            self._filters = info.filters
            self._apply_state(info.state, now)
        # after the change: a save starting now must include it
        self._client._state_changed(self.guild_id)

    def _apply_state(self, state: PlayerState, now: float) -> None:
        self._connected = state.connected
        self._ping = state.ping
        position = max(0, state.position)
        self._pos = (position, now)
        server, _, factor = self._seg
        if position < server - 1000:  # the server went back (a seek made elsewhere)
            self._seg = (position, position, factor)

    def _track_time_at(self, server: int) -> int:
        """The track position when the reported position is ``server`` (lock held)."""
        anchor, base, factor = self._seg
        return base + int((server - anchor) * factor)

    def _track_seeked(self, position: int) -> None:
        """A seek to ``position`` (track time) was answered: both clocks restart there."""
        with self._lock:
            if self._track is not None:
                self._seg = (position, position, _speed_factor(self._filters))

    # called by the node's reader thread (through the client): state only, never user code
    def _on_event(self, event: Event) -> None:
        cls = type(event)
        if cls is PlayerUpdateEvent:
            # _apply_state inline: this runs for every playerUpdate frame on the reader thread
            state = event.state  # type: ignore[attr-defined]
            position = state.position
            position = position if position > 0 else 0
            now = time.monotonic()
            lock = self._state_lk
            if lock is None:
                lock = self._lock
            with lock:
                self._connected = state.connected
                self._ping = state.ping
                self._pos = (position, now)
                seg = self._seg
                if position < seg[0] - 1000:  # the server went back (a seek made elsewhere)
                    self._seg = (position, position, seg[2])
        elif cls is TrackStartEvent:
            assert isinstance(event, TrackStartEvent)
            with self._lock:
                self._started += 1
                self._track = event.track
                start = max(0, event.track.info.position)
                self._pos = (start, time.monotonic())
                self._seg = (start, start, _speed_factor(self._filters))
        elif cls is TrackEndEvent:
            assert isinstance(event, TrackEndEvent)
            with self._lock:
                self._last_end = event
                self._ends_for = self._started
                if event.reason != "replaced":
                    self._track = None
                    self._end_time = None
                if self._cond is not None:
                    self._cond.notify_all()
        elif cls is WebSocketClosedEvent:
            assert isinstance(event, WebSocketClosedEvent)
            with self._lock:
                self._connected = False
            voice = self._voice
            if voice is not None:
                voice.on_closed(event)

    def _mark_destroyed(self, reason: str) -> None:
        with self._lock:
            if self._destroyed is None:
                self._destroyed = reason
            self._connected = False
            if self._cond is not None:
                self._cond.notify_all()
        voice = self._voice
        if voice is not None:
            voice.cancel(reason)

    def _voice_lost_now(
        self,
    ) -> tuple[Optional[Track], int, bool, Optional[int], Optional[TrackEndEvent]]:
        """The voice is gone: freeze the position where it is and mark the player
        disconnected. Returns what was playing (track, track position, paused, end time, the
        last TrackEndEvent seen) so a rejoin can replay it if Lavalink drops the track."""
        now = time.monotonic()
        with self._lock:
            server = self._server_position()
            track = self._track
            track_position = 0
            if track is not None:
                track_position = _clamp(self._track_time_at(server), track.info.length)
            self._pos = (server, now)
            self._connected = False
            return track, track_position, self._paused, self._end_time, self._last_end

    def _restore_update(self) -> UpdatePlayer:
        """An UpdatePlayer that rebuilds this player elsewhere from local state (move, recreate)."""
        with self._lock:
            track = self._track
            paused = self._paused
            volume = self._volume
            filters = self._filters
            end_time = self._end_time
        update = UpdatePlayer(volume=volume, paused=paused)
        if not filters.is_empty:
            update.filters = filters
        voice = self._voice
        if voice is not None and voice.complete:
            update.voice = voice.voice_state()
        if track is not None:
            position = self.track_position  # a seek target is track time
            user_data = dict(track.user_data) if track.user_data else UNSET
            update.track = UpdatePlayerTrack(encoded=track.encoded, user_data=user_data)
            update.position = position
            if end_time is not None and end_time > position:
                update.end_time = end_time
        return update

    def _rebuild_on(
        self, node: Node, *, session_id: Optional[str] = None, timeout: Optional[float] = None
    ) -> PlayerInfo:
        """PATCH the whole local state to ``node``'s session (caller holds the call lock or
        knows no call runs). Switches the player to ``node`` once the node answered.
        ``session_id`` is given by the node's own reader thread, which must not wait for itself.
        """
        update = self._restore_update()
        limit = self._client.call_timeout if timeout is None else timeout
        sid = session_id or node.session(limit)
        info = node.rest.update_player(sid, self.guild_id, update, timeout=limit)
        with self._lock:
            self._node = node
            self._rebuild_for = None
        self._apply_info(info)
        return info

    # ------------------------------------------------------------------ state store

    def _snapshot(self) -> dict[str, Any]:
        """This player's state for the state store (JSON-ready)."""
        with self._lock:
            track, paused, volume = self._track, self._paused, self._volume
            filters, end_time, connected = self._filters, self._end_time, self._connected
        voice = self._voice
        voice_data = None
        if voice is not None and voice.complete:
            voice_data = {
                "token": voice.token,
                "endpoint": voice.endpoint,
                "session_id": voice.session_id,
                "channel_id": str(voice.channel_id),
                "self_deaf": voice.self_deaf,
                "self_mute": voice.self_mute,
            }
        return {
            "guild_id": str(self.guild_id),
            "node": self._node.name,
            "track": track.to_wire() if track is not None else None,
            "position": self.position,
            "track_position": self.track_position,
            "moving": bool(track is not None and not paused and connected),
            "saved_at": time.time(),
            "paused": paused,
            "volume": volume,
            "filters": filters.to_wire(),
            "end_time": end_time,
            "voice": voice_data,
            "session_id": self._node.session_id,  # the session it plays on (a takeover deletes it)
            "queue": self._queue._state() if self._queue is not None else None,
        }

    @classmethod
    def _from_snapshot(cls, client: Client, node: Node, data: Mapping[str, Any]) -> Player:
        """A player rebuilt from the state store; its position is carried forward to now."""
        player = cls(client, snowflake(data["guild_id"], "guild_id"), node)
        raw_track = data.get("track")
        player._track = Track.from_wire(raw_track) if raw_track else None
        player._paused = bool(data.get("paused", False))
        player._volume = int(data.get("volume", 100))
        player._filters = Filters.from_wire(data.get("filters") or {})
        end_time = data.get("end_time")
        player._end_time = int(end_time) if end_time is not None else None
        position = max(0, int(data.get("position", 0)))
        track_position = max(0, int(data.get("track_position", position)))
        factor = _speed_factor(player._filters)
        if data.get("moving") and not player._paused and player._track is not None:
            # the reported position moves at wall rate, the track at speed x rate
            elapsed_ms = max(0.0, time.time() - float(data.get("saved_at", time.time()))) * 1000
            position += int(elapsed_ms)
            track_position += int(elapsed_ms * factor)
        if player._track is not None:
            length = player._track.info.length
            position = _clamp(position, length)
            track_position = _clamp(track_position, length)
        player._pos = (position, time.monotonic())
        player._seg = (position, track_position, factor)
        player._sent_any = True
        voice = data.get("voice")
        if isinstance(voice, Mapping):
            machine = player._voice_machine()
            machine.restore(voice)
        return player


#: Taken only to make a player's lock or Filters the first time one is needed.
_LAZY_LOCK = threading.Lock()

_T = TypeVar("_T")


def _lazy(player: Player, slot: str, make: Callable[[], _T]) -> _T:
    """The value of ``slot`` on ``player``, made by ``make()`` if it is still None: every thread
    gets the same object."""
    with _LAZY_LOCK:
        value = getattr(player, slot)
        if value is None:
            value = make()
            setattr(player, slot, value)
        return cast(_T, value)


def _player_gone(exc: RestError) -> bool:
    """A 404 about the player itself (Lavalink: ``Player not found``). A 404 about the session
    (``Session not found``; NodeLink: ``The provided sessionId doesn't exist.``: paused or
    reconnecting) or any other 404 (a proxy, an unknown route) says nothing about the player."""
    text = exc.message.lower()
    return exc.status == 404 and "player" in text and "session" not in text


def _clamp(position: int, length: int) -> int:
    """Never negative; never past a known length (0 <= length < 2**63-1; -1 = unknown)."""
    if 0 <= length < UNKNOWN_LENGTH and position > length:
        return length
    return max(0, position)


def _speed_factor(filters: Filters) -> float:
    """How fast track time runs against wall-clock time under ``filters`` (speed x rate)."""
    timescale = filters.timescale
    if timescale is None:
        return 1.0
    try:
        factor = float(timescale.speed) * float(timescale.rate)
    except (TypeError, ValueError):
        return 1.0
    return factor if factor > 0 and math.isfinite(factor) else 1.0


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of ms, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")


def _check_volume(volume: Any) -> None:
    if isinstance(volume, bool) or not isinstance(volume, int):
        raise ValueError(f"volume must be an integer 0..1000, not {volume!r}")
    if not 0 <= volume <= 1000:
        raise ValueError(f"volume must be within 0..1000, not {volume}")
