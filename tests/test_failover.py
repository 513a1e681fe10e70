"""Many nodes over real sockets: selection, regions, failover, resume without moves, drain,
and a restarted client taking its players back from the state store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import pytest
from conftest import FAST, USER_ID, wait_until

import lavasync
from lavasync import (
    Client,
    Filters,
    NodeResumedEvent,
    PlayerMovedEvent,
    Timescale,
)
from lavasync.store import JsonFileStore, MemoryStore
from lavasync.testing import FakeGateway, FakeNode


class Cluster:
    def __init__(self, stack: ExitStack, *, resume_timeout: int = 1, **client_kw: Any) -> None:
        self.fakes = [
            stack.enter_context(FakeNode(name=n, stats_interval=30.0, player_update_interval=0.2))
            for n in ("a", "b", "c")
        ]
        self.gateway = stack.enter_context(FakeGateway(USER_ID))
        self.client = Client(USER_ID, self.gateway.hook, **client_kw)
        stack.callback(self.client.close)
        self.gateway.deliver = self.client.handle_gateway
        self.resume_timeout = resume_timeout

    def add_nodes(self, regions: tuple[Optional[str], ...] = (None, None, None)) -> None:
        for fake, region in zip(self.fakes, regions):
            self.client.add_node(
                fake.name,
                fake.uri,
                password=fake.password,
                region=region,
                backoff=FAST,
                resume_timeout=self.resume_timeout,
            )
        for node in self.client.nodes:
            node.wait_ready(5)
        wait_until(lambda: all(n.stats is not None for n in self.client.nodes))

    def node(self, name: str) -> lavasync.Node:
        return self.client.node(name)

    def fake(self, name: str) -> FakeNode:
        return next(f for f in self.fakes if f.name == name)

    def server_player(self, node_name: str, guild: int) -> Optional[dict[str, Any]]:
        node = self.node(node_name)
        assert node.session_id is not None
        return self.fake(node_name).player(node.session_id, guild)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with ExitStack() as stack:
        yield Cluster(stack)


def set_load(cluster: Cluster, name: str, load: float, playing: int = 0) -> None:
    node = cluster.node(name)
    fake = cluster.fake(name)
    stats = {
        "op": "stats",
        "players": playing,
        "playingPlayers": playing,
        "uptime": 1000,
        "memory": {"free": 1, "used": 1, "allocated": 2, "reservable": 4},
        "cpu": {"cores": 4, "systemLoad": load, "lavalinkLoad": load / 2},
        "frameStats": None,
    }
    fake.emit(stats)
    wait_until(lambda: node.stats is not None and node.stats.cpu.system_load == load)


def test_selection_follows_the_penalty(cluster: Cluster) -> None:
    cluster.add_nodes()
    set_load(cluster, "a", 0.9)
    set_load(cluster, "b", 0.1)
    set_load(cluster, "c", 0.5)
    assert cluster.client.best_node().name == "b"
    assert cluster.client.player(1).node.name == "b"
    # with equal loads, a burst of new players spreads instead of landing on one node
    set_load(cluster, "a", 0.1)
    set_load(cluster, "c", 0.1)
    for guild in range(2, 38):
        cluster.client.player(guild)
    spread = sorted(len(n.players) for n in cluster.client.nodes)
    assert spread == [12, 12, 13]
    # a new stats report resets the count of players assigned since the last one
    set_load(cluster, "b", 0.2, playing=0)
    assert cluster.node("b").recent_players == 0


def test_a_pluggable_penalty_wins(cluster: Cluster) -> None:
    cluster.client.penalty = lambda node: {"a": 3.0, "b": 2.0, "c": 1.0}[node.name]
    cluster.add_nodes()
    assert cluster.client.player(5).node.name == "c"


def test_regions_prefer_the_voice_servers_region(cluster: Cluster) -> None:
    cluster.add_nodes(regions=("us", "eu", "asia"))
    set_load(cluster, "b", 0.9)  # eu is busy, still preferred for an eu voice server
    player = cluster.client.player(10)
    cluster.gateway.endpoint = "rotterdam1234.discord.media:443"
    player.connect(111)
    assert player.node.name == "b"
    assert cluster.server_player("b", 10) is not None
    cluster.gateway.endpoint = "singapore56.discord.media:443"
    other = cluster.client.player(11)
    other.connect(112)
    assert other.node.name == "c"
    cluster.gateway.endpoint = "atlantis7.discord.media:443"  # unknown: fall back to penalty
    third = cluster.client.player(12)
    third.connect(113)
    assert third.node.name in {"a", "c"}


def start_players(cluster: Cluster, node_name: str, count: int) -> dict[int, dict[str, Any]]:
    """Players on one node, each in its own state; returns what each should carry."""
    fake = cluster.fake(node_name)
    node = cluster.node(node_name)
    expected: dict[int, dict[str, Any]] = {}
    for i in range(count):
        guild = 1000 + i
        track = fake.add_track(f"Song {i}", length=600_000)
        player = cluster.client.player(guild, node=node)
        player.connect(5000 + i)
        paused = i % 3 == 0
        filters = Filters(timescale=Timescale(speed=1.25)) if i % 2 else Filters()
        player.play(
            track.encoded,
            start=10_000 * i,
            volume=50 + i,
            paused=paused,
            user_data={"requester": i},
        )
        if not filters.is_empty:
            player.set_filters(filters)
        expected[guild] = {
            "title": f"Song {i}",
            "paused": paused,
            "volume": 50 + i,
            "filters": filters.to_wire(),
            "channel": 5000 + i,
        }
    return expected


def test_a_killed_node_moves_every_player_with_its_state(cluster: Cluster) -> None:
    cluster.add_nodes()
    expected = start_players(cluster, "a", 6)
    moved: list[PlayerMovedEvent] = []
    all_moved = threading.Event()

    @cluster.client.on(PlayerMovedEvent)
    def on_moved(event: PlayerMovedEvent) -> None:
        moved.append(event)
        if len(moved) == len(expected):
            all_moved.set()

    positions = {g: cluster.client.get_player(g).position for g in expected}  # type: ignore[union-attr]
    killed_at = time.monotonic()
    cluster.fake("a").kill()
    assert all_moved.wait(15)
    for event in moved:
        assert event.old_node.name == "a"
        assert event.new_node.name in {"b", "c"}
        assert event.reason == "node lost"
    for guild, want in expected.items():
        player = cluster.client.get_player(guild)
        assert player is not None
        name = player.node.name
        assert name in {"b", "c"}
        server = cluster.server_player(name, guild)
        assert server is not None
        assert server["track"]["info"]["title"] == want["title"]
        assert server["paused"] == want["paused"]
        assert server["volume"] == want["volume"]
        assert server["voice"]["channelId"] == str(want["channel"])
        assert server["track"]["userData"] == {"requester": guild - 1000}
        assert (server["filters"].get("timescale") or {}).get("speed", 1.0) == (
            want["filters"].get("timescale") or {}
        ).get("speed", 1.0)
        speed = 1.25 if want["filters"] else 1.0
        elapsed = 0 if want["paused"] else (time.monotonic() - killed_at) * 1000 * speed
        where = positions[guild] + elapsed
        assert abs(server["state"]["position"] - where) < 1000, (guild, server["state"], where)
    assert cluster.node("a").players == []


def test_a_node_back_inside_its_resume_window_keeps_its_players() -> None:
    with ExitStack() as stack:
        cluster = Cluster(stack, resume_timeout=30)
        cluster.add_nodes()
        expected = start_players(cluster, "a", 3)
        node_a = cluster.node("a")
        sid = node_a.session_id
        resumed = threading.Event()
        cluster.client.add_listener(NodeResumedEvent, lambda e: resumed.set())
        moved: list[Any] = []
        cluster.client.add_listener(PlayerMovedEvent, moved.append)
        cluster.fake("a").kill()
        wait_until(lambda: not node_a.available)
        cluster.fake("a").revive()
        assert resumed.wait(10)
        assert node_a.session_id == sid
        assert moved == []
        for guild in expected:
            assert cluster.client.get_player(guild).node is node_a  # type: ignore[union-attr]
            assert cluster.server_player("a", guild) is not None
            assert cluster.server_player("b", guild) is None
            assert cluster.server_player("c", guild) is None


def test_drain_moves_every_player_even_if_the_old_node_hangs(cluster: Cluster) -> None:
    cluster.add_nodes()
    expected = start_players(cluster, "a", 3)
    node_a = cluster.node("a")
    cluster.fake("a").stop_answering()
    try:
        moved = node_a.drain(timeout=5)
    finally:
        cluster.fake("a").resume_answering()
    assert moved == len(expected)
    for guild in expected:
        player = cluster.client.get_player(guild)
        assert player is not None and player.node.name in {"b", "c"}
        assert cluster.server_player(player.node.name, guild) is not None
    assert node_a.draining
    assert cluster.client.player(99).node is not node_a


def test_move_players_to_a_chosen_node(cluster: Cluster) -> None:
    cluster.add_nodes()
    expected = start_players(cluster, "a", 2)
    assert cluster.client.move_players(cluster.node("a"), cluster.node("c")) == 2
    for guild in expected:
        assert cluster.client.get_player(guild).node.name == "c"  # type: ignore[union-attr]
        assert cluster.server_player("a", guild) is None  # deleted on the old node


@pytest.mark.parametrize("expired", [False, True])
def test_a_restarted_client_takes_its_players_back(tmp_path: Path, expired: bool) -> None:
    store = JsonFileStore(tmp_path / "lavasync-state.json")
    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=30.0, player_update_interval=0.2))
        gateway = stack.enter_context(FakeGateway(USER_ID))
        first = Client(USER_ID, gateway.hook, state_store=store)
        gateway.deliver = first.handle_gateway
        node = first.add_node("main", fake.uri, password=fake.password, resume_timeout=30)
        node.wait_ready(5)
        sid = node.session_id
        tracks = {}
        for i in range(3):
            guild = 2000 + i
            track = fake.add_track(f"Keep {i}", length=600_000)
            player = first.player(guild)
            player.connect(7000 + i)
            player.play(track.encoded, start=1_000 * i, volume=30 + i)
            tracks[guild] = f"Keep {i}"
        assert first.close(5)
        assert sid is not None
        saved = store.load()
        assert saved["nodes"]["main"]["session_id"] == sid
        assert len(saved["players"]) == 3
        if expired:
            fake.expire_session(sid)
        fake.clear_requests()

        second = Client(USER_ID, gateway.hook, state_store=store)
        gateway.deliver = second.handle_gateway
        try:
            node2 = second.add_node("main", fake.uri, password=fake.password)
            node2.wait_ready(5)
            assert fake.handshakes[-1].headers.get("Session-Id") == sid
            for guild, title in tracks.items():
                player = second.get_player(guild)
                assert player is not None
                assert player.track is not None and player.track.info.title == title
                assert player.volume == 30 + guild - 2000
                assert player.channel_id == 7000 + guild - 2000
            new_sid = node2.session_id
            assert new_sid is not None
            if expired:
                assert new_sid != sid
                for guild, title in tracks.items():
                    # rebuilt in parallel once the fresh session is ready
                    wait_until(lambda g=guild: fake.player(new_sid, g) is not None, 5)
                    server = fake.player(new_sid, guild)
                    assert server is not None
                    assert server["track"]["info"]["title"] == title
                    assert server["volume"] == 30 + guild - 2000
                    assert server["voice"]["channelId"] == str(7000 + guild - 2000)
            else:
                assert new_sid == sid
                patches = [r for r in fake.requests if r.method == "PATCH" and "players" in r.path]
                assert patches == []  # resumed: nothing had to be rebuilt
        finally:
            assert second.close(5)


def test_memory_store_is_the_default_and_round_trips() -> None:
    store = MemoryStore()
    state = {"nodes": {"x": {"session_id": "abc"}}, "players": []}
    store.save(state)
    state["nodes"]["x"]["session_id"] = "changed"
    assert store.load()["nodes"]["x"]["session_id"] == "abc"
    with Client(USER_ID) as client:
        assert isinstance(client.state_store, MemoryStore)


def test_a_path_is_a_json_file_store(tmp_path: Path) -> None:
    with Client(USER_ID, state_store=tmp_path / "s.json") as client:
        assert isinstance(client.state_store, JsonFileStore)
    assert JsonFileStore(tmp_path / "s.json").load()["players"] == []
    with pytest.raises(ValueError):
        Client(USER_ID, state_store=42)  # type: ignore[arg-type]


def test_a_corrupt_json_store_is_moved_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json", encoding="utf-8")
    assert JsonFileStore(path).load() == {}
    (aside,) = tmp_path.glob("state.json.corrupt-*")
    assert aside.read_text(encoding="utf-8") == "{not json"


def test_remove_node_moves_its_players_first(cluster: Cluster) -> None:
    cluster.add_nodes()
    expected = start_players(cluster, "a", 2)
    cluster.client.remove_node("a")
    assert [n.name for n in cluster.client.nodes] == ["b", "c"]
    for guild in expected:
        player = cluster.client.get_player(guild)
        assert player is not None
        assert player.node.name in {"b", "c"}
        assert cluster.server_player(player.node.name, guild) is not None
    with pytest.raises(ValueError):
        cluster.client.remove_node("a")
