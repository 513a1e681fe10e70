"""Fault paths of the core over real sockets: the reader only reads, one owner places each
player, close() is prompt, lost nodes are noticed for what they are."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Optional

import pytest
from conftest import FAST, USER_ID, wait_until

import lavasync
from lavasync import (
    Client,
    ClientClosedError,
    NodeDisconnectedEvent,
    PlayerMovedEvent,
    UnknownEvent,
)
from lavasync._workers import WorkerPool
from lavasync.testing import FakeGateway, FakeNode

LONG = 600_000


class Hook:
    """A FakeGateway hook that also records which thread called it."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.threads: list[str] = []
        self.leaves: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, guild_id: int, payload: dict[str, Any]) -> None:
        with self.lock:
            self.threads.append(threading.current_thread().name)
            if payload["d"]["channel_id"] is None:
                self.leaves.append(guild_id)
        self.gateway.hook(guild_id, payload)


class Bot:
    """A client with a fake gateway, on one or more fake nodes."""

    def __init__(self, stack: ExitStack, names: tuple[str, ...] = ("a",), **client_kw: Any):
        self.fakes = {
            n: stack.enter_context(
                FakeNode(name=n, stats_interval=30.0, player_update_interval=0.2)
            )
            for n in names
        }
        self.gateway = stack.enter_context(FakeGateway(USER_ID))
        self.hook = Hook(self.gateway)
        self.client = Client(USER_ID, self.hook, **client_kw)
        stack.callback(self.client.close)
        self.gateway.deliver = self.client.handle_gateway
        self.errors: list[logging.LogRecord] = []

    def add(self, name: str, **kw: Any) -> lavasync.Node:
        fake = self.fakes[name]
        kw.setdefault("backoff", FAST)
        node = self.client.add_node(name, fake.uri, password=fake.password, **kw)
        node.wait_ready(5)
        return node

    def play(self, guilds: range, node: lavasync.Node) -> None:
        track = self.fakes[node.name].add_track("Song", length=LONG)
        for guild in guilds:
            player = self.client.player(guild, node=node)
            player.connect(9000 + guild)
            player.play(track.encoded, start=1_000)

    def holders(self, guild: int) -> list[tuple[str, str]]:
        """Every (fake, session) whose server holds a player for ``guild``."""
        found = []
        for name, fake in self.fakes.items():
            for sid in list(fake.sessions):
                if fake.player(sid, guild) is not None:
                    found.append((name, sid))
        return found


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def no_reader_violations(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if "reader thread" in r.getMessage()]
    assert bad == [], [r.getMessage() for r in bad]


# --------------------------------------------------------------------------- the reader


def test_the_reader_survives_a_frame_nested_deep_enough_to_overflow_the_parser(
    stack: ExitStack,
) -> None:
    bot = Bot(stack)
    node = bot.add("a")
    fake = bot.fakes["a"]
    fake.send_raw("[" * 100_000)
    fake.send_raw("{" + '"a":' * 50_000)
    fake.emit({"op": "event", "type": "AfterTheBomb", "guildId": "1"})
    seen = None
    while seen is None:
        event = bot.client.poll(5)
        assert event is not None, "the reader stopped"
        if isinstance(event, UnknownEvent) and event.type == "AfterTheBomb":
            seen = event
    assert node.available
    assert len(fake.handshakes) == 1  # not even a reconnect


