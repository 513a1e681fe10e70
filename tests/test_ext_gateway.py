"""lavasync.ext.gateway: the synchronous shard against FakeDiscordGateway over real sockets."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

import pytest
from conftest import FAST, USER_ID, wait_until

import lavasync
from lavasync.ext.gateway import (
    GatewayClosedError,
    GatewayShard,
    IdentifyLimiter,
    connect,
)
from lavasync.node import Backoff
from lavasync.testing import FakeDiscordGateway, FakeNode

TOKEN = "fake-bot-token"
GUILD0 = 817327181659111454  # (id >> 22) % 2 == 0
GUILD1 = 700000000000000000  # (id >> 22) % 2 == 1
CHANNEL0 = 1126593424391868476
CHANNEL1 = 700000000000000001
QUICK = {
    "backoff": Backoff(initial=0.05, maximum=0.2, jitter=0.0),
    "identify_limiter": None,
    "invalid_session_delay": (0.0, 0.0),
}


def options(**extra: Any) -> dict[str, Any]:
    opts = dict(QUICK, identify_limiter=IdentifyLimiter(interval=0.0))
    opts.update(extra)
    return opts


class Recorder:
    """An on_dispatch callback that keeps what it got (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[dict[str, Any], int]] = []

    def __call__(self, dispatch: dict[str, Any], shard_id: int) -> None:
        with self.lock:
            self.items.append((dispatch, shard_id))

    def names(self) -> list[str]:
        with self.lock:
            return [d["t"] for d, _ in self.items]


@pytest.fixture
def fake() -> Iterator[FakeDiscordGateway]:
    with FakeDiscordGateway(
        USER_ID, guilds={GUILD0: [CHANNEL0], GUILD1: [CHANNEL1]}, heartbeat_interval=41_250
    ) as gw:
        yield gw


def test_identify_sends_intents_and_shard_and_gets_ready(fake: FakeDiscordGateway) -> None:
    seen = Recorder()
    with GatewayShard(TOKEN, url=fake.url, shard=(1, 2), on_dispatch=seen, **options()) as shard:
        shard.wait_ready(5)
        wait_until(lambda: seen.names() == ["READY", "GUILD_CREATE"])
        (identify,) = fake.received_ops(1, 2)
        assert identify["d"]["intents"] == 1 | 128  # GUILDS | GUILD_VOICE_STATES
        assert identify["d"]["shard"] == [1, 2]
        assert identify["d"]["token"] == TOKEN
        assert set(identify["d"]["properties"]) == {"os", "browser", "device"}
        assert shard.session_id == fake.session_id(1)
        assert shard.user_id == USER_ID and shard.sequence == 2
        assert {sid for _, sid in seen.items} == {1}
        assert not shard.owns(GUILD0) and shard.owns(GUILD1)


def test_heartbeats_are_acked_and_carry_the_sequence() -> None:
    with (
        FakeDiscordGateway(USER_ID, heartbeat_interval=30) as fake,
        GatewayShard(TOKEN, url=fake.url, **options()) as shard,
    ):
        shard.wait_ready(5)
        fake.wait(lambda: fake.heartbeats >= 3)
        beats = fake.received_ops(0, 1)
        assert beats[-1]["d"] == shard.sequence == 1  # READY was s=1
        wait_until(lambda: shard.latency is not None)
        assert fake.identifies == 1 and fake.resumes == 0  # acked: never reconnected


def test_no_ack_is_a_zombie_closed_with_4000_and_resumed() -> None:
    with (
        FakeDiscordGateway(USER_ID, heartbeat_interval=30) as fake,
        GatewayShard(TOKEN, url=fake.url, **options()) as shard,
    ):
        shard.wait_ready(5)
        session = shard.session_id
        fake.stop_acking(0)
        fake.wait(lambda: fake.resumes == 1)
        fake.stop_acking(0, False)
        # the old connection's close frame is read on its own thread: maybe after the RESUME
        fake.wait(lambda: 4000 in fake.close_codes)  # not 1000/1001: the session stays resumable
        assert not {1000, 1001} & set(fake.close_codes)
        assert fake.identifies == 1 and shard.session_id == session


