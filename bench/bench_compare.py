"""Side by side: lavasync and Lavalink.py 5.11.1 (asyncio) against raw floors, in one run.

Run by hand: ``python bench/bench_compare.py [--rounds 5] [--rows ...] [--no-lavalink]``.
Lavalink.py is a bench-time dependency only: ``pip install lavalink==5.11.1`` (or
``pip install -e .[bench]``); without it its column is left empty.

A FakeNode runs in a child process (its work never shares this interpreter's GIL). Every row is
measured ``--rounds`` times, floor and contenders interleaved in each round so that load on the
machine hits them alike; a figure is the median over the rounds of ``cost / floor cost`` of the
same round. ``wall`` is elapsed time per operation, ``cpu`` this process's CPU time per
operation (user + system, every thread).

Rows and floors (the issue 14 table):

* loadtracks (1 track; 500-track playlist): floor = ``http.client`` keep-alive + ``json.loads``;
  lavasync = ``client.load(identifier)`` (a ``LoadResult`` of models); Lavalink.py =
  ``await client.get_tracks(identifier)``.
* player PATCH (``set_volume``), sequential: same floor (the same PATCH body to the same
  player, which plays a track); lavasync = ``player.set_volume(n)``; Lavalink.py =
  ``await player.set_volume(n)``.
* player PATCH, 8 threads on 8 players: floor = 8 threads, each its own keep-alive
  connection and player; lavasync = 8 threads, one ``Player`` each; Lavalink.py = 8 tasks, one
  player each, gathered on its loop (its natural concurrency). Wall time per PATCH.
* ingest: 50,000 ``playerUpdate`` frames written in one burst for one guild; floor =
  websocket-client ``recv()`` + ``json.loads``; lavasync = a ``PlayerUpdateEvent`` listener
  (reader thread -> dispatcher thread -> listener, the player updated on the way);
  Lavalink.py = a ``PlayerUpdateEvent`` hook (its player updated on the way).
* local decode_track of real vectors (tests/data/lavalink-v4/track_vectors.json: ASCII, emoji,
  CJK, LavaSrc, http): floor = a minimal ``struct`` decoder to a dict; lavasync =
  ``lavasync.decode_track``; Lavalink.py = ``lavalink.decode_track``.
* memory per idle Player: ``tracemalloc`` over ``--players`` players created and never used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import http.client
import json
import statistics
import struct
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _child import Child, add_bench_playlist, announce, raw_session  # noqa: E402

import lavasync  # noqa: E402
from lavasync.models.events import PlayerUpdateEvent  # noqa: E402

try:
    import lavalink
except ImportError:  # the Lavalink.py column stays empty
    lavalink = None

USER_ID = 170939974227591168
CLIENT_NAME = "lavasync-bench/1.0"
PLAYLIST_SIZE = 500
THREADS = 8
CALL_GUILD = 1
THREAD_GUILD = 100  # guilds 100..107: the 8-thread row
INGEST_GUILD = 817327181659111454
MEMORY_GUILD = 900000000000000000
VECTORS = ROOT / "tests" / "data" / "lavalink-v4" / "track_vectors.json"

ROWS = {
    "load1": ("loadtracks, 1 track, sequential", 1.5),
    "load500": (f"loadtracks, {PLAYLIST_SIZE}-track playlist", 1.3),
    "patch": ("player PATCH (set_volume), sequential", 1.5),
    "patch8": (f"player PATCH, {THREADS} threads on {THREADS} players", 1.5),
    "ingest": ("ingest, 50,000 playerUpdates to a listener", 1.3),
    "decode": ("local decode_track, real vectors", 1.2),
    "memory": ("memory per idle Player", 400.0),
}


# --------------------------------------------------------------------------- the child node


def serve() -> None:
    """Child mode (``--serve``): a FakeNode with one track and a 500-track playlist; prints its
    address, then one ``ok`` per burst command line on stdin until stdin closes."""
    from lavasync.testing import FakeNode

    with FakeNode(stats_interval=3600, player_update_interval=3600) as fake:
        track = fake.add_track("Bench Track", identifier="bench-single", length=3_600_000)
        add_bench_playlist(fake, PLAYLIST_SIZE)
        announce(
            {
                "uri": fake.uri,
                "ws_uri": fake.ws_uri,
                "password": fake.password,
                "track": track.encoded,
            }
        )
        for line in sys.stdin:
            command = json.loads(line)
            update = {
                "op": "playerUpdate",
                "guildId": str(command["guild"]),
                "state": {"time": 1500467109, "position": 60000, "connected": True, "ping": 50},
            }
            fake.burst(update, command["frames"], session_id=command["sid"])
            print("ok", flush=True)


# --------------------------------------------------------------------------- floors


class RawRest:
    """The REST floor: one kept-alive http.client connection, ``json.loads`` of the body."""

    def __init__(self, uri: str, password: str) -> None:
        parts = urlsplit(uri)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.headers = {"Authorization": password, "Accept": "application/json"}
        self.json_headers = dict(self.headers, **{"Content-Type": "application/json"})

    def get(self, target: str) -> Any:
        self.conn.request("GET", target, headers=self.headers)
        return self._answer()

    def patch(self, target: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = dict(self.json_headers)
        headers["Content-Length"] = str(len(data))
        self.conn.request("PATCH", target, body=data, headers=headers)
        return self._answer()

    def _answer(self) -> Any:
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"floor call failed: {response.status} {data[:200]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.conn.close()


_HEADER = struct.Struct(">IB")
_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")


def _utf(raw: bytes, pos: int) -> tuple[str, int]:
    (size,) = _U16.unpack_from(raw, pos)
    pos += 2
    chunk = raw[pos : pos + size]
    try:
        text = chunk.decode()
    except UnicodeDecodeError:  # Java's modified UTF-8: surrogate pairs and C0 80
        text = chunk.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
        text = text.encode("utf-16", "surrogatepass").decode("utf-16")
    return text, pos + size


def floor_decode(encoded: str) -> dict[str, Any]:
    """The decode floor: what a minimal hand-written ``struct`` decoder does (no checks)."""
    raw = base64.b64decode(encoded)
    header, version = _HEADER.unpack_from(raw, 0)
    pos = 5 if header >> 30 & 1 else 4
    if pos == 4:
        version = 1
    title, pos = _utf(raw, pos)
    author, pos = _utf(raw, pos)
    (length,) = _I64.unpack_from(raw, pos)
    identifier, pos = _utf(raw, pos + 8)
    is_stream = raw[pos] != 0
    pos += 1
    uri = artwork = isrc = None
    if version >= 2:
        if raw[pos]:
            uri, pos = _utf(raw, pos + 1)
        else:
            pos += 1
    if version >= 3:
        if raw[pos]:
            artwork, pos = _utf(raw, pos + 1)
        else:
            pos += 1
        if raw[pos]:
            isrc, pos = _utf(raw, pos + 1)
        else:
            pos += 1
    source, pos = _utf(raw, pos)
    (position,) = _I64.unpack_from(raw, len(raw) - 8)
    return {
        "identifier": identifier,
        "isSeekable": not is_stream,
        "author": author,
        "length": length,
        "isStream": is_stream,
        "position": position,
        "title": title,
        "uri": uri,
        "artworkUrl": artwork,
        "isrc": isrc,
        "sourceName": source,
    }


class RawIngest:
    """The ingest floor: one websocket-client connection, ``recv()`` + ``json.loads``."""

    def __init__(self, ws_uri: str, password: str) -> None:
        self.ws, self.session_id = raw_session(
            ws_uri, password, USER_ID, "raw", skip_utf8_validation=True
        )

    def consume(self, frames: int) -> None:
        recv, loads = self.ws.recv, json.loads
        seen = 0
        while seen < frames:
            if loads(recv())["op"] == "playerUpdate":
                seen += 1

    def close(self) -> None:
        self.ws.close()


# --------------------------------------------------------------------------- measuring

Sample = tuple[float, float]  # wall seconds, CPU seconds: per operation


def timed(fn: Callable[[], Any], ops: int) -> Sample:
    """``fn()`` performs ``ops`` operations; returns the wall and CPU time per operation."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - start) / ops, (time.process_time() - cpu) / ops


