"""Running a bench's FakeNode in a child process, so it never competes for this GIL.

The bench script runs itself with ``--serve``: the child starts its FakeNode, prints one JSON
line (its address and whatever else the parent needs) and then serves until its stdin closes.

:func:`serve_commands` (child) and :class:`ChildNode` (parent) are a FakeNode driven by JSON
commands, one answer line per command: the fault controls and state checks the failover and
restart benches need. :func:`add_bench_playlist` (child) and :func:`raw_session` (parent, a bare
websocket-client session for the floors) serve the REST, event and comparison benches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import websocket

ROOT = Path(__file__).resolve().parents[1]


class Child:
    """A child process running ``script --serve``; ``info`` is the JSON line it printed."""

    def __init__(self, script: str, *args: str) -> None:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, script, "--serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=path),
        )
        self.info: dict[str, Any] = json.loads(self.readline())

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the FakeNode child process died")
        return line

    def send(self, command: Any) -> None:
        """Write one JSON line to the child's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)


def announce(info: dict[str, Any]) -> None:
    """Child side: hand the parent ``info`` (one JSON line on stdout)."""
    print(json.dumps(info), flush=True)


def add_bench_playlist(fake: Any, size: int) -> None:
    """Child side: ``size`` tracks on ``fake``, loaded as the playlist ``bench-playlist``."""
    tracks = [fake.add_track(f"Playlist Track {i}", length=180_000 + i) for i in range(size)]
    playlist = {
        "loadType": "playlist",
        "data": {
            "info": {"name": "Bench Playlist", "selectedTrack": -1},
            "pluginInfo": {},
            "tracks": [t.to_wire() for t in tracks],
        },
    }
    fake.set_load_result("bench-playlist", playlist)


def raw_session(
    ws_uri: str, password: str, user_id: int, client_name: str, **options: Any
) -> tuple[websocket.WebSocket, str]:
    """A plain websocket-client connection to a node (``options`` go to ``create_connection``)
    and its session id, once the ``ready`` op came: the floors' way in, no lavasync."""
    ws = websocket.create_connection(
        ws_uri,
        header=[
            f"Authorization: {password}",
            f"User-Id: {user_id}",
            f"Client-Name: {client_name}",
        ],
        **options,
    )
    while True:
        message = json.loads(ws.recv())
        if message.get("op") == "ready":
            return ws, str(message["sessionId"])


# --------------------------------------------------------------------------- command-driven node


def serve_commands(name: str, user_id: int, probe_guild: int = 1) -> None:
    """Child side: a FakeNode called ``name`` with one hour-long track; announces its address
    and the track, then answers one JSON line per JSON command on stdin until stdin closes."""
    from lavasync.testing import FakeNode

    with FakeNode(name=name) as fake:
        track = fake.add_track("Bench Track", identifier="bench-track", length=3_600_000).to_wire()
        announce({"uri": fake.uri, "password": fake.password, "track": track})
        for line in sys.stdin:
            command = json.loads(line)
            answer = run_command(fake, track, command, user_id, probe_guild)
            print(json.dumps(answer), flush=True)


def run_command(
    fake: Any, track: dict[str, Any], command: dict[str, Any], user_id: int, probe_guild: int
) -> dict[str, Any]:
    """One command on ``fake`` (any thread); the answer is JSON-ready."""
    op = command["op"]
    if op == "voice_delay":
        fake.set_voice_delay(command["seconds"])
        return {}
    if op == "clear":
        fake.clear_requests()
        return {}
    if op == "kill":
        now = time.time()
        fake.kill()
        return {"t": now}
    if op == "restart":  # the session is gone, its socket cut: the next one is fresh
        now = time.time()
        fake.expire_session(command["sid"])
        return {"t": now}
    if op == "emit":  # a TrackEndEvent for a guild with no player
        now = time.time()
        event = {
            "op": "event",
            "type": "TrackEndEvent",
            "guildId": str(probe_guild),
            "track": track,
            "reason": "finished",
        }
        fake.emit(event, session_id=command["sid"])
        return {"t": now}
    if op == "session":
        return {"sid": fake.create_session(user_id=user_id, resuming=True, timeout=60)}
    if op == "drop":
        fake.expire_session(command["sid"])
        return {}
    if op == "check":
        return _check(fake, command["sid"], command["guilds"])
    raise ValueError(f"unknown command {op!r}")


def _check(fake: Any, sid: Optional[str], guilds: list[int]) -> dict[str, Any]:
    """Players of ``guilds`` on session ``sid`` that hold a track (and how many are paused);
    the requests since the last ``clear`` by method and status; the time (``time.time()``)
    the last player PATCH on ``sid`` was applied."""
    with_track = paused = 0
    missing: list[Any] = []
    for guild in guilds:
        state = fake.player(sid, guild) if sid else None
        if state is not None and state.get("track") is not None:
            with_track += 1
            paused += bool(state.get("paused"))
        elif len(missing) < 3:
            missing.append([guild, state])
    prefix = f"/v4/sessions/{sid}/players/"
    counts: dict[str, int] = {}
    last = 0.0
    for request in fake.requests:
        key = f"{request.method} {request.status}"
        counts[key] = counts.get(key, 0) + 1
        if request.method == "PATCH" and request.path.startswith(prefix):
            last = max(last, request.time)
    return {
        "with_track": with_track,
        "paused": paused,
        "missing": missing,
        "counts": counts,
        "last_patch": last,
    }


class ChildNode:
    """Parent side of :func:`serve_commands`: ``node("op", **fields)`` sends one command and
    returns the child's answer. Not thread-safe (one command at a time)."""

    def __init__(self, script: str, *args: str) -> None:
        self.child = Child(script, *args)
        info = self.child.info
        self.uri: str = info["uri"]
        self.password: str = info["password"]
        self.track: dict[str, Any] = info["track"]
        parts = urlsplit(self.uri)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80

    def __call__(self, op: str, **fields: Any) -> dict[str, Any]:
        self.child.send(dict(fields, op=op))
        answer: dict[str, Any] = json.loads(self.child.readline())
        return answer

    def close(self) -> None:
        self.child.close()


class LocalNode:
    """The same commands as :class:`ChildNode` on a FakeNode in this process (thread mode)."""

    def __init__(self, name: str, user_id: int, probe_guild: int = 1) -> None:
        from lavasync.testing import FakeNode

        self.fake = FakeNode(name=name).start()
        self.user_id = user_id
        self.probe_guild = probe_guild
        self.track: dict[str, Any] = self.fake.add_track(
            "Bench Track", identifier="bench-track", length=3_600_000
        ).to_wire()
        self.uri = self.fake.uri
        self.password = self.fake.password
        self.host = self.fake.host
        self.port = self.fake.port

    def __call__(self, op: str, **fields: Any) -> dict[str, Any]:
        return run_command(
            self.fake, self.track, dict(fields, op=op), self.user_id, self.probe_guild
        )

    def close(self) -> None:
        self.fake.close()
