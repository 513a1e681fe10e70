"""Voice and the Player over real sockets: join, play, end, leave, moves, close codes, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from conftest import FAST, USER_ID, ready_client, session_id, voice_patches, wait_until

from lavasync import (
    Client,
    EqualizerBand,
    Filters,
    LoopMode,
    PlayerDestroyedError,
    PlayerDestroyedEvent,
    Queue,
    Timescale,
    TrackEndEvent,
    TrackStartEvent,
    VoiceConnectTimeoutError,
)
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
CHANNEL = 1126593424391868476
OTHER_CHANNEL = 1126593424391868999


class Env:
    def __init__(self, fake: FakeNode, gateway: FakeGateway, client: Client) -> None:
        self.fake = fake
        self.gateway = gateway
        self.client = client

    @property
    def sid(self) -> str:
        return session_id(self.client)

    def voice_patches(self) -> list[Any]:
        return voice_patches(self.fake, self.sid, GUILD)


@pytest.fixture
def env() -> Iterator[Env]:
    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=1.0, player_update_interval=0.1))
        gateway = stack.enter_context(FakeGateway(USER_ID))
        yield Env(fake, gateway, ready_client(stack, fake, gateway))


def test_join_play_end_leave(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL, self_deaf=True)
    guild, payload = env.gateway.sent[0]
    assert guild == GUILD
    assert payload == {
        "op": 4,
        "d": {
            "guild_id": str(GUILD),
            "channel_id": str(CHANNEL),
            "self_mute": False,
            "self_deaf": True,
        },
    }
    voice = env.voice_patches()[-1].json["voice"]
    assert set(voice) == {"token", "endpoint", "sessionId", "channelId"}
    assert voice["channelId"] == str(CHANNEL)
    assert player.connected is True
    assert player.channel_id == CHANNEL
    track = env.fake.add_track("Short", length=400)
    info = player.play(track.encoded)
    assert info.track is not None and info.track.info.title == "Short"
    end = player.wait_for_track_end(timeout=10)
    assert end.reason == "finished" and end.may_start_next
    assert end.guild_id == GUILD
    assert player.track is None
    player.disconnect()
    assert env.gateway.sent[-1][1]["d"]["channel_id"] is None
    env.fake.wait_for_request("DELETE", f"/v4/sessions/{env.sid}/players/{GUILD}")
    assert env.client.get_player(GUILD) is None
    assert env.fake.player(env.sid, GUILD) is None


def test_connect_timeout_names_the_missing_update_and_leaves_no_half_state(env: Env) -> None:
    env.gateway.missing = {"VOICE_SERVER_UPDATE"}
    player = env.client.player(GUILD)
    with pytest.raises(VoiceConnectTimeoutError) as info:
        player.connect(CHANNEL, timeout=0.5)
    assert info.value.missing == ("VOICE_SERVER_UPDATE",)
    assert "VOICE_SERVER_UPDATE" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    assert env.voice_patches() == []
    assert env.gateway.sent[-1][1]["d"]["channel_id"] is None  # left again
    assert player.channel_id is None
    # Discord's answer to our own leave is not a kick: the player stays usable
    wait_until(lambda: len(env.gateway.delivered) >= 2)
    fence = threading.Event()
    env.client._call_soon(fence.set)
    assert fence.wait(5)
    assert not player.destroyed
    env.gateway.missing = set()
    player.connect(CHANNEL, timeout=5)
    assert player.connected


def test_region_move_and_channel_move_re_patch_voice(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    before = len(env.voice_patches())
    env.gateway.region_move(GUILD, "frankfurt99.discord.media:443")
    wait_until(lambda: len(env.voice_patches()) > before)
    assert env.voice_patches()[-1].json["voice"]["endpoint"] == "frankfurt99.discord.media:443"
    before = len(env.voice_patches())
    env.gateway.move_channel(GUILD, OTHER_CHANNEL)
    wait_until(lambda: len(env.voice_patches()) > before)
    assert env.voice_patches()[-1].json["voice"]["channelId"] == str(OTHER_CHANNEL)
    wait_until(lambda: player.channel_id == OTHER_CHANNEL)


def test_4014_then_another_channel_is_a_move_not_a_disconnect(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    before = len(env.voice_patches())
    env.fake.close_voice(GUILD, code=4014, by_remote=True)
    env.gateway.move_channel(GUILD, OTHER_CHANNEL)
    wait_until(lambda: len(env.voice_patches()) > before)
    assert not player.destroyed
    assert env.client.get_player(GUILD) is player


def test_kick_destroys_the_player_and_says_so(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    env.fake.close_voice(GUILD, code=4014, by_remote=True)
    env.gateway.kick(GUILD)
    wait_until(lambda: player.destroyed)
    event = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        event = env.client.poll(1)
        if isinstance(event, PlayerDestroyedEvent):
            break
    assert isinstance(event, PlayerDestroyedEvent) and event.reason == "kicked"
    env.fake.wait_for_request("DELETE", f"/v4/sessions/{env.sid}/players/{GUILD}")
    with pytest.raises(PlayerDestroyedError):
        player.wait_for_track_end(1)


def test_4006_triggers_one_fresh_rejoin(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    sent_before = len(env.gateway.sent)
    patches_before = len(env.voice_patches())
    env.fake.close_voice(GUILD, code=4006, by_remote=True)
    wait_until(lambda: len(env.gateway.sent) > sent_before)
    assert env.gateway.sent[sent_before][1]["d"]["channel_id"] == str(CHANNEL)
    wait_until(lambda: len(env.voice_patches()) > patches_before)
    assert len(env.gateway.sent) == sent_before + 1


def test_sixteen_threads_on_one_player(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded)
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def work(i: int) -> None:
        try:
            barrier.wait(5)
            for j in range(5):
                player.set_volume(i * 10 + j)
                if j % 2:
                    player.pause()
                else:
                    player.resume()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(i,), name=f"lavasync-test-{i}") for i in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    server = env.fake.player(env.sid, GUILD)
    assert server is not None
    assert player.volume == server["volume"]
    assert player.paused == server["paused"]


def test_position_is_interpolated_at_wall_rate_and_frozen_when_paused(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded, start=1_000)
    now = time.monotonic()
    with player._lock:
        player._pos = (1_000, now - 2.0)
        player._connected = True
        player._paused = False
    assert 2_990 <= player.position <= 3_200
    with player._lock:
        player._paused = True
    assert player.position == 1_000
    with player._lock:
        player._paused = False
        player._filters = Filters(timescale=Timescale(speed=2.0, rate=1.5))
        player._pos = (1_000, time.monotonic() - 1.0)
    # the server's position runs at wall-clock rate under a timescale (PROTOCOL.md)
    assert 1_990 <= player.position <= 2_300
    with player._lock:
        player._pos = (599_000, time.monotonic() - 100.0)
    assert player.position == 600_000  # clamped to the length
    player.seek(10_000)
    assert 10_000 <= player.position < 12_000


def test_pause_and_seek_reflect_the_server(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded)
    info = player.pause()
    assert info.paused is True and player.paused is True
    frozen = player.position
    assert player.position == frozen
    info = player.seek(30_000)
    assert player.position == 30_000
    info = player.resume()
    assert info.paused is False
    player.set_filters(Filters.nightcore())
    assert env.fake.player(env.sid, GUILD)["filters"]["timescale"]["speed"] > 1.0
    assert player.filters.timescale is not None
    player.clear_filters()
    assert player.filters.timescale is None


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("set_volume", (1001,)),
        ("set_volume", (-1,)),
        ("seek", (-1,)),
        ("set_filters", (Filters(equalizer=[EqualizerBand(band=15, gain=0.1)]),)),
        ("set_filters", (Filters(timescale=Timescale(speed=0.0)),)),
        ("play", ("",)),
        ("play", ("QAAA",)),
    ],
)
def test_bad_input_raises_value_error_and_sends_nothing(
    env: Env, call: str, args: tuple[Any, ...]
) -> None:
    player = env.client.player(GUILD)
    env.fake.clear_requests()
    kwargs: dict[str, Any] = {"start": -5} if args == ("QAAA",) else {}
    with pytest.raises(ValueError):
        getattr(player, call)(*args, **kwargs)
    assert env.fake.requests == []


def test_wait_for_track_end_raises_when_destroyed(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded)
    result: list[BaseException] = []

    def waiter() -> None:
        try:
            player.wait_for_track_end(10)
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=waiter, name="lavasync-test-waiter")
    t.start()
    player.destroy()
    t.join(5)
    assert not t.is_alive()
    assert len(result) == 1 and isinstance(result[0], PlayerDestroyedError)


def test_queue_advances_once_even_on_replayed_ends(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    tracks = [env.fake.add_track(f"T{i}", length=600_000) for i in range(3)]
    loaded = env.client.load(tracks[0].identifier).tracks
    queue = Queue(player, client=env.client)
    queue.add(loaded)
    queue.add([env.client.load(t.identifier).tracks[0] for t in tracks[1:]])
    started = threading.Event()
    starts: list[str] = []

    def on_start(event: TrackStartEvent) -> None:
        starts.append(event.track.info.title)
        started.set()

    env.client.add_listener(TrackStartEvent, on_start)
    assert queue.start() is not None
    wait_until(lambda: len(starts) >= 1)
    assert starts == ["T0"], starts
    end_frame = {
        "op": "event",
        "type": "TrackEndEvent",
        "guildId": str(GUILD),
        "track": tracks[0].to_wire(),
        "reason": "finished",
    }
    env.fake.finish_track(GUILD)
    wait_until(lambda: starts == ["T0", "T1"])
    # the same end delivered again (as a resume replay would) must not skip T1
    ends = threading.Event()
    env.client.add_listener(TrackEndEvent, lambda e: ends.set() if e.replayed else None)
    env.fake.emit({**end_frame})
    env.fake.emit({**end_frame, "reason": "replaced"})
    marker = threading.Event()
    env.client.add_listener(TrackStartEvent, lambda e: marker.set())
    # give the dispatcher a point of order: a later event proves the earlier ones were handled
    done = threading.Event()
    from lavasync import UnknownEvent

    env.client.add_listener(UnknownEvent, lambda e: done.set())
    env.fake.emit({"op": "event", "type": "Fence", "guildId": str(GUILD)})
    assert done.wait(5)
    assert starts == ["T0", "T1"]
    assert queue.current is not None and queue.current.info.title == "T1"
    assert [t.info.title for t in queue.history] == ["T0"]


def test_queue_container_operations(env: Env) -> None:
    player = env.client.player(GUILD)
    tracks = [env.client.load(env.fake.add_track(f"Q{i}").identifier).tracks[0] for i in range(4)]
    queue = Queue(player, loop="queue")
    assert queue.add(tracks) == 4
    assert queue.remove(1).info.title == "Q1"
    queue.add(tracks[1], index=0)
    assert [t.info.title for t in queue] == ["Q1", "Q0", "Q2", "Q3"]
    assert queue.next().info.title == "Q1"  # type: ignore[union-attr]
    assert queue.next().info.title == "Q0"  # type: ignore[union-attr]
    assert [t.info.title for t in queue][-1] == "Q1"  # loop queue: back of the line
    queue.loop = LoopMode.TRACK
    assert queue.next().info.title == "Q0"  # type: ignore[union-attr]
    import random

    queue.shuffle(random.Random(4))
    assert sorted(t.info.title for t in queue) == ["Q1", "Q2", "Q3"]
    queue.clear()
    assert len(queue) == 0
    with pytest.raises(ValueError):
        queue.add("not a track")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        queue.remove(5)


def test_a_lost_node_with_no_other_node_leaves_voice_for_its_guilds() -> None:
    with FakeNode(stats_interval=1.0) as fake, FakeGateway(USER_ID) as gateway:
        client = Client(USER_ID, gateway.hook, lost_player_timeout=0.3)
        gateway.deliver = client.handle_gateway
        try:
            client.add_node(
                "solo", fake.uri, password=fake.password, backoff=FAST, resume_timeout=None
            )
            client.wait_ready(5)
            player = client.player(GUILD)
            player.connect(CHANNEL)
            fake.refuse_connections(True)
            fake.drop_connections()
            wait_until(lambda: player.destroyed, timeout=10)
            leave = gateway.sent[-1]
            assert leave == (
                GUILD,
                {
                    "op": 4,
                    "d": {
                        "guild_id": str(GUILD),
                        "channel_id": None,
                        "self_mute": False,
                        "self_deaf": False,
                    },
                },
            )
            with pytest.raises(PlayerDestroyedError):
                player.wait_for_track_end(1)
        finally:
            fake.refuse_connections(False)
            assert client.close(5)


def test_move_to_another_channel_re_patches_voice(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL, self_deaf=True)
    player.move_to(OTHER_CHANNEL)
    assert env.gateway.sent[-1][1]["d"] == {
        "guild_id": str(GUILD),
        "channel_id": str(OTHER_CHANNEL),
        "self_mute": False,
        "self_deaf": True,
    }
    assert env.voice_patches()[-1].json["voice"]["channelId"] == str(OTHER_CHANNEL)
    assert player.channel_id == OTHER_CHANNEL


def test_update_filters_keeps_the_others_and_stop_ends_the_track(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded)
    player.set_filters(Filters(volume=0.8, timescale=Timescale(speed=1.1)))
    player.update_filters(rotation=None, timescale=Timescale(pitch=1.2))
    sent = env.fake.requests[-1].json["filters"]
    assert sent["volume"] == 0.8
    assert sent["timescale"]["pitch"] == 1.2
    assert player.filters.volume == 0.8
    player.update_filters(timescale=None)
    assert "timescale" not in env.fake.requests[-1].json["filters"]
    with pytest.raises(ValueError):
        player.update_filters(timescale=Timescale(rate=-1.0))
    info = player.stop()
    assert info.track is None
    end = player.wait_for_track_end(5)
    assert end.reason == "stopped"
    assert not end.may_start_next
