"""State store costs at 10,000 players: client CPU per changed player, and restore time.

    python bench/bench_store.py [--players 10000] [--changed 100] [--rounds 5]

For JsonFileStore and RedisStore (a redis-server started here on a free loopback port, when
the binary is on PATH): a Client restores ``--players`` stored players (timed: from Client()
to add_node() returning, before any REST rebuild), then ``--changed`` players are marked changed
and written as the store thread writes them (timed: this process's CPU per changed player, and
wall time). The floor is the 0.1 way: one whole snapshot of every player per save.
Targets (issue 13): a change costs under 0.2 ms of client CPU per changed player with Redis on
loopback; restoring 10,000 players' state takes under 1 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lavasync import Client  # noqa: E402
from lavasync.store import JsonFileStore, StateStore  # noqa: E402

USER_ID = 170939974227591168
TRACK = {
    "encoded": (
        "QAAAbwMAAUEACGxhdmFzeW5jAAAAAAAAdTAAH2h0dHBzOi8vZmFrZS5pbnZhbGlkL2Zha2UvMS5tcDMAAQAf"
        "aHR0cHM6Ly9mYWtlLmludmFsaWQvZmFrZS8xLm1wMwAAAARodHRwAANtcDMAAAAAAAAAAA=="
    ),
    "info": {
        "identifier": "https://fake.invalid/fake/1.mp3",
        "isSeekable": True,
        "author": "lavasync",
        "length": 30000,
        "isStream": False,
        "position": 0,
        "title": "A",
        "uri": "https://fake.invalid/fake/1.mp3",
        "sourceName": "http",
        "artworkUrl": None,
        "isrc": None,
    },
    "pluginInfo": {},
    "userData": {},
}


QUEUE = 5  # upcoming tracks per stored queue (--queue; 0: no queues)


def player_state(guild: int) -> dict[str, Any]:
    return {
        "guild_id": str(guild),
        "node": "main",
        "track": TRACK,
        "position": 1000,
        "track_position": 1000,
        "moving": True,
        "saved_at": time.time(),
        "paused": False,
        "volume": 80,
        "filters": {},
        "end_time": None,
        "voice": None,
        "session_id": "abcdefghijklmnop",
        "queue": None
        if not QUEUE
        else {
            "upcoming": [TRACK["encoded"]] * QUEUE,
            "history": [],
            "current": None,
            "token": None,
            "loop": "none",
            "history_size": 50,
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(
    name: str, make_store: Callable[[], StateStore], players: int, changed: int, rounds: int
) -> dict[str, float]:
    seed = make_store()
    guilds = [(i << 22) | 1 for i in range(1, players + 1)]
    for start in range(0, players, 1000):
        seed.write("bench", {g: player_state(g) for g in guilds[start : start + 1000]}, {})
    seed.release("bench", guilds)
    restore: list[float] = []
    per_change_cpu: list[float] = []
    per_change_wall: list[float] = []
    whole_cpu: list[float] = []
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: no REST rebuild starts
    for _ in range(rounds):
        store = make_store()
        t0 = time.perf_counter()
        client = Client(USER_ID, state_store=store, save_interval=3600.0)
        client.add_node("main", dead, password="x")
        restore.append(time.perf_counter() - t0)
        try:
            assert len(client.players) == players, len(client.players)
            client.save_state()  # the first write checks everything; not what a change costs
            for player in client.players[:changed]:
                client._state_changed(player.guild_id)
            c0, w0 = time.process_time(), time.perf_counter()
            client.save_state()
            per_change_cpu.append((time.process_time() - c0) / changed)
            per_change_wall.append((time.perf_counter() - w0) / changed)
            c0 = time.process_time()
            json.dumps(client.snapshot(), separators=(",", ":"))  # the 0.1 whole save
            whole_cpu.append(time.process_time() - c0)
        finally:
            client.close(2)
            release = getattr(store, "release", None)
            if release is not None:
                store.release(client.store_identity, guilds)
    result = {
        "restore_s": min(restore),
        "change_cpu_ms": min(per_change_cpu) * 1000,
        "change_wall_ms": min(per_change_wall) * 1000,
        "whole_snapshot_cpu_ms": min(whole_cpu) * 1000,
    }
    print(
        f"{name:14} restore {result['restore_s']:.3f} s | per changed player: "
        f"cpu {result['change_cpu_ms']:.3f} ms, wall {result['change_wall_ms']:.3f} ms | "
        f"floor (0.1 whole snapshot, cpu, once per save): {result['whole_snapshot_cpu_ms']:.1f} ms"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queue", type=int, default=QUEUE, help="queued tracks per player")
    args = parser.parse_args()
    globals()["QUEUE"] = args.queue
    print(f"{args.players} stored players, {args.changed} changed per save, best of {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.json"
        measure(
            "JsonFileStore", lambda: JsonFileStore(path), args.players, args.changed, args.rounds
        )
        binary = shutil.which("redis-server")
        if binary is None:
            print("RedisStore     skipped: redis-server is not on PATH")
            return 0
        from lavasync.redis_store import RedisStore

        port = free_port()
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            measure(
                "RedisStore",
                lambda: RedisStore(url, namespace="bench", identity="b"),
                args.players,
                args.changed,
                args.rounds,
            )
        finally:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
