"""Who is in which voice channel, and the inactivity helper built on it.

:class:`VoicePresence` keeps, per guild, the voice channel of every user that is not a bot, from
GUILD_CREATE's ``voice_states`` and every VOICE_STATE_UPDATE (the host feeds them to
``Client.handle_gateway``; they need the ``GUILD_VOICE_STATES`` intent). A user is a bot when any
user object seen for it says ``"bot": true`` (GUILD_CREATE ``members``, a voice state's
``member``); the bot itself is never a listener.

:class:`Inactivity` leaves and destroys players alone in their channel, or idle (no track), for
``Client(leave_after_alone=..., leave_after_idle=...)`` seconds. Each player has at most one
pending deadline (a worker timer), re-armed only when a condition starts: nothing wakes up
periodically. Updates are cheap and safe on any thread (the node's reader included).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Optional

from .models.events import PlayerInactiveEvent

if TYPE_CHECKING:
    from .client import Client
    from .player import Player

__all__ = ["Inactivity", "VoicePresence"]

log = logging.getLogger("lavasync.presence")


def _id(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _user_of(state: Mapping[str, Any]) -> tuple[Optional[int], Optional[bool]]:
    """(user id, bot flag or None when unknown) of a voice state or a member object."""
    member = state.get("member")
    user_obj = state.get("user")
    if not isinstance(user_obj, Mapping) and isinstance(member, Mapping):
        user_obj = member.get("user")
    user = _id(state.get("user_id"))
    bot: Optional[bool] = None
    if isinstance(user_obj, Mapping):
        if user is None:
            user = _id(user_obj.get("id"))
        flag = user_obj.get("bot")
        if isinstance(flag, bool):
            bot = flag
    return user, bot


class VoicePresence:
    """Voice channels of the users of every guild the gateway told about. Thread-safe."""

    def __init__(self, bot_user_id: int) -> None:
        self._me = bot_user_id
        self._lock = threading.Lock()
        self._channels: dict[int, dict[int, int]] = {}  # guild -> user -> channel
        self._bots: set[int] = {bot_user_id}

    def update(self, guild_id: int, state: Mapping[str, Any]) -> None:
        """A VOICE_STATE_UPDATE's ``d`` (any user)."""
        user, bot = _user_of(state)
        if user is None:
            return
        channel = _id(state.get("channel_id"))
        with self._lock:
            self._learn(user, bot)
            self._set(guild_id, user, channel)

    def guild_create(self, guild_id: int, data: Mapping[str, Any]) -> None:
        """GUILD_CREATE: its ``members`` tell who is a bot, its ``voice_states`` who is where."""
        members = data.get("members")
        states = data.get("voice_states")
        with self._lock:
            if isinstance(members, list):
                for member in members:
                    if isinstance(member, Mapping):
                        self._learn(*_user_of(member))
            self._channels.pop(guild_id, None)  # the full list replaces what we knew
            if isinstance(states, list):
                for state in states:
                    if not isinstance(state, Mapping):
                        continue
                    user, bot = _user_of(state)
                    if user is None:
                        continue
                    self._learn(user, bot)
                    self._set(guild_id, user, _id(state.get("channel_id")))

    def forget_guild(self, guild_id: int) -> None:
        with self._lock:
            self._channels.pop(guild_id, None)

    def channel_deleted(self, guild_id: int, channel_id: int) -> None:
        with self._lock:
            users = self._channels.get(guild_id)
            if users:
                for user in [u for u, c in users.items() if c == channel_id]:
                    del users[user]

    def listeners(self, guild_id: int, channel_id: int) -> frozenset[int]:
        """Users (bots excluded) in ``channel_id``."""
        with self._lock:
            users = self._channels.get(guild_id)
            if not users:
                return frozenset()
            return frozenset(u for u, c in users.items() if c == channel_id and u not in self._bots)

    def _learn(self, user: Optional[int], bot: Optional[bool]) -> None:
        if user is not None and bot:
            self._bots.add(user)

    def _set(self, guild_id: int, user: int, channel: Optional[int]) -> None:
        if channel is None:
            users = self._channels.get(guild_id)
            if users is not None:
                users.pop(user, None)
        else:
            self._channels.setdefault(guild_id, {})[user] = channel


