"""Restoring many players with queues stays cheap (issue 13 follow-up): one pair of client
listeners for every attached queue, O(1) listener registration, queued tracks decoded on first
use, the cyclic collector paused during the bulk restore, batched Redis lease claims."""

from __future__ import annotations

import gc
import logging
from contextlib import ExitStack
from typing import Any, Callable

import pytest
from conftest import FAST, USER_ID, RedisServer, wait_until

from lavasync import Client, Queue
from lavasync._dispatch import ListenerRegistry
from lavasync.models.events import PlayerDestroyedEvent, TrackEndEvent, TrackStartEvent
from lavasync.redis_store import RedisStore
from lavasync.store import MemoryStore
from lavasync.testing import FakeNode

A = (1 << 22) | 1
SKIPPED = "skipping a stored queue track"


def stored_queue(upcoming: list[Any], **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "upcoming": upcoming,
        "history": [],
        "current": None,
        "token": None,
        "loop": "none",
        "history_size": 50,
    }
    state.update(extra)
    return state


def listener_count(client: Client) -> int:
    return sum(len(fns) for fns in client._listeners._by_class.values())


def fake_node(stack: ExitStack) -> FakeNode:
    return stack.enter_context(FakeNode(stats_interval=3600.0, player_update_interval=3600.0))


def client_of(stack: ExitStack, store: Any) -> Client:
    return stack.enter_context(Client(USER_ID, state_store=store, save_interval=3600.0))


def test_restored_queues_share_two_client_listeners_and_detach_with_their_players() -> None:
    guilds = [(i << 22) | 1 for i in range(1, 121)]
    store = MemoryStore()
    with ExitStack() as stack:
        fake = fake_node(stack)
        song = fake.add_track("S", length=600_000).encoded
        store.write(
            "x",
            {
                g: {"guild_id": str(g), "node": "main", "queue": stored_queue([song])}
                for g in guilds
            },
            {},
        )
        client = client_of(stack, store)
        baseline = listener_count(client)
        client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        players = client.players
        assert len(players) == len(guilds)
        assert all(p.queue is not None and len(p.queue) == 1 for p in players)
        # 300 attached queues: two listeners between them, not two each
        assert listener_count(client) == baseline + 2
        assert len(client._queue_router) == len(guilds)
        first, second = players[0], players[1]
        first.destroy()
        wait_until(lambda: len(client._queue_router) == len(guilds) - 1, 5)
        assert listener_count(client) == baseline + 2
        assert second.queue is not None and len(second.queue) == 1  # not touched
        for player in players[1:]:
            player.destroy()
        wait_until(lambda: len(client._queue_router) == 0, 10)
        assert listener_count(client) == baseline  # the last queue gone: no listener left


def test_the_router_hands_a_track_end_to_its_guild_only() -> None:
    with ExitStack() as stack:
        fake, client = fake_node(stack), client_of(stack, MemoryStore())
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        node.wait_ready(5)
        baseline = listener_count(client)
        other = (2 << 22) | 2
        queues = {}
        for guild in (A, other):
            tracks = [fake.add_track(f"{guild}-{i}", length=600_000) for i in range(3)]
            queue = Queue(client.player(guild), client=client)
            queue.add(tracks)
            assert queue.start() is not None
            queues[guild] = queue
        assert listener_count(client) == baseline + 2
        started: list[str] = []
        client.add_listener(TrackStartEvent, lambda e: started.append(e.track.info.title))
        fake.finish_track(A, session_id=node.session_id)
        wait_until(lambda: f"{A}-1" in started, 5)
        assert queues[A].current is not None and queues[A].current.info.title == f"{A}-1"
        assert queues[other].current is not None
        assert queues[other].current.info.title == f"{other}-0"  # the other guild stays put
        assert len(queues[other]) == 2


