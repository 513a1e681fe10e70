"""Shard lifecycle (issue 11 §1): a dropped shard's voice connections are lost at once and rejoined,
paced, on its next READY or RESUMED; the other shards are untouched. FakeNode + a sharded
FakeGateway over loopback."""

from __future__ import annotations

import pytest
from conftest import USER_ID, wait_until
from voice_env import CHANNEL, Env, guild_on, open_env

from lavasync import (
    Client,
    PlayerDestroyedEvent,
    VoiceLostEvent,
    VoiceRejoinedEvent,
    VoiceRejoinFailedEvent,
    decode_track,
)
from lavasync._shards import TokenBucket


def test_shard_count_and_shard_of_come_from_ready() -> None:
    with open_env(shards=4, client_shards=None) as env:
        client = env.client
        assert client.shard_count is None
        guild = guild_on(3, shards=4)
        assert client.shard_of(guild) == 0  # unknown count: one shard
        env.gateway.ready(2)
        wait_until(lambda: client.shard_count == 4)
        assert client.shard_of(guild) == 3 == (guild >> 22) % 4
        with pytest.raises(ValueError):
            client.shard_lost(4)
        with pytest.raises(ValueError):
            client.shard_ready(-1)
        with pytest.raises(ValueError):
            client.handle_gateway({"t": "RESUMED", "d": None}, shard_id=True)  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError):
            Client(USER_ID, shard_count=bad)  # type: ignore[arg-type]


def _connected_players(env: Env, per_shard: int = 2) -> dict[int, list[int]]:
    guilds = {s: [guild_on(s, i) for i in range(per_shard)] for s in (0, 1)}
    for shard_guilds in guilds.values():
        for guild in shard_guilds:
            player = env.join(guild)
            env.play(player)
    return guilds


def test_shard_lost_then_resumed_rejoins_that_shard_only_on_the_same_player() -> None:
    with open_env() as env:
        guilds = _connected_players(env)
        client = env.client
        before = {g: env.server(g) for g in guilds[1]}
        op4_before = {g: len(env.op4s(g)) for g in guilds[0] + guilds[1]}
        patches_shard0 = {g: len(env.voice_patches(g)) for g in guilds[0]}
        env.gateway.drop_shard(1)
        client.shard_lost(1)
        for guild in guilds[1]:
            player = client.get_player(guild)
            assert player is not None
            assert player.voice_lost and not player.connected
            assert player.channel_id == CHANNEL  # remembered
            event = env.wait_event(VoiceLostEvent, guild_id=guild)
            assert (event.reason, event.channel_id, event.shard_id) == ("shard lost", CHANNEL, 1)
        for guild in guilds[0]:
            player = client.get_player(guild)
            assert player is not None and player.connected and not player.voice_lost
        env.settle()
        assert all(len(env.op4s(g)) == op4_before[g] for g in guilds[1])  # nothing while lost

        env.gateway.resumed(1)
        for guild in guilds[1]:
            rejoined = env.wait_event(VoiceRejoinedEvent, guild_id=guild)
            assert rejoined.channel_id == CHANNEL and rejoined.track_replayed is False
            player = client.get_player(guild)
            assert player is not None and player.connected and not player.voice_lost
            assert env.op4s(guild)[op4_before[guild] :] == [str(CHANNEL)]  # one fresh OP 4
            now = env.server(guild)
            old = before[guild]
            assert now is not None and old is not None
            # same Lavalink player, new voice session, same track going on from its position
            assert now["voice"]["token"] != old["voice"]["token"]
            assert now["voice"]["channelId"] == str(CHANNEL)
            assert now["state"]["connected"] is True
            assert now["track"]["info"]["identifier"] == old["track"]["info"]["identifier"]
            assert now["state"]["position"] >= old["state"]["position"]
            assert env.track_patches(guild)[1:] == []  # not replayed: Lavalink kept it
        # the other shard was untouched
        for guild in guilds[0]:
            assert len(env.op4s(guild)) == op4_before[guild]
            assert len(env.voice_patches(guild)) == patches_shard0[guild]
            assert not env.of(VoiceLostEvent, guild_id=guild)
        # rejoins ran on lavasync's workers (never the gateway's or a reader thread)
        rejoin_threads = env.hook_threads[-len(guilds[1]) :]
        assert all(name.startswith("lavasync-worker-") for name in rejoin_threads)


def test_ready_after_a_loss_rejoins_and_takes_the_shard_from_ready() -> None:
    with open_env() as env:
        guild = guild_on(1)
        player = env.join(guild)
        env.play(player)
        env.gateway.drop_shard(1)
        env.client.shard_lost(1)
        env.gateway.deliver_sharded = None  # READY alone must name the shard
        env.gateway.deliver = env.client.handle_gateway
        env.gateway.ready(1)
        env.wait_event(VoiceRejoinedEvent, guild_id=guild)
        assert player.connected and not player.voice_lost


def test_shard_lost_for_an_hour_replays_the_track_lavalink_dropped() -> None:
    with open_env(cleanup_threshold=0.3) as env:
        guild = guild_on(1)
        player = env.join(guild)
        track = env.play(player)
        env.gateway.drop_shard(1)
        server = env.server(guild)
        assert server is not None and server["state"]["connected"] is False
        frozen = server["state"]["position"]
        wait_until(lambda: player.position == frozen)  # the closed voice reached the client
        env.client.shard_lost(1)
        # Lavalink's cleanup drops the track nobody polls (after about a minute on a server)
        wait_until(lambda: (env.server(guild) or {}).get("track", 0) is None)
        env.settle()
        # while the shard is away nothing wakes up: no timer, no OP 4
        assert env.client._workers._timers == []
        voice = player.voice
        assert voice is not None and voice._loss is not None
        voice._loss.since -= 3600  # an hour passed
        env.gateway.resumed(1)
        rejoined = env.wait_event(VoiceRejoinedEvent, guild_id=guild)
        assert rejoined.track_replayed is True
        assert rejoined.lost_for >= 3600
        replay = env.track_patches(guild)[-1]
        assert decode_track(replay["track"]["encoded"]).info.identifier == track.info.identifier
        assert replay["position"] == frozen
        wait_until(lambda: (env.server(guild) or {}).get("track") is not None)
        assert player.track is not None
        assert player.track.info.identifier == track.info.identifier
        assert player.connected