def loop_of(call: Callable[[int], Any], calls: int) -> Callable[[], Any]:
    def run() -> None:
        for i in range(calls):
            call(i)

    return run


def in_threads(calls: Callable[[int], Callable[[int], Any]], per_thread: int) -> Callable[[], Any]:
    """THREADS threads (made beforehand, started together) each doing ``per_thread`` calls."""

    def run() -> None:
        failures: list[BaseException] = []
        gate = threading.Event()

        def work(t: int) -> None:
            call = calls(t)
            gate.wait()
            try:
                for i in range(per_thread):
                    call(i)
            except BaseException as exc:  # reported below
                failures.append(exc)

        workers = [
            threading.Thread(target=work, args=(t,), name=f"bench-{t}") for t in range(THREADS)
        ]
        for worker in workers:
            worker.start()
        gate.set()
        for worker in workers:
            worker.join()
        if failures:
            raise failures[0]

    return run


class LavalinkPy:
    """Lavalink.py 5.11.1 on its own event loop, driven from this thread."""

    def __init__(self, uri: str, password: str) -> None:
        assert lavalink is not None
        self.loop = asyncio.new_event_loop()
        parts = urlsplit(uri)
        self.seen = 0
        self.target = 0
        self.done: Optional[asyncio.Event] = None

        async def setup() -> Any:
            client = lavalink.Client(USER_ID)
            node = client.add_node(parts.hostname, parts.port, password, "eu", "bench")
            for _ in range(500):
                if node.available and node._transport.session_id:
                    break
                await asyncio.sleep(0.01)
            else:
                raise RuntimeError("Lavalink.py never got ready")

            async def on_update(event: Any) -> None:
                self.seen += 1
                if self.seen >= self.target and self.done is not None:
                    self.done.set()

            client.add_event_hook(on_update, event=lavalink.PlayerUpdateEvent)
            return client, node

        self.client, self.node = self.run(setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def player(self, guild: int) -> Any:
        return self.client.player_manager.create(guild)

    def close(self) -> None:
        async def shut() -> None:
            await self.client.close()
            await asyncio.sleep(0.05)

        self.run(shut())
        self.loop.close()


# --------------------------------------------------------------------------- rows


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.child = Child(__file__)
        info = self.child.info
        self.uri, self.ws_uri, self.password = info["uri"], info["ws_uri"], info["password"]
        self.track: str = info["track"]
        self.client = lavasync.Client(USER_ID, client_name=CLIENT_NAME, poll_events=False)
        self.node = self.client.add_node("bench", self.uri, password=self.password)
        self.client.wait_ready(10)
        self.raw = RawRest(self.uri, self.password)
        sid = self.node.session_id
        assert sid is not None
        self.player_path = f"/v4/sessions/{quote(sid, safe='')}/players"
        # Every PATCHed player plays a track, so every answer carries one.
        for guild in [CALL_GUILD, *range(THREAD_GUILD, THREAD_GUILD + THREADS)]:
            self.client.player(guild).play(self.track)
        self.ll: Optional[LavalinkPy] = None
        if lavalink is not None and not args.no_lavalink:
            self.ll = LavalinkPy(self.uri, self.password)

    def close(self) -> None:
        if self.ll is not None:
            self.ll.close()
        self.raw.close()
        self.client.close()
        self.child.close()

    # each row returns {variant: callable returning a Sample}

    def load(self, identifier: str, calls: int) -> dict[str, Callable[[], Sample]]:
        target = f"/v4/loadtracks?identifier={identifier}"
        client, raw = self.client, self.raw
        variants = {
            "floor": lambda: timed(loop_of(lambda i: raw.get(target), calls), calls),
            "lavasync": lambda: timed(loop_of(lambda i: client.load(identifier), calls), calls),
        }
        if self.ll is not None:
            ll = self.ll

            async def many() -> None:
                for _ in range(calls):
                    await ll.client.get_tracks(identifier)

            variants["Lavalink.py"] = lambda: timed(lambda: ll.run(many()), calls)
        return variants

    def patch(self, calls: int) -> dict[str, Callable[[], Sample]]:
        raw, target = self.raw, f"{self.player_path}/{CALL_GUILD}"
        player = self.client.player(CALL_GUILD)
        variants = {
            "floor": lambda: timed(
                loop_of(lambda i: raw.patch(target, {"volume": 50 + i % 50}), calls), calls
            ),
            "lavasync": lambda: timed(
                loop_of(lambda i: player.set_volume(50 + i % 50), calls), calls
            ),
        }
        if self.ll is not None:
            ll = self.ll
            ll_player = ll.player(CALL_GUILD)

            async def many() -> None:
                for i in range(calls):
                    await ll_player.set_volume(50 + i % 50)

            variants["Lavalink.py"] = lambda: timed(lambda: ll.run(many()), calls)
        return variants

    def patch8(self, calls: int) -> dict[str, Callable[[], Sample]]:
        total = calls * THREADS

        def raw_calls(t: int) -> Callable[[int], Any]:
            raw = RawRest(self.uri, self.password)
            target = f"{self.player_path}/{THREAD_GUILD + t}"
            return lambda i: raw.patch(target, {"volume": 50 + i % 50})

        def player_calls(t: int) -> Callable[[int], Any]:
            player = self.client.player(THREAD_GUILD + t)
            return lambda i: player.set_volume(50 + i % 50)

        variants = {
            "floor": lambda: timed(in_threads(raw_calls, calls), total),
            "lavasync": lambda: timed(in_threads(player_calls, calls), total),
        }
        if self.ll is not None:
            ll = self.ll
            players = [ll.player(THREAD_GUILD + t) for t in range(THREADS)]

            async def one(p: Any) -> None:
                for i in range(calls):
                    await p.set_volume(50 + i % 50)

            async def many() -> None:
                await asyncio.gather(*(one(p) for p in players))

            variants["Lavalink.py"] = lambda: timed(lambda: ll.run(many()), total)
        return variants

    def ingest(self, frames: int) -> dict[str, Callable[[], Sample]]:
        child = self.child
        raw = RawIngest(self.ws_uri, self.password)
        self._closers.append(raw.close)

        def burst(sid: str) -> None:
            child.send({"sid": sid, "guild": INGEST_GUILD, "frames": frames})

        def answered() -> None:
            if child.readline().strip() != "ok":
                raise RuntimeError("the FakeNode child failed a burst")

        def floor() -> None:
            burst(raw.session_id)
            raw.consume(frames)
            answered()

        # lavasync: its own client (only the listener under test), a player for the guild
        ls = lavasync.Client(
            USER_ID, client_name=CLIENT_NAME, poll_events=False, event_buffer_size=frames + 10
        )
        self._closers.append(ls.close)
        ls_node = ls.add_node("ingest", self.uri, password=self.password)
        ls.wait_ready(10)
        ls.player(INGEST_GUILD)
        counter = {"seen": 0}
        done = threading.Event()

        def count(event: PlayerUpdateEvent) -> None:
            counter["seen"] += 1
            if counter["seen"] == frames:
                done.set()

        ls.add_listener(PlayerUpdateEvent, count)

        def ours() -> None:
            counter["seen"] = 0
            done.clear()
            burst(ls_node.session_id or "")
            if not done.wait(120):
                raise RuntimeError(f"lavasync saw {counter['seen']} of {frames}")
            answered()

        variants = {
            "floor": lambda: timed(floor, frames),
            "lavasync": lambda: timed(ours, frames),
        }
        if self.ll is not None:
            ll = self.ll
            ll.player(INGEST_GUILD)

            async def theirs() -> None:
                ll.seen, ll.target = 0, frames
                ll.done = asyncio.Event()
                burst(ll.node._transport.session_id)
                await asyncio.wait_for(ll.done.wait(), 120)

            def run_theirs() -> None:
                ll.run(theirs())
                answered()

            variants["Lavalink.py"] = lambda: timed(run_theirs, frames)
        return variants

    def decode(self, repeat: int) -> dict[str, Callable[[], Sample]]:
        vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
        blobs = [encoded for _, encoded in pick(vectors)]
        for encoded in blobs:  # all three read the same fields
            expected = floor_decode(encoded)
            assert lavasync.decode_track(encoded).info.to_wire() == expected, encoded
        ops = repeat * len(blobs)
        work = blobs * repeat

        def each(fn: Callable[[str], Any]) -> Callable[[], Any]:
            def run() -> None:
                for encoded in work:
                    fn(encoded)

            return run

        variants = {
            "floor": lambda: timed(each(floor_decode), ops),
            "lavasync": lambda: timed(each(lavasync.decode_track), ops),
        }
        if lavalink is not None and not self.args.no_lavalink:
            variants["Lavalink.py"] = lambda: timed(each(lavalink.decode_track), ops)
        return variants

    def memory(self, players: int) -> dict[str, float]:
        result = {"lavasync": per_object(self.client.player, players)}
        if self.ll is not None:
            ll = self.ll
            result["Lavalink.py"] = per_object(ll.player, players)
        return result

    _closers: list[Callable[[], Any]] = []


def per_object(make: Callable[[int], Any], count: int) -> float:
    """Bytes per object made by ``make(guild)`` (tracemalloc diff, this script left out)."""
    gc.collect()
    tracemalloc.start()
    try:
        guilds = [MEMORY_GUILD + i for i in range(count)]
        before = tracemalloc.take_snapshot()
        made = [make(g) for g in guilds]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert len(made) == count
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "filename")
    return sum(stat.size_diff for stat in diff) / count


