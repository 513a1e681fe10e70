"""Position under a timescale filter (PROTOCOL.md, "Timescale and position").

The server's position advances at wall-clock rate whatever speed/rate are, so with speed 2 a
track ends while the position reads about half its length. ``player.position`` follows the
server (wall rate, no jump back at each playerUpdate); ``player.track_position`` is the time
inside the track, followed by lavasync across timescale changes and seeks. The checks freeze
playback (pause) wherever they compare numbers, so none depends on how fast the machine is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from conftest import USER_ID, ready_client, session_id, wait_until

from lavasync import Client, Filters, Player, Timescale
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
CHANNEL = 1126593424391868476


class Env:
    def __init__(self, fake: FakeNode, client: Client) -> None:
        self.fake = fake
        self.client = client

    def server_position(self) -> int:
        server = self.fake.player(session_id(self.client), GUILD)
        assert server is not None
        return int(server["state"]["position"])


@pytest.fixture(params=["lavalink", "nodelink"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with ExitStack() as stack:
        fake = stack.enter_context(
            FakeNode(stats_interval=1.0, player_update_interval=0.05, dialect=request.param)
        )
        gateway = stack.enter_context(FakeGateway(USER_ID))
        yield Env(fake, ready_client(stack, fake, gateway, name="main"))


def paused_at_double_speed(env: Env) -> Player:
    """A connected player with a long track loaded paused at 0, under a speed 2 timescale."""
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded, paused=True)
    player.set_filters(Filters(timescale=Timescale(speed=2.0)))
    return player


def run_a_little(player: Player, env: Env, at_least: int) -> None:
    """Resume, let the server's position move ``at_least`` ms, pause again."""
    start = env.server_position()
    player.resume()
    wait_until(lambda: env.server_position() >= start + at_least, 5)
    player.pause()


def test_the_fake_reports_wall_rate_and_ends_early_under_a_timescale(env: Env) -> None:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Two seconds", length=2_000)
    player.set_filters(Filters(timescale=Timescale(speed=2.0)))
    t0 = time.monotonic()
    player.play(track.encoded)
    end = player.wait_for_track_end(timeout=5)
    assert end.reason == "finished"
    # the source ran out at 2000 ms of track time while the reported position read ~1000
    assert 900 <= end.track.info.position <= 1_300, end.track.info.position
    assert time.monotonic() - t0 >= 0.9  # it ran at wall rate, not faster


def test_position_follows_the_server_and_track_position_the_track(env: Env) -> None:
    player = paused_at_double_speed(env)
    run_a_little(player, env, 300)
    server = env.server_position()
    assert player.position == server  # what the server reports, frozen by the pause
    # from 0 at speed 2: the track is twice as far as the reported position
    assert abs(player.track_position - 2 * server) <= 2, (player.track_position, server)

    # a timescale change: the track time goes on from where it was, at the new rate
    before = player.track_position
    player.set_filters(Filters(timescale=Timescale(speed=0.5, rate=2.0)))  # factor 1.0
    assert abs(player.track_position - before) <= 2
    base = env.server_position()
    run_a_little(player, env, 200)
    moved = env.server_position() - base
    assert abs(player.track_position - (before + moved)) <= 3

    # a seek puts both clocks on the target
    player.seek(10_000)
    assert player.position == 10_000 and player.track_position == 10_000
    player.set_filters(Filters(timescale=Timescale(speed=1.5)))
    base = env.server_position()
    run_a_little(player, env, 200)
    moved = env.server_position() - base
    assert abs(player.track_position - (10_000 + int(moved * 1.5))) <= 3
    assert player.position == env.server_position()


def test_position_does_not_jump_back_at_each_player_update(env: Env) -> None:
    """Interpolating at speed x rate would run ahead of the server between playerUpdates."""
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.set_filters(Filters(timescale=Timescale(speed=3.0)))
    player.play(track.encoded)
    wait_until(lambda: player.position >= 300, 5)
    player.pause()
    assert abs(player.position - env.server_position()) <= 2


def test_a_rebuild_seeks_to_the_track_position(env: Env) -> None:
    """Moving a player (here: recreating it after a lost session) resumes the track where the
    listener was, in track time, not at the server's wall-rate position."""
    player = paused_at_double_speed(env)
    run_a_little(player, env, 300)
    expected = player.track_position
    assert expected > player.position
    restore = player._restore_update()
    assert restore.position == expected


def test_snapshot_carry_forward_moves_position_at_wall_rate(env: Env) -> None:
    player = paused_at_double_speed(env)
    snapshot = player._snapshot()
    snapshot.update(position=1_000, track_position=2_000, moving=True, paused=False)
    snapshot["saved_at"] = time.time() - 1.0
    node = env.client.nodes[0]
    restored = Player._from_snapshot(env.client, node, snapshot)
    with restored._lock:
        restored._paused = True  # freeze it: compare the carried-forward numbers
    assert 1_990 <= restored.position <= 2_300  # wall rate, not 3000
    assert 3_980 <= restored.track_position <= 4_600  # track time at speed 2


def test_unknown_lengths_do_not_clamp_and_nothing_is_negative(env: Env) -> None:
    player = env.client.player(GUILD)
    stream = env.fake.add_track("Radio", is_stream=True)
    player.connect(CHANNEL)
    player.play(stream.encoded)
    wait_until(lambda: player.position > 0, 5)
    with player._lock:
        player._pos = (-50, 0.0)  # a server that reports nonsense
    assert player.position == 0 and player.track_position >= 0
