"""Bot processes sharing one Redis and one FakeNode: a SIGKILL and a restart, disjoint shards,
a rolling deploy. Each bot is tests/_bot_process.py in its own Python process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from conftest import RedisServer, wait_until

from lavasync.testing import FakeNode

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILTERS = {"karaoke": {"level": 0.5}}


class Bot:
    """One bot process; :meth:`ask` sends a command and returns its JSON answer."""

    def __init__(self, fake: FakeNode, redis: RedisServer, identity: str, **options: Any) -> None:
        args = {
            "uri": fake.uri,
            "password": fake.password,
            "redis": redis.url,
            "namespace": "test",
            "identity": identity,
            **options,
        }
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_bot_process.py"), json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.ready = self._read()
        assert self.ready.get("ready"), self.ready

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the test's timeout bounds a hung bot
        assert line, f"bot exited with {self.proc.wait(5)}"
        answer = json.loads(line)
        assert isinstance(answer, dict)
        return answer

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def players(self) -> dict[int, dict[str, Any]]:
        return {int(g): p for g, p in self.ask(op="state")["players"].items()}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self, op: str = "close") -> None:
        if self.proc.poll() is None:
            assert self.ask(op=op) == {"closed": True}
        self.proc.wait(10)


@pytest.fixture
def bots() -> Iterator[list[Bot]]:
    started: list[Bot] = []
    yield started
    for bot in started:
        bot.kill()


def start_bot(bots: list[Bot], *args: Any, **options: Any) -> Bot:
    bot = Bot(*args, **options)
    bots.append(bot)
    return bot


def play(bot: Bot, fake: FakeNode, guild: int, name: str) -> None:
    tracks = [fake.add_track(f"{name} {i}", length=600_000).to_wire() for i in range(3)]
    answer = bot.ask(
        op="play",
        guild=guild,
        channel=guild + 1,
        tracks=tracks,
        volume=40 + guild % 50,
        filters=FILTERS,
        loop="queue",
    )
    assert answer == {"ok": True}


def stored(redis: RedisServer, guild: int) -> Optional[dict[str, Any]]:
    raw = redis.client().get(f"lavasync:{{test}}:guild:{guild}")
    return None if raw is None else dict(json.loads(raw))


def karaoke(player: dict[str, Any]) -> Any:
    """The karaoke level of a stored or reported player (the server fills the other fields)."""
    return (player.get("filters") or {}).get("karaoke", {}).get("level")


def shard_guild(shard: int, n: int, count: int = 2) -> int:
    """A guild id on ``shard`` of ``count`` shards."""
    return ((1000 + n * count + shard) << 22) | n


@pytest.mark.timeout(30)
@pytest.mark.parametrize("expired", [False, True], ids=["resumed", "expired"])
def test_sigkill_mid_playback_and_restart_brings_every_player_back(
    redis_server: RedisServer, bots: list[Bot], expired: bool
) -> None:
    guilds = [shard_guild(0, 1), shard_guild(1, 2), shard_guild(0, 3)]
    with FakeNode(stats_interval=30.0, player_update_interval=0.2) as fake:
        first = start_bot(bots, fake, redis_server, "bot-a")
        started = time.time()
        for guild in guilds:
            play(first, fake, guild, f"G{guild}")
        # the store has every player with its volume and filters before the kill
        wait_until(
            lambda: all(karaoke(stored(redis_server, g) or {}) == 0.5 for g in guilds),
            5,
        )
        old_session = first.ready["session"]
        first.kill()
        if expired:
            fake.expire_session(old_session)
        second = start_bot(bots, fake, redis_server, "bot-a")
        if expired:
            assert second.ready["session"] != old_session
        else:
            assert second.ready["session"] == old_session  # resumed

        def back() -> bool:
            players = second.players()
            return all(
                (fake.player(second.ready["session"], g) or {}).get("track") is not None
                for g in guilds
            ) and set(players) == set(guilds)

        wait_until(back, 5)
        players = second.players()
        elapsed = (time.time() - started) * 1000
        for guild in guilds:
            player = players[guild]
            assert player["track"] == f"G{guild} 0"
            assert player["volume"] == 40 + guild % 50
            assert karaoke(player) == 0.5
            assert player["channel"] == guild + 1
            assert player["queue"] == [f"G{guild} 1", f"G{guild} 2"]
            assert player["loop"] == "queue"
            # the track started at 0 when played: its position is the time since (± 1 s)
            assert abs(player["position"] - elapsed) <= 1000, (player["position"], elapsed)
            server = fake.player(second.ready["session"], guild)
            assert server is not None
            assert abs(server["state"]["position"] - elapsed) <= 1000
            assert server["volume"] == 40 + guild % 50
        # the queue still advances, once: the restored queue starts the next track
        fake.finish_track(guilds[0], session_id=second.ready["session"])
        wait_until(lambda: second.players()[guilds[0]]["track"] == f"G{guilds[0]} 1", 5)
        assert second.players()[guilds[0]]["queue"] == [f"G{guilds[0]} 2", f"G{guilds[0]} 0"]
        second.close()


@pytest.mark.timeout(30)
def test_processes_with_disjoint_shards_restore_only_their_own_guilds(
    redis_server: RedisServer, bots: list[Bot]
) -> None:
    mine = {0: [shard_guild(0, 1), shard_guild(0, 2)], 1: [shard_guild(1, 3), shard_guild(1, 4)]}
    with FakeNode(stats_interval=30.0, player_update_interval=0.5) as fake:
        shards = {
            s: start_bot(bots, fake, redis_server, f"shard-{s}", shard_ids=[s], shard_count=2)
            for s in (0, 1)
        }
        for s, bot in shards.items():
            for guild in mine[s]:
                play(bot, fake, guild, f"G{guild}")
        every = [g for gs in mine.values() for g in gs]
        wait_until(lambda: all(stored(redis_server, g) is not None for g in every), 5)
        for bot in shards.values():
            bot.kill()
        # the store holds all four guilds; each restarted process takes only its shard's
        again = {
            s: start_bot(bots, fake, redis_server, f"shard-{s}", shard_ids=[s], shard_count=2)
            for s in (0, 1)
        }
        for s, bot in again.items():
            players = bot.players()
            assert set(players) == set(mine[s])
            for guild in mine[s]:
                assert players[guild]["track"] == f"G{guild} 0"
            session = bot.ready["session"]
            other = mine[1 - s]
            assert all(fake.player(session, g) is None for g in other)
        for bot in again.values():
            bot.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("old_goes", ["hand_off", "sigkill"])
def test_rolling_deploy_keeps_each_guild_on_exactly_one_process(
    redis_server: RedisServer, bots: list[Bot], old_goes: str
) -> None:
    guilds = [shard_guild(0, 5), shard_guild(1, 6), shard_guild(0, 7)]
    lease = 1.5
    with FakeNode(stats_interval=30.0, player_update_interval=0.5) as fake:
        blue = start_bot(bots, fake, redis_server, "blue", lease_ttl=lease)
        for guild in guilds:
            play(blue, fake, guild, f"G{guild}")
        wait_until(lambda: all(stored(redis_server, g) is not None for g in guilds), 5)
        green = start_bot(bots, fake, redis_server, "green", lease_ttl=lease)
        blue_sid, green_sid = blue.ready["session"], green.ready["session"]
        assert blue_sid != green_sid
        # both up: blue keeps every guild (it renews the leases), green rebuilds none
        deadline = time.monotonic() + 2 * lease
        while time.monotonic() < deadline:
            assert green.players() == {}
            assert set(blue.players()) == set(guilds)
            for guild in guilds:
                assert fake.player(green_sid, guild) is None
                assert redis_server.client().get(f"lavasync:{{test}}:lease:{guild}") == b"blue"
        if old_goes == "hand_off":
            blue.close("hand_off")  # the old process lets go: its session drops the players
        else:
            blue.kill()  # its leases expire; its paused session is only resumable by blue

        def moved() -> bool:
            return all(
                (fake.player(green_sid, g) or {}).get("track") is not None
                and (old_goes == "sigkill" or fake.player(blue_sid, g) is None)
                for g in guilds
            )

        wait_until(moved, 3 * lease + 3)
        players = green.players()
        assert set(players) == set(guilds)
        for guild in guilds:
            assert players[guild]["track"] == f"G{guild} 0"
            assert players[guild]["queue"] == [f"G{guild} 1", f"G{guild} 2"]
            assert players[guild]["volume"] == 40 + guild % 50
            assert redis_server.client().get(f"lavasync:{{test}}:lease:{guild}") == b"green"
        green.close()
