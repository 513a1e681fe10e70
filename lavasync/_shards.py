"""Shards and voice loss: which guilds a shard carries, what happens to their voice when the
host's gateway drops, and the paced rejoin when it comes back.

Lavalink's client guidelines: when a shard's main gateway connection dies, every voice connection
of that shard dies with it, even when the shard then RESUMEs. The timeline:

1. ``client.shard_lost(n)`` (the host's socket for shard ``n`` closed): every player of a guild
   on shard ``n`` that is in a channel is marked voice-lost at once (``connected`` False, its
   position frozen, its channel and what it was playing remembered, a
   :class:`~lavasync.VoiceLostEvent`). Nothing is destroyed on Lavalink and no timer runs: a
   shard may stay away for an hour at no cost.
2. The shard's next READY or RESUMED (``handle_gateway``) or ``client.shard_ready(n)``: each
   lost guild is queued for a rejoin. One worker per shard sends the OP 4s, paced by a token
   bucket (a burst of :attr:`Shards.burst`, then :attr:`Shards.per_second`: at most 100 in any
   60 s, under Discord's 120 commands per 60 s per connection, leaving room for heartbeats and
   the host's own commands). Never on a node's reader thread, never on the host's gateway
   thread.
3. Discord's fresh VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE are PATCHed to the same Lavalink
   player as they come (:mod:`lavasync.voice`); once Lavalink accepts them the track goes on at
   its position. If Lavalink dropped the track meanwhile (its cleanup of players nobody polls),
   it is played again at the position it had when the voice was lost, under the player's call
   lock. Then a :class:`~lavasync.VoiceRejoinedEvent`.
4. A guild whose rejoin is not done within :attr:`Shards.rejoin_timeout` seconds of its OP 4
   (one deadline per rejoin) leaves (OP 4 null) and its player is destroyed, after a
   :class:`~lavasync.VoiceRejoinFailedEvent` naming what was missing.

Defined edge cases: a second ``shard_lost`` while rejoining stops the queue and marks every
player of the shard lost again (rejoined ones too); the next READY/RESUMED starts over, and the
first loss's snapshot is the one replayed. A READY or RESUMED with no ``shard_lost`` before it
(the host missed the close) rejoins only the players whose voice Lavalink reports closed
(``connected`` False while in a channel); players Lavalink still reports connected are left
alone. GUILD_DELETE with ``unavailable`` marks that guild voice-lost until its GUILD_CREATE.

Thread-safe: every method may be called from any thread; nothing here blocks on I/O while
holding a lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Optional

from .errors import LavasyncError
from .models import UNSET, UpdatePlayer, UpdatePlayerTrack
from .models.events import (
    VoiceErrorEvent,
    VoiceLostEvent,
    VoiceRejoinedEvent,
    VoiceRejoinFailedEvent,
    WebSocketClosedEvent,
)

if TYPE_CHECKING:
    from .client import Client
    from .models import PlayerInfo
    from .player import Player

__all__ = ["Shards", "TokenBucket", "check_shard_count"]

log = logging.getLogger("lavasync.shards")


def check_shard_count(value: Any) -> Optional[int]:
    """``Client(shard_count=...)``: None or an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"shard_count must be an integer >= 1 or None, not {value!r}")
    return value


