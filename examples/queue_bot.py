"""A music queue: lavasync.Queue with shuffle, skip, loop modes and history.

    python examples/queue_bot.py                           # against an in-process fake node
    python examples/queue_bot.py --uri http://127.0.0.1:2333 --password youshallnotpass

(Install lavasync first, ``pip install .``, or run from the repository with ``PYTHONPATH=.``.)

A Queue attached to the client (``Queue(player, client=client)``) starts the next track itself,
from a listener on the ``lavasync-dispatch`` thread, when a track ends "finished" or
"loadFailed". It moves on once per track it started, so a replayed or "replaced" end never skips
twice. Everything else (add, skip, shuffle, loop) may be called from any thread.
"""

from __future__ import annotations

import argparse
import queue
import random
import sys
import threading
from typing import Optional

import lavasync
from lavasync.testing import FakeGateway, FakeNode

BOT_ID = 170939974227591168
GUILD_ID = 817327181659111454
CHANNEL_ID = 1126593424391868476
PLAYLIST = "https://example.com/queue-bot-playlist"
WAIT = 10.0  # seconds; generous for tracks of half a second


def titles(tracks: list[lavasync.Track]) -> str:
    return ", ".join(t.info.title for t in tracks) or "-"


def queue_bot(uri: str, password: str, identifier: str, gateway: Optional[FakeGateway]) -> int:
    hook = gateway.hook if gateway is not None else None
    with lavasync.Client(BOT_ID, hook, poll_events=False) as client:
        if gateway is not None:
            gateway.deliver = client.handle_gateway
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)

        result = client.load(identifier)
        name = result.playlist.info.name if result.playlist is not None else result.load_type
        print(f"loaded {name!r}: {titles(result.tracks)}")
        if gateway is None or len(result.tracks) < 3:
            print("voice skipped: needs send_gateway and handle_gateway wired to Discord")
            return 0

        player = client.player(GUILD_ID)
        music = lavasync.Queue(player, client=client, history_size=20)  # attaches its listener
        music.add(result.tracks)
        music.shuffle(random.Random(2024))  # a seeded Random only to make this run repeatable
        print(f"shuffled: {titles(music.upcoming)}")

        # The main thread follows along through listeners that hand titles over a stdlib queue.
        started: queue.Queue[str] = queue.Queue()
        idle = threading.Event()
        client.add_listener(lavasync.TrackStartEvent, lambda e: started.put(e.track.info.title))

        def on_end(event: lavasync.TrackEndEvent) -> None:
            # Runs after the Queue's own listener (registered first): it has already moved on.
            if event.may_start_next and music.current is None:
                idle.set()

        client.add_listener(lavasync.TrackEndEvent, on_end)

        def next_start() -> str:
            return started.get(timeout=WAIT)

        player.connect(CHANNEL_ID, self_deaf=True)
        music.start()
        print(f"now playing: {next_start()}")

        music.skip()  # ends the current track as "replaced": the queue does not advance twice
        print(f"skipped to: {next_start()} (history: {titles(music.history)})")

        music.loop = lavasync.LoopMode.TRACK  # the current track plays again when it finishes
        print(f"loop track: {next_start()} again")

        music.loop = lavasync.LoopMode.QUEUE  # finished tracks go to the back of the queue
        for _ in range(len(music) + 1):  # each upcoming track, then the current one again
            print(f"loop queue: {next_start()} (then: {titles(music.upcoming)})")

        music.loop = lavasync.LoopMode.NONE
        music.clear()  # drop what is left; the current track finishes
        if not idle.wait(WAIT):
            print("the queue never went idle")
            return 1
        print(f"queue idle; history: {titles(music.history)}")
        player.disconnect()
        print("left the channel")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="A Queue with shuffle, skip, loops, history.")
    parser.add_argument("--uri", help="a real Lavalink node, e.g. http://127.0.0.1:2333")
    parser.add_argument("--password", default="youshallnotpass")
    parser.add_argument(
        "--fake-dialect",
        default="lavalink",
        choices=["lavalink", "nodelink"],
        help="without --uri: the server the in-process fake node plays (NodeLink's deviations)",
    )
    parser.add_argument("--identifier", default="ytsearch:lavalink", help="a playlist or search")
    args = parser.parse_args(argv)
    if args.uri:
        return queue_bot(args.uri, args.password, args.identifier, None)

    with FakeNode(dialect=args.fake_dialect) as fake, FakeGateway(BOT_ID) as gateway:
        songs = [fake.add_track(t, length=500) for t in "ABCD"]
        fake.set_load_result(  # what /v4/loadtracks answers for a playlist URL
            PLAYLIST,
            {
                "loadType": "playlist",
                "data": {
                    "info": {"name": "Four short songs", "selectedTrack": -1},
                    "pluginInfo": {},
                    "tracks": [song.to_wire() for song in songs],
                },
            },
        )
        return queue_bot(fake.uri, fake.password, PLAYLIST, gateway)


if __name__ == "__main__":
    sys.exit(main())
