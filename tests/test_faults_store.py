"""Fault paths of the state store: trailing saves on the store thread, destroyed players removed
before a crash, durable JSON writes, and unreadable stores that must not stop a bot starting."""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import pytest
from conftest import FAST, USER_ID, wait_until

from lavasync import Client
from lavasync.store import JsonFileStore, SaveScheduler, StateStore
from lavasync.testing import FakeNode

GUILD = 817327181659111454
#: Generous: the saves are due within ``save_interval``; this only bounds a failing test.
MARGIN = 3.0


def on_disk(path: Path) -> Optional[dict[str, Any]]:
    """The store file as a crashed process would leave it (None if missing or mid-write)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    assert isinstance(data, dict)
    return data


def disk_player(path: Path, guild: int) -> Optional[dict[str, Any]]:
    data = on_disk(path) or {}
    for player in data.get("players", ()):
        if player.get("guild_id") == str(guild):
            assert isinstance(player, dict)
            return player
    return None


def start(stack: ExitStack, store: Any, **client_kw: Any) -> tuple[FakeNode, Client]:
    # Long intervals: no stats or playerUpdate arrives on its own, so nothing but the change
    # under test can prompt a save.
    fake = stack.enter_context(FakeNode(stats_interval=3600.0, player_update_interval=3600.0))
    client = Client(USER_ID, lambda guild, payload: None, state_store=store, **client_kw)
    stack.callback(client.close)
    client.add_node("main", fake.uri, password=fake.password, backoff=FAST, resume_timeout=60)
    client.wait_ready(5)
    return fake, client


def test_a_change_inside_the_interval_is_saved_without_another_event(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    interval = 1.0
    with ExitStack() as stack:
        fake, client = start(stack, path, save_interval=interval)
        node = client.nodes[0]
        # the first change of a quiet period (the node's session) is saved
        wait_until(
            lambda: (
                (on_disk(path) or {}).get("nodes", {}).get("main", {}).get("session_id")
                == node.session_id
            ),
            interval + MARGIN,
        )
        player = client.player(GUILD)
        player.play(fake.add_track("Keep", length=600_000).encoded, volume=40)
        player.set_volume(55)  # inside the interval: must be saved at its end, unprompted
        wait_until(lambda: (disk_player(path, GUILD) or {}).get("volume") == 55, interval + MARGIN)
        saved = disk_player(path, GUILD)
        assert saved is not None and saved["track"]["info"]["title"] == "Keep"


def test_disconnect_then_crash_leaves_the_guild_out_of_the_store(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    interval = 1.0
    with ExitStack() as stack:
        fake, client = start(stack, path, save_interval=interval)
        player = client.player(GUILD)
        player.play(fake.add_track("Gone", length=600_000).encoded)
        wait_until(lambda: disk_player(path, GUILD) is not None, interval + MARGIN)
        player.disconnect()  # right after a save: inside the interval
        wait_until(
            lambda: on_disk(path) is not None and disk_player(path, GUILD) is None,
            interval + MARGIN,
        )
        crash_image = path.read_bytes()  # the process dies here: close() never runs
        assert client.close(5)
        path.write_bytes(crash_image)

        restarted = Client(USER_ID, lambda guild, payload: None, state_store=path)
        stack.callback(restarted.close)
        restarted.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        assert restarted.get_player(GUILD) is None  # it does not play the guild again


class ThreadRecordingStore(StateStore):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.saves: list[tuple[str, dict[str, Any]]] = []

    def load(self) -> dict[str, Any]:
        return {}

    def save(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.saves.append((threading.current_thread().name, state))


def test_saves_run_on_the_store_thread_and_close_saves_last(tmp_path: Path) -> None:
    store = ThreadRecordingStore()
    with ExitStack() as stack:
        fake, client = start(stack, store, save_interval=0.2)
        player = client.player(GUILD)
        player.play(fake.add_track("T", length=600_000).encoded)
        wait_until(lambda: any(p for _, s in store.saves for p in s["players"]), MARGIN)
        names = {name for name, _ in store.saves}
        assert names == {"lavasync-store"}, names
        assert "lavasync-store" in {t.name for t in threading.enumerate()}
        assert client.close(5)
        last_thread, last_state = store.saves[-1]
        assert last_thread == threading.current_thread().name  # the final save, by close()
        assert [p["guild_id"] for p in last_state["players"]] == [str(GUILD)]
        count = len(store.saves)
        client.save_state()  # after close: would drop the players close() released
        assert len(store.saves) == count


def test_trailing_saves_group_the_changes_of_an_interval() -> None:
    saved = threading.Semaphore(0)
    count = [0]

    def save() -> None:
        count[0] += 1
        saved.release()

    scheduler = SaveScheduler(save, 0.3)
    scheduler.start()
    try:
        scheduler.changed()
        assert saved.acquire(timeout=5)  # first change of a quiet period: at once
        for _ in range(5):
            scheduler.changed()  # inside the interval: one save at its end
        assert saved.acquire(timeout=5)
    finally:
        assert scheduler.stop(5)
    assert count[0] == 2
    scheduler.changed()  # stopped: nothing runs any more
    assert not saved.acquire(timeout=0)


@pytest.mark.parametrize(
    "content",
    ["", "   \n", "{not json", "[]", "null"],
    ids=["empty", "blank", "bad", "list", "null"],
)
def test_an_unreadable_store_file_is_moved_aside_and_the_client_starts_empty(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lavasync.store"):
        client = Client(USER_ID, state_store=path)
    try:
        warnings = [r for r in caplog.records if r.name == "lavasync.store"]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert str(path) in warnings[0].getMessage()
        aside = list(tmp_path.glob("state.json.corrupt-*"))
        assert len(aside) == 1
        assert aside[0].read_text(encoding="utf-8") == content  # kept for inspection
        assert client.players == []
    finally:
        assert client.close(5)
    data = on_disk(path)  # close() saved a fresh, valid store over the moved one
    assert data is not None and data["players"] == [] and data["nodes"] == {}


def test_a_store_that_loads_odd_shapes_does_not_stop_the_client() -> None:
    class OddStore(StateStore):
        def load(self) -> Any:
            return {"nodes": ["main"], "players": {"x": 1}}

        def save(self, state: dict[str, Any]) -> None:
            pass

    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=3600.0))
        client = Client(USER_ID, state_store=OddStore())
        stack.callback(client.close)
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        node.wait_ready(5)
        assert client.players == []


@pytest.mark.skipif(os.name == "nt", reason="directories cannot be fsynced on Windows")
def test_json_store_syncs_the_data_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    store = JsonFileStore(path)
    store.save({"players": [1]})
    steps: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        steps.append(("fsync-dir" if stat.S_ISDIR(info.st_mode) else "fsync-file", info.st_ino))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        steps.append(("replace", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.save({"players": [2]})
    monkeypatch.undo()
    new_inode = os.stat(path).st_ino
    assert [kind for kind, _ in steps] == ["fsync-file", "replace", "fsync-dir"]
    assert steps[0][1] == steps[1][1] == new_inode  # the synced file is the one renamed in
    assert steps[2][1] == os.stat(tmp_path).st_ino
    assert store.load() == {"players": [2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temp file left


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "5", True, None])
def test_save_interval_must_be_a_non_negative_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="save_interval"):
        Client(USER_ID, save_interval=bad)
