"""A bot with no Discord library at all: lavasync's own synchronous gateway shard.

    python examples/gateway_bot.py                         # fake node + fake Discord gateway
    python examples/gateway_bot.py --uri http://127.0.0.1:2333 --password youshallnotpass
    python examples/gateway_bot.py --uri ... --token BOT_TOKEN --guild ID --channel ID

(Install lavasync first, ``pip install .``, or run from the repository with ``PYTHONPATH=.``.)

``lavasync.ext.gateway.connect(client, token, shards=N)`` opens N gateway shards and wires them
to the client in one line: OP 4 goes out through the shard that owns the guild, every dispatch
comes back into ``client.handle_gateway``, and a shard whose socket drops is reported to the
client, then resumed. Without arguments a FakeNode plays Lavalink and a FakeDiscordGateway plays
Discord (two shards, a guild on each); with ``--token`` it is the real Discord gateway.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import lavasync
from lavasync.ext.gateway import DEFAULT_URL, connect
from lavasync.testing import FakeDiscordGateway, FakeNode

BOT_ID = 170939974227591168  # your bot's Discord user id
# guild id -> a voice channel in it; (guild_id >> 22) % 2 puts one guild on each shard
GUILDS = {817327181659111454: 1126593424391868476, 700000000000000000: 700000000000000001}


def run_bot(
    uri: str,
    password: str,
    identifier: str,
    *,
    token: Optional[str] = None,
    guilds: Optional[dict[int, int]] = None,
    shards: int = 1,
    gateway_url: str = DEFAULT_URL,
    bot_id: int = BOT_ID,
    discord: Optional[FakeDiscordGateway] = None,
) -> int:
    with lavasync.Client(bot_id, client_name="gateway-bot/1.0") as client:
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)
        result = client.load(identifier, raise_on_error=True)
        if not result.tracks:
            print(f"nothing found for {identifier!r}")
            return 1
        track = result.tracks[0]
        print(f"loaded: {track.info.title!r}")
        if token is None or not guilds:
            print("voice skipped: pass --token, --guild and --channel to join through Discord")
            return 0

        # One line: the shards, wired to the client. IDENTIFYs are paced (Discord allows one
        # per 5 s per bucket); the fake gateway does not mind, so the example goes faster.
        pace = 0.0 if discord is not None else 5.0
        with connect(
            client, token, shards=shards, url=gateway_url, identify_interval=pace
        ) as group:
            group.wait_ready(timeout=30)
            for shard in group.shards:
                print(f"shard {shard.shard_id} ready")
            players = []
            for guild_id, channel_id in guilds.items():
                player = client.player(guild_id)
                player.connect(channel_id, self_deaf=True)  # OP 4 through the guild's shard
                player.play(track)
                shard_id = group.shard_for(guild_id).shard_id
                print(f"guild {guild_id}: playing on shard {shard_id}")
                players.append(player)
            for player in players:
                end = player.wait_for_track_end(timeout=track.info.length / 1000 + 10)
                print(f"guild {player.guild_id}: {end.track.info.title!r} {end.reason}")
            for player in players:
                player.disconnect()
            print(f"left {len(players)} channel(s)")

            if discord is not None:
                # every leave reached Discord (a join and a leave through each guild's shard)
                discord.wait(
                    lambda: all(len(discord.received_ops(n, 4)) == 2 for n in range(shards)),
                    timeout=10,
                )
                # Discord drops shard 1's socket: the shard resumes on its own (the missed
                # dispatches are replayed), and the client was told the shard was lost.
                shard = group.shards[1]
                discord.drop(1)
                discord.wait(lambda: discord.resumes == 1, timeout=10)
                shard.wait_ready(timeout=10)
                print(f"shard 1 dropped; resumed: {shard.ready}")
                for n in range(shards):
                    print(f"shard {n} sent {len(discord.received_ops(n, 4))} OP 4 frames")
    return 0


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
    parser.add_argument("--token", help="a bot token: connect to Discord's gateway")
    parser.add_argument("--bot-id", type=int, default=BOT_ID, help="the token's bot user id")
    parser.add_argument("--guild", type=int, help="with --token: a guild of the bot")
    parser.add_argument("--channel", type=int, help="with --token: a voice channel in it")
    args = parser.parse_args(argv)
    if args.uri:
        guilds = {args.guild: args.channel} if args.guild and args.channel else None
        return run_bot(
            args.uri,
            args.password,
            args.identifier,
            token=args.token,
            guilds=guilds,
            bot_id=args.bot_id,
        )

    # No node given: a fake Lavalink node and a fake Discord gateway, both in this process.
    with (
        FakeNode(dialect=args.fake_dialect) as fake,
        FakeDiscordGateway(BOT_ID, guilds={g: [c] for g, c in GUILDS.items()}, node=fake) as gw,
    ):
        song = fake.add_track("A short song", length=1_200)
        return run_bot(
            fake.uri,
            fake.password,
            song.identifier,
            token=gw.token,
            guilds=GUILDS,
            shards=2,
            gateway_url=gw.url,
            discord=gw,
        )


if __name__ == "__main__":
    sys.exit(main())
