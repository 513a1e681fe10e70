"""Real servers: the whole player flow against Lavalink's and NodeLink's shapes, server
detection, Lavalink v3 refused at connect, older 4.x noted, and a clean close.

FakeNode(dialect="nodelink") reproduces what NodeLink 3.7 sends (the reference notes on
Lavalink-compatible servers); dialect="lavalink-v3" is an old server with no /v4 routes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from conftest import FAST, USER_ID, wait_until

import lavasync
from lavasync import (
    Client,
    Filters,
    LoadError,
    NodeResumedEvent,
    ServerVersion,
    StatsEvent,
    Timescale,
    TrackEndEvent,
    TrackStartEvent,
    UnknownEvent,
    UnsupportedServerError,
    WebSocketClosedEvent,
)
from lavasync.node import NodeState
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
CHANNEL = 1126593424391868476


class Env:
    def __init__(self, fake: FakeNode, gateway: FakeGateway, client: Client) -> None:
        self.fake = fake
        self.gateway = gateway
        self.client = client
        self.events: list[Any] = []
        self.lock = threading.Lock()

        @client.on(lavasync.Event)
        def record(event: Any) -> None:
            with self.lock:
                self.events.append(event)

    def seen(self, cls: type, **attrs: Any) -> list[Any]:
        with self.lock:
            return [
                e
                for e in self.events
                if isinstance(e, cls) and all(getattr(e, k) == v for k, v in attrs.items())
            ]

    @property
    def node(self) -> lavasync.Node:
        return self.client.nodes[0]

    @property
    def sid(self) -> str:
        sid = self.node.session_id
        assert sid is not None
        return sid


def start_env(stack: ExitStack, dialect: str, **fake_options: Any) -> Env:
    options = {"stats_interval": 0.2, "player_update_interval": 0.1, **fake_options}
    fake = stack.enter_context(FakeNode(dialect=dialect, **options))
    gateway = stack.enter_context(FakeGateway(USER_ID))
    client = Client(USER_ID, gateway.hook)
    stack.callback(client.close, 5)
    gateway.deliver = client.handle_gateway
    env = Env(fake, gateway, client)
    client.add_node("main", fake.uri, password=fake.password, backoff=FAST, resume_timeout=30)
    client.wait_ready(5)
    return env


@pytest.fixture(params=["lavalink", "nodelink"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with ExitStack() as stack:
        yield start_env(stack, request.param)


def test_the_whole_player_flow_works_against_both_dialects(env: Env) -> None:
    nodelink = env.fake.dialect == "nodelink"
    client, fake, node = env.client, env.fake, env.node
    # connect: the node knows what it talks to
    version = node.version
    assert isinstance(version, ServerVersion)
    assert version.implementation == ("nodelink" if nodelink else "lavalink")
    assert version.as_tuple == ((3, 7, 0) if nodelink else (4, 2, 2))
    assert version.api == 4
    assert node.info is not None and "http" in node.info.source_managers
    # stats: read (nodelinkLoad or lavalinkLoad), so the node has a finite penalty
    wait_until(lambda: node.stats is not None and bool(env.seen(StatsEvent)), 5)
    assert math.isfinite(node.penalty())
    # load, decode, empty, error
    song = fake.add_track("Short song", length=600)
    long = fake.add_track("Long song", length=600_000)
    result = client.load(song.info.identifier)
    assert result.load_type == "track"
    track = result.tracks[0]
    assert lavasync.decode_track(track.encoded).info.title == "Short song"
    assert node.rest.decode_track(track.encoded).info.title == "Short song"
    assert client.load("fake:empty").load_type == "empty"
    failed = client.load("fake:error")
    assert failed.load_type == "error" and failed.exception is not None
    assert failed.exception.message
    with pytest.raises(LoadError):
        client.load("fake:error", raise_on_error=True)
    # a player call before voice: the answer (null voice on NodeLink) is read, state matches
    player = client.player(GUILD)
    info = player.set_volume(80)
    assert info.volume == 80 and player.volume == 80
    assert info.voice.token == ""
    # voice, play, position
    player.connect(CHANNEL)
    player.play(long.encoded)
    wait_until(lambda: bool(env.seen(TrackStartEvent, guild_id=GUILD)), 5)
    wait_until(lambda: player.position > 0, 5)
    # pause, resume, seek, volume
    assert player.pause().paused is True
    frozen = player.position
    assert player.position == frozen
    assert player.resume().paused is False
    player.seek(5_000)
    assert player.position >= 5_000
    assert player.set_volume(50).volume == 50
    # filters: NodeLink answers them wrapped; a change is sent back unwrapped
    player.set_filters(Filters(timescale=Timescale(speed=1.2)))
    player.update_filters(volume=0.5)
    sent = fake.requests[-1].json
    assert sent is not None and "filters" not in sent["filters"]
    assert sent["filters"]["volume"] == 0.5
    assert sent["filters"]["timescale"]["speed"] == 1.2
    server = fake.player(env.sid, GUILD)
    assert server is not None and server["filters"]["volume"] == 0.5
    assert player.filters.volume == 0.5
    assert player.filters.timescale is not None and player.filters.timescale.speed == 1.2
    assert player.filters.wire_extras == {}
    player.clear_filters()
    # track end
    player.play(track)
    end = player.wait_for_track_end(timeout=5)
    assert end.reason == "finished" and end.track.info.title == "Short song"
    # session resume after a dropped socket
    player.play(long.encoded)
    sid = env.sid
    fake.drop_connections()
    wait_until(lambda: bool(env.seen(NodeResumedEvent)), 10)
    assert env.sid == sid and node.state is NodeState.READY
    # stop
    info = player.stop()
    assert info.track is None
    wait_until(lambda: bool(env.seen(TrackEndEvent, reason="stopped")), 5)
    # Discord closes the voice socket (4014)
    fake.close_voice(GUILD, 4014, "Disconnected.")
    wait_until(lambda: bool(env.seen(WebSocketClosedEvent, code=4014)), 5)
    # disconnect, close
    player.disconnect()
    assert player.destroyed
    assert client.close(5)
    wait_until(lambda: 1000 in fake.ws_close_codes, 5)
    assert fake.ws_close_codes[-1] == 1000
    if nodelink:  # its extra events are surfaced as unknown events, nothing worse
        kinds = {e.type for e in env.seen(UnknownEvent)}
        assert {"PlayerCreatedEvent", "VolumeChangedEvent", "FiltersChangedEvent"} <= kinds


def test_nodelink_unknown_length_never_gives_a_negative_position() -> None:
    with ExitStack() as stack:
        env = start_env(stack, "nodelink")
        wav = env.fake.add_track("A WAV file", length=-1, source_name="http")
        track = env.client.load(wav.info.identifier).tracks[0]
        assert track.info.length == -1
        assert track.info.is_unknown_length and track.info.duration is None
        player = env.client.player(GUILD)
        player.connect(CHANNEL)
        player.play(track)
        wait_until(lambda: player.position > 0, 5)
        assert player.track_position > 0


def test_a_rebuild_after_a_lost_session_survives_length_minus_one() -> None:
    """The node must not stay CONNECTING: rebuilding a -1 track sends a position >= 0."""
    with ExitStack() as stack:
        env = start_env(stack, "nodelink")
        wav = env.fake.add_track("A WAV file", length=-1, source_name="http")
        player = env.client.player(GUILD)
        player.connect(CHANNEL)
        player.play(wav.encoded)
        old = env.sid
        env.fake.kill(lose_sessions=True)
        env.fake.revive()
        wait_until(lambda: env.node.session_id not in (None, old), 10)
        env.client.wait_ready(5)
        wait_until(lambda: env.fake.player(env.sid, GUILD) is not None, 5)
        server = env.fake.player(env.sid, GUILD)
        assert server is not None and server["track"]["info"]["title"] == "A WAV file"
        rebuilds = [
            r.json
            for r in env.fake.requests
            if r.method == "PATCH" and env.sid in r.path and r.json and "track" in r.json
        ]
        assert rebuilds and all(body.get("position", 0) >= 0 for body in rebuilds)
        assert player.position >= 0
        assert env.client.load("fake:empty").load_type == "empty"


def test_nodelink_does_not_replay_events_after_a_resume() -> None:
    with ExitStack() as stack:
        env = start_env(stack, "nodelink")
        short = env.fake.add_track("Short", length=300)
        player = env.client.player(GUILD)
        player.connect(CHANNEL)
        env.fake.stop_answering()  # the socket stalls; the session is paused server-side
        env.fake.drop_connections()
        env.fake.resume_answering()
        wait_until(lambda: bool(env.seen(NodeResumedEvent)), 10)
        player.play(short.encoded)
        end = player.wait_for_track_end(timeout=5)
        assert end.reason == "finished"
        assert not any(e.replayed for e in env.seen(TrackEndEvent))


def test_nodelink_answers_are_read_liberally() -> None:
    """The shapes of COMPATIBLE_SERVERS.md reach lavasync's models without an exception."""
    with FakeNode(dialect="nodelink") as fake:
        rest = lavasync.rest.RestClient(
            lavasync.transport.rest.RestTransport(fake.uri, fake.password, client_name="t")
        )
        with rest:
            info = rest.info()
            assert info.jvm == "" and info.version.semver == "3.7.0"
            assert info.wire_extras["isNodelink"] is True
            stats = rest.stats()
            assert stats.cpu.lavalink_load == 0.0 and stats.frame_stats is None
            assert rest.version() == "3.7.0"
            error = rest.load_tracks("fake:error")
            assert error.is_error and error.exception is not None
            assert error.exception.severity == "common"
            with pytest.raises(LoadError, match="HTTP error 404"):
                rest.load_tracks("fake:error", raise_on_error=True)
            sid = fake.create_session()
            created = rest.get_player(sid, GUILD)  # NodeLink creates it on GET
            assert created.guild_id == GUILD and created.track is None
            assert created.voice.session_id == "" and created.voice.channel_id is None
            assert created.wire_extras.get("fading") == {"enabled": False}
        assert fake.requests[0].headers.get("Authorization") == fake.password


