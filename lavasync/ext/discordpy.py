"""lavasync inside a discord.py 2.x bot (``pip install lavasync[discordpy]``).

discord.py is asyncio; lavasync blocks. This module keeps them apart::

    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    client = lavasync.Client(user_id=BOT_ID)         # no send_gateway: the bridge is the hook
    bridge = lavasync.ext.discordpy.attach(bot, client)

    @bot.command()
    async def play(ctx, query):
        vc = await ctx.author.voice.channel.connect(cls=LavasyncVoice)
        result = await bridge.run(client.load, query)
        await bridge.run(vc.player.play, result.tracks[0])

    @bot.event
    async def on_lavasync_track_end(event): ...

* :class:`LavasyncVoice` is a :class:`discord.VoiceProtocol`: discord.py hands it the bot's own
  VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE, which it feeds to the client at once (those calls
  never block); ``connect``/``disconnect`` run lavasync's blocking calls in an executor, never
  on the loop (the loop must deliver the very dispatches they wait for).
* ``send_gateway`` (set on the client by :func:`attach`) may be called from any thread: it
  schedules the voice state change on the bot's loop with
  :func:`asyncio.run_coroutine_threadsafe` and, off the loop, waits for it to be written.
* Shards: ``disconnect``/``shard_disconnect`` → ``client.shard_lost``; ``ready``/``resumed``
  (and their ``shard_`` forms) → ``client.shard_ready`` (the
  listeners need ``bot.add_listener``, i.e. :class:`discord.ext.commands.Bot`; with a plain
  :class:`discord.Client`, call :meth:`DiscordPyBridge.on_shard_disconnect` and friends from your
  own handlers).
* Every lavasync event is re-dispatched on the bot's loop as ``lavasync_<name>``
  (``TrackEndEvent`` → ``on_lavasync_track_end``).

Tried with discord.py 2.7.1 (see the project notes for forks). Thread-safe: ``send_gateway``
from any thread; everything else is called on the bot's loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import Any, Optional

import discord

from ..client import Client
from ..errors import LavasyncError
from ..models.events import Event
from ..player import Player
from ._bridge import LoopBridge, snake_name

__all__ = ["DiscordPyBridge", "LavasyncVoice", "attach", "event_name"]

log = logging.getLogger("lavasync.ext.discordpy")

_BRIDGES: weakref.WeakKeyDictionary[discord.Client, DiscordPyBridge] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def event_name(event: Event) -> str:
    """``TrackEndEvent`` → ``lavasync_track_end``: the name a lavasync event is dispatched as."""
    return "lavasync_" + snake_name(event)


class DiscordPyBridge(LoopBridge):
    """Joins one discord.py bot and one lavasync Client. Create it with :func:`attach`.

    Thread-safe: :meth:`send_gateway` may be called from any thread; the ``on_*`` methods run
    on the bot's loop.
    """

    library = "discord.py"

    def __init__(
        self,
        bot: discord.Client,
        client: Client,
        *,
        dispatch_events: bool = True,
        send_timeout: float = 10.0,
    ) -> None:
        if not isinstance(bot, discord.Client):
            raise ValueError("bot must be a discord.Client (or commands.Bot)")
        self.bot = bot
        super().__init__(client, dispatch_events=dispatch_events, send_timeout=send_timeout)
        add_listener = getattr(bot, "add_listener", None)
        if add_listener is not None:
            sharded = isinstance(bot, discord.AutoShardedClient)
            if sharded:
                add_listener(self.on_shard_disconnect, "on_shard_disconnect")
                add_listener(self.on_shard_ready, "on_shard_ready")
                add_listener(self.on_shard_ready, "on_shard_resumed")
            else:
                add_listener(self._on_disconnect, "on_disconnect")
                add_listener(self._on_ready, "on_ready")
                add_listener(self._on_ready, "on_resumed")
            add_listener(self.on_voice_state_update, "on_voice_state_update")
            add_listener(self.on_guild_available, "on_guild_available")
            add_listener(self.on_guild_remove, "on_guild_remove")
            add_listener(self.on_guild_unavailable, "on_guild_unavailable")
            add_listener(self.on_guild_channel_delete, "on_guild_channel_delete")

    # ------------------------------------------------------------------ loop and threads

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The bot's event loop (known once the bot started, or once the bridge ran on it)."""
        if self._loop is not None:
            return self._loop
        try:
            loop = self.bot.loop
        except AttributeError:
            loop = None
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise LavasyncError("the discord.py bot is not running yet: no event loop to use")
        self._loop = loop
        return loop

    # ------------------------------------------------------------------ lavasync → Discord

    async def _voice_update(
        self, guild_id: int, channel_id: Optional[int], self_mute: bool, self_deaf: bool
    ) -> None:
        guild = self.bot.get_guild(guild_id)
        if channel_id is not None and guild is not None:
            self._ensure_protocol(guild, channel_id)
        if guild is not None:
            channel = None if channel_id is None else discord.Object(id=channel_id)
            await guild.change_voice_state(
                channel=channel, self_mute=self_mute, self_deaf=self_deaf
            )
            return
        ws = self.bot._connection._get_websocket(guild_id)
        await ws.voice_state(guild_id, channel_id, self_mute, self_deaf)

    def _ensure_protocol(self, guild: discord.Guild, channel_id: int) -> None:
        """Voice answers reach lavasync only through a registered voice protocol: a rejoin
        lavasync starts on its own (after a shard loss, say) gets one."""
        state = self.bot._connection
        if state._get_voice_client(guild.id) is not None:
            return
        channel = guild.get_channel(channel_id)
        if not isinstance(channel, (discord.VoiceChannel, discord.StageChannel)):
            return
        state._add_voice_client(guild.id, LavasyncVoice(self.bot, channel))

    def _deliver(self, event: Event) -> None:
        """On the loop: ``bot.dispatch("lavasync_<name>", event)``."""
        self.bot.dispatch(event_name(event), event)

    # ------------------------------------------------------------------ Discord → lavasync

    def shard_of(self, guild_id: int) -> int:
        count = self.bot.shard_count or 1
        return (int(guild_id) >> 22) % count

    def feed(self, kind: str, data: dict[str, Any]) -> None:
        """Hand a dispatch to the client, with the shard of its guild (if it names one)."""
        dispatch = {"op": 0, "t": kind, "d": data}
        guild = data.get("guild_id", data.get("id") if kind.startswith("GUILD_") else None)
        shard = None if guild is None else self.shard_of(int(guild))
        self.client.handle_gateway(dispatch, shard_id=shard)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self._note_loop()
        self.client.shard_lost(shard_id)

    async def on_shard_ready(self, shard_id: int) -> None:
        self._note_loop()
        self.client.shard_ready(shard_id)

    async def _on_disconnect(self) -> None:
        await self.on_shard_disconnect(self.bot.shard_id or 0)

    async def _on_ready(self) -> None:
        await self.on_shard_ready(self.bot.shard_id or 0)

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Other users' voice states (the bot's own come through :class:`LavasyncVoice`): they
        keep ``player.listeners`` current."""
        me = self.bot.user
        if me is not None and member.id == me.id:
            return
        self.feed("VOICE_STATE_UPDATE", _voice_state(member.guild.id, member.id, member, after))

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """GUILD_CREATE again (after an outage, or at start): who is in which voice channel."""
        states = []
        for channel in [*guild.voice_channels, *guild.stage_channels]:
            for user_id, state in channel.voice_states.items():
                states.append(_voice_state(guild.id, user_id, guild.get_member(user_id), state))
        self.feed("GUILD_CREATE", {"id": str(guild.id), "voice_states": states})

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.feed("GUILD_DELETE", {"id": str(guild.id)})

    async def on_guild_unavailable(self, guild: discord.Guild) -> None:
        self.feed("GUILD_DELETE", {"id": str(guild.id), "unavailable": True})

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        self.feed("CHANNEL_DELETE", {"id": str(channel.id), "guild_id": str(channel.guild.id)})


def _voice_state(
    guild_id: int, user_id: int, member: Optional[discord.Member], state: discord.VoiceState
) -> dict[str, Any]:
    """A voice state as Discord sends it, from discord.py's objects."""
    channel = state.channel
    data: dict[str, Any] = {
        "guild_id": str(guild_id),
        "channel_id": None if channel is None else str(channel.id),
        "user_id": str(user_id),
        "session_id": state.session_id,
    }
    if member is not None:
        data["member"] = {"user": {"id": str(user_id), "bot": member.bot}}
    return data