def test_a_fresh_session_makes_the_node_usable_at_once_and_rebuilds_in_parallel(
    stack: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    """30 players, a 0.5 s voice handshake each: ingest and other calls never wait for the
    rebuilds, which run in parallel, never on the reader."""
    caplog.set_level(logging.WARNING)
    bot = Bot(stack)
    node = bot.add("a")
    fake = bot.fakes["a"]
    bot.play(range(1, 31), node)
    old = node.session_id
    assert old is not None
    fake.set_voice_delay(0.5)
    fake.expire_session(old)  # the node restarted: the next connection gets a fresh session
    wait_until(lambda: node.session_id not in (None, old) and node.available, 10)
    new = node.session_id
    assert new is not None

    def rebuilt(guild: int) -> bool:
        server = fake.player(new, guild)  # created at once, the track set after the voice step
        return server is not None and server["track"] is not None

    # an event sent right after ready reaches the client while rebuilds are still in flight
    fake.emit({"op": "event", "type": "Live", "guildId": "1"}, session_id=new)
    while True:
        event = bot.client.poll(5)
        assert event is not None
        if isinstance(event, UnknownEvent) and event.type == "Live":
            break
    rebuilt_when_seen = sum(1 for g in range(1, 31) if rebuilt(g))
    assert rebuilt_when_seen < 30
    # a call on a player waits for that player's rebuild only, and keeps its track
    player = bot.client.get_player(30)
    assert player is not None
    player.pause()
    server = fake.player(new, 30)
    assert server is not None and server["paused"] is True
    assert server["track"] is not None and server["track"]["info"]["title"] == "Song"
    wait_until(lambda: all(rebuilt(g) for g in range(1, 31)), 10)
    for guild in range(1, 31):
        server = fake.player(new, guild)
        assert server is not None and server["track"]["info"]["title"] == "Song"
        assert server["voice"]["channelId"] == str(9000 + guild)
    # every PATCH overlapped with others: parallel, not one by one
    assert not any(name.startswith("lavasync-ws-") for name in bot.hook.threads)
    no_reader_violations(caplog)


# --------------------------------------------------------------------------- placement


def test_two_nodes_coming_back_together_leave_each_guild_on_exactly_one_node(
    stack: ExitStack,
) -> None:
    bot = Bot(stack, ("a", "b"), lost_player_timeout=30.0)
    a = bot.add("a", resume_timeout=1)
    bot.add("b", resume_timeout=1)
    guilds = range(100, 120)
    bot.play(guilds, a)
    for fake in bot.fakes.values():
        fake.kill(lose_sessions=True)
    wait_until(lambda: not any(n.available for n in bot.client.nodes), 5)
    for fake in bot.fakes.values():
        fake.revive()
    wait_until(lambda: all(n.available for n in bot.client.nodes), 10)

    def settled() -> bool:
        players = [bot.client.get_player(g) for g in guilds]
        if any(p is None or p._rebuild_for is not None for p in players):
            return False
        return all(len(bot.holders(g)) == 1 for g in guilds)

    wait_until(settled, 10)
    for guild in guilds:
        player = bot.client.get_player(guild)
        assert player is not None
        (holder,) = bot.holders(guild)
        assert holder == (player.node.name, player.node.session_id)
        server = bot.fakes[player.node.name].player(holder[1], guild)
        assert server is not None and server["track"]["info"]["title"] == "Song"


def test_a_disconnect_during_a_rebuild_stays_destroyed(stack: ExitStack) -> None:
    bot = Bot(stack)
    node = bot.add("a")
    fake = bot.fakes["a"]
    bot.play(range(7, 8), node)
    player = bot.client.get_player(7)
    assert player is not None
    old = node.session_id
    assert old is not None
    fake.set_voice_delay(0.6)
    fake.expire_session(old)
    wait_until(lambda: node.session_id not in (None, old), 10)
    new = node.session_id
    assert new is not None
    wait_until(player._call_lock.locked, 5)  # the rebuild's PATCH is in flight
    player.disconnect()
    assert player.destroyed
    wait_until(lambda: not player._call_lock.locked(), 5)
    fake.set_voice_delay(0)
    # nothing re-created it, and the guild left voice
    assert fake.player(new, 7) is None
    assert bot.client.get_player(7) is None
    assert 7 in bot.hook.leaves


def test_a_killed_node_moves_its_players_at_once_not_after_the_resume_window(
    stack: ExitStack,
) -> None:
    bot = Bot(stack, ("a", "b"))
    a = bot.add("a", resume_timeout=60)
    bot.add("b", resume_timeout=60)
    bot.play(range(1, 6), a)
    moved: list[PlayerMovedEvent] = []
    done = threading.Event()

    def on_move(event: PlayerMovedEvent) -> None:
        moved.append(event)
        if len(moved) == 5:
            done.set()

    bot.client.add_listener(PlayerMovedEvent, on_move)
    bot.fakes["a"].kill(lose_sessions=True)  # SIGKILL: the port refuses connections now
    assert done.wait(10), f"moved {len(moved)} of 5 within 10 s (resume window: 60 s)"
    b_sid = bot.client.node("b").session_id
    assert b_sid is not None
    for guild in range(1, 6):
        server = bot.fakes["b"].player(b_sid, guild)
        assert server is not None and server["track"]["info"]["title"] == "Song"


def test_lost_players_leave_voice_from_a_worker_thread(stack: ExitStack) -> None:
    bot = Bot(stack, lost_player_timeout=0.3)
    node = bot.add("a", resume_timeout=60)
    bot.play(range(1, 4), node)
    bot.hook.threads.clear()
    bot.fakes["a"].kill(lose_sessions=True)
    wait_until(lambda: sorted(bot.hook.leaves) == [1, 2, 3], 10)
    assert bot.hook.threads and all(t.startswith("lavasync-worker-") for t in bot.hook.threads)
    assert bot.client.players == []


# --------------------------------------------------------------------------- close()


def test_close_aborts_a_call_whose_answer_never_comes(stack: ExitStack) -> None:
    bot = Bot(stack)
    node = bot.add("a")
    fake = bot.fakes["a"]
    player = bot.client.player(5, node=node)
    player.set_volume(20)
    fake.stop_answering()
    stack.callback(fake.resume_answering)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            player.set_volume(34, timeout=30)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, name="test-caller")
    caller.start()
    wait_until(player._call_lock.locked, 5)
    assert bot.client.close(3) is True
    caller.join(2)
    assert not caller.is_alive(), "the caller is still blocked after close()"
    assert len(outcome) == 1 and isinstance(outcome[0], ClientClosedError), outcome


