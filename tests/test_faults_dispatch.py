"""Fault paths of event delivery: listeners that raise anything, close() from a listener, the
poll buffer's hard bound when nobody polls, and a Queue that outlives its player."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Optional

import pytest
from conftest import FAST, USER_ID, wait_until

from lavasync import (
    Client,
    Event,
    PlayerDestroyedEvent,
    Queue,
    TrackEndEvent,
    TrackStartEvent,
    UnknownEvent,
)
from lavasync._dispatch import Dispatcher, EventBuffer, ListenerRegistry
from lavasync.testing import FakeNode

GUILD = 817327181659111454


class Env:
    def __init__(self, fake: FakeNode, client: Client) -> None:
        self.fake = fake
        self.client = client

    def emit_unknown(self, kind: str, n: int = 0) -> None:
        """A plugin-style event the client delivers as UnknownEvent."""
        self.fake.emit({"op": "event", "type": kind, "guildId": str(GUILD), "n": n})


def make_env(stack: ExitStack, **client_kw: Any) -> Env:
    # Long intervals: no stats or playerUpdate arrives on its own during a test.
    fake = stack.enter_context(FakeNode(stats_interval=3600.0, player_update_interval=3600.0))
    client = Client(USER_ID, lambda guild, payload: None, **client_kw)
    stack.callback(client.close)
    client.add_node("fake", fake.uri, password=fake.password, backoff=FAST)
    client.wait_ready(5)
    return Env(fake, client)


@pytest.fixture
def env() -> Iterator[Env]:
    with ExitStack() as stack:
        yield make_env(stack)


def unknown(n: int) -> UnknownEvent:
    return UnknownEvent("event", "PluginEvent", 1, {"n": n})


# ---------------------------------------------------------------------- the dispatcher survives


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_dispatcher_survives_a_listener_raising_a_base_exception(raised: type) -> None:
    registry = ListenerRegistry()
    hooked: list[tuple[BaseException, Any]] = []
    dispatcher = Dispatcher(registry, error_hook=lambda exc, event, fn: hooked.append((exc, event)))
    got: list[int] = []
    ran = threading.Event()

    def shutdown(event: UnknownEvent) -> None:
        if event.data["n"] == 1:
            raise raised("!shutdown")

    registry.add(UnknownEvent, shutdown)
    registry.add(UnknownEvent, lambda e: got.append(e.data["n"]))
    dispatcher.start()
    try:
        dispatcher.submit(unknown(1))
        dispatcher.submit(unknown(2))
        dispatcher.call_soon(ran.set)
        assert ran.wait(5)  # a follow-up queued after the raise still runs
        wait_until(lambda: got == [1, 2])  # the other listener got both, in order
        assert len(hooked) == 1
        assert isinstance(hooked[0][0], raised) and hooked[0][1].data["n"] == 1
    finally:
        assert dispatcher.close(5)


def test_dispatcher_survives_a_follow_up_and_a_hook_raising_system_exit() -> None:
    registry = ListenerRegistry()

    def bad_hook(exc: BaseException, event: Any, fn: Any) -> None:
        raise SystemExit("hook")

    dispatcher = Dispatcher(registry, error_hook=bad_hook)
    ran = threading.Event()

    def follow_up() -> None:
        raise SystemExit("follow-up")

    dispatcher.start()
    try:
        dispatcher.call_soon(follow_up)
        dispatcher.call_soon(ran.set)
        assert ran.wait(5)
    finally:
        assert dispatcher.close(5)


def test_client_listener_raising_system_exit_keeps_events_flowing(env: Env) -> None:
    errors: list[BaseException] = []
    env.client._dispatcher.error_hook = lambda exc, event, fn: errors.append(exc)
    later: list[int] = []

    def shutdown_command(event: UnknownEvent) -> None:
        if event.data.get("type") == "Shutdown":
            raise SystemExit(0)

    env.client.add_listener(UnknownEvent, shutdown_command)
    env.client.add_listener(UnknownEvent, lambda e: later.append(int(e.data.get("n", -1))))
    env.emit_unknown("Shutdown", 1)
    env.emit_unknown("Later", 2)
    wait_until(lambda: later == [1, 2])
    assert len(errors) == 1 and isinstance(errors[0], SystemExit)
    ran = threading.Event()
    env.client._dispatcher.call_soon(ran.set)
    assert ran.wait(5)
    assert env.client._dispatcher._thread.is_alive()


# ---------------------------------------------------------------------- close() from a listener


def test_close_from_a_listener_returns_and_stops_every_thread() -> None:
    with ExitStack() as stack:
        env = make_env(stack)
        result: list[Any] = []
        done = threading.Event()

        def on_command(event: UnknownEvent) -> None:
            try:
                result.append(env.client.close(5))
            except BaseException as exc:  # the old code raised RuntimeError here
                result.append(exc)
            finally:
                done.set()

        env.client.add_listener(UnknownEvent, on_command)
        env.emit_unknown("Shutdown")
        assert done.wait(5)
        assert result == [True]
        assert env.client.closed
        dispatcher = env.client._dispatcher._thread
        dispatcher.join(5)
        assert not dispatcher.is_alive()
        wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("lavasync")])
        assert env.client.close(5) is True  # from the main thread afterwards: a no-op


def test_dispatcher_closed_from_a_listener_exits_when_it_returns() -> None:
    registry = ListenerRegistry()
    dispatcher = Dispatcher(registry)
    release = threading.Event()
    entered = threading.Event()
    seen: list[int] = []
    closed: list[bool] = []

    def listener(event: UnknownEvent) -> None:
        seen.append(event.data["n"])
        if event.data["n"] == 1:
            entered.set()
            assert release.wait(5)
            closed.append(dispatcher.close(5))

    registry.add(UnknownEvent, listener)
    dispatcher.start()
    dispatcher.submit(unknown(1))
    assert entered.wait(5)
    dispatcher.submit(unknown(2))  # queued while the listener runs: never delivered
    release.set()
    dispatcher._thread.join(5)
    assert not dispatcher._thread.is_alive()
    assert closed == [True]
    assert seen == [1]
    assert dispatcher.close(5)


# ---------------------------------------------------------------------- poll buffer memory


def test_poll_buffer_drops_the_oldest_when_full_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    buf = EventBuffer(10, drop_oldest=True, name="poll buffer")
    with caplog.at_level(logging.WARNING, logger="lavasync.dispatch"):
        for i in range(30):
            buf.put(unknown(i))
    assert len(buf) == 10
    assert buf.dropped == 20
    warnings = [r for r in caplog.records if r.name == "lavasync.dispatch"]
    assert len(warnings) == 1 and "poll buffer" in warnings[0].getMessage()
    assert [buf.get(0).data["n"] for _ in range(10)] == list(range(20, 30))
    # drained: a new overflow episode warns again
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lavasync.dispatch"):
        for i in range(11):
            buf.put(unknown(100 + i))
    assert buf.dropped == 21
    assert len([r for r in caplog.records if r.name == "lavasync.dispatch"]) == 1


def test_a_full_poll_buffer_still_coalesces_and_drops_a_dropped_slot_cleanly() -> None:
    from lavasync.models import PlayerState
    from lavasync.models.events import PlayerUpdateEvent

    def update(guild: int, position: int) -> PlayerUpdateEvent:
        state = PlayerState(time=1, position=position, connected=True, ping=0)
        return PlayerUpdateEvent(guild, state)

    buf = EventBuffer(4, drop_oldest=True)
    buf.put(unknown(0))
    buf.put(unknown(1))
    buf.put(update(1, 10))  # past the watermark: in a slot
    buf.put(unknown(2))
    buf.put(update(1, 20))  # full: replaces the pending update of guild 1
    assert (len(buf), buf.coalesced, buf.dropped) == (4, 1, 0)
    for i in range(3, 6):
        buf.put(unknown(i))  # drops unknown 0, 1, then the update slot
    assert (len(buf), buf.dropped) == (4, 3)
    buf.put(update(1, 30))  # its old slot is gone: appended, not written into a dropped slot
    got = [buf.get(0) for _ in range(4)]
    assert [getattr(e, "data", {}).get("n") for e in got[:3]] == [3, 4, 5]
    assert isinstance(got[3], PlayerUpdateEvent) and got[3].state.position == 30


def test_nobody_polling_keeps_memory_bounded_and_listeners_get_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    size = 20
    with ExitStack() as stack:
        env = make_env(stack, event_buffer_size=size)
        wait_until(lambda: env.client.nodes[0].stats is not None)  # the last unprompted event
        while env.client.poll(0) is not None:  # start from an empty poll buffer
            pass
        assert env.client.dropped_events == 0
        started: list[str] = []
        env.client.add_listener(TrackStartEvent, lambda e: started.append(e.track.info.title))
        tracks = [env.fake.add_track(f"T{i}") for i in range(3 * size)]
        with caplog.at_level(logging.WARNING, logger="lavasync.dispatch"):
            for track in tracks:
                env.fake.emit(
                    {
                        "op": "event",
                        "type": "TrackStartEvent",
                        "guildId": str(GUILD),
                        "track": track.to_wire(),
                    }
                )
            # the listener (registered: never dropped) got every one, in order
            wait_until(lambda: len(started) == 3 * size)
        assert started == [f"T{i}" for i in range(3 * size)]
        assert len(env.client._poll or ()) <= size
        assert env.client.dropped_events == 2 * size
        polled: list[Event] = []
        while True:
            event: Optional[Event] = env.client.poll(0)
            if event is None:
                break
            polled.append(event)
        titles = [e.track.info.title for e in polled if isinstance(e, TrackStartEvent)]
        assert titles == [f"T{i}" for i in range(2 * size, 3 * size)]  # the newest kept
        overflow = [r for r in caplog.records if "poll buffer" in r.getMessage()]
        assert len(overflow) == 1 and overflow[0].levelno == logging.WARNING


# ---------------------------------------------------------------------- Queue detaches


def _listener_count(client: Client) -> int:
    return sum(len(fns) for fns in client._listeners._by_class.values())


def test_a_queue_detaches_when_its_player_is_destroyed(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    track = env.client.load(env.fake.add_track("Song", length=600_000).info.identifier)
    song = track.tracks[0]
    baseline = _listener_count(env.client)
    destroyed: list[int] = []
    env.client.add_listener(PlayerDestroyedEvent, lambda e: destroyed.append(e.guild_id))
    baseline += 1
    sessions = 200
    for _ in range(sessions):
        player = env.client.player(GUILD)
        queue = Queue(player, client=env.client)
        queue.add(song)
        assert queue.start() is not None
        player.destroy()
    wait_until(lambda: len(destroyed) == sessions)
    wait_until(lambda: _listener_count(env.client) == baseline)

    # one more session: its track end advances its own queue and warns nowhere
    player = env.client.player(GUILD)
    queue = Queue(player, client=env.client)
    queue.add([song, song])
    assert queue.start() is not None
    assert _listener_count(env.client) == baseline + 2
    ended = threading.Event()
    env.client.add_listener(TrackEndEvent, lambda e: ended.set())  # runs after the queues
    with caplog.at_level(logging.WARNING):
        env.fake.finish_track(GUILD)
        assert ended.wait(5)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert len(queue.history) == 1 and queue.current is not None
    player.destroy()


def test_a_queue_for_an_already_destroyed_player_registers_nothing(env: Env) -> None:
    player = env.client.player(GUILD)
    player.destroy()
    baseline = _listener_count(env.client)
    queue = Queue(player, client=env.client)
    assert _listener_count(env.client) == baseline
    queue.detach()  # idempotent
    assert _listener_count(env.client) == baseline
