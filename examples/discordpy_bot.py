"""A discord.py 2.x music bot on lavasync (``pip install lavasync[discordpy]``).

    python examples/discordpy_bot.py                       # fake node + fake Discord gateway
    python examples/discordpy_bot.py --uri http://127.0.0.1:2333 --password youshallnotpass
    python examples/discordpy_bot.py --uri ... --token BOT_TOKEN   # a real bot: "!play <query>"

(Install lavasync first, ``pip install .[discordpy]``, or run from the repository with
``PYTHONPATH=.``.)

Three lines wire lavasync into discord.py: ``attach(bot, client)``, then
``channel.connect(cls=LavasyncVoice)`` to join, and ``bridge.run(...)`` for every blocking
lavasync call (it runs in the loop's executor: a blocking call on the loop would stop the loop
from delivering the very voice updates the call waits for). lavasync's events come back as
discord.py events: ``on_lavasync_track_end`` and so on.

Without ``--token`` the bot runs against an in-process FakeNode and FakeDiscordGateway: a
stand-in for discord.py's websocket hands its voice commands to a lavasync gateway shard, and
the fake's dispatches go through discord.py's own parsers (logging in needs Discord's REST API).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Optional

import lavasync

BOT_ID = 170939974227591168  # your bot's Discord user id
GUILD_ID = 817327181659111454
CHANNEL_ID = 1126593424391868476  # a voice channel of that guild


def make_bot(client: lavasync.Client, *, message_content: bool = False) -> Any:
    """The bot: the same code runs against Discord and against the fakes."""
    import discord
    from discord.ext import commands

    from lavasync.ext.discordpy import LavasyncVoice, attach

    intents = discord.Intents.default()  # includes GUILDS and GUILD_VOICE_STATES
    intents.message_content = message_content
    bot = commands.Bot(command_prefix="!", intents=intents)
    bridge = attach(bot, client)
    bot.lavasync_bridge = bridge  # type: ignore[attr-defined]

    async def play_in(channel: Any, query: str) -> str:
        voice = channel.guild.voice_client
        if not isinstance(voice, LavasyncVoice):
            voice = await channel.connect(cls=LavasyncVoice, self_deaf=True)
            print(f"joined: channel {channel.id}")
        result = await bridge.run(client.load, query)
        if not result.tracks:
            return f"nothing found for {query!r}"
        track = result.tracks[0]
        await bridge.run(voice.player.play, track)
        print(f"playing: {track.info.title!r}")
        return f"playing {track.info.title}"

    bot.play_in = play_in  # type: ignore[attr-defined]

    @bot.command()
    async def play(ctx: Any, *, query: str) -> None:
        if ctx.author.voice is None or ctx.author.voice.channel is None:
            await ctx.send("join a voice channel first")
            return
        await ctx.send(await play_in(ctx.author.voice.channel, query))

    @bot.command()
    async def leave(ctx: Any) -> None:
        if ctx.guild.voice_client is not None:
            await ctx.guild.voice_client.disconnect(force=False)

    @bot.listen()
    async def on_lavasync_track_end(event: lavasync.TrackEndEvent) -> None:
        print(f"event: lavasync_track_end {event.track.info.title!r} {event.reason}")

    return bot


def check_node(uri: str, password: str, identifier: str) -> int:
    with lavasync.Client(BOT_ID, client_name="discordpy-bot/1.0") as client:
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)
        result = client.load(identifier, raise_on_error=True)
        print(f"loaded: {len(result.tracks)} track(s) for {identifier!r}")
        print("voice skipped: pass --token to run the bot on Discord")
    return 0


def run_on_discord(uri: str, password: str, token: str, bot_id: int) -> int:
    with lavasync.Client(bot_id, client_name="discordpy-bot/1.0") as client:
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)
        make_bot(client, message_content=True).run(token)
    return 0


async def run_against_fakes(client: lavasync.Client, gateway: Any, identifier: str) -> None:
    from lavasync.ext.gateway import GatewayShard

    bot = make_bot(client)
    await bot._async_setup_hook()  # the part of login() that needs no network: the loop
    loop = asyncio.get_running_loop()
    parsers = bot._connection.parsers

    def on_dispatch(dispatch: dict[str, Any], shard_id: int) -> None:
        parser = parsers.get(dispatch["t"])
        if parser is not None:  # what discord.py's own gateway does with each dispatch
            loop.call_soon_threadsafe(parser, dispatch["d"])

    class StandInWebSocket:
        """discord.py writes voice state updates to ``bot.ws``: send them through the shard."""

        def __init__(self, shard: GatewayShard) -> None:
            self.shard = shard

        @property
        def open(self) -> bool:
            return self.shard.running

        async def voice_state(
            self, guild_id: int, channel_id: Optional[int], mute: bool = False, deaf: bool = False
        ) -> None:
            def send() -> None:
                self.shard.update_voice_state(guild_id, channel_id, self_mute=mute, self_deaf=deaf)

            await loop.run_in_executor(None, send)

        async def close(self, code: int = 1000) -> None:
            await loop.run_in_executor(None, self.shard.close)

    shard = GatewayShard(gateway.token, url=gateway.url, on_dispatch=on_dispatch)
    bot.ws = StandInWebSocket(shard)
    try:
        await bot.wait_for("ready", timeout=10)
        channel = bot.get_channel(CHANNEL_ID)
        ended = loop.create_task(bot.wait_for("lavasync_track_end", timeout=15))
        await bot.play_in(channel, identifier)
        await ended
        await channel.guild.voice_client.disconnect(force=False)
        print("left the channel")
    finally:
        await bot.close()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a real Lavalink node, e.g. http://127.0.0.1:2333")
    parser.add_argument("--password", default="youshallnotpass")
    parser.add_argument(
        "--fake-dialect",
        default="lavalink",
        choices=["lavalink", "nodelink"],
        help="without --uri: the server the in-process fake node plays (NodeLink's deviations)",
    )
    parser.add_argument("--identifier", default="ytsearch:lavalink")
    parser.add_argument("--token", help="a bot token: run the bot on Discord")
    parser.add_argument("--bot-id", type=int, default=BOT_ID, help="the token's bot user id")
    args = parser.parse_args(argv)
    if args.uri and args.token:
        return run_on_discord(args.uri, args.password, args.token, args.bot_id)
    if args.uri:
        return check_node(args.uri, args.password, args.identifier)

    from lavasync.testing import FakeDiscordGateway, FakeNode

    with (
        FakeNode(dialect=args.fake_dialect) as fake,
        FakeDiscordGateway(BOT_ID, guilds={GUILD_ID: [CHANNEL_ID]}) as gw,
    ):
        gw.node = fake
        song = fake.add_track("A short song", length=1_200)
        print(f"loaded: {song.info.title!r}")
        with lavasync.Client(BOT_ID, client_name="discordpy-bot/1.0") as client:
            client.add_node("main", fake.uri, password=fake.password)
            client.wait_ready(timeout=10)
            asyncio.run(run_against_fakes(client, gw, song.identifier))
    return 0


if __name__ == "__main__":
    sys.exit(main())
