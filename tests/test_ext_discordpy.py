"""lavasync.ext.discordpy with the real discord.py, no network.

What is real: a ``commands.Bot`` (never logged in; its loop set up the way ``login`` does),
discord.py's own dispatch parsers (``ConnectionState.parsers``) fed Discord's payloads, its
``VoiceChannel.connect(cls=...)`` flow calling our ``VoiceProtocol``, a FakeDiscordGateway over
a real WebSocket, a lavasync Client and a FakeNode. The one stand-in: ``bot.ws``, the object
discord.py writes gateway commands to, is a small adapter onto a lavasync GatewayShard (a real
discord.py gateway needs Discord's REST API to find the gateway and log in).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

import pytest
from conftest import FAST, USER_ID

import lavasync
from lavasync.ext.gateway import GatewayShard, IdentifyLimiter
from lavasync.testing import FakeDiscordGateway, FakeNode

discord = pytest.importorskip("discord", reason="discord.py is not installed (lavasync[discordpy])")
commands = pytest.importorskip("discord.ext.commands")
ext = pytest.importorskip("lavasync.ext.discordpy")

TOKEN = "fake-bot-token"
GUILD = 817327181659111454
CHANNEL = 1126593424391868476
OTHER_CHANNEL = 1126593424391868477


class StandInWebSocket:
    """What discord.py's ``DiscordWebSocket`` does for voice: ``voice_state`` writes OP 4."""

    def __init__(self, shard: GatewayShard) -> None:
        self.shard = shard

    @property
    def open(self) -> bool:
        return self.shard.running

    async def close(self, code: int = 1000) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.shard.close)

    async def voice_state(
        self,
        guild_id: int,
        channel_id: Optional[int],
        self_mute: bool = False,
        self_deaf: bool = False,
    ) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            lambda: self.shard.update_voice_state(
                guild_id, channel_id, self_mute=self_mute, self_deaf=self_deaf
            ),
        )


class RecordingClient(lavasync.Client):
    """A real Client that also notes shard_lost/shard_ready (passed on when it has them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shard_calls: list[tuple[str, int]] = []
        self.fed: list[tuple[Any, Any]] = []

    def handle_gateway(self, dispatch: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        self.fed.append((dispatch.get("t"), dispatch.get("d")))
        base: Callable[..., Any] = super().handle_gateway
        base(dispatch, *args, **kwargs)

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
        FakeDiscordGateway(USER_ID, guilds={GUILD: [CHANNEL, OTHER_CHANNEL]}, node=node) as fake,
        RecordingClient(USER_ID) as client,
    ):
        client.add_node("main", node.uri, password=node.password, backoff=FAST)
        client.wait_ready(5)
        yield node, fake, client


async def start_bot(
    fake: FakeDiscordGateway, client: lavasync.Client
) -> tuple[Any, Any, GatewayShard]:
    """A commands.Bot whose parsers get the fake gateway's dispatches; returns (bot, bridge,
    shard)."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    await bot._async_setup_hook()  # what login() does before connecting: the loop, no network
    bridge = ext.attach(bot, client)
    loop = asyncio.get_running_loop()
    parsers: Mapping[str, Callable[[Any], None]] = bot._connection.parsers

    def on_dispatch(dispatch: dict[str, Any], shard_id: int) -> None:
        parser = parsers.get(dispatch["t"])
        if parser is not None:  # discord.py's gateway does exactly this per dispatch
            loop.call_soon_threadsafe(parser, dispatch["d"])

    shard = GatewayShard(
        TOKEN,
        url=fake.url,
        on_dispatch=on_dispatch,
        identify_limiter=IdentifyLimiter(interval=0),
    )
    bot.ws = StandInWebSocket(shard)
    for _ in range(500):
        if bot.get_guild(GUILD) is not None:
            break
        await asyncio.sleep(0.01)  # an asyncio poll (the loop must run to parse GUILD_CREATE)
    assert bot.get_guild(GUILD) is not None
    return bot, bridge, shard


async def stop_bot(bot: Any, shard: GatewayShard) -> None:
    await bot.close()  # closes bot.ws, i.e. the shard
    assert not shard.running


def test_event_names() -> None:
    events = lavasync.models.events
    assert ext.event_name(events.TrackEndEvent.__new__(events.TrackEndEvent)) == (
        "lavasync_track_end"
    )
    closed = events.WebSocketClosedEvent.__new__(events.WebSocketClosedEvent)
    assert ext.event_name(closed) == "lavasync_web_socket_closed"


def test_connect_play_and_disconnect_through_the_voice_protocol(
    world: tuple[FakeNode, FakeDiscordGateway, RecordingClient],
) -> None:
    node, fake, client = world
    track = node.add_track("A song", length=600_000)
    loop_thread: list[threading.Thread] = []

    async def main() -> None:
        loop_thread.append(threading.current_thread())
        bot, bridge, shard = await start_bot(fake, client)
        try:
            channel = bot.get_channel(CHANNEL)
            vc = await channel.connect(cls=ext.LavasyncVoice, timeout=5, self_deaf=True)
            assert isinstance(vc, ext.LavasyncVoice)
            assert bot.voice_clients == [vc]
            (op4,) = fake.received_ops(0, 4)
            assert op4["d"] == {
                "guild_id": str(GUILD),
                "channel_id": str(CHANNEL),
                "self_mute": False,
                "self_deaf": True,
            }
            # Lavalink got the voice Discord gave: the token of the fake's voice server update
            (sid,) = node.session_ids()
            voice = (node.player(sid, GUILD) or {}).get("voice") or {}
            assert voice.get("token") == fake.voice_state(GUILD)["token"]  # type: ignore[index]
            assert voice.get("sessionId") == fake.voice_state(GUILD)["session_id"]  # type: ignore[index]

            started = bot.loop.create_task(bot.wait_for("lavasync_track_start", timeout=5))
            await bridge.run(vc.player.play, track.encoded)
            event = await started
            assert isinstance(event, lavasync.TrackStartEvent) and event.guild_id == GUILD

            await vc.disconnect()
            assert bot.voice_clients == []
            # written to the socket; the fake reads it on its own thread
            fake.wait(lambda: fake.received_ops(0, 4)[-1]["d"]["channel_id"] is None)
            assert client.get_player(GUILD) is None
        finally:
            await stop_bot(bot, shard)

    asyncio.run(main())
    assert loop_thread  # the scenario ran on the loop