def test_close_with_moves_stalled_returns_true_and_leaves_no_thread(stack: ExitStack) -> None:
    bot = Bot(stack, ("a", "b"))
    a = bot.add("a", resume_timeout=1)
    bot.add("b", resume_timeout=1)
    bot.play(range(1, 21), a)
    bot.fakes["b"].stop_answering()
    stack.callback(bot.fakes["b"].resume_answering)
    bot.fakes["a"].kill(lose_sessions=True)
    wait_until(lambda: any(t.name.startswith("lavasync-move-") for t in threading.enumerate()), 10)
    assert bot.client.close(3) is True
    left = [t.name for t in threading.enumerate() if t.name.startswith("lavasync-")]
    assert left == []


# --------------------------------------------------------------------------- liveness


def test_a_quiet_socket_that_answers_pings_is_not_dead(stack: ExitStack) -> None:
    fake = stack.enter_context(FakeNode(stats_interval=3600.0, player_update_interval=3600.0))
    client = Client(USER_ID)
    stack.callback(client.close)
    node = client.add_node(
        "quiet",
        fake.uri,
        password=fake.password,
        backoff=FAST,
        stats_interval=0.2,
        ping_interval=0.1,
        ping_timeout=1.0,
    )
    node.wait_ready(5)
    # 2 x stats_interval passes many times over without a single JSON message
    wait_until(lambda: node.stats_stale, 5)
    seen = list(client.events(timeout=1.5))  # ends after 1.5 s with no event at all
    assert not any(isinstance(e, NodeDisconnectedEvent) for e in seen)
    assert len(fake.handshakes) == 1
    assert node.available
    assert node.penalty() == float("inf")  # stale stats: last choice, still usable


def test_a_half_open_old_session_loses_its_players_after_a_fresh_reconnect(
    stack: ExitStack,
) -> None:
    bot = Bot(stack)
    node = bot.add("a", ping_interval=0.1, ping_timeout=0.3)
    fake = bot.fakes["a"]
    bot.play(range(40, 43), node)
    old = node.session_id
    assert old is not None
    fake.freeze_websockets()  # the server still thinks the old socket is open
    wait_until(lambda: node.session_id not in (None, old) and node.available, 10)
    new: Optional[str] = node.session_id
    assert new is not None and new != old

    def moved() -> bool:
        return all(
            fake.player(old, g) is None and fake.player(new, g) is not None for g in range(40, 43)
        )

    wait_until(moved, 10)
    for guild in range(40, 43):
        assert bot.holders(guild) == [("a", new)]


# --------------------------------------------------------------------------- worker pool


def test_the_worker_pool_survives_any_task_and_closes_from_its_own_thread() -> None:
    pool = WorkerPool("lavasync-test", 2, idle_timeout=0.2)
    done = threading.Event()

    def boom() -> None:
        raise SystemExit("a task that exits")

    pool.submit(boom)
    pool.submit(done.set)
    assert done.wait(5)
    later = threading.Event()
    pool.call_later(0.05, later.set)
    assert later.wait(5)
    closed: list[bool] = []
    finished = threading.Event()

    def close_from_inside() -> None:
        closed.append(pool.close(2))
        finished.set()

    pool.submit(close_from_inside)
    assert finished.wait(5)
    assert closed == [True]
    assert pool.submit(done.set).cancelled()
    wait_until(
        lambda: not any(t.name.startswith("lavasync-test") for t in threading.enumerate()), 5
    )


