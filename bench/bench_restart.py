"""Node restart with 1,000 players, fresh session: how long until the node is usable again and
every player is back with its track, against the same 1,000 voice PATCHes sent raw with the same
concurrency and the same voice delay in the same run.

Run by hand: ``python bench/bench_restart.py [--players 1000] [--rounds 5] [--voice-delay 0.2]
[--concurrency 256] [--backoff 0.05]``.

One FakeNode runs in a child process (its work does not share this interpreter's GIL); a Client
(``move_concurrency=--concurrency``, the client's default 256) holds it with the default
``resume_timeout`` and ``backoff=Backoff(initial=--backoff, maximum=0.2)``. Setup (not
measured): ``--players`` players, each joined to a voice channel through a ``FakeGateway`` and
playing a track. Then the node's voice PATCHes are made to block ``--voice-delay`` seconds each
(``FakeNode.set_voice_delay``: Lavalink waits for Discord's voice handshake) and each round:

* restart: ``FakeNode.expire_session(sid)`` destroys the client's session and cuts its socket,
  so the client reconnects to a fresh session (resuming is refused) and must rebuild every
  player (one PATCH with voice, track, position, volume, each waiting for the voice delay);
* ready: the restart until the node is READY again (seen on the node's condition, this thread);
* event: right after READY, the child emits one ``TrackEndEvent`` (for a guild that has no
  player) and the time until a listener runs is taken (both clocks are ``time.time()``);
* pause: right after that, ``pause()`` on the player rebuilt last (it is rebuilt by the call
  itself, so the figure includes one voice handshake);
* back: the restart until the last rebuild PATCH was applied on the server (the child's record
  of each request); ``client saw`` is when the last ``TrackStartEvent`` of the rebuilt players
  reached a listener. Then the child checks that every guild's player on the new session holds
  its track (``fake.player(new_sid, guild)``), and counts the requests per player.

The floor: the same PATCH bodies, one per guild, sent by ``--concurrency`` threads, each with
its own kept-alive ``http.client`` connection, to a fresh session on the same node with the same
voice delay, ``json.loads`` of each answer. Each figure is the median (and best) of the rounds.
Target: every player back <= 2 s after the restart with a 0.2 s voice handshake.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _child import ChildNode, serve_commands  # noqa: E402
from _floor import patch_body, send_patches  # noqa: E402

import lavasync  # noqa: E402
from lavasync.models.events import ReadyEvent, TrackEndEvent, TrackStartEvent  # noqa: E402
from lavasync.testing import FakeGateway  # noqa: E402

TARGET = 2.0  #: seconds from the restart until every player is back, 0.2 s voice handshake
USER_ID = 170939974227591168
GUILD = 817327181659111454
CHANNEL = 1126593424391868476
PROBE_GUILD = 1  #: the probe event's guild (no player there)
CLIENT_NAME = "lavasync-bench/1.0"


# --------------------------------------------------------------------------- parent side


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Round:
    """One restart: its timings (seconds) and counts."""

    def __init__(self) -> None:
        self.ready = 0.0  #: restart -> node READY
        self.back = 0.0  #: restart -> last rebuild PATCH applied (server side)
        self.back_after_ready = 0.0
        self.client_saw = 0.0  #: restart -> last TrackStartEvent at a listener
        self.event = 0.0  #: probe event emitted -> listener
        self.pause = 0.0  #: pause() on the player rebuilt last, right after READY
        self.cpu = 0.0  #: this process's CPU from the restart until every player was back
        self.requests_per_player = 0.0
        self.counts: dict[str, int] = {}
        self.floor = 0.0
        self.floor_cpu = 0.0


class Bench:
    def __init__(self, players: int, concurrency: int, backoff: float) -> None:
        self.players = players
        self.concurrency = concurrency
        self.guilds = [GUILD + i for i in range(players)]
        self.node_proc = ChildNode(__file__)
        self.gateway = FakeGateway(USER_ID)
        self.client = lavasync.Client(
            USER_ID,
            self.gateway.hook,
            client_name=CLIENT_NAME,
            poll_events=False,
            move_concurrency=concurrency,
        )
        self.gateway.deliver = self.client.handle_gateway
        self.node = self.client.add_node(
            "a",
            self.node_proc.uri,
            password=self.node_proc.password,
            backoff=lavasync.Backoff(initial=backoff, maximum=max(0.2, backoff)),
        )
        self._lock = threading.Lock()
        self._counting = False
        self._started: set[int] = set()
        self._all_back = threading.Event()
        self._back_at = 0.0
        self._probe = threading.Event()
        self._probe_at = 0.0
        self.client.add_listener(ReadyEvent, self._on_ready)
        self.client.add_listener(TrackStartEvent, self._on_start)
        self.client.add_listener(TrackEndEvent, self._on_end)

    # listeners (dispatcher thread)

    def _on_ready(self, event: ReadyEvent) -> None:
        # Dispatch is in order: every TrackStartEvent after this ready is from the new socket.
        with self._lock:
            self._counting = not event.resumed

    def _on_start(self, event: TrackStartEvent) -> None:
        now = time.time()
        with self._lock:
            if not self._counting:
                return
            self._started.add(event.guild_id)
            if len(self._started) == self.players:
                self._back_at = now
                self._all_back.set()

    def _on_end(self, event: TrackEndEvent) -> None:
        if event.guild_id == PROBE_GUILD:
            self._probe_at = time.time()
            self._probe.set()

    # setup

    def setup(self) -> float:
        start = time.perf_counter()
        self.node.wait_ready(10)
        encoded = self.node_proc.track["encoded"]
        for guild in self.guilds:
            player = self.client.player(guild, node=self.node)
            player.connect(CHANNEL + guild % 1000, self_deaf=True)
            player.play(encoded)
        return time.perf_counter() - start

    # one restart

    def restart(self, voice_delay: float) -> Round:
        node, fake = self.node, self.node_proc
        result = Round()
        last_player = self.client.get_player(self.guilds[-1])
        assert last_player is not None
        fake("clear")
        fake("voice_delay", seconds=voice_delay)
        old_sid = node.session_id
        with self._lock:
            self._counting = False
            self._started.clear()
            self._all_back.clear()
            self._probe.clear()
        cpu = _cpu()
        t0 = fake("restart", sid=old_sid)["t"]

        with node._cond:  # READY on a new session, seen from here at once
            if not node._cond.wait_for(
                lambda: node.available and node.session_id not in (None, old_sid), 30
            ):
                raise RuntimeError("the node did not become ready within 30 s of the restart")
        ready_at = time.time()
        new_sid = node.session_id
        assert new_sid is not None
        emitted = fake("emit", sid=new_sid)["t"]
        pause_start = time.perf_counter()
        last_player.pause()
        result.pause = time.perf_counter() - pause_start

        if not self._all_back.wait(60):
            raise RuntimeError(f"only {len(self._started)} of {self.players} back within 60 s")
        result.cpu = _cpu() - cpu
        if not self._probe.wait(10):
            raise RuntimeError("the probe event never reached the listener")
        check = fake("check", sid=new_sid, guilds=self.guilds)
        if check["with_track"] != self.players or check["paused"] != 1:
            raise RuntimeError(f"not every player is back with its track: {check}")
        for guild in self.guilds:
            player = self.client.get_player(guild)
            if player is None or player.track is None or player.node is not node:
                raise RuntimeError(f"guild {guild}: the client lost the player or its track")
        result.ready = ready_at - t0
        result.back = check["last_patch"] - t0
        result.back_after_ready = check["last_patch"] - ready_at
        result.client_saw = self._back_at - t0
        result.event = self._probe_at - emitted
        result.counts = check["counts"]
        result.requests_per_player = sum(check["counts"].values()) / self.players
        last_player.resume()
        cpu = _cpu()
        result.floor = self.floor(encoded=self.node_proc.track["encoded"])
        result.floor_cpu = _cpu() - cpu
        return result

    def floor(self, *, encoded: str) -> float:
        """The same voice PATCHes sent raw to a fresh session: ``concurrency`` threads with a
        kept-alive connection each. Returns the wall time for all of them."""
        sid = self.node_proc("session")["sid"]
        path = f"/v4/sessions/{quote(sid, safe='')}/players"
        headers = {
            "Authorization": self.node_proc.password,
            "Client-Name": CLIENT_NAME,
            "Content-Type": "application/json",
        }
        address = (self.node_proc.host, self.node_proc.port)
        requests = []
        for guild in self.guilds:
            state = self.gateway.voice_state(guild) or {}
            body = patch_body(encoded, state, CHANNEL + guild % 1000)
            requests.append((address, f"{path}/{guild}", body))
        try:
            return send_patches(requests, headers, self.concurrency)
        finally:
            self.node_proc("drop", sid=sid)

    def close(self) -> None:
        self.client.close()
        self.gateway.close()
        self.node_proc.close()


def _fmt(values: list[float], scale: float = 1.0, unit: str = " s", digits: int = 2) -> str:
    """``median (best)`` of ``values`` times ``scale``."""
    med, best = statistics.median(values) * scale, min(values) * scale
    return f"{med:.{digits}f}{unit} ({best:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="restarts (median, best)")
    parser.add_argument("--voice-delay", type=float, default=0.2, help="seconds per voice PATCH")
    parser.add_argument(
        "--concurrency", type=int, default=256, help="move_concurrency (the default is 256)"
    )
    parser.add_argument(
        "--backoff", type=float, default=0.05, help="Backoff.initial (the default is 0.5 s)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_commands("restart", USER_ID, PROBE_GUILD)
        return

    bench = Bench(args.players, args.concurrency, args.backoff)
    try:
        setup = bench.setup()
        print(
            f"python {sys.version.split()[0]}, FakeNode in a child process, {args.players} "
            f"players in voice and playing (setup {setup:.1f} s, not measured), voice delay "
            f"{args.voice_delay} s per PATCH, move_concurrency {args.concurrency}, backoff "
            f"{args.backoff} s; median (best) of {args.rounds} restarts\n"
        )
        rounds = []
        for index in range(args.rounds):
            one = bench.restart(args.voice_delay)
            rounds.append(one)
            print(
                f"round {index + 1}: ready {one.ready:.3f} s, back {one.back:.2f} s "
                f"({one.back_after_ready:.2f} s after ready), client saw {one.client_saw:.2f} s, "
                f"event {one.event * 1e3:.1f} ms, pause {one.pause:.3f} s, floor {one.floor:.2f} s",
                flush=True,
            )
    finally:
        bench.close()

    n = args.players
    back = [r.back_after_ready for r in rounds]
    floors = [r.floor for r in rounds]
    ratio = statistics.median(back) / statistics.median(floors)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(rounds[-1].counts.items()))
    print(
        f"\n{'restart -> node READY':<38}{_fmt([r.ready for r in rounds], 1e3, ' ms', 0)}\n"
        f"{'restart -> every player back':<38}{_fmt([r.back for r in rounds])}\n"
        f"{'READY -> every player back':<38}{_fmt(back)}\n"
        f"{'restart -> last TrackStartEvent seen':<38}{_fmt([r.client_saw for r in rounds])}\n"
        f"{'floor: the same PATCHes raw':<38}{_fmt(floors)}\n"
        f"{'ratio (READY -> back) / floor':<38}{ratio:.2f}x\n"
        f"{'event emitted after READY -> listener':<38}"
        f"{_fmt([r.event for r in rounds], 1e3, ' ms', 1)}\n"
        f"{'pause() right after READY':<38}{_fmt([r.pause for r in rounds], 1e3, ' ms', 0)}\n"
        f"{'CPU restart -> back, per player':<38}"
        f"{_fmt([r.cpu / n for r in rounds], 1e3, ' ms')}  (floor "
        f"{statistics.median(r.floor_cpu for r in rounds) / n * 1e3:.2f} ms per PATCH)\n"
        f"{'requests per player':<38}{rounds[-1].requests_per_player:.3f} ({counts})"
    )
    worst = statistics.median(r.back for r in rounds)
    verdict = "meets" if worst <= TARGET else "MISSES"
    print(
        f"\nmedian restart -> every player back {worst:.2f} s: {verdict} the <= {TARGET:.0f} s "
        f"target with a {args.voice_delay} s voice handshake"
    )


if __name__ == "__main__":
    main()