def pick(vectors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The real vectors of bench_codec.py: ASCII, emoji, CJK, LavaSrc, http."""

    def first(test: Callable[[dict[str, Any]], bool]) -> str:
        return str(next(v for v in vectors if test(v))["encoded"])

    return [
        ("youtube ascii", first(lambda v: v["version"] == 3 and v["info"]["title"].isascii())),
        ("youtube emoji", first(lambda v: "\U0001f33f" in v["info"]["title"])),
        ("youtube CJK", first(lambda v: v["info"]["title"].startswith("\u541b"))),
        ("spotify LavaSrc", first(lambda v: v["info"]["sourceName"] == "spotify")),
        ("http v2 probe", first(lambda v: v["info"]["sourceName"] == "http")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per row (median)")
    parser.add_argument("--calls", type=int, default=200, help="REST calls per round")
    parser.add_argument("--frames", type=int, default=50_000, help="ingest frames per round")
    parser.add_argument("--players", type=int, default=5000, help="idle players (memory)")
    parser.add_argument("--rows", nargs="*", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--no-lavalink", action="store_true", help="leave Lavalink.py out")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    bench = Bench(args)
    version = getattr(lavalink, "__version__", "not installed") if bench.ll else "left out"
    print(
        f"python {sys.version.split()[0]}, lavasync {lavasync.__version__}, Lavalink.py "
        f"{version}; FakeNode in a child process; medians of {args.rounds} rounds; "
        "ratio = cost / floor of the same round\n"
    )
    print(
        f"{'row':<44}{'variant':<13}{'wall/op':>11}{'cpu/op':>11}"
        f"{'wall ratio':>12}{'cpu ratio':>11}{'target':>8}"
    )
    try:
        for key in args.rows:
            name, target = ROWS[key]
            if key == "memory":
                sizes = bench.memory(args.players)
                for variant, size in sizes.items():
                    label = name if variant == "lavasync" else ""
                    verdict = f"<= {target:.0f} B" if variant == "lavasync" else ""
                    print(f"{label:<44}{variant:<13}{size:>9.0f} B{'':>34}{verdict:>8}")
                continue
            if key == "load1":
                variants = bench.load("bench-single", args.calls)
            elif key == "load500":
                variants = bench.load("bench-playlist", max(10, args.calls // 10))
            elif key == "patch":
                variants = bench.patch(args.calls)
            elif key == "patch8":
                variants = bench.patch8(max(10, args.calls // 2))
            elif key == "ingest":
                variants = bench.ingest(args.frames)
            else:
                variants = bench.decode(2000)
            for variant in variants.values():  # warm-up: connections, caches
                variant()
            samples: dict[str, list[Sample]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for variant, measure in variants.items():
                    samples[variant].append(measure())
            floors = samples["floor"]
            for variant, values in samples.items():
                wall = statistics.median(w for w, _ in values)
                cpu = statistics.median(c for _, c in values)
                wall_ratio = statistics.median(w / f[0] for (w, _), f in zip(values, floors))
                cpu_ratio = statistics.median(c / f[1] for (_, c), f in zip(values, floors))
                label = name if variant == "floor" else ""
                mark = f"<= {target}x" if variant == "floor" else ""
                print(
                    f"{label:<44}{variant:<13}{wall * 1e6:>9.1f}us{cpu * 1e6:>9.1f}us"
                    f"{wall_ratio:>11.2f}x{cpu_ratio:>10.2f}x{mark:>8}"
                )
            print()
    finally:
        for closer in Bench._closers:
            closer()
        bench.close()


if __name__ == "__main__":
    main()
