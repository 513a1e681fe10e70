"""The lean shapes issue 14 relies on (what is made lazily), with the public behaviour unchanged.

No timings here: speed is measured in bench/ only.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator

import pytest
from conftest import FAST, USER_ID, VECTORS

import lavasync
from lavasync import Client, Filters, Track, TrackInfo, codec
from lavasync.testing import FakeNode


def _vectors() -> list[str]:
    """The real vectors that decode (some are malformed on purpose)."""
    good = []
    for vector in json.loads(VECTORS.read_text(encoding="utf-8")):
        try:
            codec.decode_info(vector["encoded"])
        except ValueError:
            continue
        good.append(vector["encoded"])
    assert len(good) >= 5
    return good


def test_decode_track_equals_the_constructors() -> None:
    """decode_track fills the models directly: every field, exactly what __init__ would set."""
    for encoded in _vectors():
        info = codec.decode_info(encoded)
        built = Track(encoded, TrackInfo.from_wire(info))
        decoded = lavasync.decode_track(encoded)
        assert decoded == built
        assert dataclasses.asdict(decoded) == dataclasses.asdict(built)
        assert decoded.to_wire() == built.to_wire()
        assert type(decoded.info) is TrackInfo and decoded.info.is_seekable is not info["isStream"]


def test_decoded_track_user_data_is_made_on_first_read() -> None:
    encoded = _vectors()[0]
    track = lavasync.decode_track(encoded)
    assert "user_data" not in vars(track) and "plugin_info" not in vars(track)
    assert track.user_data == {} and track.plugin_info == {}
    track.user_data["k"] = 1  # the same dict from then on, and only this track's
    assert track.user_data == {"k": 1}
    assert lavasync.decode_track(encoded).user_data == {}
    assert track.with_user_data({"a": 2}).user_data == {"a": 2}
    with pytest.raises(AttributeError):
        track.no_such_field  # noqa: B018


def test_decoded_track_first_read_from_threads_gives_one_dict() -> None:
    track = lavasync.decode_track(_vectors()[0])
    seen: list[int] = []
    gate = threading.Barrier(8)

    def read() -> None:
        gate.wait(5)
        seen.append(id(track.plugin_info))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(seen) == 8 and set(seen) == {id(track.plugin_info)}


@pytest.fixture
def client() -> Iterator[Client]:
    with FakeNode(stats_interval=3600, player_update_interval=3600) as fake:
        client = Client(USER_ID)
        try:
            client.add_node("fake", fake.uri, password=fake.password, backoff=FAST)
            client.wait_ready(5)
            yield client
        finally:
            assert client.close(5)


def test_idle_player_makes_no_locks_or_filters(client: Client) -> None:
    player = client.player(1)
    assert player._call_lk is None and player._state_lk is None and player._filters_v is None
    assert player.filters == Filters()
    assert player.filters is player.filters  # made once, then kept
    assert player.volume == 100 and player.position == 0 and not player.paused


def test_idle_player_locks_are_one_per_player_from_any_thread(client: Client) -> None:
    player = client.player(2)
    other = client.player(3)
    got: list[object] = []
    gate = threading.Barrier(8)

    def take() -> None:
        gate.wait(5)
        got.append(player._call_lock)
        got.append(player._lock)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(got) == 16
    assert {id(lock) for lock in got} == {id(player._call_lock), id(player._lock)}
    assert player._call_lock is not player._lock
    assert other._call_lock is not player._call_lock


def test_calls_work_on_a_player_made_lean(client: Client) -> None:
    player = client.player(4)
    track = client.load("fake:lean").tracks  # whatever the fake answers, the call goes through
    assert isinstance(track, list)
    info = player.set_volume(70)
    assert info.volume == 70 and player.volume == 70
    assert player._call_lk is not None and player._state_lk is not None
