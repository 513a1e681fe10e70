"""A pytest plugin: a fake Lavalink node, a connected client and a fake Discord gateway.

Installed with lavasync (``pytest11`` entry point ``lavasync``), so the fixtures are there in
any test suite; from a source checkout that is not installed, ``pytest -p
lavasync.testing.plugin``. Fixtures (all function-scoped):

* ``fake_node`` — a started :class:`~lavasync.testing.FakeNode`, closed after the test.
  ``@pytest.mark.fake_node(password="x", player_update_interval=0.1, ...)`` passes keyword
  arguments to its constructor.
* ``fake_gateway`` — a :class:`~lavasync.testing.FakeGateway` for ``lavasync_user_id``, tied
  to ``fake_node`` (so :meth:`~lavasync.testing.FakeGateway.kick` also closes the voice
  socket there). ``lavasync_client`` wires it both ways, so ``player.connect()`` works.
* ``lavasync_client`` — a :class:`lavasync.Client` with ``fake_node`` added as node ``"fake"``
  and ready (``wait_ready`` done). Closed after the test; the test then fails if a
  ``lavasync-*`` thread it started is still alive (after ``lavasync_thread_grace`` seconds,
  an ini option, default 5).
* ``lavasync_user_id`` — the bot user id the client and gateway use; override the fixture to
  pick another.

The fake node's fault controls (drop, kill/revive, stall, 5xx/429, stuck and exception events,
raw frames, voice delays) are listed in :mod:`lavasync.testing`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import lavasync

from .gateway import FakeGateway
from .node import FakeNode

__all__ = [
    "DEFAULT_USER_ID",
    "fake_gateway",
    "fake_node",
    "lavasync_client",
    "lavasync_user_id",
]

#: The bot user id the fixtures use unless ``lavasync_user_id`` is overridden.
DEFAULT_USER_ID = 170939974227591168

_GRACE_INI = "lavasync_thread_grace"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _GRACE_INI,
        "seconds lavasync threads get to exit after lavasync_client closes (default 5)",
        default="5",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_node(**kwargs): keyword arguments for the FakeNode of the fake_node fixture",
    )


def _lavasync_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("lavasync")}


@pytest.fixture
def lavasync_user_id() -> int:
    """The bot's Discord user id for ``lavasync_client`` and ``fake_gateway``."""
    return DEFAULT_USER_ID


@pytest.fixture
def fake_node(request: pytest.FixtureRequest) -> Iterator[FakeNode]:
    """A started FakeNode on 127.0.0.1 (options from ``@pytest.mark.fake_node(...)``)."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("fake_node"))):
        if marker.args:
            raise pytest.UsageError("@pytest.mark.fake_node takes keyword arguments only")
        options.update(marker.kwargs)
    with FakeNode(**options) as node:
        yield node


@pytest.fixture
def fake_gateway(fake_node: FakeNode, lavasync_user_id: int) -> Iterator[FakeGateway]:
    """Discord's side of the bot's gateway, for voice (see ``lavasync_client``)."""
    with FakeGateway(lavasync_user_id, node=fake_node) as gateway:
        yield gateway


@pytest.fixture
def lavasync_client(
    request: pytest.FixtureRequest,
    fake_node: FakeNode,
    fake_gateway: FakeGateway,
    lavasync_user_id: int,
) -> Iterator[lavasync.Client]:
    """A Client connected to ``fake_node`` (node ``"fake"``, ready) with voice wired through
    ``fake_gateway``. Closed afterwards; a lavasync thread left behind fails the test."""
    before = _lavasync_threads()
    grace = float(request.config.getini(_GRACE_INI))
    client = lavasync.Client(lavasync_user_id, fake_gateway.hook)
    try:
        fake_gateway.deliver = client.handle_gateway
        client.add_node("fake", fake_node.uri, password=fake_node.password)
        client.wait_ready(timeout=10)
        yield client
    finally:
        fake_gateway.deliver = None
        client.close()
    deadline = time.monotonic() + grace
    leaked = _lavasync_threads() - before
    for thread in leaked:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = sorted(t.name for t in leaked if t.is_alive())
    if alive:
        pytest.fail(f"lavasync threads left alive after the test: {alive}", pytrace=False)
