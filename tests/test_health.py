"""``Client.health()``: a JSON-ready per-node snapshot, checked against a FakeNode."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import FAST, USER_ID, wait_until

import lavasync
from lavasync.testing import FakeNode

GUILD = 817327181659111454


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


def test_a_ready_node(fake: FakeNode) -> None:
    with lavasync.Client(USER_ID) as client:
        node = client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        wait_until(lambda: node.stats is not None)  # the stats message follows ready
        client.player(GUILD)
        health = client.health()
        expected_penalty = lavasync.client.default_penalty(node)
    assert list(health) == ["main"]
    main = health["main"]
    assert main["state"] == "ready" and main["available"] is True
    assert main["last_error"] is None
    assert main["players"] == 1
    assert main["ping"] is None  # not measured
    assert isinstance(main["uptime"], float) and main["uptime"] >= 0.0
    assert expected_penalty != float("inf")
    assert main["penalty"] == pytest.approx(expected_penalty)
    assert main["session_id"] == node.session_id == fake.session_ids()[0]
    assert main["uri"] == fake.uri
    json.dumps(health, allow_nan=False)  # plain, strict JSON


def test_before_stats_and_after_a_drop_nothing_impossible(fake: FakeNode) -> None:
    with lavasync.Client(USER_ID) as client:
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        assert client.health()["main"]["uptime"] is None or node.available
        client.wait_ready()
        first_ready = node._ready_at
        fake.kill()
        wait_until(lambda: not node.available)
        down = client.health()["main"]
        assert down["available"] is False
        assert down["state"] in ("disconnected", "connecting")
        assert down["uptime"] is None
        assert down["penalty"] is None  # inf would not be valid JSON
        json.dumps(down, allow_nan=False)
        fake.revive()
        client.wait_ready()
        assert node._ready_at is not None and first_ready is not None
        assert node._ready_at > first_ready  # uptime counts from the latest ready
        assert client.health()["main"]["uptime"] is not None


def test_a_failed_node_reports_its_error() -> None:
    with FakeNode(password="right") as fake, lavasync.Client(USER_ID) as client:
        client.add_node("main", fake.uri, password="wrong")
        with pytest.raises(lavasync.AuthenticationError):
            client.wait_ready()
        health = client.health()["main"]
    assert health["state"] == "failed"
    assert health["last_error"].startswith("AuthenticationError: ")
    assert health["uptime"] is None and health["penalty"] is None


def test_a_penalty_function_that_raises_gives_none(fake: FakeNode) -> None:
    def broken(node: lavasync.Node) -> float:
        raise RuntimeError("bug in the bot's penalty")

    with lavasync.Client(USER_ID, penalty=broken) as client:
        client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        health = client.health()["main"]
    assert health["penalty"] is None
    assert health["available"] is True


def test_no_nodes_is_an_empty_report() -> None:
    with lavasync.Client(USER_ID) as client:
        assert client.health() == {}
