"""The voice state machine under faults (issue 9): ``timeout=None`` and failed joins never wedge
it, updates arriving while a voice PATCH is in flight still reach Lavalink, and a voice PATCH that
fails inside ``connect`` leaves the Discord channel. FakeNode + FakeGateway over loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Optional

import pytest
from conftest import USER_ID, ready_client, session_id, voice_patches, wait_until

from lavasync import Client, LavasyncTimeoutError, RestError, VoiceConnectTimeoutError
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
CHANNEL = 1126593424391868476
OTHER_CHANNEL = 1126593424391868999
THIRD_CHANNEL = 1126593424391869111
FRANKFURT = "frankfurt99.discord.media:443"
AMSTERDAM = "amsterdam7.discord.media:443"


class Env:
    def __init__(self, fake: FakeNode, gateway: FakeGateway, client: Client) -> None:
        self.fake = fake
        self.gateway = gateway
        self.client = client
        self.hook_error: Optional[BaseException] = None  # raised by the next OP 4, once

    def hook(self, guild_id: int, payload: dict[str, Any]) -> None:
        error, self.hook_error = self.hook_error, None
        if error is not None:
            raise error
        self.gateway.hook(guild_id, payload)

    @property
    def sid(self) -> str:
        return session_id(self.client)

    def server_voice(self) -> Optional[dict[str, Any]]:
        """The voice state the fake Lavalink holds for the guild (None: no player yet)."""
        player = self.fake.player(self.sid, GUILD)
        return None if player is None else player["voice"]

    def voice_patches(self) -> list[Any]:
        return voice_patches(self.fake, self.sid, GUILD)

    def left(self) -> bool:
        """The last OP 4 sent for the guild leaves its voice channel."""
        guild, payload = self.gateway.sent[-1]
        return (
            guild == GUILD
            and payload["op"] == 4
            and payload["d"]["guild_id"] == str(GUILD)
            and payload["d"]["channel_id"] is None
        )

    def settle(self) -> None:
        """Wait until the internal follow-ups queued so far have run."""
        fence = threading.Event()
        self.client._call_soon(fence.set)
        assert fence.wait(5)


@pytest.fixture
def env() -> Iterator[Env]:
    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=1.0, player_update_interval=0.2))
        gateway = stack.enter_context(FakeGateway(USER_ID))
        holder: list[Env] = []

        def hook(guild_id: int, payload: dict[str, Any]) -> None:
            holder[0].hook(guild_id, payload)

        client = ready_client(stack, fake, gateway, hook=hook)
        stack.callback(fake.set_voice_delay, 0)  # before the client closes
        environment = Env(fake, gateway, client)
        holder.append(environment)
        yield environment


def assert_machine_still_works(env: Env) -> None:
    """A channel move made in Discord is forwarded to Lavalink, and a kick destroys the player."""
    player = env.client.player(GUILD)
    env.gateway.move_channel(GUILD, THIRD_CHANNEL)
    wait_until(lambda: (env.server_voice() or {}).get("channelId") == str(THIRD_CHANNEL), 5)
    wait_until(lambda: player.channel_id == THIRD_CHANNEL, 5)
    env.fake.close_voice(GUILD, code=4014, by_remote=True)
    env.gateway.kick(GUILD)
    wait_until(lambda: player.destroyed, 5)
    assert env.client.get_player(GUILD) is None


def in_thread(fn: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, name="test-connect", daemon=True)
    thread.start()
    return thread, errors


# --------------------------------------------------------------------------- (a) timeout=None


def test_connect_and_move_to_take_timeout_none(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL, timeout=None)
    assert player.connected and player.channel_id == CHANNEL
    player.move_to(OTHER_CHANNEL, timeout=None)
    assert player.channel_id == OTHER_CHANNEL
    assert (env.server_voice() or {}).get("channelId") == str(OTHER_CHANNEL)
    assert_machine_still_works(env)


def test_bad_calls_leave_the_machine_usable(env: Env) -> None:
    player = env.client.player(GUILD)
    for bad in ("soon", 0, -1.0, float("nan"), True):
        with pytest.raises(ValueError):
            player.connect(CHANNEL, timeout=bad)  # type: ignore[arg-type]
    assert env.gateway.sent == []  # rejected before anything was sent
    env.hook_error = RuntimeError("shard is reconnecting")
    with pytest.raises(RuntimeError):
        player.connect(CHANNEL)
    player.connect(CHANNEL, timeout=5)
    assert player.connected
    env.hook_error = RuntimeError("shard is reconnecting")
    with pytest.raises(RuntimeError):
        player.move_to(OTHER_CHANNEL, timeout=None)
    assert_machine_still_works(env)


def test_a_connect_that_timed_out_leaves_the_machine_usable(env: Env) -> None:
    env.gateway.missing = {"VOICE_SERVER_UPDATE"}
    player = env.client.player(GUILD)
    with pytest.raises(VoiceConnectTimeoutError):
        player.connect(CHANNEL, timeout=0.3)
    env.gateway.missing = set()
    player.connect(CHANNEL, timeout=5)
    assert_machine_still_works(env)


# --------------------------------------------------------------------------- (b) convergence


def test_a_region_move_during_connects_patch_reaches_lavalink(env: Env) -> None:
    env.fake.set_voice_delay(0.4)  # Lavalink's handshake with Discord takes a while
    player = env.client.player(GUILD)
    thread, errors = in_thread(lambda: player.connect(CHANNEL, timeout=5))
    wait_until(lambda: env.fake.player(env.sid, GUILD) is not None, 5)  # PATCH is in flight
    assert env.voice_patches() == []  # ... and not answered yet
    env.gateway.region_move(GUILD, FRANKFURT)
    wait_until(lambda: player.voice is not None and player.voice.endpoint == FRANKFURT, 5)
    thread.join(10)
    assert not thread.is_alive() and errors == []
    latest = env.gateway.voice_state(GUILD)
    assert latest is not None
    wait_until(lambda: (env.server_voice() or {}).get("endpoint") == FRANKFURT, 5)
    assert env.server_voice() == {
        "token": latest["token"],
        "endpoint": FRANKFURT,
        "sessionId": latest["session_id"],
        "channelId": str(CHANNEL),
    }


def test_a_channel_move_during_connects_patch_reaches_lavalink(env: Env) -> None:
    env.fake.set_voice_delay(0.4)
    player = env.client.player(GUILD)
    thread, errors = in_thread(lambda: player.connect(CHANNEL, timeout=5))
    wait_until(lambda: env.fake.player(env.sid, GUILD) is not None, 5)
    env.gateway.move_channel(GUILD, OTHER_CHANNEL)
    thread.join(10)
    assert not thread.is_alive() and errors == []
    wait_until(lambda: (env.server_voice() or {}).get("channelId") == str(OTHER_CHANNEL), 5)
    assert player.channel_id == OTHER_CHANNEL
    assert not player.destroyed


def test_updates_during_a_follow_up_patch_converge_on_the_latest(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    before = len(env.voice_patches())
    env.fake.set_voice_delay(0.3)
    delivered = len(env.gateway.delivered)
    env.gateway.region_move(GUILD, FRANKFURT)
    env.gateway.wait_delivered(delivered + 1)
    env.gateway.move_channel(GUILD, OTHER_CHANNEL)
    env.gateway.region_move(GUILD, AMSTERDAM)
    env.gateway.wait_delivered(delivered + 3)
    latest = env.gateway.voice_state(GUILD)
    assert latest is not None
    wanted = {
        "token": latest["token"],
        "endpoint": AMSTERDAM,
        "sessionId": latest["session_id"],
        "channelId": str(OTHER_CHANNEL),
    }
    wait_until(lambda: env.server_voice() == wanted, 5)
    env.settle()
    # one PATCH per burst at most: the two updates that came while one was in flight went
    # out together
    assert len(env.voice_patches()) - before <= 3
    assert env.voice_patches()[-1].json["voice"] == wanted


# --------------------------------------------------------------------------- (c) failed PATCH


def test_a_refused_voice_patch_leaves_the_channel(env: Env) -> None:
    env.fake.set_voice_failure(True)
    player = env.client.player(GUILD)
    with pytest.raises(RestError) as info:
        player.connect(CHANNEL, timeout=5)
    assert info.value.status == 500
    assert env.left()
    assert player.channel_id is None
    assert (env.gateway.voice_state(GUILD) or {}).get("channel_id") is None  # out in Discord
    # Discord's answer to our own leave is not a kick: the player stays usable
    wait_until(lambda: env.gateway.delivered[-1]["d"].get("channel_id") is None, 5)
    env.settle()
    assert not player.destroyed
    env.fake.set_voice_failure(False)
    player.connect(CHANNEL, timeout=5)
    assert player.connected and player.channel_id == CHANNEL


def test_a_refused_voice_patch_during_move_to_leaves_the_channel(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    env.fake.set_voice_failure(True)
    with pytest.raises(RestError):
        player.move_to(OTHER_CHANNEL, timeout=5)
    assert env.left()
    assert player.channel_id is None
    assert (env.gateway.voice_state(GUILD) or {}).get("channel_id") is None


def test_a_voice_patch_timeout_leaves_the_channel(env: Env) -> None:
    env.fake.set_voice_delay(3.0)  # Lavalink never finishes its handshake in time
    player = env.client.player(GUILD)
    with pytest.raises(LavasyncTimeoutError) as info:
        player.connect(CHANNEL, timeout=0.8)
    assert not isinstance(info.value, VoiceConnectTimeoutError)  # Discord did answer
    assert env.left()
    assert player.channel_id is None
    voice = player.voice
    assert voice is not None and not voice.complete
