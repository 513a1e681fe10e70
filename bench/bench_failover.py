"""Failover: how long lavasync takes to move 1,000 playing players off a crashed node onto two
others, against the same 1,000 PATCHes sent raw with the same concurrency in the same run.

Run by hand: ``python bench/bench_failover.py [--players 1000] [--concurrency 16 256]
[--rounds 3] [--voice both|on|off] [--backoff 0.05] [--nodes process|thread]``; ``--profile``
instead prints a cProfile of ``client.move_player`` run one player at a time on the main thread.

Three FakeNodes (a, b, c), each in a child process (``--nodes process``, the default: like real
nodes, their work does not share this interpreter's GIL) or all in this process (``thread``),
and one Client holding all three, with the client's
default ``resume_timeout`` (60 s) and ``backoff=Backoff(initial=--backoff, maximum=0.2)``.
``--players`` players are forced onto ``a`` (``client.player(guild, node=client.node("a"))``),
each playing a track (and, with voice, joined to a channel through a ``FakeGateway`` first).
Then ``a`` is killed (``FakeNode.kill``: no close frame, sockets cut, its port refuses). The
client's reader sees the socket close, retries after one backoff step, is refused, and treats
the session as lost at once (no wait for the resume window): the players move in parallel on
``lavasync-move-*`` threads (``move_concurrency``). Times, from listeners:

* noticed: the kill until ``NodeDisconnectedEvent`` for ``a``;
* to first: that event until the first ``PlayerMovedEvent`` (one backoff step + the refusal);
* move: that event until the last ``PlayerMovedEvent`` (the headline figure);
* first->last: the first ``PlayerMovedEvent`` until the last (the moves themselves);
* CPU per move: this process's CPU time from the disconnect to the last move, per player (with
  ``--nodes thread`` it includes the fake nodes' share of every PATCH).

Then every player is checked on the server side (``fake_b/c.player(sid, guild)`` holds it,
with its track, not paused), the REST requests b and c received during the move are counted
per player, and the spread b/c is printed.

The floor: the same PATCH bodies (track, position, paused, volume, and voice when on), one per
guild, sent to fresh sessions on b and c alternately by ``concurrency`` threads, each with its
own kept-alive ``http.client`` connection, ``json.loads`` of each answer; wall and CPU time.
Each row is the median (and best) of ``--rounds`` failovers. Target: the move <= 1 s per 1,000
players moved.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Union
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _child import ChildNode, LocalNode, serve_commands
from _floor import patch_body, send_patches

import lavasync
from lavasync.models.events import NodeDisconnectedEvent, PlayerMovedEvent
from lavasync.testing import FakeGateway, FakeNode

BenchNode = Union[ChildNode, LocalNode]

TARGET_PER_1000 = 1.0  #: seconds for the move, per 1,000 players
USER_ID = 170939974227591168
GUILD = 817327181659111454
CHANNEL = 1126593424391868476


class Run:
    """One failover: its timings and counts."""

    def __init__(self) -> None:
        self.noticed = 0.0
        self.to_first = 0.0  #: disconnect -> first PlayerMovedEvent
        self.move = 0.0  #: disconnect -> last PlayerMovedEvent
        self.first_to_last = 0.0
        self.requests_per_player = 0.0
        self.spread: dict[str, int] = {}
        self.setup = 0.0
        self.floor = 0.0
        self.move_cpu = 0.0  #: this process's CPU seconds from the disconnect to the last move
        self.floor_cpu = 0.0
        self.methods: dict[str, int] = {}


def start_nodes(mode: str) -> dict[str, BenchNode]:
    """FakeNodes a, b, c: each in a child process (``process``) or all in this one."""
    if mode == "process":
        return {name: ChildNode(__file__, name) for name in "abc"}
    return {name: LocalNode(name, USER_ID) for name in "abc"}


def failover(players: int, concurrency: int, voice: bool, backoff_initial: float, mode: str) -> Run:
    run = Run()
    setup_start = time.perf_counter()
    fakes = start_nodes(mode)
    gateway = FakeGateway(USER_ID) if voice else None
    client = lavasync.Client(
        USER_ID,
        gateway.hook if gateway is not None else None,
        client_name="lavasync-bench/1.0",
        poll_events=False,
        move_concurrency=concurrency,
    )
    try:
        if gateway is not None:
            gateway.deliver = client.handle_gateway
        backoff = lavasync.Backoff(initial=backoff_initial, maximum=max(0.2, backoff_initial))
        for name, fake in fakes.items():
            client.add_node(name, fake.uri, password=fake.password, backoff=backoff)
        for node in client.nodes:
            node.wait_ready(10)
        track = fakes["a"].track
        node_a = client.node("a")
        guilds = [GUILD + i for i in range(players)]
        for guild in guilds:
            player = client.player(guild, node=node_a)
            if voice:
                player.connect(CHANNEL + guild % 1000, self_deaf=True)
            player.play(track["encoded"])

        lock = threading.Lock()
        marks: dict[str, float] = {}
        moved: list[int] = []
        all_moved = threading.Event()

        @client.on(NodeDisconnectedEvent)
        def on_disconnect(event: NodeDisconnectedEvent) -> None:
            if getattr(event.node, "name", None) == "a" and "disconnected" not in marks:
                marks["disconnected"] = time.time()
                marks["disconnected_cpu"] = _cpu()

        @client.on(PlayerMovedEvent)
        def on_moved(event: PlayerMovedEvent) -> None:
            now = time.time()
            with lock:
                if "first" not in marks:
                    marks["first"] = now
                moved.append(event.guild_id)
                if len(moved) == players:
                    marks["last"] = now
                    marks["last_cpu"] = _cpu()
                    all_moved.set()

        for name in "bc":
            fakes[name]("clear")
        run.setup = time.perf_counter() - setup_start
        killed = fakes["a"]("kill")["t"]
        if not all_moved.wait(60):
            raise RuntimeError(f"only {len(moved)} of {players} players moved within 60 s")
        run.noticed = marks["disconnected"] - killed
        run.to_first = marks["first"] - marks["disconnected"]
        run.move = marks["last"] - marks["disconnected"]
        run.first_to_last = marks["last"] - marks["first"]
        run.move_cpu = marks["last_cpu"] - marks["disconnected_cpu"]

        check_server_side(client, fakes, guilds, run)
        run.requests_per_player = sum(run.methods.values()) / players
        cpu = _cpu()
        run.floor = floor(
            fakes, guilds, track["encoded"], concurrency=concurrency, voice=voice, gateway=gateway
        )
        run.floor_cpu = _cpu() - cpu  # includes starting and joining the floor's threads
    finally:
        client.close()
        if gateway is not None:
            gateway.close()
        for fake in fakes.values():
            fake.close()
    return run


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def check_server_side(
    client: lavasync.Client, fakes: dict[str, BenchNode], guilds: list[int], run: Run
) -> None:
    """Every player is on b or c, locally and on that node, with its track, not paused; the
    requests b and c received since the kill, by method and status."""
    on: dict[str, list[int]] = {"b": [], "c": []}
    for guild in guilds:
        player = client.get_player(guild)
        if player is None:
            raise RuntimeError(f"guild {guild}: the player is gone")
        name = player.node.name
        if name not in on:
            raise RuntimeError(f"guild {guild}: still on {name} after the move")
        on[name].append(guild)
    for name, theirs in on.items():
        check = fakes[name]("check", sid=client.node(name).session_id, guilds=theirs)
        if check["with_track"] != len(theirs) or check["paused"]:
            raise RuntimeError(f"not every player plays on {name} after the move: {check}")
        run.spread[name] = len(theirs)
        for key, count in check["counts"].items():
            run.methods[key] = run.methods.get(key, 0) + count


def floor(
    fakes: dict[str, BenchNode],
    guilds: list[int],
    encoded: str,
    *,
    concurrency: int,
    voice: bool,
    gateway: Optional[FakeGateway],
) -> float:
    """The same PATCHes sent raw: ``concurrency`` threads with a kept-alive connection each,
    b and c alternately, to fresh sessions. Returns the wall time for all of them."""
    targets = []
    for name in "bc":
        sid = fakes[name]("session")["sid"]
        targets.append((name, sid, f"/v4/sessions/{quote(sid, safe='')}/players"))
    headers = {
        "Authorization": fakes["b"].password,
        "Client-Name": "lavasync-bench/1.0",
        "Content-Type": "application/json",
    }
    requests = []
    for index, guild in enumerate(guilds):
        state = None
        if voice and gateway is not None:
            state = gateway.voice_state(guild) or {}
        name, _, path = targets[index % 2]
        address = (fakes[name].host, fakes[name].port)
        body = patch_body(encoded, state, CHANNEL + guild % 1000)
        requests.append((address, f"{path}/{guild}", body))
    try:
        return send_patches(requests, headers, concurrency)
    finally:
        for name, sid, _ in targets:
            fakes[name]("drop", sid=sid)


def profile_move(players: int) -> str:
    """cProfile of ``client.move_player`` on this thread, one player at a time, off a killed
    node (its resume window long, so nothing moves by itself) onto a live one."""
    fakes = {name: FakeNode(name=name).start() for name in "ab"}
    client = lavasync.Client(USER_ID, client_name="lavasync-bench/1.0", poll_events=False)
    try:
        backoff = lavasync.Backoff(initial=0.05, maximum=0.2)
        for name, fake in fakes.items():
            client.add_node(
                name, fake.uri, password=fake.password, resume_timeout=60, backoff=backoff
            )
        for node in client.nodes:
            node.wait_ready(10)
        track = fakes["a"].add_track("Failover Track", length=3_600_000)
        node_a, node_b = client.node("a"), client.node("b")
        moving = [client.player(GUILD + i, node=node_a) for i in range(players)]
        for player in moving:
            player.play(track.encoded)
        fakes["a"].kill()
        with node_a._cond:
            node_a._cond.wait_for(lambda: not node_a.available, 10)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for player in moving:
            client.move_player(player, node_b)
        profiler.disable()
        elapsed = time.perf_counter() - start
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(28)
        return (
            f"cProfile of {players} x client.move_player on one thread "
            f"({elapsed / players * 1e3:.2f} ms per move under the profiler):\n" + out.getvalue()
        )
    finally:
        client.close()
        for fake in fakes.values():
            fake.close()


def _fmt(values: list[float], scale: float, unit: str, width: int) -> str:
    """``median (best)`` of ``values`` times ``scale``."""
    med, best = statistics.median(values) * scale, min(values) * scale
    return f"{med:.2f}{unit} ({best:.2f})".rjust(width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[16, 256],
        help="move_concurrency values (256 is the client's default)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="failovers per row (median, best)")
    parser.add_argument("--voice", choices=("both", "on", "off"), default="both")
    parser.add_argument(
        "--backoff", type=float, default=0.05, help="Backoff.initial (the default is 0.5 s)"
    )
    parser.add_argument(
        "--nodes",
        choices=("process", "thread"),
        default="process",
        help="each FakeNode in a child process (default) or all in this one",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one move at a time")
    parser.add_argument("--serve", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_commands(args.serve, USER_ID)
        return
    if args.profile:
        print(profile_move(args.players))
        return
    voices = {"both": [False, True], "on": [True], "off": [False]}[args.voice]
    target = TARGET_PER_1000 * args.players / 1000

    print(
        f"python {sys.version.split()[0]}, 3 FakeNodes ({args.nodes}), {args.players} players "
        "on a, "
        f"default resume_timeout (60 s), backoff {args.backoff}..{max(0.2, args.backoff)} s; "
        f"median (best) of {args.rounds} failovers per row\n"
    )
    print(
        f"{'voice':<6}{'conc.':>6}{'noticed':>9}{'to first':>10}{'move':>15}{'first->last':>15}"
        f"{'floor':>15}{'ratio':>7}{'cpu/move':>15}{'floor cpu':>11}{'req/pl':>7}{'b/c':>9}"
    )
    worst = 0.0
    for voice in voices:
        for concurrency in args.concurrency:
            runs = [
                failover(args.players, concurrency, voice, args.backoff, args.nodes)
                for _ in range(args.rounds)
            ]
            n = args.players
            moves = [r.move for r in runs]
            firsts = [r.first_to_last for r in runs]
            floors = [r.floor for r in runs]
            ratio = statistics.median(firsts) / statistics.median(floors)
            worst = max(worst, statistics.median(moves))
            last = runs[-1]
            spread = f"{last.spread.get('b', 0)}/{last.spread.get('c', 0)}"
            print(
                f"{'on' if voice else 'off':<6}{concurrency:>6}"
                f"{statistics.median(r.noticed for r in runs) * 1e3:>7.1f}ms"
                f"{statistics.median(r.to_first for r in runs) * 1e3:>8.0f}ms"
                f"{_fmt(moves, 1, 's', 15)}{_fmt(firsts, 1, 's', 15)}{_fmt(floors, 1, 's', 15)}"
                f"{ratio:>6.2f}x"
                f"{_fmt([r.move_cpu / n for r in runs], 1e3, 'ms', 15)}"
                f"{statistics.median(r.floor_cpu / n for r in runs) * 1e3:>9.2f}ms"
                f"{last.requests_per_player:>7.2f}{spread:>9}"
            )
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(last.methods.items()))
            print(
                f"{'':<12}requests on b+c during the last move: {detail}; setup "
                f"{statistics.median(r.setup for r in runs):.1f} s (not measured)"
            )
    verdict = "meets" if worst <= target else "MISSES"
    print(
        f"\nslowest median move {worst:.2f} s for {args.players} players: {verdict} the "
        f"<= {target:.2f} s target ({TARGET_PER_1000:.0f} s per 1,000)\n"
        "(move = NodeDisconnectedEvent of a -> last PlayerMovedEvent; ratio = first->last / "
        "floor, medians: the moves against the same PATCHes sent raw with the same concurrency;\n"
        " cpu/move = this process's CPU from the disconnect to the last move per player (the "
        "fake nodes' too with --nodes thread); floor cpu = the same per raw PATCH)"
    )


if __name__ == "__main__":
    main()
