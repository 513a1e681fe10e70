"""Play one track and block until it ends: the smallest complete lavasync script.

    python examples/play_and_wait.py                       # against an in-process fake node
    python examples/play_and_wait.py --uri http://127.0.0.1:2333 --password youshallnotpass

(Install lavasync first, ``pip install .``, or run from the repository with ``PYTHONPATH=.``.)

Everything here runs on the main thread; lavasync's own threads (one reader per node, one
dispatcher) work in the background and are joined when the ``with`` block ends.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import lavasync
from lavasync.testing import FakeGateway, FakeNode

BOT_ID = 170939974227591168  # your bot's Discord user id
GUILD_ID = 817327181659111454
CHANNEL_ID = 1126593424391868476  # a voice channel of that guild


def play_and_wait(
    uri: str, password: str, identifier: str, gateway: Optional[FakeGateway] = None
) -> int:
    # send_gateway is the host's hook for OP 4 (voice state update) payloads. A real bot passes a
    # function that writes the payload to its Discord gateway connection; here the fake gateway
    # plays Discord. Without a hook the client can load tracks but cannot join voice.
    hook = gateway.hook if gateway is not None else None
    with lavasync.Client(BOT_ID, hook, client_name="play-and-wait/1.0") as client:
        if gateway is not None:
            # The host feeds every gateway dispatch to the client (see host_gateway.py).
            gateway.deliver = client.handle_gateway

        client.add_node("main", uri, password=password)  # connects in the background
        node = client.wait_ready(timeout=10)
        print(f"connected: node {node.name}, session {node.session_id}")

        result = client.load(identifier, raise_on_error=True)  # LoadError on loadType "error"
        if not result.tracks:
            print(f"nothing found for {identifier!r} ({result.load_type})")
            return 1
        track = result.tracks[0]
        print(f"loaded: {track.info.title!r} by {track.info.author}, {track.info.length} ms")

        if gateway is None:
            print("voice skipped: pass Client(send_gateway=...) and feed client.handle_gateway")
            print("from your Discord library to join a channel and play (see host_gateway.py)")
            return 0

        player = client.player(GUILD_ID)
        # Sends OP 4 through the hook and blocks until Discord's two voice dispatches came back
        # through handle_gateway and Lavalink took the voice state. So never call it on the
        # thread that delivers gateway dispatches: it would wait for itself.
        player.connect(CHANNEL_ID, self_deaf=True)
        print(f"joined: channel {player.channel_id}")

        player.play(track)  # returns once Lavalink answered
        print(f"playing: {track.info.title!r} from {player.position} ms, volume {player.volume}")

        # Block until this track ends; the timeout leaves room for the track's own length.
        end = player.wait_for_track_end(timeout=track.info.length / 1000 + 10)
        print(f"ended: {end.track.info.title!r}, reason {end.reason}")

        player.disconnect()  # OP 4 with channel_id null, then the Lavalink player is destroyed
        print("left the channel")
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
    parser.add_argument("--identifier", default="ytsearch:never gonna give you up")
    args = parser.parse_args(argv)
    if args.uri:
        return play_and_wait(args.uri, args.password, args.identifier)

    # No node given: a fake Lavalink node and a fake Discord gateway, both in this process.
    with FakeNode(dialect=args.fake_dialect) as fake, FakeGateway(BOT_ID) as gateway:
        song = fake.add_track("A short song", author="lavasync", length=1_500)  # ms
        return play_and_wait(fake.uri, fake.password, song.identifier, gateway)


if __name__ == "__main__":
    sys.exit(main())
