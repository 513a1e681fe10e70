"""FakeNode WebSocket, sessions/resuming, voice and playback, and FakeGateway (PROTOCOL.md §2, §4,
§6), over raw websocket-client and http.client."""

from __future__ import annotations

import base64
import http.client
import json
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest
import websocket
from conftest import VECTORS

from lavasync.codec import decode_info
from lavasync.testing import FakeGateway, FakeNode

VOICE = {
    "token": "tok",
    "endpoint": "c-fra05.discord.media:443",
    "sessionId": "abc",
    "channelId": "9",
}


def connect(
    fake: FakeNode,
    *,
    user_id: str = "42",
    session_id: Optional[str] = None,
    password: Optional[str] = None,
) -> websocket.WebSocket:
    headers = {
        "Authorization": fake.password if password is None else password,
        "User-Id": user_id,
        "Client-Name": "lavasync-tests/1.0",
    }
    if session_id is not None:
        headers["Session-Id"] = session_id
    return websocket.create_connection(fake.ws_uri, header=headers, timeout=5)


def recv(ws: websocket.WebSocket) -> dict[str, Any]:
    opcode, data = ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_TEXT
    msg: dict[str, Any] = json.loads(data)
    return msg


def recv_until(ws: websocket.WebSocket, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    for _ in range(200):
        msg = recv(ws)
        if pred(msg):
            return msg
    raise AssertionError("message never came")


def recv_close(ws: websocket.WebSocket) -> int:
    """Read until the close frame; its code."""
    for _ in range(200):
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int(struct.unpack("!H", data[:2])[0])
    raise AssertionError("no close frame")


def rest(fake: FakeNode, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    headers = {"Authorization": fake.password}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(payload) if payload else None


def is_(op_or_type: str, guild: Optional[str] = None) -> Callable[[dict[str, Any]], bool]:
    def pred(m: dict[str, Any]) -> bool:
        hit = m.get("type", m["op"]) == op_or_type
        return hit and (guild is None or m.get("guildId") == guild)

    return pred


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(stats_interval=30, player_update_interval=30) as node:
        yield node


# --------------------------------------------------------------------------- handshake


@pytest.mark.parametrize(("password", "status"), [("wrong", 401), ("", 401)])
def test_handshake_bad_password_is_401(fake: FakeNode, password: str, status: int) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(fake, password=password)
    assert info.value.status_code == status
    hs = fake.handshakes[-1]
    assert (hs.accepted, hs.status, hs.session_id) == (False, 401, None)


def test_handshake_without_authorization_is_401(fake: FakeNode) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(fake.ws_uri, header={"User-Id": "1"}, timeout=5)
    assert info.value.status_code == 401


@pytest.mark.parametrize("user_id", ["", "0", "00"])
def test_handshake_bad_user_id_is_400(fake: FakeNode, user_id: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(fake, user_id=user_id)
    assert info.value.status_code == 400


def test_non_numeric_user_id_gets_101_then_1011(fake: FakeNode) -> None:
    ws = connect(fake, user_id="bot")
    assert ws.status == 101
    assert recv_close(ws) == 1011
    ws.close()
    assert fake.session_ids() == []
    assert fake.handshakes[-1].status == 101
    assert fake.handshakes[-1].accepted is False


def test_ready_then_stats_then_periodic_stats() -> None:
    with FakeNode(stats_interval=0.1) as node:
        ws = connect(node)
        assert ws.getheaders()["session-resumed"] == "false"
        assert ws.getheaders()["lavalink-api-version"] == "4"
        ready = recv(ws)
        assert ready["op"] == "ready"
        assert ready["resumed"] is False
        assert len(ready["sessionId"]) == 16
        assert ready["sessionId"].isalnum()
        assert ready["sessionId"] == ready["sessionId"].lower()
        stats = recv(ws)
        assert stats["op"] == "stats"
        assert "frameStats" in stats
        assert stats["frameStats"] is None
        assert recv(ws)["op"] == "stats"  # the next one, one interval later
        assert node.wait_for_connection() == ready["sessionId"]
        session = node.sessions[ready["sessionId"]]
        assert session.user_id == 42
        assert session.client_name == "lavasync-tests/1.0"
        ws.close()


def test_refused_handshake(fake: FakeNode) -> None:
    fake.refuse_connections()
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        connect(fake)
    assert info.value.status_code == 503
    assert fake.handshakes[-1].status == 503
    fake.refuse_connections(False)
    connect(fake).close()


def test_v2_blob_is_played_and_reported_as_v3(fake: FakeNode) -> None:
    sid = fake.create_session()
    v2 = next(v for v in json.loads(VECTORS.read_text("utf-8")) if v["version"] == 2)["encoded"]
    player = play(fake, sid, 1, {"track": {"encoded": v2}, "position": 1234})
    encoded = player["track"]["encoded"]
    assert encoded != v2
    assert encoded.startswith("QAAA")
    assert base64.b64decode(encoded)[4] == 3  # the server writes the current version
    info = decode_info(encoded)
    assert info["position"] == 1234
    assert info["title"] == decode_info(v2)["title"]


def test_wait_for_connection_times_out(fake: FakeNode) -> None:
    with pytest.raises(TimeoutError):
        fake.wait_for_connection(timeout=0.05)


# --------------------------------------------------------------------------- frames


def test_text_frames_are_ignored_and_pings_answered(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    recv(ws)  # stats
    ws.send('{"op":"play"}')
    ws.ping(b"hello")
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, data) == (websocket.ABNF.OPCODE_PONG, b"hello")  # no answer to the text
    assert fake.sessions[sid].received == ['{"op":"play"}']
    ws.close()


def test_binary_frame_closes_1003(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    ws.send_binary(b"\x00\x01")
    assert recv_close(ws) == 1003
    ws.close()
    fake.wait_session(sid, "destroyed")


def test_emit_and_send_raw(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    recv(ws)
    fake.emit({"op": "event", "type": "SegmentSkipped", "guildId": "1", "segment": {}})
    assert recv(ws)["type"] == "SegmentSkipped"
    fake.send_raw("not json", session_id=sid)
    assert ws.recv() == "not json"
    fake.send_raw(b"\x01\x02", binary=True)
    assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"\x01\x02")
    ws.close()


def test_stop_answering_holds_messages_and_pongs(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    recv(ws)
    fake.stop_answering()
    ws.ping(b"p")
    fake.emit({"op": "event", "type": "Custom", "guildId": "1"}, session_id=sid)
    ws.settimeout(0.2)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_data(control_frame=True)
    ws.settimeout(5)
    fake.resume_answering()
    assert recv(ws)["type"] == "Custom"  # the pong was never sent
    ws.close()


def test_close_websockets_sends_the_code(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    fake.close_websockets(4000, "bye")
    assert recv_close(ws) == 4000
    ws.close()
    fake.wait_session(sid, "destroyed")


def test_node_close_sends_1001_and_is_quick() -> None:
    node = FakeNode().start()
    ws = connect(node)
    recv(ws)
    t0 = time.monotonic()
    node.close()
    assert time.monotonic() - t0 < 1.0
    assert recv_close(ws) == 1001
    ws.close()


# --------------------------------------------------------------------------- sessions & resuming


def test_client_close_destroys_a_non_resuming_session(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    rest(fake, "PATCH", f"/v4/sessions/{sid}/players/1", {})
    ws.close()
    fake.wait_session(sid, "destroyed")
    assert rest(fake, "GET", f"/v4/sessions/{sid}/players")[0] == 404


def test_resume_replays_queued_messages_in_order(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    assert rest(fake, "PATCH", f"/v4/sessions/{sid}", {"resuming": True, "timeout": 30}) == (
        200,
        {"resuming": True, "timeout": 30},
    )
    track = fake.add_track(length=60_000)
    rest(fake, "PATCH", f"/v4/sessions/{sid}/players/5", {"track": {"encoded": track.encoded}})
    rest(fake, "PATCH", f"/v4/sessions/{sid}/players/6", {})
    fake.drop_connections()
    assert fake.sessions[sid].state == "paused"
    status, payload = rest(fake, "GET", f"/v4/sessions/{sid}/players")
    assert (status, payload["message"]) == (404, "Session not found")
    fake.stuck_track(5)  # TrackStuckEvent queued, its playerUpdate dropped
    fake.emit({"op": "stats", "players": 0}, session_id=sid)
    fake.finish_track(5)
    assert [m.get("type", m["op"]) for m in fake.sessions[sid].queued] == [
        "TrackStuckEvent",
        "stats",
        "TrackEndEvent",
    ]
    ws.close()

    ws = connect(fake, session_id=sid)
    assert ws.getheaders()["session-resumed"] == "true"
    assert recv(ws) == {"op": "ready", "resumed": True, "sessionId": sid}
    replay = [recv(ws) for _ in range(5)]
    assert [m.get("type", m["op"]) for m in replay] == [
        "TrackStuckEvent",
        "stats",
        "TrackEndEvent",
        "playerUpdate",
        "playerUpdate",
    ]
    assert replay[2]["reason"] == "finished"
    assert sorted(m["guildId"] for m in replay[3:]) == ["5", "6"]
    assert fake.handshakes[-1].resumed is True
    assert fake.wait_for_connection(count=2) == sid
    assert fake.sessions[sid].queued == []
    ws.close()


def test_expired_or_open_session_id_gives_a_new_session(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    # the id of a session that is still open: ignored
    other = connect(fake, session_id=sid)
    assert other.getheaders()["session-resumed"] == "false"
    assert recv(other)["sessionId"] != sid
    other.close()
    rest(fake, "PATCH", f"/v4/sessions/{sid}", {"resuming": True, "timeout": 60})
    rest(fake, "PATCH", f"/v4/sessions/{sid}/players/1", {})
    fake.drop_connections()
    fake.expire_session(sid)
    assert sid not in fake.sessions
    again = connect(fake, session_id=sid)
    ready = recv(again)
    assert ready["resumed"] is False
    assert ready["sessionId"] != sid
    again.close()
    ws.close()


def test_resume_window_timeout_destroys_the_session(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    rest(fake, "PATCH", f"/v4/sessions/{sid}", {"resuming": True, "timeout": 1})
    ws.close()
    fake.wait_session(sid, "paused")
    t0 = time.monotonic()
    fake.wait_session(sid, "destroyed", timeout=5)
    assert time.monotonic() - t0 > 0.5


def test_zero_timeout_expires_at_once(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    rest(fake, "PATCH", f"/v4/sessions/{sid}", {"resuming": True, "timeout": 0})
    fake.drop_connections()
    fake.wait_session(sid, "destroyed", timeout=1)
    ws.close()


def test_kill_and_revive_within_the_window_resumes(fake: FakeNode) -> None:
    ws = connect(fake)
    sid = recv(ws)["sessionId"]
    rest(fake, "PATCH", f"/v4/sessions/{sid}", {"resuming": True})
    fake.kill()
    assert fake.sessions[sid].state == "paused"
    recv(ws)  # the stats sent at connect time; then the cut
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv()
    ws.close()
    fake.revive()
    ws = connect(fake, session_id=sid)
    assert recv(ws)["resumed"] is True
    fake.kill(lose_sessions=True)
    assert fake.session_ids() == []
    fake.revive()
    ws.close()


# --------------------------------------------------------------------------- voice & playback


@pytest.fixture
def quick() -> Iterator[FakeNode]:
    with FakeNode(stats_interval=30, player_update_interval=0.05, cleanup_threshold=0.3) as node:
        yield node


def play(fake: FakeNode, sid: str, guild: int, body: dict[str, Any]) -> dict[str, Any]:
    status, player = rest(fake, "PATCH", f"/v4/sessions/{sid}/players/{guild}", body)
    assert status == 200, player
    return player  # type: ignore[no-any-return]


def test_voice_connect_and_position_advances(quick: FakeNode) -> None:
    sid = quick.create_session()
    track = quick.add_track(length=60_000)
    player = play(quick, sid, 1, {"voice": VOICE})
    assert player["state"]["connected"] is True
    assert player["state"]["ping"] == 0
    assert player["voice"] == VOICE
    assert player["track"] is None
    quick.wait_for_message(sid, is_("playerUpdate", "1"))  # voice ready
    t0 = time.monotonic()
    play(quick, sid, 1, {"track": {"encoded": track.encoded}})
    update = quick.wait_for_message(sid, is_("playerUpdate", "1"), count=8)
    elapsed_ms = (time.monotonic() - t0) * 1000
    assert 150 <= update["state"]["position"] <= elapsed_ms + 50
    player = quick.player(sid, 1)
    assert player is not None
    # responses re-encode the blob with the current position
    assert (
        decode_info(player["track"]["encoded"])["position"] == player["track"]["info"]["position"]
    )
    assert player["track"]["info"]["position"] > 0


def test_paused_and_voiceless_players_stay_put() -> None:
    with FakeNode(stats_interval=30, player_update_interval=0.05) as node:
        sid = node.create_session()
        track = node.add_track(length=60_000)
        body = {"voice": VOICE, "track": {"encoded": track.encoded}, "paused": True}
        play(node, sid, 1, body)
        play(node, sid, 2, {"track": {"encoded": track.encoded}, "position": 700})
        for guild in ("1", "2"):
            n = len([m for m in node.sessions[sid].sent if is_("playerUpdate", guild)(m)])
            node.wait_for_message(sid, is_("playerUpdate", guild), count=n + 4)
        assert node.player(sid, 1)["state"]["position"] == 0  # type: ignore[index]
        assert node.player(sid, 2)["state"]["position"] == 700  # type: ignore[index]


def test_track_finishes_and_updates_stop(quick: FakeNode) -> None:
    sid = quick.create_session()
    track = quick.add_track(length=200)
    play(quick, sid, 1, {"voice": VOICE})
    t0 = time.monotonic()
    play(quick, sid, 1, {"track": {"encoded": track.encoded}})
    end = quick.wait_for_message(sid, is_("TrackEndEvent"))
    assert time.monotonic() - t0 >= 0.15
    assert end["reason"] == "finished"
    assert end["track"]["info"]["position"] == 200
    assert quick.player(sid, 1)["track"] is None  # type: ignore[index]
    count = len(quick.sessions[sid].sent)
    # nothing more is scheduled for an idle player
    with pytest.raises(TimeoutError):
        quick.wait_for_message(sid, is_("playerUpdate"), count=count + 1, timeout=0.2)


def test_end_time_and_timescale(quick: FakeNode) -> None:
    sid = quick.create_session()
    long = quick.add_track(length=60_000)
    play(quick, sid, 1, {"voice": VOICE, "track": {"encoded": long.encoded}, "endTime": 150})
    end = quick.wait_for_message(sid, is_("TrackEndEvent", "1"))
    assert end["reason"] == "finished"
    assert end["track"]["info"]["position"] == 150
    one_second = quick.add_track(length=1000)
    body = {
        "voice": VOICE,
        "filters": {"timescale": {"speed": 2.0, "rate": 2.0}},
        "track": {"encoded": one_second.encoded},
    }
    t0 = time.monotonic()
    play(quick, sid, 2, body)
    quick.wait_for_message(sid, is_("TrackEndEvent", "2"))
    assert time.monotonic() - t0 < 0.7  # 250 ms at 4x, 1000 ms at 1x


def test_cleanup_without_voice(quick: FakeNode) -> None:
    sid = quick.create_session()
    track = quick.add_track(length=100)
    t0 = time.monotonic()
    play(quick, sid, 1, {"track": {"encoded": track.encoded}})
    end = quick.wait_for_message(sid, is_("TrackEndEvent"))
    assert end["reason"] == "cleanup"
    assert end["track"]["info"]["position"] == 0
    assert time.monotonic() - t0 >= 0.25


def test_voice_delay_and_failure(fake: FakeNode) -> None:
    sid = fake.create_session()
    fake.set_voice_delay(0.3)
    t0 = time.monotonic()
    play(fake, sid, 1, {"voice": VOICE})
    assert time.monotonic() - t0 >= 0.3
    # identical voice data on an open connection is a no-op (no delay)
    t0 = time.monotonic()
    play(fake, sid, 1, {"voice": VOICE})
    assert time.monotonic() - t0 < 0.3
    fake.set_voice_delay(0)
    fake.set_voice_failure(True)
    status, payload = rest(fake, "PATCH", f"/v4/sessions/{sid}/players/2", {"voice": VOICE})
    assert (status, payload["message"]) == (500, "Failed to connect to voice server")


def after_first(sent: list[dict[str, Any]], type_: str, count: int) -> list[dict[str, Any]]:
    """``count`` messages starting at the first event of ``type_`` (skipping what came before)."""
    start = next(i for i, m in enumerate(sent) if m.get("type") == type_)
    return sent[start : start + count]


def test_new_voice_data_tears_the_old_connection_down(fake: FakeNode) -> None:
    sid = fake.create_session()
    play(fake, sid, 1, {"voice": VOICE})
    skip = len(fake.sessions[sid].sent)
    player = play(fake, sid, 1, {"voice": {**VOICE, "channelId": "10"}})
    assert player["voice"]["channelId"] == "10"
    closed = fake.wait_for_message(sid, is_("WebSocketClosedEvent"))
    assert (closed["code"], closed["reason"], closed["byRemote"]) == (1000, "", False)
    # the "voice ready" playerUpdate of the first connect is sent just after its PATCH
    # returned, so it may land after ``skip``: look for the close itself
    closed, update = after_first(fake.sessions[sid].sent[skip:], "WebSocketClosedEvent", 2)
    assert closed["type"] == "WebSocketClosedEvent"
    assert update["op"] == "playerUpdate"
    assert update["state"]["connected"] is False


def test_close_voice_fail_and_stuck(fake: FakeNode) -> None:
    sid = fake.create_session()
    track = fake.add_track(length=60_000)
    play(fake, sid, 1, {"voice": VOICE, "track": {"encoded": track.encoded}})
    skip = len(fake.sessions[sid].sent)
    fake.close_voice(1, 4014)
    closed, update = after_first(fake.sessions[sid].sent[skip:], "WebSocketClosedEvent", 2)
    assert (closed["type"], closed["code"], closed["byRemote"]) == (
        "WebSocketClosedEvent",
        4014,
        True,
    )
    assert update["state"]["connected"] is False
    assert update["state"]["ping"] == 0  # a remote close keeps the last ping
    fake.stuck_track(1, threshold_ms=5000)
    stuck = fake.wait_for_message(sid, is_("TrackStuckEvent"))
    assert stuck["thresholdMs"] == 5000
    assert fake.player(sid, 1)["track"] is not None  # type: ignore[index]
    fake.fail_track(1, message="boom", severity="common")
    exc = fake.wait_for_message(sid, is_("TrackExceptionEvent"))
    end = fake.wait_for_message(sid, is_("TrackEndEvent"))
    assert exc["exception"]["message"] == "boom"
    assert exc["exception"]["severity"] == "common"
    assert end["reason"] == "loadFailed"
    with pytest.raises(ValueError, match="no track"):
        fake.finish_track(1)
    with pytest.raises(KeyError):
        fake.close_voice(99)


def test_a_thousand_players() -> None:
    with FakeNode(stats_interval=30, player_update_interval=5) as node:
        sid = node.create_session()
        track = node.add_track(length=400)
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        body = json.dumps({"voice": VOICE, "track": {"encoded": track.encoded}})
        headers = {"Authorization": node.password, "Content-Type": "application/json"}
        for guild in range(1, 1001):
            conn.request("PATCH", f"/v4/sessions/{sid}/players/{guild}", body, headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
        conn.request("GET", "/v4/stats", headers=headers)
        stats = json.loads(conn.getresponse().read())
        conn.close()
        assert stats["players"] == 1000
        node.wait_for_message(sid, is_("TrackEndEvent"), count=1000, timeout=20)
        names = [t.name for t in threading.enumerate() if t.name.startswith("fakenode")]
        assert len([n for n in names if "scheduler" in n]) == 1
        assert len(names) <= 4


# --------------------------------------------------------------------------- FakeGateway


def test_gateway_join_and_leave() -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()

    def deliver(dispatch: dict[str, Any]) -> None:
        got.append((threading.current_thread().name, dispatch))
        if len(got) == 3:
            done.set()

    with FakeGateway(1234, deliver=deliver) as gateway:
        join = {
            "op": 4,
            "d": {"guild_id": "55", "channel_id": "66", "self_mute": False, "self_deaf": True},
        }
        gateway.hook(55, join)
        gateway.hook(55, {"op": 4, "d": {"guild_id": "55", "channel_id": None}})
        assert done.wait(5)
        assert gateway.wait_sent(2) == [
            (55, join),
            (55, {"op": 4, "d": {"guild_id": "55", "channel_id": None}}),
        ]
    assert {name for name, _ in got} == {"fakenode-gateway"}
    state, server, leave = (d for _, d in got)
    assert state["t"] == "VOICE_STATE_UPDATE"
    assert state["op"] == 0
    assert state["d"]["user_id"] == "1234"
    assert (state["d"]["guild_id"], state["d"]["channel_id"]) == ("55", "66")
    assert server["t"] == "VOICE_SERVER_UPDATE"
    assert server["d"]["endpoint"] == "rotterdam1234.discord.media:443"
    assert server["d"]["token"]
    assert leave["d"]["channel_id"] is None
    assert leave["d"]["session_id"] == state["d"]["session_id"]
    assert [d["s"] for _, d in got] == [1, 2, 3]


def test_gateway_missing_delay_and_moves() -> None:
    with FakeGateway(1, delay=0.2) as gateway:
        gateway.missing.add("VOICE_SERVER_UPDATE")
        t0 = time.monotonic()
        gateway.hook(5, {"op": 4, "d": {"guild_id": "5", "channel_id": "6"}})
        first = gateway.wait_delivered(1)
        assert time.monotonic() - t0 >= 0.2
        assert [d["t"] for d in first] == ["VOICE_STATE_UPDATE"]
        gateway.delay = 0
        gateway.missing.clear()
        gateway.region_move(5, "new.discord.media:443")
        gateway.move_channel(5, 7)
        gateway.region_move(5, None)
        moved = gateway.wait_delivered(4)[1:]
        # a join again (e.g. after a kick) gets both dispatches, with a new token
        gateway.hook(5, {"op": 4, "d": {"guild_id": "5", "channel_id": "6"}})
        rejoin = gateway.wait_delivered(6)[4:]
        assert [d["t"] for d in rejoin] == ["VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE"]
        assert rejoin[1]["d"]["token"] != moved[0]["d"]["token"]
        assert moved[0]["d"]["endpoint"] == "new.discord.media:443"
        assert moved[1]["d"]["channel_id"] == "7"
        assert moved[2]["d"]["endpoint"] is None
        with pytest.raises(TimeoutError):
            gateway.wait_sent(3, timeout=0.05)


def test_gateway_kick_closes_voice_on_the_node(fake: FakeNode) -> None:
    sid = fake.create_session()
    play(fake, sid, 77, {"voice": VOICE})
    with FakeGateway(1, node=fake) as gateway:
        gateway.hook(77, {"op": 4, "d": {"guild_id": "77", "channel_id": "9"}})
        gateway.kick(77)
        kicked = gateway.wait_delivered(3)[-1]
        assert kicked["d"]["channel_id"] is None
    closed = fake.wait_for_message(sid, is_("WebSocketClosedEvent", "77"))
    assert closed["code"] == 4014
    assert fake.player(sid, 77)["state"]["connected"] is False  # type: ignore[index]


def test_burst_writes_every_frame_in_order(fake: FakeNode) -> None:
    ws = connect(fake)
    try:
        recv_until(ws, is_("ready"))
        fake.burst(
            {
                "op": "playerUpdate",
                "guildId": "1",
                "state": {"time": 1, "position": 5, "connected": True, "ping": 0},
            },
            2_000,
        )
        fake.emit({"op": "event", "type": "AfterBurst", "guildId": "1"})
        seen = 0
        while True:
            message = recv(ws)
            if message["op"] == "playerUpdate" and message["state"]["position"] == 5:
                seen += 1
            elif message.get("type") == "AfterBurst":
                break
        assert seen == 2_000
    finally:
        ws.close()
    with pytest.raises(ValueError):
        fake.burst({"op": "x"}, -1)
