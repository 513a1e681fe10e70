"""Shared fixtures. Every test is checked for leaked lavasync threads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from lavasync import Client
from lavasync.node import Backoff
from lavasync.testing import FakeGateway, FakeNode

#: Protocol data copied into the repository (tests/data/README.md says where it came from).
DATA = Path(__file__).resolve().parent / "data" / "lavalink-v4"
EXAMPLES = DATA / "examples"
VECTORS = DATA / "track_vectors.json"


#: The bot user id the client tests use.
USER_ID = 170939974227591168
#: A reconnect backoff short enough for tests.
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` (every 20 ms, no sleep-as-sync: it is re-checked until it holds)."""
    cond = threading.Condition()
    deadline = time.monotonic() + timeout
    with cond:
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("condition not met in time")
            cond.wait(min(remaining, 0.02))


@pytest.fixture
def client() -> Iterator[Client]:
    """A Client with no nodes whose hook sends nothing; closed (and asserted prompt) after."""
    c = Client(USER_ID, lambda guild, payload: None)
    yield c
    assert c.close(5)


def ready_client(
    stack: ExitStack,
    fake: FakeNode,
    gateway: FakeGateway,
    *,
    hook: Optional[Callable[[int, dict[str, Any]], None]] = None,
    name: str = "fake",
    **node_options: Any,
) -> Client:
    """A Client wired to ``gateway`` (sending through ``hook``, by default ``gateway.hook``) with
    ``fake`` as its node ``name`` (FAST backoff), ready; ``stack`` closes it and asserts the
    close was prompt."""
    client = Client(USER_ID, hook or gateway.hook)
    stack.callback(_assert_closes, client)
    gateway.deliver = client.handle_gateway
    client.add_node(name, fake.uri, password=fake.password, backoff=FAST, **node_options)
    client.wait_ready(5)
    return client


def _assert_closes(client: Client) -> None:
    assert client.close(5)


def session_id(client: Client) -> str:
    """The client's first node's Lavalink session id (it must have one)."""
    sid = client.nodes[0].session_id
    assert sid is not None
    return sid


def voice_patches(fake: FakeNode, sid: str, guild: int) -> list[Any]:
    """The PATCH requests of session ``sid`` that sent the guild's player a voice state."""
    path = f"/v4/sessions/{sid}/players/{guild}"
    return [
        r
        for r in fake.requests
        if r.method == "PATCH" and r.path == path and r.json and "voice" in r.json
    ]


def load_example(name: str) -> Any:
    """One payload from the shared examples folder, parsed."""
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def _lavasync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("lavasync", "fakenode"))]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail the test if a lavasync or fake-node thread outlives it (grace: 5 s to exit)."""
    before = set(_lavasync_threads())
    yield
    deadline = time.monotonic() + 5.0
    leaked = [t for t in _lavasync_threads() if t not in before]
    for thread in leaked:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in leaked if t.is_alive()]
    assert not alive, f"threads left alive after the test: {alive}"


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1 (no persistence) that a test may stop and start."""

    def __init__(self, directory: Path) -> None:
        import shutil
        import socket

        binary = shutil.which("redis-server")
        assert binary is not None
        self.binary = binary
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: Any = None

    def start(self) -> None:
        import socket
        import subprocess

        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            assert self._proc.poll() is None, "redis-server exited"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    return conn.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(answers, 10)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port; skipped without the binary (failed when CI is set)."""
    import os
    import shutil

    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI must run the Redis tests)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
