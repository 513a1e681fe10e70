"""Shared fixtures. Every test is checked for leaked lavasync threads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from lavasync.node import Backoff

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