def test_stats_frames_with_nodelink_load_are_not_skipped() -> None:
    with ExitStack() as stack:
        env = start_env(stack, "nodelink")
        wait_until(lambda: bool(env.seen(StatsEvent)), 5)
        event = env.seen(StatsEvent)[0]
        assert event.stats.cpu.cores >= 1
        assert event.stats.cpu.lavalink_load == 0.0
        assert env.node.stats is not None


def test_a_lavalink_v3_server_fails_fast_naming_its_version() -> None:
    with FakeNode(dialect="lavalink-v3") as fake, Client(USER_ID) as client:
        node = client.add_node("old", fake.uri, password=fake.password, backoff=FAST)
        with pytest.raises(UnsupportedServerError) as info:
            node.wait_ready(5)
        assert info.value.version == "3.7.12"
        assert "3.7.12" in str(info.value) and "v4" in str(info.value)
        assert node.state is NodeState.FAILED
        handshakes = [r for r in fake.requests if r.path == "/v4/websocket"]
        assert len(handshakes) == 1  # no retry loop


def test_nodelink_is_not_mistaken_for_lavalink_v3() -> None:
    with FakeNode(dialect="nodelink") as fake, Client(USER_ID) as client:
        node = client.add_node("n", fake.uri, password=fake.password, backoff=FAST)
        node.wait_ready(5)
        assert node.version is not None and node.version.implementation == "nodelink"
        assert str(node.version) == "NodeLink 3.7.0 (API v4)"


