"""Player costs: the memory of an idle Player, and a blocking player call against a raw
``http.client`` keep-alive PATCH measured in the same run.

Run by hand: ``python bench/bench_player.py [--players 5000] [--rounds 9] [--calls 200]``.

A FakeNode runs in a child process (its work does not share this interpreter's GIL).

(a) Memory: a Client with a ready node creates ``--players`` players with
``client.player(guild)`` (which sends nothing); ``tracemalloc`` snapshots before and after give
the bytes per player. Target: < 1 KB each.

(b) Calls: on a player that is playing a track, each row sends the same PATCH
``/v4/sessions/{sid}/players/{guild}`` with the same JSON body three ways:

* floor: one ``http.client.HTTPConnection`` kept alive, the transport's own headers, and
  ``json.loads`` of the answer;
* rest: ``node.rest.update_player`` (transport + decoding into ``PlayerInfo``), for reference;
* player: ``player.set_volume(n)``, ``player.pause()`` / ``player.resume()`` (validation, the
  player's call lock, the REST call, applying the answer to the player's state).

Each figure is the best (and the median) of ``--rounds`` interleaved rounds of ``--calls`` calls.
Target: player <= 2x the floor.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import linecache
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _child import Child, announce  # noqa: E402

import lavasync  # noqa: E402
from lavasync.models import UpdatePlayer  # noqa: E402

TARGET = 2.0
MEMORY_TARGET = 1024
USER_ID = 170939974227591168
GUILD = 817327181659111454
CALL_GUILD = 1


def serve() -> None:
    """Child mode (``--serve``): a FakeNode with one long track; its address as JSON on stdout;
    runs until stdin closes."""
    from lavasync.testing import FakeNode

    with FakeNode(stats_interval=3600, player_update_interval=3600) as fake:
        track = fake.add_track("Bench Track", identifier="bench-track", length=3_600_000)
        info = {"uri": fake.uri, "password": fake.password, "track": track.encoded}
        announce(info)
        sys.stdin.read()


class ChildNode:
    def __init__(self) -> None:
        self.child = Child(__file__)
        info = self.child.info
        self.uri: str = info["uri"]
        self.password: str = info["password"]
        self.track: str = info["track"]

    def close(self) -> None:
        self.child.close()


# --------------------------------------------------------------------------- (a) memory


def measure_memory(client: lavasync.Client, players: int) -> tuple[float, list[str]]:
    """Bytes per idle player (tracemalloc diff), and the biggest allocation sites."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        made = [client.player(GUILD + i) for i in range(players)]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert len(made) == players and len(client.players) >= players
    # This script's own allocations (the list of players, the guild id ints) are left out.
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = sum(stat.size_diff for stat in diff)
    top = []
    for stat in sorted(diff, key=lambda s: -s.size_diff)[:6]:
        frame = stat.traceback[0]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        code = linecache.getline(frame.filename, frame.lineno).strip()
        top.append(f"{where:<18}{stat.size_diff / players:>7.1f} B/player  {code[:60]}")
    return total / players, top


# --------------------------------------------------------------------------- (b) calls


class RawClient:
    """The floor: a kept-alive http.client connection sending the transport's headers."""

    def __init__(self, uri: str, headers: dict[str, str]) -> None:
        parts = urlsplit(uri)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.json_headers = dict(headers, **{"Content-Type": "application/json"})

    def patch(self, target: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = dict(self.json_headers)
        headers["Content-Length"] = str(len(data))
        self.conn.request("PATCH", target, body=data, headers=headers)
        response = self.conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"floor PATCH failed: {response.status} {answer[:200]!r}")
        return json.loads(answer)

    def close(self) -> None:
        self.conn.close()


def per_call(fn: Callable[[int], Any], calls: int) -> float:
    """Seconds per call of ``fn(i)``, after a short warm-up."""
    for i in range(min(10, calls)):
        fn(i)
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=5000, help="idle players for (a)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per row (best, median)")
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    node_proc = ChildNode()
    client = lavasync.Client(USER_ID, client_name="lavasync-bench/1.0", poll_events=False)
    try:
        node = client.add_node("bench", node_proc.uri, password=node_proc.password)
        client.wait_ready(10)
        print(f"python {sys.version.split()[0]}, FakeNode in a child process\n")

        per_player, top = measure_memory(client, args.players)
        verdict = "meets" if per_player < MEMORY_TARGET else "MISSES"
        print(
            f"(a) idle Player: {per_player:.0f} bytes each over {args.players} players "
            f"(tracemalloc diff): {verdict} the < {MEMORY_TARGET} B target"
        )
        print("    biggest sites:")
        for line in top:
            print(f"      {line}")
        print()

        player = client.player(CALL_GUILD)
        player.play(node_proc.track)
        sid = node.session_id
        assert sid is not None
        target = f"/v4/sessions/{quote(sid, safe='')}/players/{CALL_GUILD}"
        raw = RawClient(node_proc.uri, dict(node.rest.transport._get_headers))
        rest = node.rest

        def volume(i: int) -> int:
            return 50 + i % 50

        rows: list[tuple[str, dict[str, Callable[[int], Any]]]] = [
            (
                "set_volume(n)",
                {
                    "floor": lambda i: raw.patch(target, {"volume": volume(i)}),
                    "rest": lambda i: rest.update_player(
                        sid, CALL_GUILD, UpdatePlayer(volume=volume(i))
                    ),
                    "player": lambda i: player.set_volume(volume(i)),
                },
            ),
            (
                "pause() / resume()",
                {
                    "floor": lambda i: raw.patch(target, {"paused": i % 2 == 0}),
                    "rest": lambda i: rest.update_player(
                        sid, CALL_GUILD, UpdatePlayer(paused=i % 2 == 0)
                    ),
                    "player": lambda i: player.pause() if i % 2 == 0 else player.resume(),
                },
            ),
        ]
        print(
            f"(b) blocking calls: best and median of {args.rounds} rounds of {args.calls} calls; "
            "ratio = best / best floor"
        )
        print(f"{'call':<22}{'variant':<10}{'best':>10}{'median':>10}{'ratio':>8}{'+us':>9}")
        worst = 0.0
        for name, variants in rows:
            samples: dict[str, list[float]] = {key: [] for key in variants}
            for _ in range(args.rounds):  # interleaved, so drift hits all variants alike
                for key, fn in variants.items():
                    samples[key].append(per_call(fn, args.calls))
            floor = min(samples["floor"])
            for key, values in samples.items():
                best, median = min(values), statistics.median(values)
                ratio = best / floor
                if key == "player":
                    worst = max(worst, ratio)
                label = name if key == "floor" else ""
                print(
                    f"{label:<22}{key:<10}{best * 1e6:>8.1f}us{median * 1e6:>8.1f}us"
                    f"{ratio:>7.2f}x{(best - floor) * 1e6:>+9.1f}"
                )
        verdict = "meets" if worst <= TARGET else "MISSES"
        print(f"\nworst player ratio {worst:.2f}x: {verdict} the {TARGET:.0f}x target")
        raw.close()
    finally:
        client.close()
        node_proc.close()


if __name__ == "__main__":
    main()
