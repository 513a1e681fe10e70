"""lavasync.ext.hikari with the real hikari, no network beyond 127.0.0.1.

Everything is real: a ``hikari.GatewayBot`` whose ``rest_url`` points at FakeDiscordGateway's
``GET /gateway/bot``, so hikari's own shard connects to the fake gateway over a loopback
WebSocket (zlib-stream, hikari's default), IDENTIFYs, heartbeats and RESUMEs itself; a lavasync
Client and a FakeNode.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import FAST, USER_ID

import lavasync
from lavasync.testing import FakeDiscordGateway, FakeNode

hikari = pytest.importorskip("hikari", reason="hikari is not installed (lavasync[hikari])")
ext = pytest.importorskip("lavasync.ext.hikari")

# shaped like a bot token (hikari reads the bot id from its first part); not a real one
TOKEN = base64.b64encode(str(USER_ID).encode()).decode().rstrip("=") + ".fake.not-a-real-token"
GUILD = 817327181659111454
CHANNEL = 1126593424391868476


class RecordingClient(lavasync.Client):
    """A real Client that also notes shard_lost/shard_ready (passed on when it has them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shard_calls: list[tuple[str, int]] = []

    def shard_lost(self, shard_id: int) -> None:
        self.shard_calls.append(("lost", shard_id))
        base = getattr(super(), "shard_lost", None)
        if base is not None:
            base(shard_id)

    def shard_ready(self, shard_id: int) -> None:
        self.shard_calls.append(("ready", shard_id))
        base = getattr(super(), "shard_ready", None)
        if base is not None:
            base(shard_id)


@pytest.fixture
def world() -> Iterator[tuple[FakeNode, FakeDiscordGateway, RecordingClient]]:
    with (
        FakeNode(player_update_interval=0.1) as node,
        FakeDiscordGateway(USER_ID, token=TOKEN, guilds={GUILD: [CHANNEL]}, node=node) as fake,
        RecordingClient(USER_ID) as client,
    ):
        client.add_node("main", node.uri, password=node.password, backoff=FAST)
        client.wait_ready(5)
        yield node, fake, client


def new_bot(fake: FakeDiscordGateway) -> Any:
    return hikari.GatewayBot(
        TOKEN,
        rest_url=fake.rest_url,
        intents=hikari.Intents.GUILDS | hikari.Intents.GUILD_VOICE_STATES,
        banner=None,
        logs=None,
        suppress_optimization_warning=True,
    )


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll on the loop (it must keep running to deliver events); fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_hikari_bot_joins_plays_and_leaves_through_the_bridge(
    world: tuple[FakeNode, FakeDiscordGateway, RecordingClient],
) -> None:
    node, fake, client = world
    track = node.add_track("A song", length=600_000)

    async def main() -> None:
        bot = new_bot(fake)
        bridge = ext.attach(bot, client)
        started: list[Any] = []

        @bot.listen(ext.LavasyncEvent)
        async def on_lavasync(event: Any) -> None:
            if event.name == "track_start":
                started.append(event.event)

        await bot.start(check_for_updates=False)
        try:
            await until(lambda: ("ready", 0) in client.shard_calls)
            identify = fake.received_ops(0, 2)[0]["d"]
            assert identify["intents"] & 129 == 129 and identify["token"] == TOKEN

            player = await bridge.connect(GUILD, CHANNEL, self_deaf=True, timeout=5)
            (op4,) = fake.received_ops(0, 4)
            assert op4["d"]["guild_id"] == str(GUILD)
            assert op4["d"]["channel_id"] == str(CHANNEL) and op4["d"]["self_deaf"] is True
            (sid,) = node.session_ids()
            voice = (node.player(sid, GUILD) or {}).get("voice") or {}
            assert voice.get("token") == fake.voice_state(GUILD)["token"]  # type: ignore[index]

            await bridge.run(player.play, track.encoded)
            await until(lambda: bool(started))
            assert isinstance(started[0], lavasync.TrackStartEvent)
            assert started[0].guild_id == GUILD

            await bridge.disconnect(GUILD)
            await until(lambda: fake.voice_state(GUILD)["channel_id"] is None)  # type: ignore[index]
            assert client.get_player(GUILD) is None
        finally:
            await bot.close()

    asyncio.run(main())


def test_shard_loss_and_resume_reach_the_client(
    world: tuple[FakeNode, FakeDiscordGateway, RecordingClient],
) -> None:
    _, fake, client = world

    async def main() -> None:
        bot = new_bot(fake)
        ext.attach(bot, client)
        await bot.start(check_for_updates=False)
        try:
            await until(lambda: ("ready", 0) in client.shard_calls)
            fake.drop(0)  # hikari's shard sees the socket die, reconnects and RESUMEs
            await until(lambda: fake.resumes == 1)
            await until(lambda: len(client.shard_calls) >= 3)
            assert client.shard_calls[:3] == [("ready", 0), ("lost", 0), ("ready", 0)]
        finally:
            await bot.close()

    asyncio.run(main())


def test_attach_checks_its_arguments() -> None:
    bot = hikari.GatewayBot(TOKEN, banner=None, logs=None, suppress_optimization_warning=True)
    with (
        lavasync.Client(USER_ID, send_gateway=lambda g, p: None) as hooked,
        pytest.raises(ValueError),
    ):
        ext.attach(bot, hooked)
    with lavasync.Client(USER_ID) as first, lavasync.Client(USER_ID) as second:
        bridge = ext.attach(bot, first)
        with pytest.raises(ValueError):
            ext.attach(bot, second)
        with pytest.raises(lavasync.LavasyncError, match="not running"):
            bridge.send_gateway(GUILD, {"op": 4, "d": {"guild_id": str(GUILD)}})
