"""REST call cost against a raw ``http.client`` keep-alive floor, in the same run.

Run by hand: ``python bench/bench_rest.py [--rounds N] [--calls N]``. A FakeNode runs in a
child process (so its work does not share this interpreter's GIL), and every row sends the
same HTTP request, with the same headers, three ways:

* floor: one ``http.client.HTTPConnection`` kept alive, ``json.loads`` of the body
  (one connection per thread in the threaded row);
* transport: ``RestTransport.request`` (the REST call: requests + error mapping + JSON);
* client: ``RestClient`` (the call plus decoding into models), where it differs.

Rows: loadtracks of one track, loadtracks of a 500-track playlist, player PATCH sequential,
player PATCH from 8 threads. Each figure is the best of ``--rounds`` interleaved rounds (the
one least disturbed by other processes); the ratio is cost / floor cost, and "+us" is the
client-side time added per call. Target: transport <= 2x the floor. Decoding a 500-track
playlist into models is shown on its own line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _child import Child, add_bench_playlist, announce, raw_session  # noqa: E402

from lavasync.models import LoadResult, UpdatePlayer  # noqa: E402
from lavasync.rest import RestClient  # noqa: E402
from lavasync.transport.rest import RestTransport  # noqa: E402

TARGET = 2.0
THREADS = 8
PLAYLIST_SIZE = 500


def serve() -> None:
    """Child mode (``--serve``): a FakeNode with one track and a 500-track playlist, its
    address printed as JSON on stdout; runs until stdin closes."""
    from lavasync.testing import FakeNode

    with FakeNode() as fake:
        fake.add_track("Bench Track", identifier="bench-single", length=200_000)
        add_bench_playlist(fake, PLAYLIST_SIZE)
        address = {"uri": fake.uri, "ws_uri": fake.ws_uri, "password": fake.password}
        announce(address)
        sys.stdin.read()


class Node:
    """The FakeNode child process and a WebSocket session held open on it."""

    def __init__(self) -> None:
        self.child = Child(__file__)
        info = self.child.info
        self.uri: str = info["uri"]
        self.password: str = info["password"]
        self.ws, self.session_id = raw_session(
            info["ws_uri"], self.password, 1, "lavasync-bench", timeout=10
        )
        self.ws.settimeout(None)
        # Drain whatever the node pushes (stats, playerUpdates) so its sends never block.
        self._drain = threading.Thread(target=self._drain_loop, name="bench-ws-drain", daemon=True)
        self._drain.start()

    def _drain_loop(self) -> None:
        try:
            while self.ws.recv():
                pass
        except Exception:  # the socket is closed at the end of the run
            return

    def close(self) -> None:
        self.ws.close()
        self._drain.join(5)
        self.child.close()


class RawClient:
    """The floor: a kept-alive http.client connection sending the transport's exact headers."""

    def __init__(self, uri: str, headers: dict[str, str]) -> None:
        parts = urlsplit(uri)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.headers = headers
        self.json_headers = dict(headers, **{"Content-Type": "application/json"})

    def call(self, method: str, target: str, body: Optional[bytes] = None) -> Any:
        headers = self.headers
        if body is not None:
            headers = dict(self.json_headers, **{"Content-Length": str(len(body))})
        self.conn.request(method, target, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"floor call failed: {response.status} {data[:200]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


Sample = tuple[float, float]  # (wall seconds, this process's CPU seconds) per call


def sequential(fn: Callable[[int], Any], calls: int) -> Sample:
    """Cost per call of ``fn(i)`` for ``i`` in ``range(calls)``, after a short warm-up."""
    for i in range(min(20, calls)):
        fn(i)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu) / calls