@pytest.mark.parametrize("version", ["4.0.8", "4.1.1"])
def test_older_lavalink_4_works_and_is_noted_once_at_info(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lavasync.node")
    with FakeNode(version=version) as fake, Client(USER_ID) as client:
        node = client.add_node("old4", fake.uri, password=fake.password, backoff=FAST)
        node.wait_ready(5)
        assert node.version is not None and node.version.semver == version
        sid = node.session_id
        fake.close_websockets(1001)
        wait_until(lambda: node.session_id != sid or node.state is not NodeState.READY, 5)
        node.wait_ready(5)
    notes = [r for r in caplog.records if "predates 4.2" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert "DAVE" in notes[0].getMessage()


def test_close_sends_a_close_frame_1000() -> None:
    with FakeNode() as fake:
        client = Client(USER_ID)
        client.add_node("n", fake.uri, password=fake.password, backoff=FAST)
        client.wait_ready(5)
        assert client.close(5)
        wait_until(lambda: bool(fake.ws_close_codes), 5)
        assert fake.ws_close_codes == [1000]


def test_liberal_reading_defaults_missing_and_null_fields() -> None:
    from lavasync.models import Info, PlayerInfo, Stats, Track, WireFormatError

    track = Track.from_server(
        {"encoded": "QAAA", "info": {"title": None, "length": 1.5e3, "isStream": 0, "uri": 3}}
    )
    assert track.info.title == "" and track.info.length == 1500
    assert track.info.is_stream is False and track.info.uri == "3"  # coerced to a string
    assert track.plugin_info == {} and track.user_data == {}
    with pytest.raises(WireFormatError, match="encoded"):  # essential: nothing to play without
        Track.from_server({"info": {}})
    with pytest.raises(WireFormatError):
        Info.from_server({"unexpected": True})
    version = Info.from_server({"version": {"semver": "4.1.2"}}).version
    assert version.as_tuple == (4, 1, 2)
    stats = Stats.from_server({"players": 2, "cpu": None, "memory": {"free": 1}})
    assert stats.players == 2 and stats.cpu.cores == 0 and stats.memory.used == 0
    player = PlayerInfo.from_server(
        {"guildId": str(GUILD), "state": {"position": 5, "ping": None}, "filters": None}
    )
    assert player.state.ping == -1 and player.state.connected is False
    assert player.filters.is_empty and player.volume == 0 and player.track is None
    # Lavalink's own shapes take the strict fast path and round-trip unchanged
    lavalink = {"guildId": str(GUILD), "track": None, "volume": 100, "paused": False,
                "state": {"time": 1, "position": 0, "connected": True, "ping": 3},
                "voice": {"token": "t", "endpoint": "e", "sessionId": "s", "channelId": "1"},
                "filters": {"volume": 0.5, "equalizer": [{"band": 0, "gain": 0.1}]}}  # fmt: skip
    assert PlayerInfo.from_server(lavalink).to_wire() == lavalink


def test_each_dialect_sends_player_updates_at_its_own_pace() -> None:
    # Lavalink sends a playerUpdate every 5 s, NodeLink every 2 s (COMPATIBLE_SERVERS.md, 8)
    with FakeNode() as lavalink, FakeNode(dialect="nodelink") as nodelink:
        assert lavalink.player_update_interval == 5.0
        assert nodelink.player_update_interval == 2.0
    with FakeNode(dialect="nodelink", player_update_interval=0.1) as quick:
        assert quick.player_update_interval == 0.1
