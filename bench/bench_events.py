"""Event ingest: how fast lavasync turns a flood of ``playerUpdate`` frames into events, against
a raw websocket-client loop measured in the same run.

Run by hand: ``python bench/bench_events.py [--frames 50000] [--rounds 5] [--profile]``.

An in-process :class:`~lavasync.testing.FakeNode` writes ``--frames`` pre-encoded playerUpdate
frames with one ``sendall`` (``FakeNode.burst``), from a sender thread, so the receiver is the
bottleneck. Each row times one burst, from the moment ``burst`` is called until the consumer
has seen the last frame; the best and the median of ``--rounds`` rounds are printed:

* floor: ``websocket.create_connection(...)`` (the same three headers,
  ``skip_utf8_validation=True``) in a ``recv()`` + ``json.loads`` loop;
* callback: ``Client(poll_events=False)`` with one ``@client.on(PlayerUpdateEvent)`` counter
  (reader thread -> dispatcher thread -> listener);
* poll: ``Client()`` with a ``client.poll()`` loop on the main thread.

Two traffic shapes: every frame for one guild (``FakeNode.burst`` repeats one payload), and
1,000 guilds with 50 frames each (one burst per guild, back to back). The client has a player
for every guild, so each frame also updates a Player. A frame of an unknown op follows each
burst as an end marker (unknown events are never coalesced), so a row whose buffer coalesced
frames still ends, and the table says how many were coalesced.

Also prints how many ``lavasync-*`` threads a client runs (1 node / 3 nodes, 1,000 players).
``--profile`` adds a cProfile of the reader path (frame -> event -> player -> buffers).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import websocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lavasync
from lavasync.models.events import PlayerUpdateEvent, UnknownEvent
from lavasync.testing import FakeNode

TARGET = 2.0
USER_ID = 170939974227591168
GUILD = 817327181659111454
END_OP = "benchEnd"
CLIENT_NAME = "lavasync-bench/1.0"


def player_update(guild: int) -> dict[str, Any]:
    """A playerUpdate as Lavalink sends it (shape of the shared example)."""
    return {
        "op": "playerUpdate",
        "guildId": str(guild),
        "state": {"time": 1500467109, "position": 60000, "connected": True, "ping": 50},
    }


class Shape:
    """Which guilds a burst covers: ``guilds`` guilds, ``frames // guilds`` frames each."""

    def __init__(self, name: str, guilds: int, frames: int) -> None:
        self.name = name
        self.guild_ids = [GUILD + i for i in range(guilds)]
        self.per_guild = frames // guilds
        self.frames = self.per_guild * guilds
        self.payloads = [player_update(g) for g in self.guild_ids]

    def send(self, fake: FakeNode, session_id: str) -> None:
        """Write the burst(s) and then the end marker to one session."""
        for payload in self.payloads:
            fake.burst(payload, self.per_guild, session_id=session_id)
        fake.burst({"op": END_OP}, 1, session_id=session_id)


def timed_burst(
    fake: FakeNode, session_id: str, shape: Shape, consume: Callable[[], float]
) -> float:
    """Start the burst on a sender thread; ``consume()`` returns when it saw the last frame
    (its perf_counter time). Returns seconds from the burst call to that moment."""
    errors: list[BaseException] = []

    def send() -> None:
        try:
            shape.send(fake, session_id)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    sender = threading.Thread(target=send, name="bench-sender")
    start = time.perf_counter()
    sender.start()
    end = consume()
    sender.join()
    if errors:
        raise errors[0]
    return end - start


# --------------------------------------------------------------------------- the floor


class RawReader:
    """The floor: one websocket-client connection, ``recv()`` + ``json.loads`` per frame."""

    def __init__(self, fake: FakeNode) -> None:
        self.ws = websocket.create_connection(
            fake.ws_uri,
            header=[
                f"Authorization: {fake.password}",
                f"User-Id: {USER_ID}",
                f"Client-Name: {CLIENT_NAME}",
            ],
            skip_utf8_validation=True,
        )
        while True:
            message = json.loads(self.ws.recv())
            if message.get("op") == "ready":
                self.session_id: str = message["sessionId"]
                return

    def consume(self, frames: int) -> Callable[[], float]:
        def run() -> float:
            recv, loads = self.ws.recv, json.loads
            seen = 0
            end = 0.0
            while True:
                message = loads(recv())
                op = message["op"]
                if op == "playerUpdate":
                    seen += 1
                    if seen == frames:
                        end = time.perf_counter()
                elif op == END_OP:
                    if seen != frames:
                        raise RuntimeError(f"floor saw {seen} of {frames} frames")
                    return end

        return run

    def close(self) -> None:
        self.ws.close()


