"""React to events with callbacks, and let a lavasync.Queue play several tracks in a row.

    python examples/callbacks.py                           # against an in-process fake node
    python examples/callbacks.py --uri http://127.0.0.1:2333 --password youshallnotpass

(Install lavasync first, ``pip install .``, or run from the repository with ``PYTHONPATH=.``.)

Listeners run on one thread, ``lavasync-dispatch``, one event at a time in arrival order. They
may call the player (the Queue does: it starts the next track from its own listener), but a
listener that blocks for long delays every event after it.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Optional

import lavasync
from lavasync.testing import FakeGateway, FakeNode

BOT_ID = 170939974227591168
GUILD_ID = 817327181659111454
CHANNEL_ID = 1126593424391868476


def play_queue(
    uri: str, password: str, identifiers: list[str], gateway: Optional[FakeGateway] = None
) -> int:
    hook = gateway.hook if gateway is not None else None
    # poll_events=False: this bot only uses callbacks, so no poll buffer fills up unread.
    with lavasync.Client(BOT_ID, hook, poll_events=False) as client:
        if gateway is not None:
            gateway.deliver = client.handle_gateway
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)

        tracks = []
        for identifier in identifiers:
            result = client.load(identifier)
            tracks.extend(result.tracks[:1])  # the first match of each
        print(f"loaded {len(tracks)} tracks: {', '.join(t.info.title for t in tracks)}")
        if gateway is None or not tracks:
            print("voice skipped: needs send_gateway and handle_gateway wired to Discord")
            return 0

        player = client.player(GUILD_ID)
        # The queue registers its own TrackEndEvent listener: it starts the next track when one
        # ends with reason "finished" or "loadFailed" (TrackEndEvent.may_start_next).
        queue = lavasync.Queue(player, client=client)
        queue.add(tracks)

        all_done = threading.Event()
        finished: list[str] = []

        @client.on(lavasync.TrackStartEvent)
        def on_start(event: lavasync.TrackStartEvent) -> None:
            print(f"started: {event.track.info.title!r} ({len(queue)} left in the queue)")

        # Listeners of one class run in registration order: this one after the queue's.
        @client.on(lavasync.TrackEndEvent)
        def on_end(event: lavasync.TrackEndEvent) -> None:
            print(f"ended: {event.track.info.title!r}, reason {event.reason}")
            if event.guild_id == GUILD_ID and event.may_start_next:
                finished.append(event.track.info.title)
                if len(finished) == len(tracks):
                    all_done.set()  # wake the main thread; listeners must not block

        player.connect(CHANNEL_ID, self_deaf=True)
        queue.start()  # plays the first track; the listeners take it from there

        # The main thread just waits. A bot would be busy with its gateway meanwhile.
        if not all_done.wait(timeout=sum(t.info.length for t in tracks) / 1000 + 10):
            print("timed out waiting for the queue")
            return 1
        print(f"queue empty after {len(finished)} tracks; history: {len(queue.history)} tracks")
        player.disconnect()
        print("left the channel")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Callbacks and a Queue of several tracks.")
    parser.add_argument("--uri", help="a real Lavalink node, e.g. http://127.0.0.1:2333")
    parser.add_argument("--password", default="youshallnotpass")
    parser.add_argument(
        "--fake-dialect",
        default="lavalink",
        choices=["lavalink", "nodelink"],
        help="without --uri: the server the in-process fake node plays (NodeLink's deviations)",
    )
    parser.add_argument(
        "identifiers", nargs="*", default=["ytsearch:lavalink", "ytsearch:lavaplayer"]
    )
    args = parser.parse_args(argv)
    if args.uri:
        return play_queue(args.uri, args.password, args.identifiers)

    with FakeNode(dialect=args.fake_dialect) as fake, FakeGateway(BOT_ID) as gateway:
        songs = [fake.add_track(f"Short song {n}", length=700) for n in (1, 2, 3)]
        identifiers = [song.identifier for song in songs]
        return play_queue(fake.uri, fake.password, identifiers, gateway)


if __name__ == "__main__":
    sys.exit(main())
