"""What the asyncio bridges (discord.py, hikari) share.

lavasync blocks; an asyncio bot must not. A bridge is the client's ``send_gateway`` hook (it
schedules the library's voice-state update on the bot's loop from any thread and, off the loop,
waits for it), runs blocking lavasync calls in the loop's executor, and hands lavasync events
back to the loop. Each library's module supplies how an OP 4 is written and how an event is
delivered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
from typing import Any, Callable, ClassVar, Optional, TypeVar

from ..client import Client
from ..errors import LavasyncError
from ..models.events import Event

T = TypeVar("T")


def snake_name(event: Event) -> str:
    """``TrackEndEvent`` → ``track_end``."""
    base = type(event).__name__
    if base.endswith("Event"):
        base = base[: -len("Event")]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


class LoopBridge:
    """Joins one lavasync Client to one asyncio bot. Thread-safe: :meth:`send_gateway` may be
    called from any thread; the rest runs on the bot's loop."""

    #: the library's name, for messages
    library: ClassVar[str] = ""

    def __init__(self, client: Client, *, dispatch_events: bool, send_timeout: float) -> None:
        if not isinstance(client, Client):
            raise ValueError("client must be a lavasync.Client")
        if client.send_gateway is not None:
            raise ValueError(
                "this lavasync Client already has a send_gateway hook; the bridge sends OP 4 "
                f"through {self.library} itself: create the Client without send_gateway"
            )
        self.client = client
        self.send_timeout = float(send_timeout)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        client.send_gateway = self.send_gateway
        if dispatch_events:
            client.add_listener(Event, self._forward_event)

    # ------------------------------------------------------------------ loop and threads

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The bot's event loop (known once the bridge ran on it)."""
        loop = self._loop
        if loop is None:
            raise LavasyncError(f"the {self.library} bot is not running yet: no event loop to use")
        return loop

    def _note_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        self._loop = loop
        return loop

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking lavasync call in the loop's executor and await its result."""
        loop = self._note_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    def _on_loop_thread(self) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    # ------------------------------------------------------------------ lavasync → Discord

    def send_gateway(self, guild_id: int, payload: dict[str, Any]) -> None:
        """The client's hook: write an OP 4 through the library's gateway for that guild."""
        d = payload.get("d") or {}
        raw_channel = d.get("channel_id")
        channel_id = None if raw_channel is None else int(raw_channel)
        loop = self.loop
        coro = self._voice_update(
            int(guild_id), channel_id, bool(d.get("self_mute")), bool(d.get("self_deaf"))
        )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        if self._on_loop_thread():
            return  # never wait on the loop for the loop: it would deadlock
        try:
            future.result(self.send_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise LavasyncError(
                f"guild {guild_id}: {self.library} did not send the voice state update in "
                f"{self.send_timeout} s"
            ) from None

    async def _voice_update(
        self, guild_id: int, channel_id: Optional[int], self_mute: bool, self_deaf: bool
    ) -> None:
        """On the loop: have the library send OP 4 for ``guild_id``."""
        raise NotImplementedError

    def _forward_event(self, event: Event) -> None:
        """Dispatcher thread: hand the event to the bot's loop (:meth:`_deliver`)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._deliver, event)
        except RuntimeError:
            pass  # the loop closed meanwhile

    def _deliver(self, event: Event) -> None:
        """On the loop: dispatch a lavasync event the library's way."""
        raise NotImplementedError
