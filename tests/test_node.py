"""The node connection over real sockets: handshake, ready, events, resume, reconnect, close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import FAST, USER_ID

import lavasync
from lavasync import (
    AuthenticationError,
    Client,
    ClientClosedError,
    NodeConnectedEvent,
    NodeDisconnectedEvent,
    NodeResumedEvent,
    NodeState,
    ReadyEvent,
    StatsEvent,
    UnknownEvent,
)
from lavasync.errors import RestError
from lavasync.testing import FakeNode
from lavasync.transport.websocket import WebSocketConnection


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(stats_interval=0.5, player_update_interval=0.2) as node:
        yield node


def add(client: Client, fake: FakeNode, **kw: Any) -> lavasync.Node:
    kw.setdefault("backoff", FAST)
    return client.add_node("fake", fake.uri, password=fake.password, **kw)


def wait_event(
    client: Client, cls: type, timeout: float = 5.0, where: Callable[[Any], bool] = lambda e: True
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {cls.__name__} within {timeout} s")
        event = client.poll(remaining)
        if isinstance(event, cls) and where(event):
            return event


def test_handshake_headers_and_ready(fake: FakeNode, client: Client) -> None:
    node = add(client, fake)
    assert client.wait_ready(5) is node
    assert node.state is NodeState.READY
    hs = fake.handshakes[0]
    assert hs.headers["Authorization"] == fake.password
    assert hs.headers["User-Id"] == str(USER_ID)
    assert hs.headers["Client-Name"] == f"lavasync/{lavasync.__version__}"
    assert "Session-Id" not in hs.headers
    assert node.session_id == fake.session_ids()[0]
    ready = wait_event(client, ReadyEvent)
    assert ready.session_id == node.session_id and ready.resumed is False
    assert ready.node is node
    # resuming is switched on right after ready
    req = fake.wait_for_request("PATCH", f"/v4/sessions/{node.session_id}")
    assert req.json == {"resuming": True, "timeout": 60}


def test_client_name_is_sent_as_given(fake: FakeNode) -> None:
    with Client(USER_ID, client_name="mybot/2.0") as c:
        add(c, fake)
        c.wait_ready(5)
        assert fake.handshakes[0].headers["Client-Name"] == "mybot/2.0"


def test_stats_are_kept_on_the_node(fake: FakeNode, client: Client) -> None:
    node = add(client, fake)
    event = wait_event(client, StatsEvent)
    assert node.stats is not None
    assert node.stats.cpu.cores == event.stats.cpu.cores


def test_wrong_password_fails_fast_without_retrying(fake: FakeNode, client: Client) -> None:
    node = client.add_node("fake", fake.uri, password="wrong", backoff=FAST)
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        client.wait_ready(5)
    assert time.monotonic() - started < 3
    assert node.state is NodeState.FAILED
    assert node._thread is not None
    node._thread.join(2)
    assert not node._thread.is_alive()  # no reconnect storm: the reader gave up
    assert len(fake.handshakes) == 1
    assert isinstance(node.error, AuthenticationError)


def test_refused_user_id_is_a_clear_error(fake: FakeNode) -> None:
    with pytest.raises(RestError) as info:
        WebSocketConnection.open(fake.ws_uri, password=fake.password, user_id=0, client_name="t/1")
    assert info.value.status == 400


def test_unknown_and_garbage_frames_do_not_kill_the_reader(fake: FakeNode, client: Client) -> None:
    node = add(client, fake)
    client.wait_ready(5)
    for garbage in [
        "not json",
        "[1, 2]",
        '{"no": "op"}',
        '{"op": "playerUpdate"}',
        '{"op": "event", "type": "TrackEndEvent", "guildId": "1"}',
        '{"op": "stats", "players": "many"}',
    ]:
        fake.send_raw(garbage)
    fake.emit({"op": "event", "type": "LyricsNotFoundEvent", "guildId": "42"})
    fake.emit({"op": "nodelinkSomething", "value": 1})
    plugin = wait_event(client, UnknownEvent, where=lambda e: e.type == "LyricsNotFoundEvent")
    assert plugin.guild_id == 42 and plugin.data["op"] == "event"
    other = wait_event(client, UnknownEvent, where=lambda e: e.op == "nodelinkSomething")
    assert other.data["value"] == 1
    assert node.state is NodeState.READY


def test_a_raising_listener_does_not_stop_the_others(fake: FakeNode) -> None:
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()
    with Client(USER_ID, listener_error_hook=lambda exc, ev, fn: errors.append(exc)) as c:

        @c.on(UnknownEvent)
        def bad(event: UnknownEvent) -> None:
            raise RuntimeError("listener bug")

        @c.on(UnknownEvent)
        def good(event: UnknownEvent) -> None:
            seen.append(event.data["n"])
            if len(seen) == 3:
                done.set()

        add(c, fake)
        c.wait_ready(5)
        for n in range(3):
            fake.emit({"op": "event", "type": "X", "guildId": "1", "n": n})
        assert done.wait(5)
        assert seen == [0, 1, 2]
        assert len(errors) == 3
        assert c.remove_listener(UnknownEvent, bad) is True
        assert c.remove_listener(UnknownEvent, bad) is False


def test_resume_after_a_drop_resyncs_players_and_marks_replays(
    fake: FakeNode, client: Client
) -> None:
    node = add(client, fake)
    client.wait_ready(5)
    sid = node.session_id
    track = fake.add_track("Resume me", length=600_000)
    player = client.player(1234)
    player.play(track.encoded)
    fake.wait_for_request("PATCH", f"/v4/sessions/{sid}/players/1234")
    fake.refuse_connections(True)
    fake.drop_connections()
    wait_event(client, NodeDisconnectedEvent)
    # while the session is paused, the server queues events for the client
    fake.emit({"op": "event", "type": "CustomReplayEvent", "guildId": "1234"}, session_id=sid)
    fake.clear_requests()
    fake.refuse_connections(False)
    # the replay follows ``ready`` at once; NodeResumedEvent comes once the session is set up
    replay = wait_event(
        client, UnknownEvent, timeout=10, where=lambda e: e.type == "CustomReplayEvent"
    )
    assert replay.replayed is True
    resumed = wait_event(client, NodeResumedEvent, timeout=10)
    assert resumed.session_id == sid
    assert node.session_id == sid
    assert fake.handshakes[-1].headers["Session-Id"] == sid
    assert fake.handshakes[-1].resumed is True
    fake.wait_for_request("GET", f"/v4/sessions/{sid}/players")
    assert player.track is not None and player.track.info.title == "Resume me"
    # after the replay, live events are not marked
    fake.emit({"op": "event", "type": "LiveEvent", "guildId": "1234"})
    live = wait_event(client, UnknownEvent, where=lambda e: e.type == "LiveEvent")
    assert live.replayed is False


def test_non_resumed_reconnect_recreates_players(fake: FakeNode, client: Client) -> None:
    node = add(client, fake)
    client.wait_ready(5)
    old_sid = node.session_id
    track = fake.add_track("Keep playing", length=600_000)
    player = client.player(77)
    player.play(track.encoded, start=5_000, volume=40)
    fake.refuse_connections(True)
    fake.drop_connections()
    wait_event(client, NodeDisconnectedEvent)
    assert old_sid is not None
    fake.expire_session(old_sid)
    fake.refuse_connections(False)
    connected = wait_event(client, NodeConnectedEvent, timeout=10)
    assert connected.resumed is False
    new_sid = node.session_id
    assert new_sid != old_sid
    req = fake.wait_for_request("PATCH", f"/v4/sessions/{new_sid}/players/77")
    # the server re-encoded the blob with the position it had: same track, later position
    assert lavasync.decode_track(req.json["track"]["encoded"]).info.title == "Keep playing"
    assert req.json["volume"] == 40
    assert req.json["position"] >= 5_000
    assert fake.player(new_sid, 77) is not None
    assert player.node is node and player.track is not None


def test_player_calls_wait_while_the_node_reconnects(fake: FakeNode, client: Client) -> None:
    node = add(client, fake)
    client.wait_ready(5)
    player = client.player(5)
    player.set_volume(10)
    fake.refuse_connections(True)
    fake.drop_connections()
    wait_event(client, NodeDisconnectedEvent)
    result: list[Any] = []
    t = threading.Thread(
        target=lambda: result.append(player.set_volume(20, timeout=10)),
        name="lavasync-test-caller",
    )
    t.start()
    fake.refuse_connections(False)
    t.join(10)
    assert not t.is_alive()
    assert result and result[0].volume == 20
    assert player.volume == 20
    assert node.state is NodeState.READY


def test_a_node_down_at_startup_is_connected_once_it_comes_up(client: Client) -> None:
    fake = FakeNode(stats_interval=0.5).start()
    try:
        fake.kill()
        node = add(client, fake)
        wait_event(client, lavasync.NodeReconnectingEvent)
        assert node.state in (NodeState.CONNECTING, NodeState.DISCONNECTED)
        fake.revive()
        client.wait_ready(10)
        assert node.available
    finally:
        fake.close()


def test_a_silent_node_is_detected_as_dead_and_reconnected(fake: FakeNode, client: Client) -> None:
    node = add(client, fake, ping_interval=0.2, ping_timeout=0.3)
    client.wait_ready(5)
    fake.stop_answering()
    event = wait_event(client, NodeDisconnectedEvent, timeout=10)
    assert event.will_reconnect is True
    fake.resume_answering()
    wait_event(client, NodeConnectedEvent, timeout=10)
    assert node.available


def test_close_joins_every_thread_and_is_idempotent(fake: FakeNode) -> None:
    c = Client(USER_ID)
    add(c, fake)
    c.wait_ready(5)
    names = {t.name for t in threading.enumerate()}
    assert "lavasync-ws-fake" in names and "lavasync-dispatch" in names
    got: list[object] = []
    poller = threading.Thread(target=lambda: got.append(c.poll(None)), name="lavasync-test-poll")
    c.poll(0)  # drain what is there
    while c.poll(0.05) is not None:
        pass
    poller.start()
    assert c.close(5) is True
    poller.join(5)
    assert not poller.is_alive()
    assert got == [None]  # a blocked poll returns when the client closes
    assert c.close(5) is True
    alive = [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("lavasync-") and t.name != "lavasync-test-poll"
    ]
    assert alive == []
    with pytest.raises(ClientClosedError):
        c.player(1)
    with pytest.raises(ClientClosedError):
        c.add_node("x", fake.uri, password=fake.password)


def test_threads_per_client_do_not_grow_with_players(fake: FakeNode, client: Client) -> None:
    add(client, fake)
    client.wait_ready(5)
    for guild in range(1, 201):
        client.player(guild)
    mine = [t.name for t in threading.enumerate() if t.name.startswith("lavasync-")]
    # the session set-up after ready may still hold an idle worker (they exit when idle)
    workers = [name for name in mine if name.startswith(("lavasync-worker-", "lavasync-node-"))]
    assert len(workers) <= 8  # bounded, whatever the number of players
    assert sorted(set(mine) - set(workers)) == [
        "lavasync-dispatch",
        "lavasync-store",
        "lavasync-ws-fake",
    ]


def test_no_event_is_lost_in_a_burst(fake: FakeNode) -> None:
    count = 50_000
    seen = [0]
    done = threading.Event()
    with Client(USER_ID, event_buffer_size=1000) as c:

        @c.on(UnknownEvent)
        def counter(event: UnknownEvent) -> None:
            seen[0] += 1
            if seen[0] == count:
                done.set()

        add(c, fake)
        c.wait_ready(5)
        while c.poll(0.05) is not None:
            pass
        frame = {"op": "event", "type": "Burst", "guildId": "1"}
        sender = threading.Thread(
            target=fake.burst, args=(frame, count), name="fakenode-test-burst"
        )
        sender.start()
        polled = 0
        deadline = time.monotonic() + 50
        # The poll buffer is a hard bound (drop-oldest, counted): a poller that falls more than
        # event_buffer_size behind loses the oldest events, but never silently.
        while polled + c.dropped_events < count and time.monotonic() < deadline:
            event = c.poll(1)
            if isinstance(event, UnknownEvent):
                polled += 1
        sender.join(30)
        assert polled <= count
        assert polled + c.dropped_events >= count  # each one polled or counted as dropped
        assert done.wait(30)
        assert seen[0] == count


def test_each_event_is_delivered_once_to_poll_and_once_to_listeners(
    fake: FakeNode, client: Client
) -> None:
    heard: list[str] = []
    fence = threading.Event()

    @client.on(lavasync.Event)
    def every(event: lavasync.Event) -> None:
        if isinstance(event, lavasync.TrackEvent):
            heard.append(type(event).__name__)
        if isinstance(event, UnknownEvent) and event.type == "Fence":
            fence.set()

    add(client, fake)
    client.wait_ready(5)
    track = fake.add_track("Once", length=600_000)
    player = client.player(9)
    player.play(track.encoded)
    player.play(track.encoded)  # replaces: end(replaced), start
    fake.emit({"op": "event", "type": "Fence", "guildId": "9"})
    assert fence.wait(5)
    polled: list[str] = []
    while True:
        event = client.poll(0.2)
        if event is None:
            break
        if isinstance(event, lavasync.TrackEvent):
            polled.append(type(event).__name__)
    expected = ["TrackStartEvent", "TrackEndEvent", "TrackStartEvent"]
    assert heard == expected
    assert polled == expected


def test_add_node_with_a_session_id_resumes_it(fake: FakeNode) -> None:
    with Client(USER_ID) as first:
        node = add(first, fake)
        first.wait_ready(5)
        sid = node.session_id
    assert sid is not None
    # a session whose socket the server still thinks open cannot be resumed (as in Lavalink)
    fake.wait_session(sid, "paused")
    with Client(USER_ID) as second:
        node = add(second, fake, session_id=sid)
        resumed = wait_event(second, ReadyEvent)
        assert resumed.resumed is True
        assert node.session_id == sid
        assert fake.handshakes[-1].headers["Session-Id"] == sid


def test_a_refused_handshake_503_is_retried_not_fatal(fake: FakeNode, client: Client) -> None:
    fake.refuse_connections(True)
    node = add(client, fake)
    wait_event(client, lavasync.NodeReconnectingEvent)
    wait_event(client, lavasync.NodeReconnectingEvent)
    assert node.state is not NodeState.FAILED
    assert fake.handshakes == [] or all(not h.accepted for h in fake.handshakes)
    fake.refuse_connections(False)
    client.wait_ready(10)
    assert node.available


def test_close_interrupts_a_handshake_that_never_gets_an_answer() -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []
    got_one = threading.Event()

    def accept() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        accepted.append(conn)
        got_one.set()

    acceptor = threading.Thread(target=accept, name="fakenode-test-silent")
    acceptor.start()
    try:
        port = server.getsockname()[1]
        c = Client(USER_ID)
        node = c.add_node("silent", f"http://127.0.0.1:{port}", password="x", connect_timeout=30)
        assert got_one.wait(5)
        assert node.state is NodeState.CONNECTING
        started = time.monotonic()
        assert c.close(5) is True
        assert time.monotonic() - started < 3
    finally:
        server.close()
        acceptor.join(5)
        for conn in accepted:
            conn.close()


def test_a_call_on_a_node_that_stays_down_raises_node_unavailable(
    fake: FakeNode, client: Client
) -> None:
    node = add(client, fake)
    client.wait_ready(5)
    player = client.player(31)
    fake.refuse_connections(True)
    fake.drop_connections()
    wait_event(client, NodeDisconnectedEvent)
    fake.clear_requests()
    started = time.monotonic()
    with pytest.raises(lavasync.NodeUnavailableError):
        player.set_volume(10, timeout=0.5)
    assert time.monotonic() - started < 3
    assert [r for r in fake.requests if r.method == "PATCH"] == []
    with pytest.raises(lavasync.NodeUnavailableError):
        client.best_node()
    assert node.state is not NodeState.READY


def test_client_load_returns_results_or_raises_load_error(fake: FakeNode, client: Client) -> None:
    add(client, fake)
    client.wait_ready(5)
    assert client.load("fake:error").load_type == "error"
    with pytest.raises(lavasync.LoadError) as info:
        client.load("fake:error", raise_on_error=True)
    assert info.value.identifier == "fake:error"
    assert info.value.exception is not None
    assert len(client.load("fake:playlist:5").tracks) == 5