class TokenBucket:
    """``burst`` tokens, refilled at ``per_second``. In any window of ``w`` seconds at most
    ``burst + per_second * w`` tokens are taken. Not thread-safe (its owner locks)."""

    def __init__(self, burst: int, per_second: float, now: float) -> None:
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 if taken, else the seconds until one is available."""
        if now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_second)
            self._at = now
        if self._tokens >= 1.0 - 1e-9:  # a refill computed to the moment may round down
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        if self.per_second <= 0:
            return math.inf
        return (1.0 - self._tokens) / self.per_second


class _Shard:
    __slots__ = ("bucket", "drain", "draining", "id", "lost_since", "queue")

    def __init__(self, shard_id: int) -> None:
        self.id = shard_id
        self.lost_since: Optional[float] = None
        self.queue: deque[tuple[Player, int]] = deque()  # (player, loss generation)
        self.drain = 0  # token of the current drain run: older runs stop
        self.draining = False
        self.bucket: Optional[TokenBucket] = None


class Shards:
    """Shard bookkeeping, voice loss and paced rejoins for one client. Thread-safe."""

    def __init__(self, client: Client, shard_count: Optional[int]) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._count = shard_count
        self._given = shard_count is not None
        self._shards: dict[int, _Shard] = {}
        self._unavailable: set[int] = set()
        self._warned = False
        #: OP 4 pacing per shard: a burst, then this many a second (100 in any 60 s).
        self.burst = 10
        self.per_second = 1.5
        #: seconds from a rejoin's OP 4 until it is given up (leave + destroy)
        self.rejoin_timeout = 30.0
        #: seconds to wait after voice close 4021 (rate limited) before rejoining
        self.rate_limit_backoff = 10.0

    # ------------------------------------------------------------------ shard ids

    @property
    def count(self) -> Optional[int]:
        return self._count

    def shard_of(self, guild_id: int) -> int:
        count = self._count
        if not count or count <= 1:
            return 0
        return (guild_id >> 22) % count

    def check(self, shard_id: Any) -> int:
        """A shard id the host passed: an int in ``0..shard_count-1`` (ValueError)."""
        if isinstance(shard_id, bool) or not isinstance(shard_id, int) or shard_id < 0:
            raise ValueError(f"shard_id must be an integer >= 0, not {shard_id!r}")
        count = self._count
        if count is not None and shard_id >= count:
            raise ValueError(f"shard_id {shard_id} is out of range for {count} shards")
        if count is None and shard_id > 0 and not self._warned:
            self._warned = True
            log.warning(
                "shard %s named but shard_count is unknown: every guild counts as shard 0 until "
                "a READY with 'shard' is fed (or pass Client(shard_count=...))",
                shard_id,
            )
        return shard_id

    def from_ready(self, data: Any, shard_id: Optional[int]) -> int:
        """READY: take ``shard: [id, count]`` (count only when the host did not give one)."""
        pair = data.get("shard") if isinstance(data, Mapping) else None
        if (
            isinstance(pair, (list, tuple))
            and len(pair) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            and 0 <= pair[0] < pair[1]
        ):
            ready_id, count = pair
            with self._lock:
                if self._count is None:
                    self._count = count
                elif count != self._count:
                    log.warning(
                        "READY says %s shards, Client(shard_count=%s) says otherwise: keeping %s",
                        count,
                        self._count,
                        self._count,
                    )
            if shard_id is None:
                shard_id = ready_id
        return 0 if shard_id is None else shard_id

    def _shard(self, shard_id: int) -> _Shard:
        """(Lock held.)"""
        shard = self._shards.get(shard_id)
        if shard is None:
            shard = self._shards[shard_id] = _Shard(shard_id)
        return shard

    def _players_of(self, shard_id: int) -> list[Player]:
        return [p for p in self._client.players if self.shard_of(p.guild_id) == shard_id]

    def is_lost(self, shard_id: int) -> bool:
        with self._lock:
            shard = self._shards.get(shard_id)
            return shard is not None and shard.lost_since is not None

    # ------------------------------------------------------------------ shard lifecycle

    def lost(self, shard_id: int) -> int:
        """The shard's socket closed: its players are voice-lost until it is ready. Returns how
        many players were marked."""
        with self._lock:
            shard = self._shard(shard_id)
            if shard.lost_since is None:
                shard.lost_since = time.monotonic()
            shard.queue.clear()
            shard.drain += 1  # a drain in flight (or its pending timer) stops
            shard.draining = False
        marked = 0
        for player in self._players_of(shard_id):
            if self.lose(player, "shard lost"):
                marked += 1
        if marked:
            log.warning("shard %s lost: %d voice connections to rejoin", shard_id, marked)
        return marked

    def ready(self, shard_id: int) -> int:
        """READY/RESUMED/``shard_ready``: queue the rejoins. Returns how many were queued."""
        with self._lock:
            shard = self._shard(shard_id)
            shard.lost_since = None
            unavailable = set(self._unavailable)
        queued = 0
        for player in self._players_of(shard_id):
            voice = player.voice
            if voice is None or player.destroyed or player.guild_id in unavailable:
                continue
            gen = voice.pending_rejoin()
            if gen is not None:
                self.enqueue(player, gen)
                queued += 1
            elif (
                voice.channel_id is not None
                and not player.connected
                # no shard_lost came, but Lavalink says this voice connection is closed
                and self.lose(player, "voice closed while the shard was away")
            ):
                queued += 1
        return queued

    # ------------------------------------------------------------------ one guild

    def lose(
        self, player: Player, reason: str, *, code: Optional[int] = None, backoff: bool = False
    ) -> bool:
        """Mark ``player`` voice-lost (any thread, the reader's included: state and queues
        only) and plan its rejoin: now if its shard is up, after a backoff for 4021, on the
        shard's next READY/RESUMED if it is down, on GUILD_CREATE if the guild is unavailable.
        False if there was nothing to rejoin."""
        voice = player.voice
        if voice is None:
            return False
        marked = voice.mark_lost(reason, code)
        if marked is None:
            return False
        channel, gen, first = marked
        snapshot = player._voice_lost_now()
        if first:
            voice.set_replay(gen, snapshot)
        client = self._client
        shard_id = self.shard_of(player.guild_id)
        client._emit(
            VoiceLostEvent(
                player.guild_id, channel, reason, code=code, shard_id=shard_id, node=player.node
            )
        )
        client._inactivity.update(player)
        with self._lock:
            shard = self._shards.get(shard_id)
            waiting = (shard is not None and shard.lost_since is not None) or (
                player.guild_id in self._unavailable
            )
        if waiting:
            return True
        if backoff:
            client._workers.call_later(self.rate_limit_backoff, partial(self.enqueue, player, gen))
        else:
            self.enqueue(player, gen)
        return True

    def enqueue(self, player: Player, gen: int) -> None:
        """Queue a rejoin on its shard's paced worker (cheap; any thread)."""
        shard_id = self.shard_of(player.guild_id)
        with self._lock:
            shard = self._shard(shard_id)
            if shard.lost_since is not None:
                return  # the shard's READY/RESUMED queues it again
            shard.queue.append((player, gen))
            if shard.draining:
                return
        self.wake(shard_id)

    def wake(self, shard_id: int) -> None:
        """Start a fresh drain of the shard's queue (pacing changed, or none running)."""
        with self._lock:
            shard = self._shard(shard_id)
            shard.drain += 1
            shard.draining = True
            token = shard.drain
        self._client._call_soon(partial(self._drain, shard_id, token))

    def _drain(self, shard_id: int, token: int) -> None:
        """Worker: send the queued OP 4s as the bucket allows; sleep on a timer, not a thread."""
        client = self._client
        while not client.closed:
            with self._lock:
                shard = self._shards.get(shard_id)
                if shard is None or shard.drain != token:
                    return
                queue = shard.queue
                while queue and not _wants(*queue[0]):
                    queue.popleft()
                if shard.lost_since is not None or not queue:
                    shard.draining = False
                    return
                now = time.monotonic()
                bucket = shard.bucket
                if bucket is None:
                    bucket = shard.bucket = TokenBucket(self.burst, self.per_second, now)
                bucket.burst, bucket.per_second = self.burst, self.per_second
                wait = bucket.take(now)
                if wait > 0:
                    if math.isfinite(wait):
                        client._workers.call_later(wait, partial(self._drain, shard_id, token))
                    return  # still draining: the timer (or a wake) goes on
                player, gen = queue.popleft()
            self._rejoin(player, gen)

    def _rejoin(self, player: Player, gen: int) -> None:
        """Worker: the fresh OP 4 for one guild, and its one deadline."""
        voice = player.voice
        args = voice.begin_rejoin(gen) if voice is not None else None
        if args is None:
            return
        channel, deaf, mute = args
        client = self._client
        log.info("guild %s: rejoining voice channel %s", player.guild_id, channel)
        try:
            client._send_op4(player.guild_id, channel, deaf, mute)
        except Exception:
            log.exception("guild %s: the gateway hook raised", player.guild_id)
        client._workers.call_later(self.rejoin_timeout, partial(self._expire, player, gen))

    def _expire(self, player: Player, gen: int) -> None:
        """Worker: the rejoin's deadline passed; if it is not done, leave and destroy."""
        voice = player.voice
        ended = voice.rejoin_expired(gen) if voice is not None else None
        if ended is None or voice is None:
            return
        channel, why = ended
        client = self._client
        reason = f"{why} within {self.rejoin_timeout} s of rejoining channel {channel}"
        log.warning("guild %s: rejoin failed: %s", player.guild_id, reason)
        client._emit(VoiceRejoinFailedEvent(player.guild_id, channel, reason, node=player.node))
        try:
            client._send_op4(player.guild_id, None, voice.self_deaf, voice.self_mute)
        except Exception:
            log.exception("guild %s: the gateway hook raised", player.guild_id)
        client._placement.destroy(player, "rejoin failed", timeout=None)

    def rejoined(
        self, player: Player, info: PlayerInfo, channel: int, since: float, replay: Any
    ) -> None:
        """Lavalink accepted the voice state of a rejoin (the voice PATCH's thread): replay
        and report on a worker."""
        self._client._call_soon(partial(self._after_rejoin, player, info, channel, since, replay))

    def _after_rejoin(
        self, player: Player, info: PlayerInfo, channel: int, since: float, replay: Any
    ) -> None:
        replayed = False
        if replay is not None and info.track is None:
            replayed = self._replay(player, replay)
        client = self._client
        log.info("guild %s: voice rejoined (track replayed: %s)", player.guild_id, replayed)
        client._emit(
            VoiceRejoinedEvent(
                player.guild_id,
                channel,
                replayed,
                max(0.0, time.monotonic() - since),
                node=player.node,
            )
        )
        client._inactivity.update(player)

    def _replay(self, player: Player, snapshot: Any) -> bool:
        """Play the track Lavalink dropped while the voice was lost, at its position then
        (under the call lock; not if anything else was played or the track really ended)."""
        track, position, paused, end_time, end_at_loss = snapshot
        if track is None:
            return False
        timeout = self._client.call_timeout
        try:
            with player._call(timeout):
                if player.destroyed or player._track is not None:
                    return False  # Lavalink has a track (ours, or one played since)
                last = player._last_end
                if (
                    last is not None
                    and last is not end_at_loss
                    and (
                        last.reason != "cleanup"
                        or last.track.info.identifier != track.info.identifier
                    )
                ):
                    # since the loss our track finished, was stopped or replaced, or another
                    # one played and ended: nothing to bring back
                    return False
                update = UpdatePlayer(
                    track=UpdatePlayerTrack(
                        encoded=track.encoded,
                        user_data=dict(track.user_data) if track.user_data else UNSET,
                    ),
                    position=position,
                    paused=paused,
                )
                if end_time is not None and end_time > position:
                    update.end_time = end_time
                update.validate()
                player._update_locked(update, timeout=timeout, play=True)
                return True
        except LavasyncError as exc:
            log.warning("guild %s: replaying the track failed: %s", player.guild_id, exc)
            return False

    def voice_error(self, player: Player, event: WebSocketClosedEvent, meaning: str) -> None:
        """A voice close code a rejoin cannot fix (reader thread: queue the event only)."""
        self._client._emit(
            VoiceErrorEvent(
                player.guild_id,
                event.code,
                meaning,
                event.reason,
                event.by_remote,
                node=player.node,
            )
        )

    # ------------------------------------------------------------------ guild dispatches

    def guild_unavailable(self, guild_id: int) -> None:
        """GUILD_DELETE with ``unavailable``: an outage; voice-lost until GUILD_CREATE."""
        with self._lock:
            self._unavailable.add(guild_id)
        player = self._client.get_player(guild_id)
        if player is not None and not player.destroyed:
            self.lose(player, "guild unavailable")

    def guild_available(self, guild_id: int) -> None:
        """GUILD_CREATE: a guild back from an outage rejoins."""
        with self._lock:
            self._unavailable.discard(guild_id)
        player = self._client.get_player(guild_id)
        voice = player.voice if player is not None else None
        if player is None or voice is None:
            return
        gen = voice.pending_rejoin()
        if gen is not None:
            self.enqueue(player, gen)

    def guild_removed(self, guild_id: int) -> None:
        """GUILD_DELETE without ``unavailable``: the bot left or was removed."""
        with self._lock:
            self._unavailable.discard(guild_id)


def _wants(player: Player, gen: int) -> bool:
    voice = player.voice
    return voice is not None and voice.wants_rejoin(gen)
