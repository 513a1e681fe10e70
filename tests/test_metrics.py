"""The metrics hook (``Client(metrics=...)``) and ``Client.metrics_snapshot()``, against FakeNodes
over real sockets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from conftest import FAST, USER_ID, wait_until

import lavasync
from lavasync import Client, NodeResumedEvent, PlayerMovedEvent
from lavasync.metrics import NullMetrics, route_template
from lavasync.testing import FakeNode

GUILD = 817327181659111454


class Recorder(NullMetrics):
    """Records every call, thread-safely (the hook runs on lavasync's threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[Any, ...]] = []

    def _add(self, *call: Any) -> None:
        with self.lock:
            self.calls.append(call)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self.lock:
            return [c[1:] for c in self.calls if c[0] == kind]

    def rest(self, route: str, method: str, status: int, seconds: float) -> None:
        self._add("rest", route, method, status, seconds)

    def ws_rtt(self, node: str, seconds: float) -> None:
        self._add("ws_rtt", node, seconds)

    def reconnect(self, node: str) -> None:
        self._add("reconnect", node)

    def resume(self, node: str) -> None:
        self._add("resume", node)

    def move(self, reason: str) -> None:
        self._add("move", reason)

    def load(self, load_type: str) -> None:
        self._add("load", load_type)

    def track_exception(self, node: str) -> None:
        self._add("track_exception", node)

    def track_stuck(self, node: str) -> None:
        self._add("track_stuck", node)


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


@pytest.fixture
def hook() -> Recorder:
    return Recorder()


# ---------------------------------------------------------------------------- route templates


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v4/loadtracks", "/v4/loadtracks"),
        ("/version", "/version"),
        ("/v4/sessions/la5jy1uqdqbx8a9n", "/v4/sessions/{sessionId}"),
        ("/v4/sessions/la5jy1uqdqbx8a9n/players", "/v4/sessions/{sessionId}/players"),
        (
            "/v4/sessions/abcdefgh/players/817327181659111454",
            "/v4/sessions/{sessionId}/players/{guildId}",
        ),
        (
            "/v4/sessions/s1/players/42/track/lyrics",
            "/v4/sessions/{sessionId}/players/{guildId}/track/lyrics",
        ),
        ("/v4/lyrics", "/v4/lyrics"),
        ("/v4/plugin/12345/x9", "/v4/plugin/{id}/{id}"),
        ("/v4/sessions/x/%2F..", "/v4/sessions/{sessionId}/{id}"),
    ],
)
def test_route_templates_hold_no_ids(path: str, template: str) -> None:
    assert route_template(path) == template


# ---------------------------------------------------------------------------- REST


def test_rest_latency_is_recorded_per_route_template_and_status(
    fake: FakeNode, hook: Recorder
) -> None:
    with Client(USER_ID, metrics=hook) as client:
        node = client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        sid = node.session_id
        assert sid is not None
        track = fake.add_track("Metric me", length=60_000)
        client.player(GUILD).play(track.encoded)
        with pytest.raises(lavasync.RestError) as caught:
            node.rest.get_player(sid, 1234)  # no such player: 404
        assert caught.value.status == 404
        calls = hook.of("rest")
    routes = {(route, method, status) for route, method, status, _ in calls}
    assert ("/v4/sessions/{sessionId}", "PATCH", 200) in routes  # resuming enabled on ready
    assert ("/v4/sessions/{sessionId}/players/{guildId}", "PATCH", 200) in routes
    assert ("/v4/sessions/{sessionId}/players/{guildId}", "GET", 404) in routes
    assert all(sid not in route and str(GUILD) not in route for route, *_ in calls)
    assert all(isinstance(s, float) and s > 0 for *_, s in calls)


def test_a_call_with_no_answer_is_recorded_with_status_0(hook: Recorder) -> None:
    with FakeNode() as fake, Client(USER_ID, metrics=hook) as client:
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        client.wait_ready()
        fake.kill()
        wait_until(lambda: not node.available)
        with pytest.raises(lavasync.ConnectionFailedError):
            node.rest.version(timeout=2.0)
        fake.revive()
    assert ("/version", "GET", 0) in {c[:3] for c in hook.of("rest")}


def test_load_results_are_counted_by_type(fake: FakeNode, hook: Recorder) -> None:
    track = fake.add_track("Loaded", length=60_000)
    fake.set_load_result("plugin:thing", {"loadType": "lyrics", "data": {}})
    with Client(USER_ID, metrics=hook) as client:
        client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        assert client.load(track.info.identifier).load_type == "track"
        assert client.load("fake:empty").load_type == "empty"
        assert client.load("fake:playlist").load_type == "playlist"
        assert client.load("ytsearch:anything").load_type == "search"
        assert client.load("fake:error").load_type == "error"
        with pytest.raises(lavasync.LoadError):
            client.load("fake:error", raise_on_error=True)
        assert client.load("plugin:thing").load_type == "lyrics"
    assert [c[0] for c in hook.of("load")] == [
        "track",
        "empty",
        "playlist",
        "search",
        "error",
        "error",
        "other",  # plugin load types: a bounded label
    ]