class _Watch:
    __slots__ = ("alone_since", "armed_at", "idle_since")

    def __init__(self) -> None:
        self.alone_since: Optional[float] = None
        self.idle_since: Optional[float] = None
        self.armed_at: Optional[float] = None  # when the pending timer fires, if any


class Inactivity:
    """Leaves players alone or idle for too long. Thread-safe; off when both limits are None."""

    def __init__(self, client: Client, alone: Optional[float], idle: Optional[float]) -> None:
        self._client = client
        self.alone = alone
        self.idle = idle
        self._lock = threading.Lock()
        self._watch: dict[int, _Watch] = {}

    @property
    def enabled(self) -> bool:
        return self.alone is not None or self.idle is not None

    def update(self, player: Player) -> None:
        """Re-evaluate ``player`` after something changed (its channel, its listeners, its
        track, a voice loss). Cheap: no I/O, at most one timer armed."""
        if not self.enabled:
            return
        now = time.monotonic()
        in_channel = (
            not player.destroyed and player.channel_id is not None and not player.voice_lost
        )
        alone = in_channel and self.alone is not None and not player.listeners
        idle = in_channel and self.idle is not None and player.track is None
        with self._lock:
            watch = self._watch.get(player.guild_id)
            if watch is None:
                if not (alone or idle):
                    return
                watch = self._watch[player.guild_id] = _Watch()
            if not alone:
                watch.alone_since = None
            elif watch.alone_since is None:
                watch.alone_since = now
            if not idle:
                watch.idle_since = None
            elif watch.idle_since is None:
                watch.idle_since = now
            due = self._due(watch)
            if due is None:
                if watch.armed_at is None:
                    del self._watch[player.guild_id]
                return
            if watch.armed_at is not None and watch.armed_at <= due:
                return  # the pending timer fires first and re-arms
            watch.armed_at = due
        self._client._workers.call_later(max(0.0, due - now), partial(self._check, player))

    def forget(self, guild_id: int) -> None:
        with self._lock:
            self._watch.pop(guild_id, None)

    def _due(self, watch: _Watch) -> Optional[float]:
        dues = []
        if watch.alone_since is not None and self.alone is not None:
            dues.append(watch.alone_since + self.alone)
        if watch.idle_since is not None and self.idle is not None:
            dues.append(watch.idle_since + self.idle)
        return min(dues) if dues else None

    def _check(self, player: Player) -> None:
        """Worker: the earliest deadline passed; leave if a condition still holds."""
        with self._lock:
            watch = self._watch.get(player.guild_id)
            if watch is None:
                return
            watch.armed_at = None
        self.update(player)  # conditions may have ended (or begun) meanwhile
        now = time.monotonic()
        reason = None
        after = 0.0
        with self._lock:
            watch = self._watch.get(player.guild_id)
            if watch is None or player.destroyed:
                return
            if (
                watch.alone_since is not None
                and self.alone is not None
                and now >= watch.alone_since + self.alone
            ):
                reason, after = "alone", self.alone
            elif (
                watch.idle_since is not None
                and self.idle is not None
                and now >= watch.idle_since + self.idle
            ):
                reason, after = "idle", self.idle
            if reason is None:
                return
            del self._watch[player.guild_id]
        client = self._client
        log.info("guild %s: leaving, %s for %s s", player.guild_id, reason, after)
        client._emit(PlayerInactiveEvent(player.guild_id, reason, after, node=player.node))
        voice = player.voice
        try:
            if voice is not None:
                voice.leave()
            else:
                client._send_op4(player.guild_id, None, False, False)
        except Exception:
            log.exception("guild %s: the gateway hook raised", player.guild_id)
        client._placement.destroy(player, "inactive", timeout=None)