# --------------------------------------------------------------------------- the thread rule


def test_no_rest_and_no_user_code_ever_runs_on_a_reader_thread(
    stack: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Resume, fresh session, failover and expiry in one run: listeners run on the
    dispatcher, the hook never on a reader, and the transport's guard never fired."""
    caplog.set_level(logging.WARNING)
    bot = Bot(stack, ("a", "b"), lost_player_timeout=0.3)
    listener_threads: set[str] = set()
    bot.client.add_listener(
        lavasync.Event, lambda event: listener_threads.add(threading.current_thread().name)
    )
    a = bot.add("a", resume_timeout=5)
    b = bot.add("b", resume_timeout=5)
    bot.play(range(1, 6), a)
    # a resumed session
    sid = a.session_id
    bot.fakes["a"].drop_connections()
    wait_until(lambda: not a.available, 5)
    wait_until(lambda: a.available, 10)
    assert a.session_id == sid
    # a fresh session: players rebuilt
    bot.fakes["a"].expire_session(sid)  # type: ignore[arg-type]
    wait_until(lambda: a.available and a.session_id != sid, 10)
    wait_until(lambda: all(p._rebuild_for is None for p in bot.client.players), 10)
    # failover: a killed, players move to b
    bot.fakes["a"].kill(lose_sessions=True)
    wait_until(lambda: all(p.node is b for p in bot.client.players), 10)
    # expiry: b killed too, nowhere to go, OP 4 null after lost_player_timeout
    bot.fakes["b"].kill(lose_sessions=True)
    wait_until(lambda: sorted(bot.hook.leaves) == [1, 2, 3, 4, 5], 10)
    assert listener_threads == {"lavasync-dispatch"}
    assert bot.hook.threads
    assert not [t for t in bot.hook.threads if t.startswith("lavasync-ws-")]
    no_reader_violations(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_transport_refuses_rest_on_a_reader_thread(stack: ExitStack) -> None:
    bot = Bot(stack)
    node = bot.add("a")
    outcome: list[BaseException] = []
    bot.fakes["a"].clear_requests()

    def run() -> None:
        try:
            node.rest.stats()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="lavasync-ws-impostor")
    thread.start()
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)
    assert all(r.path != "/v4/stats" for r in bot.fakes["a"].requests)


def test_close_wakes_a_connect_waiting_for_discord_with_client_closed(stack: ExitStack) -> None:
    fake = stack.enter_context(FakeNode())
    client = Client(USER_ID, lambda guild, payload: None)  # Discord never answers
    stack.callback(client.close)
    client.add_node("a", fake.uri, password=fake.password, backoff=FAST).wait_ready(5)
    player = client.player(3)
    outcome: list[BaseException] = []

    def join() -> None:
        try:
            player.connect(1234, timeout=None)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=join, name="test-connect")
    caller.start()
    wait_until(lambda: player.voice is not None and player.voice._joining, 5)
    assert client.close(3) is True
    caller.join(2)
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ClientClosedError), outcome


# --------------------------------------------------------------------------- review findings


def _waiting_in(thread: threading.Thread, function: str) -> bool:
    """True if ``thread`` is currently inside ``function`` (a call blocked on a condition)."""
    import sys

    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def _call_during_restart(stack: ExitStack, call: str) -> tuple[Bot, lavasync.Node, list[Any]]:
    """A player call blocked while its node is down; the node comes back with a fresh
    session (its process restarted) and the call goes through."""
    bot = Bot(stack)
    node = bot.add("a", resume_timeout=60)
    fake = bot.fakes["a"]
    bot.play(range(7, 8), node)
    player = bot.client.get_player(7)
    assert player is not None and player.track is not None
    old = node.session_id
    fake.kill(lose_sessions=True)
    wait_until(lambda: not node.available, 5)
    outcome: list[Any] = []
    calls = {
        "set_volume": lambda: player.set_volume(50, timeout=10),
        "fetch": lambda: player.fetch(timeout=10),
        "move_to": lambda: player.move_to(9999, timeout=10),
    }

    def run() -> None:
        try:
            outcome.append(calls[call]())
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=run, name="test-caller")
    caller.start()
    wait_until(lambda: _waiting_in(caller, "wait_ready"), 5)  # blocked for the node
    fake.revive()
    caller.join(10)
    assert not caller.is_alive()
    wait_until(lambda: node.available and node.session_id != old, 10)
    wait_until(lambda: player._rebuild_for is None, 10)
    return bot, node, outcome


