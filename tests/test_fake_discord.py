"""FakeDiscordGateway on its own, driven by a bare WebSocket client (websocket-client), the way
Discord's gateway documentation says a bot talks to it."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any, Optional

import pytest
import websocket
from conftest import USER_ID

from lavasync.testing import FakeDiscordGateway

TOKEN = "fake-bot-token"
GUILD0 = 0  # (0 >> 22) % 2 == 0
GUILD1 = 1 << 22  # on shard 1 of 2
CHANNEL = 1126593424391868476


@pytest.fixture
def fake() -> Iterator[FakeDiscordGateway]:
    with FakeDiscordGateway(
        USER_ID, guilds={GUILD0: [CHANNEL], GUILD1: [CHANNEL + 1]}, shard_count=2
    ) as gw:
        yield gw


class Bot:
    """A bare gateway connection: send payloads, read payloads."""

    def __init__(self, url: str, compress: bool = False) -> None:
        query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compress else "")
        self.ws = websocket.create_connection(url + query, timeout=5)
        self.inflator = zlib.decompressobj() if compress else None

    def recv(self) -> dict[str, Any]:
        opcode, data = self.ws.recv_data()
        if self.inflator is not None:
            assert opcode == websocket.ABNF.OPCODE_BINARY
            assert data.endswith(b"\x00\x00\xff\xff")
            data = self.inflator.decompress(data)
        msg: dict[str, Any] = json.loads(data)
        return msg

    def send(self, payload: Any) -> None:
        self.ws.send(json.dumps(payload))

    def close_code(self) -> Optional[int]:
        """Read until the server's close frame; its code."""
        while True:
            try:
                frame = self.ws.recv_frame()
            except (websocket.WebSocketException, OSError):
                return None
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(frame.data[:2], "big")

    def identify(self, shard: list[int], token: str = TOKEN, intents: int = 129) -> dict[str, Any]:
        hello = self.recv()
        assert hello == {"op": 10, "d": {"heartbeat_interval": 41250}}
        self.send(
            {
                "op": 2,
                "d": {
                    "token": token,
                    "intents": intents,
                    "properties": {"os": "linux", "browser": "t", "device": "t"},
                    "shard": shard,
                },
            }
        )
        return self.recv()

    def close(self) -> None:
        self.ws.shutdown()


def test_identify_gets_ready_then_the_shards_guilds(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url)
    try:
        ready = bot.identify([1, 2])
        assert ready["op"] == 0 and ready["t"] == "READY" and ready["s"] == 1
        d = ready["d"]
        assert d["shard"] == [1, 2]
        assert d["session_id"] == fake.session_id(1)
        assert d["resume_gateway_url"] == fake.resume_url
        assert d["user"]["id"] == str(USER_ID)
        assert d["guilds"] == [{"id": str(GUILD1), "unavailable": True}]
        create = bot.recv()
        assert (create["t"], create["s"], create["d"]["id"]) == ("GUILD_CREATE", 2, str(GUILD1))
        assert [c["id"] for c in create["d"]["channels"]] == [str(CHANNEL + 1)]
        assert fake.received(1)[0]["op"] == 2
        assert fake.connected(1) and not fake.connected(0)
    finally:
        bot.close()


def test_heartbeat_is_acked_unless_told_not_to(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url)
    try:
        bot.identify([0, 2])
        bot.recv()  # GUILD_CREATE
        bot.send({"op": 1, "d": 2})
        assert bot.recv() == {"op": 11}
        fake.stop_acking(0)
        bot.send({"op": 1, "d": 2})
        fake.wait(lambda: fake.heartbeats == 2)
        fake.dispatch(0, "PING_MARK", {})
        assert bot.recv()["t"] == "PING_MARK"  # no ACK came before it
    finally:
        bot.close()


