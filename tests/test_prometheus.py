"""``lavasync.ext.prometheus``: what a Prometheus scrape of a client talking to a FakeNode shows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import FAST, USER_ID, wait_until

from lavasync import Client, NodeResumedEvent, RestError

prometheus_client = pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from lavasync.ext.prometheus import PrometheusMetrics  # noqa: E402
from lavasync.testing import FakeNode  # noqa: E402

GUILD = 817327181659111454


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels, parsed from the text format."""
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


def test_a_scrape_shows_every_metric_with_bounded_labels(fake: FakeNode) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    with Client(USER_ID, metrics=metrics) as client:
        node = client.add_node(
            "main", fake.uri, password=fake.password, backoff=FAST, ping_interval=0.05
        )
        client.wait_ready()
        sid = node.session_id
        assert sid is not None
        track = fake.add_track("Scraped", length=600_000)
        assert client.load(track.info.identifier).load_type == "track"
        client.load("fake:empty")
        player = client.player(GUILD)
        player.play(track.encoded)
        fake.stuck_track(GUILD)
        fake.fail_track(GUILD)
        resumed = threading.Event()
        client.add_listener(NodeResumedEvent, lambda e: resumed.set())
        fake.drop_connections()
        assert resumed.wait(10)
        wait_until(lambda: node.ping is not None)

        def counted() -> bool:
            s = scrape(registry)
            return (
                value(s, "lavasync_track_stuck_total", node="main") == 1
                and value(s, "lavasync_track_exceptions_total", node="main") == 1
                and value(s, "lavasync_websocket_rtt_seconds_count", node="main") >= 1
            )

        wait_until(counted)
        samples = scrape(registry)
        text = generate_latest(registry).decode()

    player_route = "/v4/sessions/{sessionId}/players/{guildId}"
    assert (
        value(
            samples,
            "lavasync_rest_request_duration_seconds_count",
            route=player_route,
            method="PATCH",
            status="200",
        )
        >= 1
    )
    assert sid not in text and str(GUILD) not in text  # no raw ids in any label
    assert value(samples, "lavasync_loads_total", load_type="track") == 1
    assert value(samples, "lavasync_loads_total", load_type="empty") == 1
    assert value(samples, "lavasync_reconnects_total", node="main") == 1
    assert value(samples, "lavasync_resumes_total", node="main") == 1
    # gauges, read from client.metrics_snapshot() at scrape time
    assert value(samples, "lavasync_players", node="main") == 1
    assert value(samples, "lavasync_node_state", node="main", state="ready") == 1
    assert value(samples, "lavasync_node_state", node="main", state="failed") == 0
    assert value(samples, "lavasync_node_ping_seconds", node="main") > 0
    assert value(samples, "lavasync_event_buffer_capacity", buffer="poll") == 10_000
    assert ("lavasync_event_buffer_depth", (("buffer", "listener"),)) in samples
    assert ("lavasync_events_coalesced_total", (("buffer", "poll"),)) in samples
    assert ("lavasync_events_dropped_total", (("buffer", "poll"),)) in samples


def test_a_404_is_its_own_series(fake: FakeNode) -> None:
    registry = CollectorRegistry()
    with Client(USER_ID, metrics=PrometheusMetrics(registry, namespace="bot")) as client:
        node = client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        assert node.session_id is not None
        for _ in range(2):
            with pytest.raises(RestError) as caught:
                node.rest.get_player(node.session_id, 42)
            assert caught.value.status == 404
        samples = scrape(registry)
    series = {
        "route": "/v4/sessions/{sessionId}/players/{guildId}",
        "method": "GET",
        "status": "404",
    }
    assert value(samples, "bot_rest_request_duration_seconds_count", **series) == 2
    assert value(samples, "bot_rest_request_duration_seconds_sum", **series) > 0
    assert not any(name.startswith("lavasync_") for name, _ in samples)


def test_moves_by_reason(fake: FakeNode) -> None:
    registry = CollectorRegistry()
    with (
        FakeNode(name="b") as other,
        Client(USER_ID, metrics=PrometheusMetrics(registry)) as client,
    ):
        a = client.add_node("a", fake.uri, password=fake.password)
        b = client.add_node("b", other.uri, password=other.password)
        a.wait_ready(5)
        b.wait_ready(5)
        player = client.player(GUILD, node=a)
        player.play(fake.add_track("Moving", length=600_000).encoded)
        assert a.drain() == 1
        assert player.node is b
        samples = scrape(registry)
    assert value(samples, "lavasync_player_moves_total", reason="drain") == 1
    assert value(samples, "lavasync_players", node="b") == 1
    assert value(samples, "lavasync_players", node="a") == 0


def test_one_instance_serves_one_open_client() -> None:
    metrics = PrometheusMetrics(CollectorRegistry())
    with Client(USER_ID, metrics=metrics), pytest.raises(ValueError, match="another open client"):
        Client(USER_ID, metrics=metrics)
    with Client(USER_ID, metrics=metrics) as again:  # the first one is closed: fine
        assert metrics._snapshot() == again.metrics_snapshot()


def test_a_scrape_without_a_client_has_no_gauge_samples() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    samples = scrape(registry)
    assert not any(name.startswith("lavasync_players") for name, _ in samples)


def test_bad_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="namespace"):
        PrometheusMetrics(CollectorRegistry(), namespace="bad name")
