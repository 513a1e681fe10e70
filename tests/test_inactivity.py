"""The inactivity helper (issue 11 §2): ``Client(leave_after_alone=..., leave_after_idle=...)``
leaves and destroys a player alone in its channel or idle for that long, with an event first.
FakeNode + FakeGateway over loopback."""

from __future__ import annotations

import pytest
from conftest import USER_ID
from voice_env import CHANNEL, guild_on, open_env

from lavasync import Client, PlayerDestroyedEvent, PlayerInactiveEvent

GUILD = guild_on(0)
ALICE, HELPERBOT = 301, 399


def test_alone_in_the_channel_leaves_after_the_limit() -> None:
    with open_env(leave_after_alone=0.3) as env:
        env.gateway.user_voice(GUILD, ALICE, CHANNEL)
        env.gateway.user_voice(GUILD, HELPERBOT, CHANNEL, bot=True)  # bots are no company
        env.gateway.wait_delivered(2)
        player = env.join(GUILD)
        env.play(player)
        assert player.listeners == {ALICE}
        env.settle()
        assert env.client._inactivity._watch == {}  # nothing pending while someone listens
        env.gateway.user_voice(GUILD, ALICE, None)
        inactive = env.wait_event(PlayerInactiveEvent, guild_id=GUILD)
        assert (inactive.reason, inactive.after) == ("alone", 0.3)
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=GUILD)
        assert destroyed.reason == "inactive" and player.destroyed
        assert env.events.index(inactive) < env.events.index(destroyed)
        assert env.op4s(GUILD)[-1] is None  # left the channel
        env.fake.wait_for_request("DELETE", f"/v4/sessions/{env.sid}/players/{GUILD}")


def test_someone_coming_back_in_time_keeps_the_player() -> None:
    with open_env(leave_after_alone=30.0) as env:
        env.gateway.user_voice(GUILD, ALICE, CHANNEL)
        env.gateway.wait_delivered(1)
        player = env.join(GUILD)
        env.gateway.user_voice(GUILD, ALICE, None)
        env.gateway.wait_delivered(4)
        env.settle()
        watch = env.client._inactivity._watch[GUILD]
        assert watch.alone_since is not None and watch.armed_at is not None  # clock running
        env.gateway.user_voice(GUILD, ALICE, CHANNEL)
        env.gateway.wait_delivered(5)
        env.settle()
        watch = env.client._inactivity._watch.get(GUILD)
        assert watch is None or watch.alone_since is None  # the alone clock stopped
        assert player.listeners == {ALICE} and not player.destroyed


def test_idle_without_a_track_leaves_after_the_limit() -> None:
    with open_env(leave_after_idle=0.3) as env:
        env.gateway.user_voice(GUILD, ALICE, CHANNEL)
        env.gateway.wait_delivered(1)
        player = env.join(GUILD)
        env.play(player)
        env.settle()
        assert not env.of(PlayerInactiveEvent)
        env.fake.finish_track(GUILD, session_id=env.sid)
        inactive = env.wait_event(PlayerInactiveEvent, guild_id=GUILD)
        assert (inactive.reason, inactive.after) == ("idle", 0.3)
        destroyed = env.wait_event(PlayerDestroyedEvent, guild_id=GUILD)
        assert destroyed.reason == "inactive"
        assert env.events.index(inactive) < env.events.index(destroyed)
        assert env.op4s(GUILD)[-1] is None


def test_off_by_default() -> None:
    with open_env() as env:
        player = env.join(GUILD)  # alone and idle
        env.settle()
        assert env.client._inactivity._watch == {}
        assert env.client._workers._timers == []
        assert not player.destroyed


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_limits_are_checked(bad: object) -> None:
    for name in ("leave_after_alone", "leave_after_idle"):
        with pytest.raises(ValueError):
            Client(USER_ID, **{name: bad})  # type: ignore[arg-type]
