"""lavasync inside a hikari bot (``pip install lavasync[hikari]``).

hikari is asyncio; lavasync blocks. This module keeps them apart::

    intents = hikari.Intents.GUILDS | hikari.Intents.GUILD_VOICE_STATES
    bot = hikari.GatewayBot(TOKEN, intents=intents)
    client = lavasync.Client(user_id=BOT_ID)           # no send_gateway: the bridge is the hook
    bridge = lavasync.ext.hikari.attach(bot, client)

    @bot.listen(hikari.GuildMessageCreateEvent)
    async def on_message(event):
        player = await bridge.connect(event.guild_id, channel_id)   # in an executor
        result = await bridge.run(client.load, "ytsearch:...")
        await bridge.run(player.play, result.tracks[0])

    @bot.listen(lavasync.ext.hikari.LavasyncEvent)
    async def on_lavasync(event):
        if event.name == "track_end": ...

* Dispatches in: every raw dispatch (hikari's ``ShardPayloadEvent``) goes to
  ``client.handle_gateway`` with the shard's id (voice updates, guild and channel deletes); the
  calls never block the loop.
* OP 4 out: ``send_gateway`` (set on the client) may be called from any thread; it schedules
  ``bot.update_voice_state`` on the bot's loop (hikari picks the guild's shard) and, off the loop,
  waits for it to be written.
* Shards: ``ShardDisconnectedEvent`` → ``client.shard_lost``; ``ShardReadyEvent`` /
  ``ShardResumedEvent`` → ``client.shard_ready``.
* Every lavasync event is re-dispatched on the bot as a :class:`LavasyncEvent` (``.name`` like
  ``track_end``, ``.event`` the lavasync event).
* Blocking calls (``player.connect``, ``play``...) go through :meth:`HikariBridge.run` (the loop's
  executor): a blocking call on the loop would deadlock, the loop must deliver the dispatches it
  waits for.

hikari's own ``VoiceConnection`` interface is not used: hikari's voice component sends OP 4 and
waits for the updates itself, while lavasync's player must own the join (its timeouts, its
leave-on-failure, its rejoins after a shard loss). Tried with hikari 2.7.0.

Thread-safe: ``send_gateway`` from any thread; everything else runs on the bot's loop.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

import hikari

from ..client import Client
from ..models.events import Event
from ..player import Player
from ._bridge import LoopBridge, snake_name

__all__ = ["HikariBridge", "LavasyncEvent", "attach", "event_name"]

log = logging.getLogger("lavasync.ext.hikari")

_LOCK = threading.Lock()
#: Dispatches the shard events already report (fed twice, a rejoin would run twice).
_SKIP = frozenset({"READY", "RESUMED"})


def event_name(event: Event) -> str:
    """``TrackEndEvent`` → ``track_end``."""
    return snake_name(event)


class LavasyncEvent(hikari.Event):
    """A lavasync event on hikari's event manager: ``name`` (``track_end``...), ``event``."""

    __slots__ = ("_app", "event", "name")

    def __init__(self, app: hikari.RESTAware, event: Event) -> None:
        self._app = app
        self.event = event
        self.name = event_name(event)

    @property
    def app(self) -> hikari.RESTAware:
        return self._app


class HikariBridge(LoopBridge):
    """Joins one hikari ``GatewayBot`` and one lavasync Client. Create it with :func:`attach`.

    Thread-safe: :meth:`send_gateway` may be called from any thread; listeners run on the loop.
    """

    library = "hikari"

    def __init__(
        self,
        bot: hikari.GatewayBot,
        client: Client,
        *,
        dispatch_events: bool = True,
        send_timeout: float = 10.0,
    ) -> None:
        if not isinstance(bot, hikari.GatewayBot):
            raise ValueError("bot must be a hikari.GatewayBot")
        self.bot = bot
        super().__init__(client, dispatch_events=dispatch_events, send_timeout=send_timeout)
        subscribe = bot.event_manager.subscribe
        subscribe(hikari.StartingEvent, self._on_starting)
        subscribe(hikari.ShardPayloadEvent, self._on_payload)
        subscribe(hikari.ShardDisconnectedEvent, self._on_shard_disconnected)
        subscribe(hikari.ShardReadyEvent, self._on_shard_ready)
        subscribe(hikari.ShardResumedEvent, self._on_shard_ready)

    async def connect(
        self,
        guild_id: int,
        channel_id: int,
        *,
        self_deaf: bool = False,
        self_mute: bool = False,
        timeout: float = 10.0,
    ) -> Player:
        """Join a voice channel with the guild's lavasync player (off the loop); returns it."""
        player = self.client.player(int(guild_id))
        await self.run(
            player.connect,
            int(channel_id),
            self_deaf=self_deaf,
            self_mute=self_mute,
            timeout=timeout,
        )
        return player

    async def disconnect(self, guild_id: int) -> None:
        """Leave the guild's voice channel and destroy its player (off the loop)."""
        player = self.client.get_player(int(guild_id))
        if player is not None:
            await self.run(player.disconnect)
        else:
            await self.bot.update_voice_state(int(guild_id), None)

    # ------------------------------------------------------------------ lavasync → Discord

    async def _voice_update(
        self, guild_id: int, channel_id: Optional[int], self_mute: bool, self_deaf: bool
    ) -> None:
        await self.bot.update_voice_state(
            guild_id, channel_id, self_mute=self_mute, self_deaf=self_deaf
        )

    def _deliver(self, event: Event) -> None:
        """On the loop: dispatch the event as a :class:`LavasyncEvent`."""
        self.bot.event_manager.dispatch(LavasyncEvent(self.bot, event))

    # ------------------------------------------------------------------ Discord → lavasync

    async def _on_starting(self, event: hikari.StartingEvent) -> None:
        self._note_loop()

    async def _on_payload(self, event: hikari.ShardPayloadEvent) -> None:
        self._note_loop()
        name = event.name.upper()
        if name in _SKIP:
            return
        dispatch = {"op": 0, "t": name, "d": dict(event.payload)}
        self.client.handle_gateway(dispatch, shard_id=event.shard.id)

    async def _on_shard_disconnected(self, event: hikari.ShardDisconnectedEvent) -> None:
        self._note_loop()
        self.client.shard_lost(event.shard.id)

    async def _on_shard_ready(self, event: hikari.ShardStateEvent) -> None:
        self._note_loop()
        self.client.shard_ready(event.shard.id)


def attach(bot: hikari.GatewayBot, client: Client, **options: Any) -> HikariBridge:
    """Wire ``client`` into ``bot`` (once per bot); returns the bridge."""
    with _LOCK:
        listeners = bot.event_manager.get_listeners(hikari.ShardPayloadEvent)
        if any(isinstance(getattr(cb, "__self__", None), HikariBridge) for cb in listeners):
            raise ValueError("a lavasync Client is already attached to this bot")
        return HikariBridge(bot, client, **options)
