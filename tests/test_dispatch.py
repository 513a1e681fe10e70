"""The event buffer (bounded, coalescing) and the dispatcher thread (isolated listeners)."""

from __future__ import annotations

import threading

import pytest
from conftest import wait_until

from lavasync._dispatch import Dispatcher, EventBuffer, ListenerRegistry
from lavasync.models import PlayerState
from lavasync.models.events import (
    Event,
    NodeConnectedEvent,
    PlayerUpdateEvent,
    TrackEndEvent,
    TrackStartEvent,
    UnknownEvent,
)


def update(guild: int, position: int) -> PlayerUpdateEvent:
    return PlayerUpdateEvent(guild, PlayerState(time=1, position=position, connected=True, ping=0))


def unknown(n: int) -> UnknownEvent:
    return UnknownEvent("event", "PluginEvent", 1, {"n": n})


def test_buffer_is_fifo_and_get_times_out_empty() -> None:
    buf = EventBuffer(10)
    events = [unknown(i) for i in range(5)]
    for e in events:
        buf.put(e)
    assert [buf.get(0) for _ in range(5)] == events
    assert buf.get(0.01) is None


def test_buffer_coalesces_player_updates_only_under_pressure() -> None:
    buf = EventBuffer(3)
    buf.put(update(1, 0))
    buf.put(update(1, 100))  # below the bound: kept
    buf.put(update(2, 0))
    assert len(buf) == 3
    buf.put(update(1, 200))  # at the bound: replaces the pending update of guild 1
    buf.put(update(2, 300))
    assert len(buf) == 3
    assert buf.coalesced == 2
    got = [buf.get(0) for _ in range(3)]
    assert [(e.guild_id, e.state.position) for e in got] == [(1, 0), (1, 200), (2, 300)]


def test_buffer_never_drops_track_or_node_events() -> None:
    buf = EventBuffer(2)
    for i in range(10):
        buf.put(unknown(i))
    buf.put(NodeConnectedEvent("s", False))
    assert len(buf) == 11
    assert [e.data["n"] for e in (buf.get(0) for _ in range(10))] == list(range(10))
    assert isinstance(buf.get(0), NodeConnectedEvent)


def test_buffer_close_wakes_a_blocked_get_and_drains_first() -> None:
    buf = EventBuffer(5)
    got: list[object] = []
    started = threading.Event()

    def consumer() -> None:
        started.set()
        got.append(buf.get(None))

    t = threading.Thread(target=consumer, name="lavasync-test-consumer")
    t.start()
    assert started.wait(5)
    buf.close()
    t.join(5)
    assert not t.is_alive()
    assert got == [None]
    buf.put(unknown(1))  # ignored once closed
    assert buf.get(0) is None


def test_buffer_wakes_one_blocked_consumer_per_event() -> None:
    # Three consumers blocked in get(): each put wakes one, so three puts serve all three, and
    # a consumer whose get() timed out leaves nothing behind that would swallow a wake-up.
    buf = EventBuffer(5)
    assert buf.get(0.01) is None  # timed out while blocked
    got: list[object] = []
    lock = threading.Lock()

    def consumer() -> None:
        event = buf.get(10)
        with lock:
            got.append(event)

    threads = [
        threading.Thread(target=consumer, name=f"lavasync-test-consumer-{i}") for i in range(3)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: len(buf._sleepers) == 3)
    events = [unknown(i) for i in range(3)]
    for e in events:
        buf.put(e)
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    assert sorted(got, key=lambda e: e.data["n"]) == events  # type: ignore[attr-defined]
    assert not buf._sleepers and len(buf) == 0


def test_listeners_match_subclasses_in_registration_order() -> None:
    reg = ListenerRegistry()
    calls: list[str] = []
    reg.add(Event, lambda e: calls.append("any"))
    reg.add(TrackEndEvent, lambda e: calls.append("end"))
    with pytest.raises(ValueError):
        reg.add(int, print)
    with pytest.raises(ValueError):
        reg.add(Event, "not callable")  # type: ignore[arg-type]
    assert len(reg.for_event(unknown(1))) == 1
    assert len(reg.for_event(NodeConnectedEvent("s", False))) == 1


def test_dispatcher_isolates_a_raising_listener_and_keeps_order() -> None:
    reg = ListenerRegistry()
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def bad(event: UnknownEvent) -> None:
        raise RuntimeError("boom")

    def good(event: UnknownEvent) -> None:
        seen.append(event.data["n"])
        if len(seen) == 50:
            done.set()

    reg.add(UnknownEvent, bad)
    reg.add(UnknownEvent, good)
    disp = Dispatcher(reg, error_hook=lambda exc, ev, fn: errors.append(exc))
    disp.start()
    try:
        for i in range(50):
            disp.submit(unknown(i))
        assert done.wait(5)
    finally:
        assert disp.close(5)
    assert seen == list(range(50))
    assert len(errors) == 50
    assert all(isinstance(e, RuntimeError) for e in errors)


def test_dispatcher_runs_listeners_on_its_own_named_thread() -> None:
    reg = ListenerRegistry()
    names: list[str] = []
    done = threading.Event()
    reg.add(TrackStartEvent, lambda e: (names.append(threading.current_thread().name), done.set()))
    disp = Dispatcher(reg)
    disp.start()
    try:
        from lavasync.models import Track, TrackInfo

        info = TrackInfo(
            identifier="x",
            is_seekable=True,
            author="a",
            length=1,
            is_stream=False,
            position=0,
            title="t",
            uri=None,
            source_name="http",
        )
        disp.submit(TrackStartEvent(1, Track(encoded="e", info=info)))
        assert done.wait(5)
    finally:
        assert disp.close(5)
    assert names == ["lavasync-dispatch"]


def test_submit_without_listeners_queues_nothing() -> None:
    disp = Dispatcher(ListenerRegistry())
    disp.submit(unknown(1))
    assert len(disp.buffer) == 0
    assert disp.close(1)
