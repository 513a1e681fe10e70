"""Every Discord voice close code as Lavalink reports it (WebSocketClosedEvent), with its reaction
(issue 11 §2). FakeNode + FakeGateway over loopback."""

from __future__ import annotations

import time

import pytest
from conftest import wait_until
from voice_env import CHANNEL, OTHER_CHANNEL, guild_on, open_env

from lavasync import (
    PlayerDestroyedEvent,
    VoiceErrorEvent,
    VoiceLostEvent,
    VoiceRejoinedEvent,
    WebSocketClosedEvent,
)

GUILD = guild_on(0)


@pytest.mark.parametrize("code", [4006, 4009, 4015])
def test_session_codes_rejoin_with_a_fresh_op4(code: int) -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.play(player)
        token = (env.server(GUILD) or {})["voice"]["token"]
        sent = len(env.op4s(GUILD))
        env.fake.close_voice(GUILD, code, "closed", session_id=env.sid)
        lost = env.wait_event(VoiceLostEvent, guild_id=GUILD)
        assert (lost.reason, lost.code, lost.channel_id) == ("voice closed", code, CHANNEL)
        env.wait_event(VoiceRejoinedEvent, guild_id=GUILD)
        assert env.op4s(GUILD)[sent:] == [str(CHANNEL)]
        server = env.server(GUILD) or {}
        assert server["voice"]["token"] != token  # a new voice session, not the old data again
        assert server["state"]["connected"] is True and server["track"] is not None
        # one PATCH with the new values (the old token is never re-sent)
        patches = env.voice_patches(GUILD)
        assert patches[-1]["voice"]["token"] == server["voice"]["token"]
        assert [p["voice"]["token"] for p in patches].count(token) == 1
        assert player.connected and not player.voice_lost
        assert not env.of(VoiceErrorEvent)


def test_4021_rejoins_only_after_the_backoff() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.client._shards.rate_limit_backoff = 3600.0
        sent = len(env.op4s(GUILD))
        env.fake.close_voice(GUILD, 4021, "Rate limited.", session_id=env.sid)
        lost = env.wait_event(VoiceLostEvent, guild_id=GUILD)
        assert lost.code == 4021
        env.settle()
        assert len(env.op4s(GUILD)) == sent  # not now
        assert player.voice_lost
        timers = env.client._workers._timers
        assert len(timers) == 1 and timers[0][0] > time.monotonic() + 3000  # one deadline


def test_4021_rejoin_happens_once_the_backoff_passed() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.client._shards.rate_limit_backoff = 0.2
        sent = len(env.op4s(GUILD))
        env.fake.close_voice(GUILD, 4021, "Rate limited.", session_id=env.sid)
        env.wait_event(VoiceRejoinedEvent, guild_id=GUILD)
        assert env.op4s(GUILD)[sent:] == [str(CHANNEL)]
        assert player.connected


def test_4017_says_the_server_lacks_dave_and_does_not_rejoin() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        sent = len(env.op4s(GUILD))
        env.fake.close_voice(GUILD, 4017, "E2EE/DAVE protocol required", session_id=env.sid)
        error = env.wait_event(VoiceErrorEvent, guild_id=GUILD)
        assert error.code == 4017 and error.by_remote is True
        assert "DAVE" in error.meaning and "4.2" in error.meaning
        assert error.reason == "E2EE/DAVE protocol required"
        env.settle()
        assert len(env.op4s(GUILD)) == sent
        assert not player.destroyed and not player.voice_lost and not player.connected


@pytest.mark.parametrize(
    ("code", "words"),
    [(4004, "authentication failed"), (4016, "encryption mode"), (1006, "abnormal")],
)
def test_other_codes_give_an_error_event_with_the_meaning(code: int, words: str) -> None:
    with open_env() as env:
        env.join(GUILD)
        sent = len(env.op4s(GUILD))
        env.fake.close_voice(GUILD, code, "", by_remote=code != 1006, session_id=env.sid)
        error = env.wait_event(VoiceErrorEvent, guild_id=GUILD)
        assert error.code == code and words in error.meaning
        env.settle()
        assert len(env.op4s(GUILD)) == sent
        assert not env.of(VoiceLostEvent)


def test_1000_from_lavalink_itself_is_no_error() -> None:
    with open_env() as env:
        env.join(GUILD)
        env.fake.close_voice(GUILD, 1000, "", by_remote=False, session_id=env.sid)
        env.wait_event(WebSocketClosedEvent, guild_id=GUILD, code=1000)
        env.settle()
        assert not env.of(VoiceErrorEvent) and not env.of(VoiceLostEvent)


def test_4022_then_a_new_voice_server_follows_the_server() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        patches = len(env.voice_patches(GUILD))
        env.fake.close_voice(GUILD, 4022, "Call terminated.", session_id=env.sid)
        env.gateway.region_move(GUILD, "frankfurt99.discord.media:443")
        wait_until(lambda: len(env.voice_patches(GUILD)) > patches)
        assert env.voice_patches(GUILD)[-1]["voice"]["endpoint"] == "frankfurt99.discord.media:443"
        wait_until(lambda: player.connected)
        env.settle()
        assert not player.destroyed
        assert not env.of(VoiceErrorEvent) and not env.of(VoiceLostEvent)


def test_4022_then_channel_delete_destroys() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.gateway.channel_delete(GUILD, CHANNEL)  # Lavalink reports 4022 first
        env.wait_event(WebSocketClosedEvent, guild_id=GUILD, code=4022)
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=GUILD)
        assert destroyed.reason == "channel deleted" and player.destroyed
        assert not env.of(VoiceErrorEvent) and not env.of(VoiceLostEvent)


def test_4014_then_a_move_is_followed() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.fake.close_voice(GUILD, 4014, "Disconnected.", session_id=env.sid)
        env.gateway.move_channel(GUILD, OTHER_CHANNEL)
        wait_until(lambda: (env.server(GUILD) or {})["voice"]["channelId"] == str(OTHER_CHANNEL))
        env.settle()
        assert not player.destroyed and player.channel_id == OTHER_CHANNEL
        assert not env.of(VoiceErrorEvent) and not env.of(VoiceLostEvent)
