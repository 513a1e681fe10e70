"""A hikari music bot on lavasync (``pip install lavasync[hikari]``).

    python examples/hikari_bot.py                          # fake node + fake Discord gateway
    python examples/hikari_bot.py --uri http://127.0.0.1:2333 --password youshallnotpass
    python examples/hikari_bot.py --uri ... --token BOT_TOKEN      # a real bot: "!play <query>"

(Install lavasync first, ``pip install .[hikari]``, or run from the repository with
``PYTHONPATH=.``.)

``attach(bot, client)`` wires lavasync into hikari: raw dispatches in, OP 4 out through the
guild's shard, shard losses reported, lavasync events back as ``LavasyncEvent``. Blocking
lavasync calls go through ``bridge.run`` / ``bridge.connect`` (the loop's executor).

Without ``--token``, hikari's own gateway shard connects to an in-process FakeDiscordGateway
(its ``rest_url`` answers ``GET /gateway/bot``) and a FakeNode plays Lavalink.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from typing import Any, Optional

import lavasync

BOT_ID = 170939974227591168  # your bot's Discord user id
GUILD_ID = 817327181659111454
CHANNEL_ID = 1126593424391868476  # a voice channel of that guild


def make_bot(
    client: lavasync.Client, token: str, *, commands: bool = True, **options: Any
) -> tuple[Any, Any]:
    """The bot: the same code runs against Discord and against the fakes."""
    import hikari

    from lavasync.ext.hikari import LavasyncEvent, attach

    intents = hikari.Intents.GUILDS | hikari.Intents.GUILD_VOICE_STATES
    if commands:  # "!play ..." messages (MESSAGE_CONTENT is privileged: enable it for the bot)
        intents |= hikari.Intents.GUILD_MESSAGES | hikari.Intents.MESSAGE_CONTENT
    bot = hikari.GatewayBot(token, intents=intents, **options)
    bridge = attach(bot, client)

    async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
        content = event.content or ""
        if not content.startswith("!play "):
            return
        state = bot.cache.get_voice_state(event.guild_id, event.author_id)
        if state is None or state.channel_id is None:
            await event.message.respond("join a voice channel first")
            return
        title = await play_in(bridge, client, event.guild_id, state.channel_id, content[6:])
        await event.message.respond(title)

    if commands:
        bot.event_manager.subscribe(hikari.GuildMessageCreateEvent, on_message)

    @bot.listen(LavasyncEvent)
    async def on_lavasync(event: LavasyncEvent) -> None:
        if isinstance(event.event, lavasync.TrackEndEvent):
            print(f"event: {event.name} {event.event.track.info.title!r} {event.event.reason}")

    return bot, bridge


async def play_in(
    bridge: Any, client: lavasync.Client, guild: int, channel: int, query: str
) -> str:
    player = client.get_player(guild)
    if player is None or not player.connected:
        player = await bridge.connect(guild, channel, self_deaf=True)
        print(f"joined: channel {channel}")
    result = await bridge.run(client.load, query)
    if not result.tracks:
        return f"nothing found for {query!r}"
    track = result.tracks[0]
    await bridge.run(player.play, track)
    print(f"playing: {track.info.title!r}")
    return f"playing {track.info.title}"


def check_node(uri: str, password: str, identifier: str) -> int:
    with lavasync.Client(BOT_ID, client_name="hikari-bot/1.0") as client:
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)
        result = client.load(identifier, raise_on_error=True)
        print(f"loaded: {len(result.tracks)} track(s) for {identifier!r}")
        print("voice skipped: pass --token to run the bot on Discord")
    return 0


def run_on_discord(uri: str, password: str, token: str, bot_id: int) -> int:
    with lavasync.Client(bot_id, client_name="hikari-bot/1.0") as client:
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)
        bot, _ = make_bot(client, token)
        bot.run()
    return 0


async def run_against_fakes(client: lavasync.Client, gateway: Any, identifier: str) -> None:
    import hikari

    bot, bridge = make_bot(
        client,
        gateway.token,
        commands=False,
        rest_url=gateway.rest_url,
        banner=None,
        logs=None,
        suppress_optimization_warning=True,
    )
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @bot.listen(hikari.ShardReadyEvent)
    async def on_ready(event: hikari.ShardReadyEvent) -> None:
        print(f"shard {event.shard.id} ready")

    from lavasync.ext.hikari import LavasyncEvent

    @bot.listen(LavasyncEvent)
    async def on_end(event: LavasyncEvent) -> None:
        if event.name == "track_end" and not ended.done():
            ended.set_result(event.event)

    await bot.start(check_for_updates=False)
    try:
        await play_in(bridge, client, GUILD_ID, CHANNEL_ID, identifier)
        await asyncio.wait_for(ended, timeout=15)
        await bridge.disconnect(GUILD_ID)
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

    # shaped like a bot token (hikari reads the bot id from its first part); not a real one
    token = base64.b64encode(str(BOT_ID).encode()).decode().rstrip("=") + ".fake.token"
    with (
        FakeNode(dialect=args.fake_dialect) as fake,
        FakeDiscordGateway(BOT_ID, token=token, guilds={GUILD_ID: [CHANNEL_ID]}) as gw,
    ):
        gw.node = fake
        song = fake.add_track("A short song", length=1_200)
        print(f"loaded: {song.info.title!r}")
        with lavasync.Client(BOT_ID, client_name="hikari-bot/1.0") as client:
            client.add_node("main", fake.uri, password=fake.password)
            client.wait_ready(timeout=10)
            asyncio.run(run_against_fakes(client, gw, song.identifier))
    return 0


if __name__ == "__main__":
    sys.exit(main())