def test_second_loss_while_rejoining_starts_over() -> None:
    with open_env() as env:
        guilds = [guild_on(1, i) for i in range(3)]
        players = [env.join(g) for g in guilds]
        for player in players:
            env.play(player)
        shards = env.client._shards
        shards.burst, shards.per_second = 1, 0.0  # one OP 4, then none until woken
        env.gateway.drop_shard(1)
        env.client.shard_lost(1)
        sent = len(env.gateway.sent)
        env.gateway.resumed(1)
        env.gateway.wait_sent(sent + 1)
        first = env.gateway.sent[sent][0]
        env.wait_event(VoiceRejoinedEvent, guild_id=first)
        env.settle()
        assert len(env.gateway.sent) == sent + 1  # the other two wait for tokens
        # the shard drops again: everyone is lost again, the one already back included
        env.gateway.drop_shard(1)
        env.client.shard_lost(1)
        for guild in guilds:
            player = env.client.get_player(guild)
            assert player is not None and player.voice_lost
        env.wait_event(VoiceLostEvent, count=2, guild_id=first)
        shards.per_second = 1000.0
        shards.wake(1)  # a drain woken while the shard is down sends nothing
        env.settle()
        assert len(env.gateway.sent) == sent + 1
        env.gateway.resumed(1)
        for guild in guilds:
            env.wait_event(VoiceRejoinedEvent, count=2 if guild == first else 1, guild_id=guild)
            player = env.client.get_player(guild)
            assert player is not None and player.connected and not player.voice_lost
            assert (env.server(guild) or {}).get("track") is not None
        assert not env.of(VoiceRejoinFailedEvent)


def test_rejoins_are_paced_by_the_shards_bucket() -> None:
    with open_env() as env:
        guilds = [guild_on(1, i) for i in range(5)]
        for guild in guilds:
            env.join(guild)
        shards = env.client._shards
        shards.burst, shards.per_second = 2, 0.0
        env.gateway.drop_shard(1)
        env.client.shard_lost(1)
        sent = len(env.gateway.sent)
        env.gateway.resumed(1)
        env.gateway.wait_sent(sent + 2)
        wait_until(lambda: len(env.of(VoiceRejoinedEvent)) == 2)
        env.settle()
        assert len(env.gateway.sent) == sent + 2
        assert sum(env.client.get_player(g).voice_lost for g in guilds) == 3  # type: ignore[union-attr]
        shards.per_second = 1000.0
        shards.wake(1)
        wait_until(lambda: len(env.of(VoiceRejoinedEvent)) == 5)
        assert len(env.gateway.sent) == sent + 5


def test_default_pacing_stays_under_discords_120_per_minute() -> None:
    # 1,000 guilds on one shard, against a simulated clock: count takes in every 60 s window
    bucket = TokenBucket(10, 1.5, now=0.0)
    now, taken = 0.0, []
    while len(taken) < 1000:
        wait = bucket.take(now)
        if wait == 0:
            taken.append(now)
        else:
            now += wait
    start = 0
    for end, at in enumerate(taken):
        while taken[start] <= at - 60.0:
            start += 1
        assert end - start + 1 <= 100  # Discord allows 120: room for heartbeats and the host
    assert taken[-1] < 700  # and it does get through them: about 11 minutes


def test_resumed_without_shard_lost_rejoins_only_closed_voice() -> None:
    with open_env() as env:
        closed, fine = guild_on(1, 0), guild_on(1, 1)
        for guild in (closed, fine):
            env.play(env.join(guild))
        # the host missed the close; Lavalink reports the voice socket of one guild closed
        env.fake.close_voice(closed, 4014, "Disconnected.", session_id=env.sid)
        wait_until(lambda: not env.client.get_player(closed).connected)  # type: ignore[union-attr]
        fine_op4 = len(env.op4s(fine))
        env.gateway.resumed(1)
        lost = env.wait_event(VoiceLostEvent, guild_id=closed)
        assert lost.reason == "voice closed while the shard was away"
        env.wait_event(VoiceRejoinedEvent, guild_id=closed)
        env.settle()
        assert len(env.op4s(fine)) == fine_op4
        assert not env.of(VoiceLostEvent, guild_id=fine)


def test_rejoin_that_never_completes_leaves_and_destroys() -> None:
    with open_env() as env:
        guild = guild_on(1)
        player = env.join(guild)
        env.client._shards.rejoin_timeout = 0.3
        env.gateway.drop_shard(1)
        env.client.shard_lost(1)
        env.gateway.missing = {"VOICE_SERVER_UPDATE"}
        env.gateway.resumed(1)
        failed = env.wait_event(VoiceRejoinFailedEvent, guild_id=guild)
        assert "VOICE_SERVER_UPDATE" in failed.reason and failed.channel_id == CHANNEL
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=guild)
        assert destroyed.reason == "rejoin failed"
        assert player.destroyed and env.client.get_player(guild) is None
        assert env.op4s(guild)[-2:] == [str(CHANNEL), None]  # rejoined, then left
        env.fake.wait_for_request("DELETE", f"/v4/sessions/{env.sid}/players/{guild}")
        assert env.events.index(failed) < env.events.index(destroyed)