# ---------------------------------------------------------------------------- WebSocket


def test_ping_round_trips_are_timed(fake: FakeNode, hook: Recorder) -> None:
    with Client(USER_ID, metrics=hook) as client:
        node = client.add_node("main", fake.uri, password=fake.password, ping_interval=0.05)
        client.wait_ready()
        wait_until(lambda: len(hook.of("ws_rtt")) >= 2)
        ping = node.ping
        health = client.health()["main"]["ping"]
    assert ping is not None and ping > 0
    assert health is not None and health > 0
    for name, seconds in hook.of("ws_rtt"):
        assert name == "main"
        assert 0 < seconds < 5


def test_a_busy_socket_is_pinged_too(hook: Recorder) -> None:
    """playerUpdates arriving faster than ping_interval must not keep the RTT unknown."""
    with FakeNode(player_update_interval=0.02) as fake, Client(USER_ID, metrics=hook) as client:
        node = client.add_node("main", fake.uri, password=fake.password, ping_interval=0.3)
        client.wait_ready()
        track = fake.add_track("Busy", length=600_000)
        client.player(GUILD).play(track.encoded)
        wait_until(lambda: node.ping is not None)
        assert hook.of("ws_rtt")


def test_no_ping_before_one_was_answered_and_none_after_a_drop(hook: Recorder) -> None:
    with FakeNode() as fake, Client(USER_ID, metrics=hook) as client:
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        client.wait_ready()
        assert node.ping is None  # the default interval is 15 s: nothing measured yet
        node.ping = 12.5  # as if measured
        fake.kill()
        wait_until(lambda: not node.available)
        assert node.ping is None and client.health()["main"]["ping"] is None
        fake.revive()
        client.wait_ready()


def test_reconnects_and_resumes_are_counted(fake: FakeNode, hook: Recorder) -> None:
    with Client(USER_ID, metrics=hook) as client:
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        client.wait_ready()
        resumed = threading.Event()
        client.add_listener(NodeResumedEvent, lambda e: resumed.set())
        assert hook.of("reconnect") == [] and hook.of("resume") == []
        fake.drop_connections()
        assert resumed.wait(10)
        assert node.available
    assert hook.of("reconnect") == [("main",)]
    assert hook.of("resume") == [("main",)]


def test_a_fresh_session_after_a_drop_is_a_reconnect_not_a_resume(
    fake: FakeNode, hook: Recorder
) -> None:
    with Client(USER_ID, metrics=hook) as client:
        node = client.add_node(
            "main", fake.uri, password=fake.password, backoff=FAST, resume_timeout=None
        )
        client.wait_ready()
        first = node.session_id
        fake.drop_connections()
        wait_until(lambda: node.available and node.session_id != first)
    assert hook.of("reconnect") == [("main",)]
    assert hook.of("resume") == []


def test_track_exceptions_and_stuck_tracks_are_counted(fake: FakeNode, hook: Recorder) -> None:
    with Client(USER_ID, metrics=hook) as client:
        client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        player = client.player(GUILD)
        player.play(fake.add_track("Stuck", length=600_000).encoded)
        fake.stuck_track(GUILD)
        wait_until(lambda: hook.of("track_stuck") == [("main",)])
        fake.fail_track(GUILD)
        wait_until(lambda: hook.of("track_exception") == [("main",)])
    assert hook.of("track_stuck") == [("main",)]


# ---------------------------------------------------------------------------- moves


def test_moves_are_counted_in_a_two_node_failover(hook: Recorder) -> None:
    with ExitStack() as stack:
        a = stack.enter_context(FakeNode(name="a"))
        b = stack.enter_context(FakeNode(name="b"))
        client = stack.enter_context(Client(USER_ID, metrics=hook))
        for fake in (a, b):
            client.add_node(fake.name, fake.uri, password=fake.password, backoff=FAST)
        for node in client.nodes:
            node.wait_ready(5)
        moved = threading.Event()
        count = 3
        seen: list[PlayerMovedEvent] = []

        def on_moved(event: PlayerMovedEvent) -> None:
            seen.append(event)
            if len(seen) == count:
                moved.set()

        client.add_listener(PlayerMovedEvent, on_moved)
        for i in range(count):
            player = client.player(GUILD + i, node=client.node("a"))
            player.play(a.add_track(f"Song {i}", length=600_000).encoded)
        a.kill(lose_sessions=True)
        assert moved.wait(15)
        wait_until(lambda: len(hook.of("move")) == count)
        snapshot = client.metrics_snapshot()
    assert hook.of("move") == [("node lost",)] * count
    assert snapshot["nodes"]["b"]["players"] == count
    assert snapshot["nodes"]["a"]["players"] == 0
    assert snapshot["nodes"]["a"]["available"] is False