def attach(bot: discord.Client, client: Client, **options: Any) -> DiscordPyBridge:
    """Wire ``client`` into ``bot`` (once per bot); returns the bridge."""
    with _LOCK:
        if bot in _BRIDGES:
            raise ValueError("a lavasync Client is already attached to this bot")
        bridge = DiscordPyBridge(bot, client, **options)
        _BRIDGES[bot] = bridge
    return bridge


def bridge_of(bot: discord.Client) -> DiscordPyBridge:
    with _LOCK:
        bridge = _BRIDGES.get(bot)
    if bridge is None:
        raise LavasyncError("call lavasync.ext.discordpy.attach(bot, client) first")
    return bridge


class LavasyncVoice(discord.VoiceProtocol):
    """discord.py's voice protocol backed by a lavasync player:
    ``await channel.connect(cls=LavasyncVoice)``. :attr:`player` is the lavasync Player."""

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable) -> None:
        super().__init__(client, channel)
        self.bridge = bridge_of(client)
        guild = getattr(channel, "guild", None)
        if guild is None:
            raise ValueError("lavasync plays in guild voice channels only")
        self.guild_id: int = guild.id

    @property
    def lavasync(self) -> Client:
        return self.bridge.client

    @property
    def player(self) -> Player:
        """The guild's lavasync player (created on first use)."""
        return self.lavasync.player(self.guild_id)

    async def on_voice_state_update(self, data: Any, /) -> None:
        self.bridge._note_loop()
        self.bridge.feed("VOICE_STATE_UPDATE", dict(data))
        if data.get("channel_id") is None:
            # out of voice (left, kicked, channel gone): discord.py may connect anew; a rejoin
            # lavasync starts itself registers a fresh protocol through send_gateway
            self.cleanup()
        elif data.get("channel_id") is not None:
            channel = self.client.get_channel(int(data["channel_id"]))
            if channel is not None:
                self.channel = channel  # type: ignore[assignment]

    async def on_voice_server_update(self, data: Any, /) -> None:
        self.bridge._note_loop()
        self.bridge.feed("VOICE_SERVER_UPDATE", dict(data))

    async def connect(
        self, *, timeout: float, reconnect: bool, self_deaf: bool = False, self_mute: bool = False
    ) -> None:
        channel_id = self.channel.id  # type: ignore[attr-defined]
        await self.bridge.run(
            self.player.connect,
            channel_id,
            self_deaf=self_deaf,
            self_mute=self_mute,
            timeout=timeout,
        )

    async def disconnect(self, *, force: bool = False) -> None:
        player = self.lavasync.get_player(self.guild_id)
        try:
            if player is not None:
                await self.bridge.run(player.disconnect)
            else:
                await self.bridge._voice_update(self.guild_id, None, False, False)
        finally:
            self.cleanup()
