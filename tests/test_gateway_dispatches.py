"""The rest of the gateway (issue 11 §2): guild outages and removal, deleted channels, and who is
listening (GUILD_CREATE's voice_states, other users' VOICE_STATE_UPDATEs). FakeNode + FakeGateway
over loopback."""

from __future__ import annotations

from conftest import USER_ID, wait_until
from voice_env import CHANNEL, OTHER_CHANNEL, guild_on, open_env

from lavasync import PlayerDestroyedEvent, VoiceLostEvent, VoiceRejoinedEvent

GUILD = guild_on(0)
ALICE, BOB, CAROL, MUSICBOT = 301, 302, 303, 399


def test_guild_outage_loses_voice_until_guild_create() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.play(player)
        sent = len(env.op4s(GUILD))
        env.gateway.guild_delete(GUILD, unavailable=True)
        lost = env.wait_event(VoiceLostEvent, guild_id=GUILD)
        assert lost.reason == "guild unavailable" and lost.channel_id == CHANNEL
        assert player.voice_lost and not player.destroyed
        # a RESUMED of its shard does not rejoin a guild that is still out
        env.gateway.resumed(0)
        env.settle()
        assert len(env.op4s(GUILD)) == sent
        env.gateway.guild_create(GUILD)
        env.wait_event(VoiceRejoinedEvent, guild_id=GUILD)
        assert env.op4s(GUILD)[sent:] == [str(CHANNEL)]
        assert player.connected and not player.voice_lost
        assert (env.server(GUILD) or {}).get("track") is not None


def test_removed_from_guild_destroys_without_op4() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        sent = len(env.op4s(GUILD))
        env.gateway.guild_delete(GUILD)
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=GUILD)
        assert destroyed.reason == "removed from guild" and player.destroyed
        env.fake.wait_for_request("DELETE", f"/v4/sessions/{env.sid}/players/{GUILD}")
        assert len(env.op4s(GUILD)) == sent  # no OP 4 for a guild the bot is not in
        assert not env.of(VoiceLostEvent)


def test_channel_delete_destroys_only_for_the_players_channel() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.gateway.channel_delete(GUILD, OTHER_CHANNEL)
        env.gateway.channel_delete(GUILD, CHANNEL)
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=GUILD)
        assert destroyed.reason == "channel deleted" and player.destroyed
        env.settle()
        assert len(env.of(PlayerDestroyedEvent)) == 1


def test_channel_delete_of_a_remembered_channel_while_voice_is_lost() -> None:
    with open_env() as env:
        player = env.join(GUILD)
        env.client._shards.burst, env.client._shards.per_second = 0, 0.0  # hold the rejoin
        env.gateway.drop_shard(0)
        env.client.shard_lost(0)
        delivered = len(env.gateway.delivered)
        env.gateway.resumed(0)  # no dispatch of a down shard gets through before this
        env.gateway.wait_delivered(delivered + 1)
        env.settle()
        assert player.voice_lost and env.op4s(GUILD)[-1] == str(CHANNEL)  # the first join only
        env.gateway.channel_delete(GUILD, CHANNEL)
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=GUILD)
        assert destroyed.reason == "channel deleted" and player.destroyed


def test_listeners_from_guild_create_and_voice_state_updates() -> None:
    with open_env() as env:
        env.gateway.guild_create(
            GUILD,
            voice_states=((ALICE, CHANNEL), (BOB, OTHER_CHANNEL), (MUSICBOT, CHANNEL)),
            bots=(MUSICBOT,),
        )
        env.gateway.wait_delivered(1)
        player = env.join(GUILD)
        assert player.listeners == frozenset({ALICE})  # not Bob (elsewhere), not a bot, not us
        env.gateway.user_voice(GUILD, BOB, CHANNEL)  # moved in
        env.gateway.user_voice(GUILD, CAROL, CHANNEL, bot=True)  # a bot joins: not a listener
        wait_until(lambda: player.listeners == {ALICE, BOB})
        env.gateway.user_voice(GUILD, ALICE, None)  # left
        wait_until(lambda: player.listeners == {BOB})
        env.gateway.move_channel(GUILD, OTHER_CHANNEL)  # the bot moves: nobody there
        wait_until(lambda: player.channel_id == OTHER_CHANNEL)
        assert player.listeners == frozenset()
        assert USER_ID not in player.listeners
        # a fresh GUILD_CREATE (after an outage) replaces what was known
        env.gateway.guild_create(
            GUILD, voice_states=((CAROL, OTHER_CHANNEL), (ALICE, OTHER_CHANNEL))
        )
        wait_until(lambda: player.listeners == {ALICE})  # Carol stays known as a bot
