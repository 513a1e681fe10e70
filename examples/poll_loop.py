"""An event loop on your own thread: ``for event in client.events(timeout=...)``.

    python examples/poll_loop.py                           # against an in-process fake node
    python examples/poll_loop.py --uri http://127.0.0.1:2333 --password youshallnotpass

(Install lavasync first, ``pip install .``, or run from the repository with ``PYTHONPATH=.``.)

Polling suits scripts and bots with a main loop of their own: events wait in a buffer until you
take them (the reader thread never waits for you), and the code that reacts runs on your thread,
so it may block on player calls as long as it likes.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from typing import Optional

import lavasync
from lavasync.testing import FakeGateway, FakeNode

BOT_ID = 170939974227591168
GUILD_ID = 817327181659111454
CHANNEL_ID = 1126593424391868476
IDLE_TIMEOUT = 5.0  # seconds without any event before the loop gives up


def describe(event: lavasync.Event) -> Optional[str]:
    """One line for the events this script prints (None for the others)."""
    if isinstance(event, lavasync.ReadyEvent):
        return f"ready: session {event.session_id}, resumed={event.resumed}"
    if isinstance(event, lavasync.StatsEvent):
        return f"stats: {event.stats.players} players, {event.stats.playing_players} playing"
    if isinstance(event, lavasync.PlayerUpdateEvent):
        return f"update: position {event.state.position} ms, connected={event.state.connected}"
    if isinstance(event, lavasync.TrackStartEvent):
        return f"start: {event.track.info.title!r}"
    if isinstance(event, lavasync.TrackEndEvent):
        return f"end: {event.track.info.title!r}, reason {event.reason}"
    if isinstance(event, (lavasync.TrackExceptionEvent, lavasync.TrackStuckEvent)):
        return f"trouble: {event!r}"
    if isinstance(event, lavasync.WebSocketClosedEvent):
        return f"voice socket closed: {event.code} {event.reason}"
    return None


def poll_loop(
    uri: str, password: str, identifiers: list[str], gateway: Optional[FakeGateway] = None
) -> int:
    hook = gateway.hook if gateway is not None else None
    with lavasync.Client(BOT_ID, hook) as client:  # poll_events=True is the default
        if gateway is not None:
            gateway.deliver = client.handle_gateway
        client.add_node("main", uri, password=password)
        client.wait_ready(timeout=10)

        upcoming = deque(t for i in identifiers for t in client.load(i).tracks[:1])
        print(f"loaded {len(upcoming)} tracks")
        if gateway is None:
            # No voice without a gateway: just show the node's events for a moment.
            for event in client.events(timeout=2.0):
                line = describe(event)
                if line:
                    print(line)
            print("voice skipped: needs send_gateway and handle_gateway wired to Discord")
            return 0

        if not upcoming:
            return 1
        player = client.player(GUILD_ID)
        player.connect(CHANNEL_ID, self_deaf=True)
        player.play(upcoming.popleft())

        # events() yields until IDLE_TIMEOUT passes with no event (or the client closes).
        for event in client.events(timeout=IDLE_TIMEOUT):
            line = describe(event)
            if line:
                print(line)
            # After a session resume the server replays events; don't act on them twice.
            if isinstance(event, lavasync.TrackEndEvent) and not event.replayed:
                if not event.may_start_next:
                    continue  # "replaced", "stopped", "cleanup": someone else decided
                if not upcoming:
                    break
                player.play(upcoming.popleft())  # blocking call on this thread: fine
        else:
            print(f"no event for {IDLE_TIMEOUT} s: giving up")
            return 1

        player.disconnect()
        print("left the channel")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="React to events in a polling loop.")
    parser.add_argument("--uri", help="a real Lavalink node, e.g. http://127.0.0.1:2333")
    parser.add_argument("--password", default="youshallnotpass")
    parser.add_argument(
        "--fake-dialect",
        default="lavalink",
        choices=["lavalink", "nodelink"],
        help="without --uri: the server the in-process fake node plays (NodeLink's deviations)",
    )
    parser.add_argument("identifiers", nargs="*", default=["ytsearch:lavalink"])
    args = parser.parse_args(argv)
    if args.uri:
        return poll_loop(args.uri, args.password, args.identifiers)

    # Frequent stats and player updates, so the short run shows some.
    fake = FakeNode(stats_interval=1.0, player_update_interval=0.4, dialect=args.fake_dialect)
    with fake, FakeGateway(BOT_ID) as gateway:
        songs = [fake.add_track(f"Short song {n}", length=1_000) for n in (1, 2)]
        identifiers = [song.identifier for song in songs]
        return poll_loop(fake.uri, fake.password, identifiers, gateway)


if __name__ == "__main__":
    sys.exit(main())