def test_drop_resumes_on_the_resume_url_and_replays_missed_dispatches(
    fake: FakeDiscordGateway,
) -> None:
    seen = Recorder()
    with GatewayShard(TOKEN, url=fake.url, on_dispatch=seen, **options()) as shard:
        shard.wait_ready(5)
        wait_until(lambda: seen.names().count("GUILD_CREATE") == 2)  # both guilds: 1 shard
        seq = shard.sequence
        assert seq == 3
        # the missed dispatches happen before the shard can reconnect, whatever the load
        fake.drop(0, missed=[("MISSED_A", {"n": 1}), ("MISSED_B", {"n": 2})])
        wait_until(lambda: "RESUMED" in seen.names())
        assert seen.names()[-3:] == ["MISSED_A", "MISSED_B", "RESUMED"]
        (resume,) = fake.received_ops(0, 6)
        assert resume["d"] == {"token": TOKEN, "session_id": fake.session_id(0), "seq": seq}
        assert fake.identifies == 1 and fake.resumes == 1
        assert shard.sequence == seq + 3  # type: ignore[operator]


def test_reconnect_request_and_resumable_invalid_session_resume(
    fake: FakeDiscordGateway,
) -> None:
    with GatewayShard(TOKEN, url=fake.url, **options()) as shard:
        shard.wait_ready(5)
        fake.request_reconnect(0)
        fake.wait(lambda: fake.resumes == 1)
        fake.wait(lambda: fake.connected(0))
        fake.invalidate_session(0, resumable=True)
        fake.wait(lambda: fake.resumes == 2)
        assert fake.identifies == 1


def test_invalid_session_means_a_fresh_identify(fake: FakeDiscordGateway) -> None:
    seen = Recorder()
    with GatewayShard(TOKEN, url=fake.url, on_dispatch=seen, **options()) as shard:
        shard.wait_ready(5)
        first = shard.session_id
        fake.refuse_next_resume(0)
        fake.drop(0)
        fake.wait(lambda: fake.identifies == 2)
        wait_until(lambda: seen.names().count("READY") == 2)
        assert shard.session_id == fake.session_id(0) != first
        assert len(fake.received_ops(0, 6)) == 1  # it tried to resume first
        fake.invalidate_session(0, resumable=False)  # mid-session, too
        fake.wait(lambda: fake.identifies == 3)


@pytest.mark.parametrize("code", [4004, 4014])
def test_a_fatal_close_code_stops_the_shard_with_an_error(
    fake: FakeDiscordGateway, code: int
) -> None:
    shard = GatewayShard(TOKEN, url=fake.url, **options())
    try:
        shard.wait_ready(5)
        fake.close_shard(0, code, "nope")
        wait_until(lambda: not shard.running)
        assert isinstance(shard.error, GatewayClosedError) and shard.error.code == code
        with pytest.raises(GatewayClosedError):
            shard.wait_ready(1)
        with pytest.raises(GatewayClosedError):
            shard.send({"op": 3, "d": {}})
        assert fake.identifies == 1  # it never came back
    finally:
        assert shard.close(5)


def test_a_wrong_token_is_4004(fake: FakeDiscordGateway) -> None:
    with GatewayShard("wrong-token", url=fake.url, **options()) as shard:
        with pytest.raises(GatewayClosedError) as info:
            shard.wait_ready(5)
        assert info.value.code == 4004


def test_send_goes_on_once_the_window_slides() -> None:
    # 3 per 0.2 s (4 less one spare; IDENTIFY counts): 12 commands need several windows. The
    # pacing itself is checked where it is deterministic (a 60 s window, the next test): the
    # fake's own 4008 check stamps arrivals on its thread, which lags behind the wire under load.
    with (
        FakeDiscordGateway(USER_ID) as fake,
        GatewayShard(TOKEN, url=fake.url, **options(rate_limit=(4, 0.2))) as shard,
    ):
        shard.wait_ready(5)
        for n in range(12):
            shard.send({"op": 3, "d": {"n": n}}, timeout=5)
        fake.wait(lambda: len(fake.received_ops(0, 3)) == 12)
        assert [p["d"]["n"] for p in fake.received_ops(0, 3)] == list(range(12))
        assert fake.close_codes == [] and fake.identifies == 1  # one connection throughout