# --------------------------------------------------------------------------- lavasync


class Result:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.seen: list[int] = []


class CallbackClient:
    """``Client(poll_events=False)`` and a counting listener on the dispatcher thread."""

    def __init__(
        self, fake: FakeNode, shape: Shape, buffer_size: int, dispatcher_size: Optional[int]
    ) -> None:
        self.client = lavasync.Client(
            USER_ID, client_name=CLIENT_NAME, poll_events=False, event_buffer_size=buffer_size
        )
        if dispatcher_size is not None:
            # Private: Client has no knob for the dispatcher's buffer (see bench/README.md).
            self.client._dispatcher.buffer.maxsize = dispatcher_size
        node = self.client.add_node("fake", fake.uri, password=fake.password)
        self.client.wait_ready(10)
        for guild in shape.guild_ids:
            self.client.player(guild)
        self.session_id = node.session_id or ""
        self.frames = shape.frames
        self.seen = 0
        self.end = 0.0
        self.done = threading.Event()

        @self.client.on(PlayerUpdateEvent)
        def count(event: PlayerUpdateEvent) -> None:
            self.seen += 1
            if self.seen == self.frames:
                self.end = time.perf_counter()

        @self.client.on(UnknownEvent)
        def marker(event: UnknownEvent) -> None:
            if event.op == END_OP:
                if self.seen != self.frames:
                    self.end = time.perf_counter()
                self.done.set()

    @property
    def coalesced(self) -> int:
        return self.client._dispatcher.buffer.coalesced

    def consume(self) -> Callable[[], float]:
        self.seen = 0
        self.done.clear()

        def run() -> float:
            if not self.done.wait(120):
                raise RuntimeError(f"callback saw {self.seen} of {self.frames}, no end marker")
            return self.end

        return run

    def close(self) -> None:
        self.client.close()


class PollClient:
    """``Client()`` with ``poll()`` on the calling thread."""

    def __init__(self, fake: FakeNode, shape: Shape, buffer_size: int) -> None:
        self.client = lavasync.Client(
            USER_ID, client_name=CLIENT_NAME, event_buffer_size=buffer_size
        )
        node = self.client.add_node("fake", fake.uri, password=fake.password)
        self.client.wait_ready(10)
        for guild in shape.guild_ids:
            self.client.player(guild)
        while self.client.poll(0.2) is not None:  # ready, connected, stats...
            pass
        self.session_id = node.session_id or ""
        self.frames = shape.frames
        self.seen = 0

    @property
    def coalesced(self) -> int:
        buffer = self.client._poll
        return buffer.coalesced if buffer is not None else 0

    def consume(self) -> Callable[[], float]:
        def run() -> float:
            poll = self.client.poll
            seen = 0
            end = 0.0
            while True:
                event = poll(120)
                if event is None:
                    raise RuntimeError(f"poll saw {seen} of {self.frames}, then nothing")
                cls = type(event)
                if cls is PlayerUpdateEvent:
                    seen += 1
                    if seen == self.frames:
                        end = time.perf_counter()
                elif cls is UnknownEvent and event.op == END_OP:  # type: ignore[attr-defined]
                    self.seen = seen
                    return end if seen == self.frames else time.perf_counter()

        return run

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- threads


def count_threads(nodes: int, players: int) -> tuple[int, list[str]]:
    """``lavasync-*`` threads of one client with ``nodes`` fake nodes and ``players`` players."""
    fakes = [FakeNode(name=f"t{i}").start() for i in range(nodes)]
    before = set(threading.enumerate())
    try:
        with lavasync.Client(USER_ID, client_name=CLIENT_NAME) as client:
            for i, fake in enumerate(fakes):
                client.add_node(f"n{i}", fake.uri, password=fake.password)
            for node in client.nodes:
                node.wait_ready(10)
            for i in range(players):
                client.player(GUILD + i)
            names = sorted(
                t.name
                for t in threading.enumerate()
                if t not in before and t.name.startswith("lavasync")
            )
    finally:
        for fake in fakes:
            fake.close()
    return len(names), names


# --------------------------------------------------------------------------- profile