@pytest.mark.parametrize("call", ["set_volume", "fetch", "move_to"])
def test_a_call_blocked_while_the_node_restarts_keeps_the_track(
    stack: ExitStack, call: str
) -> None:
    bot, node, outcome = _call_during_restart(stack, call)
    assert not [o for o in outcome if isinstance(o, BaseException)], outcome
    server = bot.fakes["a"].player(node.session_id or "", 7)
    assert server is not None and server["track"] is not None, "music lost on the server"
    player = bot.client.get_player(7)
    assert player is not None and player.track is not None, "music lost locally"
    if call == "set_volume":
        assert server["volume"] == 50


def test_a_move_finishing_while_the_old_node_resumes_does_not_play_twice(
    stack: ExitStack,
) -> None:
    """Moves to b are in flight when a (refused for a moment, its session paused on the
    server) resumes; they finish between a's re-sync and its READY. The window is widened by
    wrapping the node's own _become_ready to release them there."""
    bot = Bot(stack, ("a", "b"), lost_player_timeout=30.0)
    a = bot.add("a", resume_timeout=60)
    bot.add("b", resume_timeout=60)
    guilds = range(1, 4)
    bot.play(guilds, a)
    players = [bot.client.get_player(g) for g in guilds]
    bot.fakes["b"].stall_answers("/players", method="PATCH")
    bot.fakes["a"].kill()  # refused, but the server keeps the paused session
    wait_until(lambda: not a.available, 5)
    wait_until(lambda: all(p is not None and p._call_lock.locked() for p in players), 10)
    original = a._become_ready

    def become_ready(sid: str, generation: int, resumed: bool) -> bool:
        bot.fakes["b"].release_answers()
        wait_until(lambda: all(p is not None and p.node.name == "b" for p in players), 5)
        return original(sid, generation, resumed)

    a._become_ready = become_ready  # type: ignore[method-assign]
    bot.fakes["a"].revive()
    wait_until(lambda: a.available, 10)
    wait_until(lambda: all(p is not None and not p._call_lock.locked() for p in players), 5)
    wait_until(lambda: all(len(bot.holders(g)) == 1 for g in guilds), 5)
    for guild in guilds:
        assert [name for name, _ in bot.holders(guild)] == ["b"]


def test_destroy_during_a_drain_move_leaves_no_node_playing(stack: ExitStack) -> None:
    bot = Bot(stack, ("a", "b"))
    a = bot.add("a")
    bot.add("b")
    bot.play(range(5, 6), a)
    player = bot.client.get_player(5)
    assert player is not None
    bot.fakes["b"].stall_answers("/players", method="PATCH")
    drain = threading.Thread(target=lambda: a.drain(timeout=10), name="test-drain")
    drain.start()
    wait_until(player._call_lock.locked, 5)
    destroy = threading.Thread(target=lambda: player.destroy(timeout=10), name="test-destroy")
    destroy.start()
    wait_until(lambda: player.destroyed, 5)
    bot.fakes["b"].release_answers()
    drain.join(10)
    destroy.join(10)
    assert not drain.is_alive() and not destroy.is_alive()
    assert bot.holders(5) == []


def test_a_rebuild_that_fails_once_is_tried_again(stack: ExitStack) -> None:
    bot = Bot(stack)
    node = bot.add("a", resume_timeout=60)
    fake = bot.fakes["a"]
    bot.play(range(7, 8), node)
    old = node.session_id
    fake.kill(lose_sessions=True)
    wait_until(lambda: not node.available, 5)
    fake.fail_next("PATCH", "/players/7", status=500, count=1)
    fake.revive()
    wait_until(lambda: node.available and node.session_id != old, 10)

    def rebuilt() -> bool:
        server = fake.player(node.session_id or "", 7)
        return server is not None and server["track"] is not None

    wait_until(rebuilt, 10)
