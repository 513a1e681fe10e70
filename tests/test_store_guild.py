"""Per-guild state: only changed guilds are written, destroyed ones deleted, queues restored,
shard-owned restores, and whole-state stores of the 0.1 interface still work."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import pytest
from conftest import FAST, USER_ID, wait_until

from lavasync import Client, Queue
from lavasync.store import JsonFileStore, MemoryStore, StateStore
from lavasync.testing import FakeNode

A, B = (1 << 22) | 1, (2 << 22) | 2


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[set[int]] = []

    def write(self, owner: str, players: Any, nodes: Any) -> set[int]:
        self.batches.append(set(players))
        return super().write(owner, players, nodes)


def start(stack: ExitStack, store: Any, **kw: Any) -> tuple[FakeNode, Client]:
    fake = stack.enter_context(FakeNode(stats_interval=3600.0, player_update_interval=3600.0))
    client = Client(USER_ID, state_store=store, save_interval=0.05, **kw)
    stack.callback(client.close)
    client.add_node("main", fake.uri, password=fake.password, backoff=FAST, resume_timeout=60)
    client.wait_ready(5)
    return fake, client


def test_only_the_changed_guild_is_written() -> None:
    store = RecordingStore()
    with ExitStack() as stack:
        fake, client = start(stack, store)
        for guild in (A, B):
            client.player(guild).play(fake.add_track(f"T{guild}").encoded)
        wait_until(lambda: store.load_guild(A) is not None and store.load_guild(B) is not None, 5)
        store.batches.clear()
        client.get_player(B).set_volume(12)  # type: ignore[union-attr]
        wait_until(lambda: (store.load_guild(B) or {}).get("volume") == 12, 5)
        assert store.batches and all(batch <= {B} for batch in store.batches)


def test_a_destroyed_player_is_deleted_from_the_json_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with ExitStack() as stack:
        fake, client = start(stack, JsonFileStore(path))
        for guild in (A, B):
            client.player(guild).play(fake.add_track(f"T{guild}").encoded)

        def guilds() -> set[int]:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return set()
            return {int(p["guild_id"]) for p in data["players"]}

        wait_until(lambda: guilds() == {A, B}, 5)
        client.get_player(A).destroy()  # type: ignore[union-attr]
        wait_until(lambda: guilds() == {B}, 5)


def test_the_queue_comes_back_with_the_player_and_advances_once(tmp_path: Path) -> None:
    store = JsonFileStore(tmp_path / "s.json")
    with FakeNode(stats_interval=3600.0, player_update_interval=3600.0) as fake:
        first = Client(USER_ID, state_store=store, save_interval=0.05)
        try:
            first.add_node("main", fake.uri, password=fake.password, backoff=FAST).wait_ready(5)
            tracks = [fake.add_track(f"Q{i}", length=600_000) for i in range(4)]
            player = first.player(A)
            queue = Queue(player, client=first, loop="queue")
            queue.add(tracks)
            queue.start()  # Q0 plays
            queue.skip()  # Q1 plays, Q0 goes to the back (loop queue) and to history
            sid = first.nodes[0].session_id
        finally:
            assert first.close(5)
        second = Client(USER_ID, state_store=store, save_interval=0.05)
        try:
            node = second.add_node("main", fake.uri, password=fake.password, backoff=FAST)
            node.wait_ready(5)
            assert node.session_id == sid
            restored = second.get_player(A)
            assert restored is not None and restored.queue is not None
            queue2 = restored.queue
            assert Queue.of(restored) is queue2
            assert queue2.loop.value == "queue"
            assert queue2.current is not None and queue2.current.info.title == "Q1"
            assert [t.info.title for t in queue2.upcoming] == ["Q2", "Q3", "Q0"]
            assert [t.info.title for t in queue2.history] == ["Q0"]
            fake.finish_track(A, session_id=sid)  # Q1 ends: the restored queue starts Q2, once
            wait_until(
                lambda: (
                    (fake.player(sid or "", A) or {}).get("track") is not None
                    and fake.player(sid or "", A)["track"]["info"]["title"] == "Q2"
                ),
                5,
            )
            assert [t.info.title for t in queue2.upcoming] == ["Q3", "Q0", "Q1"]
        finally:
            assert second.close(5)


def test_shard_ids_restore_only_owned_guilds() -> None:
    store = MemoryStore()
    store.write("x", {g: {"guild_id": str(g), "node": "main"} for g in (A, B)}, {})
    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=3600.0))
        client = stack.enter_context(
            Client(USER_ID, state_store=store, shard_ids=[1], shard_count=2)
        )
        client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        assert client.shard_of(A) == 1 and client.shard_of(B) == 0
        assert [p.guild_id for p in client.players] == [A]


@pytest.mark.parametrize(
    "kw",
    [
        {"shard_ids": [0]},
        {"shard_ids": [2], "shard_count": 2},
        {"shard_count": 0},
        {"shard_ids": ["0"], "shard_count": 2},
    ],
)
def test_bad_shard_arguments_raise(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Client(USER_ID, **kw)


def test_a_whole_state_store_of_the_old_interface_still_works() -> None:
    class Whole(StateStore):
        def __init__(self) -> None:
            self.state: Optional[dict[str, Any]] = None

        def load(self) -> dict[str, Any]:
            return dict(self.state or {})

        def save(self, state: dict[str, Any]) -> None:
            self.state = state

    store = Whole()
    with ExitStack() as stack:
        fake, client = start(stack, store)
        client.player(A).play(fake.add_track("W").encoded, volume=33)
        wait_until(
            lambda: any(p.get("volume") == 33 for p in (store.state or {}).get("players", [])), 5
        )
    assert store.state is not None and store.state["nodes"]["main"]["session_id"]
