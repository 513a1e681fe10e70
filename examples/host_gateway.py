"""Wiring lavasync into a host bot's Discord gateway: the two places that matter.

    python examples/host_gateway.py                        # against an in-process fake node
    python examples/host_gateway.py --uri http://127.0.0.1:2333 --password youshallnotpass

(Install lavasync first, ``pip install .``, or run from the repository with ``PYTHONPATH=.``.)

lavasync never talks to Discord. The host bot (your Discord library) does two things for it:

1. ``send_gateway(guild_id, payload)``: lavasync hands over an OP 4 "voice state update"
   (``{"op": 4, "d": {"guild_id", "channel_id", "self_mute", "self_deaf"}}``); the host writes it,
   unchanged, to the gateway shard that owns the guild.
2. ``client.handle_gateway(dispatch)``: the host passes EVERY dispatch it receives
   (``{"t": ..., "d": ...}``), unfiltered. lavasync keeps the bot's own VOICE_STATE_UPDATE and
   the VOICE_SERVER_UPDATE, and ignores the rest cheaply.

``Shard`` below stands in for one gateway connection of your library; a FakeGateway plays
Discord behind it. Two shards, two guilds (one on each), a "!play" command in each.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from typing import Any, Callable, Optional

import lavasync
from lavasync.testing import FakeGateway, FakeNode

BOT_ID = 170939974227591168
# guild id -> a voice channel in it. Guild ids pick their shard: (guild_id >> 22) % shard_count.
GUILDS = {817327181659111454: 1126593424391868476, 700000000000000000: 700000000000000001}
SHARD_COUNT = 2

Dispatch = dict[str, Any]


class Shard:
    """One gateway connection, as a Discord library has it: a reader thread that receives
    dispatches and hands them to handlers, and ``send`` that writes a frame. Thread-safe."""

    def __init__(self, shard_id: int, discord: FakeGateway) -> None:
        self.shard_id = shard_id
        self.handlers: list[Callable[[Dispatch], None]] = []
        self.sent: list[Dispatch] = []  # OP 4 frames written (list.append is atomic)
        self.discord = discord  # Discord's end of this connection
        discord.deliver = self._on_dispatch  # runs on the FakeGateway's thread: our "reader"

    def owns(self, guild_id: int) -> bool:
        return (guild_id >> 22) % SHARD_COUNT == self.shard_id

    def send(self, payload: Dispatch) -> None:
        """Write a frame to Discord (a real library serialises it onto its WebSocket)."""
        self.sent.append(payload)
        self.discord.hook(int(payload["d"]["guild_id"]), payload)

    def _on_dispatch(self, dispatch: Dispatch) -> None:
        for handler in self.handlers:
            handler(dispatch)


def run_bot(
    uri: str, password: str, identifier: str, discord: Optional[list[FakeGateway]] = None
) -> int:
    shards = [Shard(n, gw) for n, gw in enumerate(discord)] if discord else []

    def shard_for(guild_id: int) -> Shard:
        return next(shard for shard in shards if shard.owns(guild_id))

    # (1) The hook. Called on the thread that called player.connect()/disconnect() (or on
    # lavasync-dispatch for an automatic rejoin). Keep it quick and non-blocking: just send.
    def send_gateway(guild_id: int, payload: Dispatch) -> None:
        shard_for(guild_id).send(payload)

    with lavasync.Client(BOT_ID, send_gateway if shards else None) as client:
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)
        result = client.load(identifier, raise_on_error=True)
        if not result.tracks:
            print(f"nothing found for {identifier!r}")
            return 1
        track = result.tracks[0]
        print(f"loaded: {track.info.title!r}")
        if not shards:
            print("voice skipped: your bot must pass send_gateway=... (write the OP 4 to the")
            print("guild's shard) and call client.handle_gateway(dispatch) for every dispatch")
            return 0

        # Player calls block until the voice dispatches come back through the shard's reader
        # thread, so they must not run ON that thread: commands go to a worker thread.
        commands: queue.Queue[Optional[int]] = queue.Queue()
        handled: queue.Queue[int] = queue.Queue()  # guild ids, once their command ran

        def command_worker() -> None:
            while True:
                guild_id = commands.get()
                if guild_id is None:
                    return
                try:
                    player = client.player(guild_id)
                    player.connect(GUILDS[guild_id], self_deaf=True)
                    player.play(track)
                    print(f"guild {guild_id}: playing on shard {shard_for(guild_id).shard_id}")
                except lavasync.LavasyncError as exc:
                    print(f"guild {guild_id}: !play failed: {exc}")
                handled.put(guild_id)

        # (2) The dispatch handler, on each shard's reader thread, for EVERY dispatch.
        def on_dispatch(dispatch: Dispatch) -> None:
            client.handle_gateway(dispatch)  # first, and for everything: never blocks
            if dispatch.get("t") == "MESSAGE_CREATE" and dispatch["d"]["content"] == "!play":
                commands.put(int(dispatch["d"]["guild_id"]))  # hand off; don't block here

        for shard in shards:
            shard.handlers.append(on_dispatch)

        worker = threading.Thread(target=command_worker, name="bot-commands")
        worker.start()
        try:
            for guild_id in GUILDS:  # someone types "!play" in each guild; Discord sends it
                message = {"guild_id": str(guild_id), "channel_id": "1", "content": "!play"}
                shard_for(guild_id).discord.dispatch({"op": 0, "t": "MESSAGE_CREATE", "d": message})
            for _ in GUILDS:  # both messages arrive and are handled (the example stops then)
                handled.get(timeout=15)
        finally:
            commands.put(None)
            worker.join()

        players = [p for p in (client.get_player(g) for g in GUILDS) if p is not None]
        print(f"{len(players)} players, connected: {[p.connected for p in players]}")
        for player in players:
            end = player.wait_for_track_end(timeout=track.info.length / 1000 + 10)
            print(f"guild {player.guild_id}: {end.track.info.title!r} {end.reason}")
            player.disconnect()
        for shard in shards:
            print(f"shard {shard.shard_id} sent {len(shard.sent)} OP 4 frames")
        print("first OP 4:", json.dumps(shards[0].sent[0], sort_keys=True))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="A host gateway wired to lavasync.")
    parser.add_argument("--uri", help="a real Lavalink node, e.g. http://127.0.0.1:2333")
    parser.add_argument("--password", default="youshallnotpass")
    parser.add_argument(
        "--fake-dialect",
        default="lavalink",
        choices=["lavalink", "nodelink"],
        help="without --uri: the server the in-process fake node plays (NodeLink's deviations)",
    )
    parser.add_argument("--identifier", default="ytsearch:lavalink")
    args = parser.parse_args(argv)
    if args.uri:
        return run_bot(args.uri, args.password, args.identifier)

    # One FakeGateway per shard: Discord's end of each shard's connection.
    fake = FakeNode(dialect=args.fake_dialect)
    with fake, FakeGateway(BOT_ID) as discord0, FakeGateway(BOT_ID) as discord1:
        song = fake.add_track("A short song", length=1_200)
        return run_bot(fake.uri, fake.password, song.identifier, [discord0, discord1])


if __name__ == "__main__":
    sys.exit(main())