# ---------------------------------------------------------------------------- a broken hook


class Broken:
    """Every method raises; the client must not notice."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def _fail(self, *args: Any) -> None:
        with self.lock:
            self.calls += 1
        raise RuntimeError("bug in the metrics backend")

    rest = ws_rtt = reconnect = resume = move = load = track_exception = track_stuck = _fail


def test_a_raising_hook_breaks_no_call_and_is_logged_once_per_method(
    fake: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Broken()
    caplog.set_level(logging.ERROR, logger="lavasync.metrics")
    with Client(USER_ID, metrics=broken) as client:
        node = client.add_node(
            "main", fake.uri, password=fake.password, backoff=FAST, ping_interval=0.05
        )
        client.wait_ready()
        assert client.load("fake:empty").load_type == "empty"
        assert client.load("fake:empty").load_type == "empty"
        player = client.player(GUILD)
        player.play(fake.add_track("Still plays", length=600_000).encoded)
        wait_until(lambda: node.ping is not None)  # the reader survived ws_rtt() raising
        fake.stuck_track(GUILD)
        fake.drop_connections()
        wait_until(lambda: node.available and broken.calls >= 8)
        player.pause()  # REST after the hook raised many times
        assert player.paused is True
    failures = [r for r in caplog.records if "metrics hook" in r.getMessage()]
    names = [r.getMessage().split("'s ")[1].split("(")[0] for r in failures]
    assert sorted(names) == sorted(set(names))  # once per method
    assert {"rest", "load", "ws_rtt"} <= set(names)
    assert all(r.exc_info is not None for r in failures)


def test_objects_that_are_no_hook_are_refused() -> None:
    with pytest.raises(ValueError, match="metrics"):
        Client(USER_ID, metrics=object())
    with pytest.raises(ValueError, match=r"metrics\.load"):
        Client(USER_ID, metrics=type("Odd", (), {"load": 3})())


def test_a_hook_with_some_methods_is_enough(fake: FakeNode) -> None:
    loads: list[str] = []

    class OnlyLoads:
        def load(self, load_type: str) -> None:
            loads.append(load_type)

    with Client(USER_ID, metrics=OnlyLoads()) as client:
        client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        client.load("fake:empty")
    assert loads == ["empty"]


def test_bind_is_given_the_client() -> None:
    bound: list[Client] = []

    class Binding(NullMetrics):
        def bind(self, client: Client) -> None:
            bound.append(client)

    with Client(USER_ID, metrics=Binding()) as client:
        assert bound == [client]


# ---------------------------------------------------------------------------- gauges


def test_metrics_snapshot_reads_buffers_and_nodes(fake: FakeNode) -> None:
    with Client(USER_ID, event_buffer_size=8) as client:
        node = client.add_node("main", fake.uri, password=fake.password)
        client.wait_ready()
        player = client.player(GUILD)
        player.play(fake.add_track("Gauge", length=600_000).encoded)
        update = {
            "op": "playerUpdate",
            "guildId": str(GUILD),
            "state": {"time": 1, "position": 1, "connected": True, "ping": 3},
        }
        fake.burst(update, 200)
        wait_until(lambda: client.metrics_snapshot()["buffers"]["poll"]["coalesced"] > 0)
        snap = client.metrics_snapshot()
        assert snap["buffers"]["poll"]["dropped"] == client.dropped_events
        assert 0 < snap["buffers"]["poll"]["depth"] <= 8
        assert snap["buffers"]["poll"]["capacity"] == 8
        assert snap["buffers"]["listener"]["depth"] == 0  # nobody listens: nothing queued
        assert snap["nodes"] == {
            "main": {"state": "ready", "available": True, "players": 1, "ping": node.ping}
        }
        assert snap["players"] == 1
        drained = list(client.events(timeout=0.1))
        assert drained
        assert client.metrics_snapshot()["buffers"]["poll"]["depth"] == 0


def test_metrics_snapshot_without_polling_has_no_poll_buffer() -> None:
    with Client(USER_ID, poll_events=False) as client:
        snap = client.metrics_snapshot()
    assert set(snap["buffers"]) == {"listener"}
    assert snap["nodes"] == {} and snap["players"] == 0