def profile_reader(fake: FakeNode, frames: int) -> str:
    """cProfile of the reader path without the socket: ``Node._handle_frame`` on the frame
    bytes, on this thread, with a player for the guild, a listener and the poll buffer on."""
    client = lavasync.Client(USER_ID, client_name=CLIENT_NAME, event_buffer_size=frames + 10)
    try:
        node = client.add_node("fake", fake.uri, password=fake.password)
        client.wait_ready(10)
        client.player(GUILD)
        client.add_listener(PlayerUpdateEvent, lambda event: None)
        client._dispatcher.buffer.maxsize = frames + 10
        data = json.dumps(player_update(GUILD), separators=(",", ":")).encode()
        handle = node._handle_frame
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(frames):
            handle(data)
        profiler.disable()
        plain = time.perf_counter() - start
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(18)
        loads_start = time.perf_counter()
        for _ in range(frames):
            json.loads(data)
        loads = time.perf_counter() - loads_start
        header = (
            f"reader path, {frames} frames on one thread under cProfile: "
            f"{plain / frames * 1e6:.1f} us/frame (json.loads alone, no profiler: "
            f"{loads / frames * 1e6:.2f} us/frame)\n"
        )
        return header + out.getvalue()
    finally:
        client.close()


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=50_000, help="playerUpdates per burst")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per row (best, median)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the reader path")
    args = parser.parse_args()

    frames = args.frames
    big = frames + 10_000
    shapes = [Shape("1 guild", 1, frames), Shape("1,000 guilds", 1000, frames)]
    print(
        f"python {sys.version.split()[0]}, FakeNode in-process, {frames} playerUpdate frames per "
        f"burst, best and median of {args.rounds} rounds; ratio = best / best floor\n"
    )
    print(
        f"{'shape':<14}{'variant':<40}{'best':>9}{'median':>9}{'us/frame':>10}"
        f"{'ratio':>8}{'coalesced':>11}"
    )
    worst: dict[str, float] = {}
    with FakeNode(stats_interval=3600, player_update_interval=3600) as fake:
        for shape in shapes:
            raw = RawReader(fake)
            variants: list[tuple[str, Any]] = [
                ("floor: websocket recv + json.loads", raw),
                (
                    f"callback, event_buffer_size={big}",
                    CallbackClient(fake, shape, big, None),
                ),
                (
                    f"callback, dispatcher buffer {big} (*)",
                    CallbackClient(fake, shape, big, big),
                ),
                (f"poll, event_buffer_size={big}", PollClient(fake, shape, big)),
                ("poll, default event_buffer_size", PollClient(fake, shape, 10_000)),
            ]
            results = {name: Result() for name, _ in variants}
            for _ in range(args.rounds):  # interleaved, so drift hits every variant alike
                for name, consumer in variants:
                    if isinstance(consumer, RawReader):
                        consume = consumer.consume(shape.frames)
                    else:
                        consume = consumer.consume()
                    elapsed = timed_burst(fake, consumer.session_id, shape, consume)
                    results[name].times.append(elapsed)
            floor = min(results[variants[0][0]].times)
            for index, (name, consumer) in enumerate(variants):
                times = results[name].times
                best, median = min(times), statistics.median(times)
                coalesced = "" if isinstance(consumer, RawReader) else str(consumer.coalesced)
                ratio = best / floor
                if not isinstance(consumer, RawReader) and consumer.coalesced == 0:
                    key = "callback" if name.startswith("callback") else "poll"
                    worst[key] = max(worst.get(key, 0.0), ratio)
                label = shape.name if index == 0 else ""
                print(
                    f"{label:<14}{name:<40}{best * 1e3:>7.0f}ms{median * 1e3:>7.0f}ms"
                    f"{best / shape.frames * 1e6:>10.2f}{ratio:>7.2f}x{coalesced:>11}"
                )
            for _, consumer in variants:
                consumer.close()
            print()
        print(
            "(*) Client(event_buffer_size=...) sizes only the poll buffer; this row sets the "
            "dispatcher's buffer size by hand.\n'coalesced' is the total over all rounds.\n"
        )
        for key, ratio in sorted(worst.items()):
            verdict = "meets" if ratio <= TARGET else "MISSES"
            print(
                f"worst {key} ratio (no coalescing) {ratio:.2f}x: "
                f"{verdict} the {TARGET:.0f}x target"
            )
        print()
        for nodes in (1, 3):
            count, names = count_threads(nodes, 1000)
            print(f"threads with {nodes} node(s) and 1,000 players: {count} ({', '.join(names)})")
        if args.profile:
            print()
            print(profile_reader(fake, frames))


if __name__ == "__main__":
    main()