def test_restored_tracks_are_decoded_on_first_use(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    with ExitStack() as stack:
        fake = fake_node(stack)
        u0, u1, h0, cur = (fake.add_track(t) for t in ("U0", "U1", "H0", "C"))
        upcoming = [u0.encoded, "not a track", {"encoded": u1.encoded, "userData": {"by": 7}}]
        queue_state = stored_queue(
            upcoming, history=[h0.encoded], current=cur.encoded, token=cur.info.identifier
        )
        store.write("x", {A: {"guild_id": str(A), "node": "main", "queue": queue_state}}, {})
        with caplog.at_level(logging.WARNING, logger="lavasync.queue"):
            client = client_of(stack, store)
            client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
            player = client.get_player(A)
            assert player is not None and player.queue is not None
            queue = player.queue
            # nothing decoded yet: the unreadable track is not even looked at, and a save
            # writes the stored forms back as they came
            assert not [r for r in caplog.records if SKIPPED in r.getMessage()]
            assert len(queue) == 3
            client._state_changed(A)
            client.save_state()
            assert (store.load_guild(A) or {})["queue"]["upcoming"] == upcoming

            tracks = queue.upcoming  # first use: decoded, the unreadable one left out
            assert [t.info.title for t in tracks] == ["U0", "U1"]
            assert tracks[1].user_data == {"by": 7}
            assert len([r for r in caplog.records if SKIPPED in r.getMessage()]) == 1
            assert queue.upcoming[0] is tracks[0]  # decoded once
            assert len(queue) == 2
            assert [t.info.title for t in queue.history] == ["H0"]
            assert queue.current is not None and queue.current.info.title == "C"
            client._state_changed(A)
            client.save_state()
            saved = (store.load_guild(A) or {})["queue"]
            assert saved["upcoming"] == [u0.encoded, {"encoded": u1.encoded, "userData": {"by": 7}}]
            assert saved["current"] == cur.encoded and saved["token"] == cur.info.identifier


def test_a_restored_queue_advances_past_an_unreadable_track(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    with ExitStack() as stack:
        fake = fake_node(stack)
        nxt = fake.add_track("Next", length=600_000)
        queue_state = stored_queue(["not a track", nxt.encoded])
        store.write("x", {A: {"guild_id": str(A), "node": "main", "queue": queue_state}}, {})
        client = client_of(stack, store)
        client.add_node("main", fake.uri, password=fake.password, backoff=FAST).wait_ready(5)
        queue = Queue.of(client.get_player(A))  # type: ignore[arg-type]
        assert not [r for r in caplog.records if SKIPPED in r.getMessage()]
        assert len(queue) == 2  # as stored: the unreadable track is found when it comes up
        with caplog.at_level(logging.WARNING, logger="lavasync.queue"):
            track = queue.next()
        assert track is not None and track.info.title == "Next"
        assert len([r for r in caplog.records if SKIPPED in r.getMessage()]) == 1
        assert len(queue) == 0


class Counted:
    """A listener whose equality checks are counted (a removal by scanning shows up here)."""

    compared = 0

    def __call__(self, event: Any) -> None:
        pass

    def __eq__(self, other: object) -> bool:
        Counted.compared += 1
        return self is other

    def __hash__(self) -> int:
        return id(self)


def test_listener_add_and_remove_do_not_scan_the_registered_ones() -> None:
    reg = ListenerRegistry()
    fns = [Counted() for _ in range(2000)]
    for fn in fns:
        reg.add(TrackEndEvent, fn)
    Counted.compared = 0
    for fn in reversed(fns[1:]):  # the worst case for a scan: the newest is found last
        assert reg.remove(TrackEndEvent, fn)
    assert Counted.compared <= 2 * len(fns)  # a scan per removal would be ~2,000,000
    assert reg.for_event(TrackEndEvent.__new__(TrackEndEvent)) == (fns[0],)
    assert not reg.remove(TrackEndEvent, fns[1])

    # order and duplicates behave as before: one removal takes the oldest registration
    calls: list[str] = []

    def make(name: str) -> Callable[[Any], None]:
        return lambda _e: calls.append(name)

    f, g = make("f"), make("g")
    reg2 = ListenerRegistry()
    for fn in (f, g, f):
        reg2.add(PlayerDestroyedEvent, fn)
    assert reg2.remove(PlayerDestroyedEvent, f)
    assert reg2.for_event(PlayerDestroyedEvent.__new__(PlayerDestroyedEvent)) == (g, f)
    assert reg2.remove(PlayerDestroyedEvent, f) and reg2.remove(PlayerDestroyedEvent, g)
    assert not reg2 and not reg2.remove(PlayerDestroyedEvent, f)


class GcWatchingStore(MemoryStore):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.collector_on: list[bool] = []

    def load_state(self, owner: str, *args: Any) -> dict[str, Any]:
        self.collector_on.append(gc.isenabled())
        if self.fail:
            raise ConnectionError("store down")
        return super().load_state(owner, *args)


@pytest.mark.parametrize("fail", [False, True])
def test_the_collector_is_paused_while_loading_and_back_on_after(fail: bool) -> None:
    assert gc.isenabled()
    store = GcWatchingStore(fail=fail)
    try:
        with Client(USER_ID, state_store=store, save_interval=3600.0):
            assert store.collector_on == [False]
            assert gc.isenabled()
    finally:
        gc.enable()  # never leave the test run without a collector, whatever failed


def test_redis_claims_and_releases_leases_in_batches(redis_server: RedisServer) -> None:
    guilds = list(range(1, 2501))  # more than two batches
    mine = RedisStore(redis_server.url, namespace="t", state_ttl=100.0)
    other = RedisStore(redis_server.url, namespace="t")
    r = redis_server.client()
    mine.write("a", {g: {"guild_id": str(g), "node": "main"} for g in (7, 1500)}, {})
    mine.release("a", [7, 1500])
    taken = {5, 1001, 2500}
    assert other.claim("b", taken) == taken
    long_lived = RedisStore(redis_server.url, namespace="t", state_ttl=1000.0)
    assert long_lived.claim("a", guilds) == set(guilds) - taken
    assert long_lived.claim("a", guilds) == set(guilds) - taken  # a renewal: still ours
    assert mine.lease_owner(1000) == "a" and mine.lease_owner(1001) == "b"
    assert r.pttl(mine.key("guild", 1500)) > 100_000  # the claim kept the state alive longer
    mine.release("a", guilds)
    assert mine.lease_owner(1000) is None and mine.lease_owner(2499) is None
    assert [other.lease_owner(g) for g in sorted(taken)] == ["b", "b", "b"]  # not ours: kept