def threaded(make: Callable[[int], Callable[[int], Any]], calls: int) -> Sample:
    """Cost per call with THREADS threads each making ``calls`` calls at once (wall time of
    the whole burst, and CPU of all threads, divided by the number of calls)."""
    barrier = threading.Barrier(THREADS + 1)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            fn = make(index)
            for i in range(10):
                fn(i)
            barrier.wait()
            for i in range(calls):
                fn(i)
            barrier.wait()
        except BaseException as exc:  # reported below
            failures.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=run, args=(i,), name=f"bench-{i}") for i in range(THREADS)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    barrier.wait()
    elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return elapsed / (calls * THREADS), cpu_used / (calls * THREADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds per row (best taken)")
    parser.add_argument("--calls", type=int, default=200, help="calls per round (small rows)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    node = Node()
    transport = RestTransport(node.uri, node.password, client_name="lavasync-bench/1.0")
    client = RestClient(transport)
    headers = dict(transport._get_headers)  # the exact headers the transport sends
    sid = node.session_id
    player_path = f"/v4/sessions/{quote(sid, safe='')}/players"
    single_target = "/v4/loadtracks?identifier=bench-single"
    playlist_target = "/v4/loadtracks?identifier=bench-playlist"
    raw = RawClient(node.uri, headers)
    playlist_json = raw.call("GET", playlist_target)
    assert len(playlist_json["data"]["tracks"]) == PLAYLIST_SIZE

    def volume_body(i: int) -> dict[str, int]:
        return {"volume": 50 + i % 50}

    rows: list[tuple[str, dict[str, Callable[[], Sample]]]] = [
        (
            "loadtracks, 1 track",
            {
                "floor": lambda: sequential(lambda i: raw.call("GET", single_target), args.calls),
                "transport": lambda: sequential(
                    lambda i: transport.request(
                        "GET", "/v4/loadtracks", params={"identifier": "bench-single"}
                    ),
                    args.calls,
                ),
                "client": lambda: sequential(
                    lambda i: client.load_tracks("bench-single"), args.calls
                ),
            },
        ),
        (
            f"loadtracks, {PLAYLIST_SIZE}-track playlist",
            {
                "floor": lambda: sequential(
                    lambda i: raw.call("GET", playlist_target), max(10, args.calls // 20)
                ),
                "transport": lambda: sequential(
                    lambda i: transport.request(
                        "GET", "/v4/loadtracks", params={"identifier": "bench-playlist"}
                    ),
                    max(10, args.calls // 20),
                ),
                "client": lambda: sequential(
                    lambda i: client.load_tracks("bench-playlist"), max(10, args.calls // 20)
                ),
                "decode only": lambda: sequential(
                    lambda i: LoadResult.from_wire(playlist_json), max(10, args.calls // 20)
                ),
            },
        ),
        (
            "player PATCH, sequential",
            {
                "floor": lambda: sequential(
                    lambda i: raw.call(
                        "PATCH",
                        f"{player_path}/1",
                        _compact(volume_body(i)),
                    ),
                    args.calls,
                ),
                "transport": lambda: sequential(
                    lambda i: transport.request("PATCH", f"{player_path}/1", json=volume_body(i)),
                    args.calls,
                ),
                "client": lambda: sequential(
                    lambda i: client.update_player(sid, 1, UpdatePlayer(volume=50 + i % 50)),
                    args.calls,
                ),
            },
        ),
        (
            f"player PATCH, {THREADS} threads",
            {
                "floor": lambda: threaded(_raw_patcher(node.uri, headers, player_path), args.calls),
                "transport": lambda: threaded(
                    lambda t: (
                        lambda i: transport.request(
                            "PATCH", f"{player_path}/{100 + t}", json=volume_body(i)
                        )
                    ),
                    args.calls,
                ),
                "client": lambda: threaded(
                    lambda t: (
                        lambda i: client.update_player(
                            sid, 100 + t, UpdatePlayer(volume=50 + i % 50)
                        )
                    ),
                    args.calls,
                ),
            },
        ),
    ]

    print(
        f"python {sys.version.split()[0]}, FakeNode in a child process; best of "
        f"{args.rounds} rounds; ratio = cost / floor; cpu = this process's CPU per call\n"
    )
    print(
        f"{'row':<34}{'variant':<12}{'wall':>10}{'ratio':>8}{'+us':>9}"
        f"{'cpu':>10}{'ratio':>8}{'+us':>9}"
    )
    worst_wall = worst_cpu = 0.0
    for name, variants in rows:
        samples: dict[str, list[Sample]] = {key: [] for key in variants}
        for _ in range(args.rounds):  # interleave variants so drift hits all alike
            for key, measure in variants.items():
                samples[key].append(measure())
        floor_wall = min(w for w, _ in samples["floor"])
        floor_cpu = min(c for _, c in samples["floor"])
        for key, values in samples.items():
            wall = min(w for w, _ in values)
            cpu = min(c for _, c in values)
            label = name if key == "floor" else ""
            if key == "decode only":
                print(f"{label:<34}{key:<12}{wall * 1e6:>8.1f}us{'':>17}{cpu * 1e6:>8.1f}us")
                continue
            if key == "transport":
                worst_wall = max(worst_wall, wall / floor_wall)
                worst_cpu = max(worst_cpu, cpu / floor_cpu)
            print(
                f"{label:<34}{key:<12}"
                f"{wall * 1e6:>8.1f}us{wall / floor_wall:>7.2f}x{(wall - floor_wall) * 1e6:>+9.1f}"
                f"{cpu * 1e6:>8.1f}us{cpu / floor_cpu:>7.2f}x{(cpu - floor_cpu) * 1e6:>+9.1f}"
            )
        print()
    for what, worst in (("wall", worst_wall), ("cpu", worst_cpu)):
        verdict = "meets" if worst <= TARGET else "MISSES"
        print(f"worst transport {what} ratio {worst:.2f}x: {verdict} the {TARGET:.0f}x target")

    raw.close()
    client.close()
    node.close()


def _compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _raw_patcher(
    uri: str, headers: dict[str, str], player_path: str
) -> Callable[[int], Callable[[int], Any]]:
    """A factory giving each thread its own kept-alive floor connection."""

    def make(thread: int) -> Callable[[int], Any]:
        raw = RawClient(uri, headers)
        target = f"{player_path}/{100 + thread}"
        return lambda i: raw.call("PATCH", target, _compact({"volume": 50 + i % 50}))

    return make


if __name__ == "__main__":
    main()