def test_resume_replays_missed_dispatches_then_resumed(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url)
    bot.identify([0, 2])
    seq = bot.recv()["s"]
    session = fake.session_id(0)
    fake.drop(0)
    assert bot.close_code() is None  # no close frame: a dropped socket
    fake.dispatch(0, "MISSED_1", {"n": 1})
    fake.dispatch(0, "MISSED_2", {"n": 2})
    again = Bot(fake.resume_url)
    try:
        assert again.recv()["op"] == 10
        again.send({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": seq}})
        got = [again.recv() for _ in range(3)]
        assert [(m["t"], m["s"]) for m in got] == [
            ("MISSED_1", seq + 1),
            ("MISSED_2", seq + 2),
            ("RESUMED", seq + 3),
        ]
        assert fake.resumes == 1 and fake.session_id(0) == session
    finally:
        again.close()


def test_a_refused_resume_gets_invalid_session_false(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url)
    bot.identify([0, 2])
    session = fake.session_id(0)
    fake.drop(0)
    fake.refuse_next_resume(0)
    again = Bot(fake.resume_url)
    try:
        again.recv()
        again.send({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 1}})
        assert again.recv() == {"op": 9, "d": False}
        assert fake.session_id(0) is None
    finally:
        again.close()


def test_op4_answers_with_both_voice_dispatches(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url)
    try:
        bot.identify([0, 2])
        bot.recv()
        join = {"guild_id": str(GUILD0), "channel_id": str(CHANNEL), "self_mute": False}
        bot.send({"op": 4, "d": {**join, "self_deaf": True}})
        state, server = bot.recv(), bot.recv()
        assert state["t"] == "VOICE_STATE_UPDATE" and server["t"] == "VOICE_SERVER_UPDATE"
        assert state["d"]["user_id"] == str(USER_ID)
        assert state["d"]["channel_id"] == str(CHANNEL) and state["d"]["self_deaf"] is True
        assert server["d"]["guild_id"] == str(GUILD0)
        assert server["d"]["endpoint"] == fake.endpoint and server["d"]["token"]
        # a guild of the other shard: Discord ignores it on this connection
        bot.send({"op": 4, "d": {**join, "guild_id": str(GUILD1)}})
        bot.send({"op": 4, "d": {**join, "channel_id": None}})
        leave = bot.recv()
        assert leave["t"] == "VOICE_STATE_UPDATE" and leave["d"]["channel_id"] is None
        assert leave["d"]["guild_id"] == str(GUILD0)
        sent = [p["d"]["guild_id"] for p in fake.received_ops(0, 4)]
        assert sent == [str(GUILD0), str(GUILD1), str(GUILD0)]  # recorded, but not answered
        assert fake.voice_state(GUILD1) is None
    finally:
        bot.close()


def test_kick_move_and_channel_delete_dispatches(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url)
    try:
        bot.identify([0, 2])
        bot.recv()
        bot.send({"op": 4, "d": {"guild_id": str(GUILD0), "channel_id": str(CHANNEL)}})
        first_token = [bot.recv(), bot.recv()][1]["d"]["token"]
        fake.move(GUILD0, 42)
        moved, server = bot.recv(), bot.recv()
        assert moved["d"]["channel_id"] == "42" and server["d"]["token"] != first_token
        fake.kick(GUILD0)
        assert bot.recv()["d"]["channel_id"] is None
        fake.delete_channel(GUILD0, CHANNEL)
        deleted = bot.recv()
        assert deleted["t"] == "CHANNEL_DELETE"
        assert (deleted["d"]["id"], deleted["d"]["guild_id"]) == (str(CHANNEL), str(GUILD0))
    finally:
        bot.close()


@pytest.mark.parametrize(
    ("payloads", "code"),
    [
        ([{"op": 4, "d": {"guild_id": "1", "channel_id": None}}], 4003),  # before IDENTIFY
        ([{"op": 99, "d": None}], 4001),
        (["not json"], 4002),
        ([{"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}}], 4004),
        ([{"op": 2, "d": {"token": TOKEN, "intents": 1, "shard": [2, 2]}}], 4010),
        ([{"op": 2, "d": {"token": TOKEN, "intents": "all"}}], 4013),
        ([{"op": 3, "d": {"x": "y" * 5000}}], 4002),
    ],
)
def test_close_codes(fake: FakeDiscordGateway, payloads: list[Any], code: int) -> None:
    bot = Bot(fake.url)
    try:
        bot.recv()
        for p in payloads:
            bot.ws.send(p if isinstance(p, str) else json.dumps(p))
        assert bot.close_code() == code
    finally:
        bot.close()


def test_identify_twice_is_4005_and_too_many_commands_is_4008() -> None:
    with FakeDiscordGateway(USER_ID, rate_limit=(3, 60.0)) as fake:
        bot = Bot(fake.url)
        try:
            bot.identify([0, 1])
            bot.send({"op": 3, "d": {}})
            bot.send({"op": 3, "d": {}})
            bot.send({"op": 3, "d": {}})  # the 4th command in the window
            assert bot.close_code() == 4008
        finally:
            bot.close()
        bot = Bot(fake.url)
        try:
            bot.identify([0, 1])
            bot.send({"op": 2, "d": {"token": TOKEN, "intents": 1}})
            assert bot.close_code() == 4005
        finally:
            bot.close()


def test_heartbeats_count_towards_the_rate_limit() -> None:
    # every payload the bot sends counts (the strict reading of Discord's 120 per 60 s)
    with FakeDiscordGateway(USER_ID, rate_limit=(3, 60.0)) as fake:
        bot = Bot(fake.url)
        try:
            bot.identify([0, 1])
            bot.send({"op": 1, "d": 1})
            bot.send({"op": 1, "d": 1})  # IDENTIFY + 2 heartbeats: the window is full
            bot.send({"op": 3, "d": {}})
            assert bot.close_code() == 4008
            assert [p["op"] for p in fake.received(0)] == [2, 1, 1, 3]
        finally:
            bot.close()


def test_close_shard_and_invalid_session_and_reconnect_controls(
    fake: FakeDiscordGateway,
) -> None:
    bot = Bot(fake.url)
    try:
        bot.identify([0, 2])
        bot.recv()
        fake.request_reconnect(0)
        assert bot.recv() == {"op": 7, "d": None}
        fake.invalidate_session(0, resumable=True)
        assert bot.recv() == {"op": 9, "d": True}
        fake.close_shard(0, 4000, "unknown error")
        assert bot.close_code() == 4000
        assert fake.session_id(0) is not None  # 4000 keeps the session resumable
    finally:
        bot.close()


def test_zlib_stream_transport_compression(fake: FakeDiscordGateway) -> None:
    bot = Bot(fake.url, compress=True)
    try:
        ready = bot.identify([0, 2])
        assert ready["t"] == "READY"
        assert bot.recv()["t"] == "GUILD_CREATE"  # the same zlib context goes on
    finally:
        bot.close()