def test_send_waits_for_room_and_times_out() -> None:
    # the fake closes with 4008 past 3 payloads in 60 s; the shard keeps to 2 (one spare)
    with (
        FakeDiscordGateway(USER_ID, rate_limit=(3, 60.0)) as fake,
        GatewayShard(TOKEN, url=fake.url, **options(rate_limit=(3, 60.0))) as shard,
    ):
        shard.wait_ready(5)
        shard.send({"op": 3, "d": {}})  # IDENTIFY + this = 2 of the 2 allowed
        with pytest.raises(lavasync.LavasyncTimeoutError):
            shard.send({"op": 3, "d": {}}, timeout=0.05)
        assert len(fake.received_ops(0, 3)) == 1
        assert 4008 not in fake.close_codes and fake.connected(0)


def test_a_send_whose_socket_dies_goes_out_on_the_next_connection(
    fake: FakeDiscordGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lavasync.ext.gateway")
    held, release = threading.Event(), threading.Event()

    def hold_the_reader(dispatch: dict[str, Any], shard_id: int) -> None:
        if dispatch["t"] == "HOLD":
            held.set()
            release.wait(10)

    errors: list[BaseException] = []

    def send() -> None:
        try:
            shard.send({"op": 3, "d": {"after": "reconnect"}}, timeout=10)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    with GatewayShard(TOKEN, url=fake.url, on_dispatch=hold_the_reader, **options()) as shard:
        shard.wait_ready(5)
        fake.dispatch(0, "HOLD", {})
        assert held.wait(5)  # the reader is busy: the shard still looks ready
        # the socket dies between send() picking it and writing to it (what the reader
        # thread's close of a lost connection does under a concurrent send)
        shard._ws.shutdown()  # type: ignore[union-attr]
        sender = threading.Thread(target=send, name="test-sender")
        sender.start()
        try:
            wait_until(
                lambda: (
                    bool(errors)
                    or any(
                        "waiting for the next connection" in r.getMessage() for r in caplog.records
                    )
                )
            )
        finally:
            release.set()
        sender.join(10)
        assert not sender.is_alive() and errors == []
        fake.wait(lambda: fake.resumes == 1 and len(fake.received_ops(0, 3)) == 1)
        (sent,) = fake.received_ops(0, 3)
        assert sent["d"] == {"after": "reconnect"}
        assert fake.identifies == 1  # resumed, and the command went out there


def test_bad_arguments_raise_value_error(fake: FakeDiscordGateway) -> None:
    for bad in [
        {"token": ""},
        {"shard": (2, 2)},
        {"shard": (0,)},
        {"intents": -1},
        {"url": "http://x"},
        {"on_dispatch": 3},
    ]:
        kwargs: dict[str, Any] = {"url": fake.url, "start": False, **bad}
        token = kwargs.pop("token", TOKEN)
        with pytest.raises(ValueError):
            GatewayShard(token, **kwargs)
    shard = GatewayShard(TOKEN, url=fake.url, start=False)
    for payload in [{"d": 1}, {"op": 2, "d": {}}, {"op": 3, "d": {"x": "y" * 5000}}]:
        with pytest.raises(ValueError):
            shard.send(payload)
    other = GatewayShard(TOKEN, url=fake.url, shard=(0, 2), start=False)
    with pytest.raises(ValueError):
        other.update_voice_state(GUILD1, None)  # not this shard's guild
    assert shard.close() and other.close()


def test_close_joins_the_thread_and_sends_1000(fake: FakeDiscordGateway) -> None:
    shard = GatewayShard(TOKEN, url=fake.url, **options())
    shard.wait_ready(5)
    assert shard.close(5) is True
    assert not shard.running
    assert not [t for t in threading.enumerate() if t.name.startswith("lavasync-gateway-")]
    fake.wait(lambda: 1000 in fake.close_codes)
    with pytest.raises(lavasync.ClientClosedError):
        shard.send({"op": 3, "d": {}})


def test_close_while_reconnecting_is_prompt() -> None:
    # nothing listens there: the shard is in its backoff wait when close() comes
    with FakeDiscordGateway(USER_ID) as fake:
        url = fake.url
    shard = GatewayShard(
        TOKEN, url=url, **options(backoff=Backoff(initial=30.0, maximum=30.0, jitter=0.0))
    )
    assert shard.close(5) is True


def test_zlib_stream_compression(fake: FakeDiscordGateway) -> None:
    seen = Recorder()
    with GatewayShard(TOKEN, url=fake.url, compress=True, on_dispatch=seen, **options()) as shard:
        shard.wait_ready(5)
        fake.dispatch(0, "AFTER", {"x": "y" * 300})
        wait_until(lambda: "AFTER" in seen.names())


# ---------------------------------------------------------------------- wired to a Client


class RecordingClient(lavasync.Client):
    """A real Client that also notes the shard calls the gateway makes (and passes them on
    when the Client has them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost: list[int] = []
        self.shard_ids: list[tuple[Optional[str], Optional[int]]] = []

    def handle_gateway(self, dispatch: Mapping[str, Any], shard_id: Optional[int] = None) -> None:
        self.shard_ids.append((dispatch.get("t"), shard_id))
        base: Callable[..., Any] = super().handle_gateway
        if hasattr(lavasync.Client, "shard_lost"):
            base(dispatch, shard_id=shard_id)
        else:
            base(dispatch)

    def shard_lost(self, shard_id: int) -> None:
        self.lost.append(shard_id)
        base = getattr(super(), "shard_lost", None)
        if base is not None:
            base(shard_id)


@pytest.fixture
def node() -> Iterator[FakeNode]:
    with FakeNode(player_update_interval=0.1) as fake_node:
        yield fake_node


def test_connect_wires_op4_through_the_owning_shard_and_dispatches_in(
    node: FakeNode,
) -> None:
    with (
        FakeDiscordGateway(
            USER_ID, guilds={GUILD0: [CHANNEL0], GUILD1: [CHANNEL1]}, node=node
        ) as fake,
        RecordingClient(USER_ID) as client,
    ):
        client.add_node("main", node.uri, password=node.password, backoff=FAST)
        client.wait_ready(5)
        with connect(client, TOKEN, shards=2, url=fake.url, **options()) as group:
            group.wait_ready(5)
            track = node.add_track("A song", length=600_000)
            for guild, channel in ((GUILD0, CHANNEL0), (GUILD1, CHANNEL1)):
                player = client.player(guild)
                player.connect(channel, timeout=5)
                player.play(track.encoded)
            assert [p["d"]["guild_id"] for p in fake.received_ops(0, 4)] == [str(GUILD0)]
            assert [p["d"]["guild_id"] for p in fake.received_ops(1, 4)] == [str(GUILD1)]
            wait_until(lambda: all(p.connected for p in client.players))
            assert ("VOICE_SERVER_UPDATE", 0) in client.shard_ids
            assert ("VOICE_SERVER_UPDATE", 1) in client.shard_ids
            assert ("READY", 1) in client.shard_ids
            # the guild's voice is on the node as Discord gave it
            for sid in node.session_ids():
                voice = (node.player(sid, GUILD0) or {}).get("voice", {})
                assert voice.get("token") == fake.voice_state(GUILD0)["token"]  # type: ignore[index]
            fake.drop(1)
            wait_until(lambda: client.lost == [1])
            fake.wait(lambda: fake.resumes == 1)
            wait_until(lambda: ("RESUMED", 1) in client.shard_ids)
            assert client.lost == [1]  # shard 0 untouched


def test_a_client_with_its_own_hook_is_refused(fake: FakeDiscordGateway) -> None:
    with (
        lavasync.Client(USER_ID, send_gateway=lambda g, p: None) as client,
        pytest.raises(ValueError),
    ):
        GatewayShard(TOKEN, client=client, url=fake.url, start=False)


def test_kick_and_channel_delete_close_the_nodes_voice(node: FakeNode) -> None:
    closed: list[int] = []
    with (
        FakeDiscordGateway(USER_ID, guilds={GUILD0: [CHANNEL0]}, node=node) as fake,
        lavasync.Client(USER_ID, destroy_on_kick=False) as client,
    ):
        client.add_listener(lavasync.WebSocketClosedEvent, lambda e: closed.append(e.code))
        client.add_node("main", node.uri, password=node.password, backoff=FAST)
        client.wait_ready(5)
        with GatewayShard(TOKEN, client=client, url=fake.url, **options()) as shard:
            shard.wait_ready(5)
            player = client.player(GUILD0)
            player.connect(CHANNEL0, timeout=5)
            fake.kick(GUILD0)
            wait_until(lambda: closed == [4014])
            # the node's 4014 and the gateway's null VOICE_STATE_UPDATE come on two threads: join
            # again only once the client knows it left (else connect() takes the dead values)
            wait_until(lambda: player.channel_id is None)
            player.connect(CHANNEL0, timeout=5)
            fake.delete_channel(GUILD0, CHANNEL0)
            wait_until(lambda: closed == [4014, 4022])
            assert fake.voice_state(GUILD0)["channel_id"] is None  # type: ignore[index]


@pytest.mark.skipif(
    not hasattr(lavasync.Client, "shard_lost"),
    reason="needs Client.shard_lost/shard_ready (issue 11 sections 1-2, built in parallel)",
)
@pytest.mark.parametrize("resume", [True, False], ids=["resumed", "invalid-session"])
def test_shard_dropped_then_resumed_rejoins_every_player_of_that_shard(
    node: FakeNode, resume: bool
) -> None:
    with (
        FakeDiscordGateway(
            USER_ID, guilds={GUILD0: [CHANNEL0], GUILD1: [CHANNEL1]}, node=node
        ) as fake,
        lavasync.Client(USER_ID) as client,
    ):
        client.add_node("main", node.uri, password=node.password, backoff=FAST)
        client.wait_ready(5)
        with connect(client, TOKEN, shards=2, url=fake.url, **options()) as group:
            group.wait_ready(5)
            track = node.add_track("A long song", length=600_000)
            for guild, channel in ((GUILD0, CHANNEL0), (GUILD1, CHANNEL1)):
                player = client.player(guild)
                player.connect(channel, timeout=5)
                player.play(track.encoded)
            wait_until(lambda: all(p.connected for p in client.players))
            if not resume:
                fake.refuse_next_resume(1)  # INVALID_SESSION false: a fresh IDENTIFY, READY
            fake.drop(1)  # the FakeNode's voice for GUILD1 closes with 4014 too
            if resume:
                fake.wait(lambda: fake.resumes == 1)
            else:
                fake.wait(lambda: fake.identifies == 3)
            # RESUMED -> lavasync rejoins GUILD1 through shard 1: a second OP 4 there
            fake.wait(lambda: len(fake.received_ops(1, 4)) >= 2, timeout=10)
            assert fake.received_ops(1, 4)[-1]["d"]["channel_id"] == str(CHANNEL1)
            assert len(fake.received_ops(0, 4)) == 1  # the other shard untouched
            wait_until(lambda: client.get_player(GUILD1) is not None)
            rejoined = client.get_player(GUILD1)
            assert rejoined is not None
            wait_until(lambda: rejoined.connected and rejoined.track is not None)


def test_the_core_never_imports_the_integrations() -> None:
    code = (
        "import sys, lavasync, lavasync.testing, lavasync.testing.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith('lavasync.ext')"
        " or m.split('.')[0] in ('discord', 'hikari')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "[]"