def test_send_gateway_from_another_thread_and_kick(
    world: tuple[FakeNode, FakeDiscordGateway, RecordingClient],
) -> None:
    _, fake, client = world

    async def main() -> None:
        bot, bridge, shard = await start_bot(fake, client)
        try:
            # lavasync joins on its own (a rejoin on a worker thread, say): no VoiceProtocol
            # registered yet; the bridge registers one so the answers reach the client
            player = client.player(GUILD)
            await bridge.run(player.connect, OTHER_CHANNEL, timeout=5)
            assert [type(v) for v in bot.voice_clients] == [ext.LavasyncVoice]
            assert fake.voice_state(GUILD)["channel_id"] == str(OTHER_CHANNEL)  # type: ignore[index]
            fake.kick(GUILD)
            for _ in range(500):
                if not bot.voice_clients and client.get_player(GUILD) is None:
                    break
                await asyncio.sleep(0.01)
            assert bot.voice_clients == []  # the protocol cleaned up
            assert client.get_player(GUILD) is None  # destroy_on_kick
        finally:
            await stop_bot(bot, shard)

    asyncio.run(main())


def test_shard_events_map_to_shard_lost_and_ready(
    world: tuple[FakeNode, FakeDiscordGateway, RecordingClient],
) -> None:
    _, fake, client = world

    async def main() -> None:
        bot, _, shard = await start_bot(fake, client)
        try:
            await bot.wait_for("ready", timeout=5)  # discord.py's own READY handling
            fake.drop(0)
            bot.dispatch("disconnect")  # what discord.py's connect loop does on a closed socket
            # the shard resumes; discord.py's RESUMED parser dispatches "resumed"
            for _ in range(500):
                if len(client.shard_calls) >= 3:
                    break
                await asyncio.sleep(0.01)
        finally:
            await stop_bot(bot, shard)

    asyncio.run(main())
    assert client.shard_calls == [("ready", 0), ("lost", 0), ("ready", 0)]


def test_attach_refuses_a_client_with_a_hook_and_a_second_client() -> None:
    async def main() -> None:
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
        with (
            lavasync.Client(USER_ID, send_gateway=lambda g, p: None) as hooked,
            pytest.raises(ValueError),
        ):
            ext.attach(bot, hooked)
        with lavasync.Client(USER_ID) as first, lavasync.Client(USER_ID) as second:
            ext.attach(bot, first)
            with pytest.raises(ValueError):
                ext.attach(bot, second)
        await bot.close()

    asyncio.run(main())


def test_sending_before_the_bot_runs_is_a_clear_error() -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    with lavasync.Client(USER_ID) as client:
        ext.attach(bot, client)
        with pytest.raises(lavasync.LavasyncError, match="not running"):
            client.send_gateway(GUILD, {"op": 4, "d": {"guild_id": str(GUILD)}})  # type: ignore[misc]


def test_other_users_voice_states_reach_the_client(
    world: tuple[FakeNode, FakeDiscordGateway, RecordingClient],
) -> None:
    _, fake, client = world
    listener = 500000000000000001

    async def main() -> None:
        bot, _, shard = await start_bot(fake, client)
        try:
            channel = bot.get_channel(CHANNEL)
            vc = await channel.connect(cls=ext.LavasyncVoice, timeout=5)
            user = {"id": str(listener), "username": "listener", "discriminator": "0"}
            member = {"user": {**user, "avatar": None, "bot": False}, "roles": []}
            member.update({"joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False})
            member["flags"] = 0
            state = {"guild_id": str(GUILD), "channel_id": str(CHANNEL), "user_id": str(listener)}
            state.update({"member": member, "session_id": "abc", "deaf": False, "mute": False})
            state.update({"self_deaf": False, "self_mute": False, "self_video": False})
            state.update({"suppress": False, "request_to_speak_timestamp": None})
            fake.dispatch(0, "VOICE_STATE_UPDATE", state)  # another user joins the bot's channel

            def fed() -> list[Any]:
                return [
                    d
                    for t, d in client.fed
                    if t == "VOICE_STATE_UPDATE" and d.get("user_id") == str(listener)
                ]

            for _ in range(500):
                if fed():
                    break
                await asyncio.sleep(0.01)
            (data,) = fed()
            assert data["channel_id"] == str(CHANNEL)
            assert data["member"]["user"]["bot"] is False
            if hasattr(vc.player, "listeners"):  # the Client's listener tracking (issue 11)
                assert listener in vc.player.listeners
            await vc.disconnect()
        finally:
            await stop_bot(bot, shard)

    asyncio.run(main())
