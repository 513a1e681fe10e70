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
  ``ShardResumedEvent`` → ``client.shard_ready`` (when the client has them).
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

import asyncio
import concurrent.futures
import functools
import logging
import re
import threading
from typing import Any, Callable, Optional, TypeVar

import hikari

from ..client import Client
from ..errors import LavasyncError
from ..models.events import Event
from ..player import Player
from .gateway import _takes_shard_id

__all__ = ["HikariBridge", "LavasyncEvent", "attach", "event_name"]

log = logging.getLogger("lavasync.ext.hikari")

T = TypeVar("T")
_LOCK = threading.Lock()
#: Dispatches the shard events already report (fed twice, a rejoin would run twice).
_SKIP = frozenset({"READY", "RESUMED"})


def event_name(event: Event) -> str:
    """``TrackEndEvent`` → ``track_end``."""
    base = type(event).__name__
    if base.endswith("Event"):
        base = base[: -len("Event")]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


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


class HikariBridge:
    """Joins one hikari ``GatewayBot`` and one lavasync Client. Create it with :func:`attach`.

    Thread-safe: :meth:`send_gateway` may be called from any thread; listeners run on the loop.
    """

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
        if not isinstance(client, Client):
            raise ValueError("client must be a lavasync.Client")
        if client.send_gateway is not None:
            raise ValueError(
                "this lavasync Client already has a send_gateway hook; the bridge sends OP 4 "
                "through hikari itself: create the Client without send_gateway"
            )
        self.bot = bot
        self.client = client
        self.send_timeout = float(send_timeout)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._takes_shard = _takes_shard_id(client)
        client.send_gateway = self.send_gateway
        if dispatch_events:
            client.add_listener(Event, self._forward_event)
        subscribe = bot.event_manager.subscribe
        subscribe(hikari.StartingEvent, self._on_starting)
        subscribe(hikari.ShardPayloadEvent, self._on_payload)
        subscribe(hikari.ShardDisconnectedEvent, self._on_shard_disconnected)
        subscribe(hikari.ShardReadyEvent, self._on_shard_ready)
        subscribe(hikari.ShardResumedEvent, self._on_shard_ready)

    # ------------------------------------------------------------------ loop and threads

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            raise LavasyncError("the hikari bot is not running yet: no event loop to use")
        return loop

    def _note_loop(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking lavasync call in the loop's executor and await its result."""
        self._note_loop()
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(fn, *args, **kwargs)
        )

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

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    # ------------------------------------------------------------------ lavasync → Discord

    def send_gateway(self, guild_id: int, payload: dict[str, Any]) -> None:
        """The client's hook: OP 4 through hikari's shard for that guild."""
        d = payload.get("d") or {}
        raw_channel = d.get("channel_id")
        channel_id = None if raw_channel is None else int(raw_channel)
        loop = self.loop
        coro = self.bot.update_voice_state(
            int(guild_id),
            channel_id,
            self_mute=bool(d.get("self_mute")),
            self_deaf=bool(d.get("self_deaf")),
        )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        if self._on_loop_thread():
            return  # never wait on the loop for the loop
        try:
            future.result(self.send_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise LavasyncError(
                f"guild {guild_id}: hikari did not send the voice state update in "
                f"{self.send_timeout} s"
            ) from None

    def _forward_event(self, event: Event) -> None:
        """Dispatcher thread: hand the event to the bot's loop as a :class:`LavasyncEvent`."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        wrapped = LavasyncEvent(self.bot, event)
        try:
            loop.call_soon_threadsafe(self._dispatch, wrapped)
        except RuntimeError:
            pass  # the loop closed meanwhile

    def _dispatch(self, wrapped: LavasyncEvent) -> None:
        self.bot.event_manager.dispatch(wrapped)

    # ------------------------------------------------------------------ Discord → lavasync

    async def _on_starting(self, event: hikari.StartingEvent) -> None:
        self._note_loop()

    async def _on_payload(self, event: hikari.ShardPayloadEvent) -> None:
        self._note_loop()
        name = event.name.upper()
        if name in _SKIP:
            return
        dispatch = {"op": 0, "t": name, "d": dict(event.payload)}
        if self._takes_shard:
            handle: Callable[..., Any] = self.client.handle_gateway  # takes shard_id
            handle(dispatch, shard_id=event.shard.id)
        else:
            self.client.handle_gateway(dispatch)

    async def _on_shard_disconnected(self, event: hikari.ShardDisconnectedEvent) -> None:
        self._note_loop()
        lost = getattr(self.client, "shard_lost", None)
        if lost is not None:
            lost(event.shard.id)

    async def _on_shard_ready(self, event: hikari.ShardStateEvent) -> None:
        self._note_loop()
        ready = getattr(self.client, "shard_ready", None)
        if ready is not None:
            ready(event.shard.id)


def attach(bot: hikari.GatewayBot, client: Client, **options: Any) -> HikariBridge:
    """Wire ``client`` into ``bot`` (once per bot); returns the bridge."""
    with _LOCK:
        listeners = bot.event_manager.get_listeners(hikari.ShardPayloadEvent)
        if any(isinstance(getattr(cb, "__self__", None), HikariBridge) for cb in listeners):
            raise ValueError("a lavasync Client is already attached to this bot")
        return HikariBridge(bot, client, **options)
