"""RedisStore against a real redis-server: keys and TTLs, leases, refused writes, an outage."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST, USER_ID, RedisServer, wait_until

from lavasync import Client
from lavasync.redis_store import RedisStore
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
ROOT = Path(__file__).resolve().parent.parent


def test_import_lavasync_does_not_import_redis() -> None:
    code = "import sys, lavasync, lavasync.redis_store; assert 'redis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=30)


def test_bad_arguments_raise_before_connecting() -> None:
    with pytest.raises(ValueError):
        RedisStore()
    with pytest.raises(ValueError):
        RedisStore("redis://127.0.0.1:1/0", namespace="")
    with pytest.raises(ValueError):
        RedisStore("redis://127.0.0.1:1/0", lease_ttl=0)


def test_guild_state_sessions_and_ttls_under_the_namespace(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, namespace="bot1", state_ttl=100.0)
    r = redis_server.client()
    assert (
        store.write("proc-a", {GUILD: {"guild_id": str(GUILD), "volume": 5}}, {"n": "s1"}) == set()
    )
    assert json.loads(r.get(f"lavasync:{{bot1}}:guild:{GUILD}"))["volume"] == 5
    assert r.get("lavasync:{bot1}:session:proc-a:n") == b"s1"
    for key in (f"guild:{GUILD}", "guilds", "session:proc-a:n", f"lease:{GUILD}"):
        assert 0 < r.pttl(f"lavasync:{{bot1}}:{key}") <= 100_000, key  # everything expires
    # session ids are per owner: another process identity does not see proc-a's
    assert store.load_state("proc-b")["nodes"] == {}
    assert store.load_state("proc-a")["nodes"] == {"n": {"session_id": "s1"}}
    other = RedisStore(redis_server.url, namespace="bot2")
    assert other.load_state("proc-a") == {"nodes": {}, "players": []}
    # a delete removes the guild, its index entry and its lease
    store.write("proc-a", {GUILD: None}, {})
    assert r.exists(f"lavasync:{{bot1}}:guild:{GUILD}", f"lavasync:{{bot1}}:lease:{GUILD}") == 0
    assert store.load_state("proc-a")["players"] == []


def test_leases_are_exclusive_released_and_expire(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, namespace="t", lease_ttl=0.3)
    assert store.claim("a", [1, 2]) == {1, 2}
    assert store.claim("b", [1, 2, 3]) == {3}
    assert store.claim("a", [1, 2]) == {1, 2}  # a renewal
    # a write for a guild leased by another owner is refused and changes nothing
    assert store.write("b", {1: {"guild_id": "1"}}, {}) == {1}
    assert store.load_guild(1) is None
    store.release("a", [1])
    assert store.lease_owner(1) is None
    assert store.claim("b", [1]) == {1}
    wait_until(lambda: store.lease_owner(2) is None, 3)  # a's lease of 2 ran out
    assert store.claim("b", [2]) == {2}


def test_shards_filter_what_a_process_loads(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, namespace="t")
    guilds = {(n << 22) | 7: n % 2 for n in range(6)}  # guild -> shard of 2
    store.write("x", {g: {"guild_id": str(g), "node": "gone"} for g in guilds}, {})
    store.release("x", guilds)
    with Client(USER_ID, state_store=store, shard_ids=[1], shard_count=2) as client:
        assert client.shard_of(next(g for g, s in guilds.items() if s == 1)) == 1
        stored = {int(p["guild_id"]) for p in client._stored["players"]}
        assert stored == {g for g, s in guilds.items() if s == 1}


@pytest.mark.timeout(30)
def test_redis_outage_leaves_playback_alone_and_the_state_catches_up(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(redis_server.url, namespace="t", identity="p", socket_timeout=0.5)
    key = f"lavasync:{{t}}:guild:{GUILD}"

    def saved() -> Any:
        raw = redis_server.client().get(key)
        return None if raw is None else json.loads(raw)

    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=30.0, player_update_interval=0.2))
        gateway = stack.enter_context(FakeGateway(USER_ID))
        client = Client(USER_ID, gateway.hook, state_store=store, save_interval=0.1)
        gateway.deliver = client.handle_gateway
        stack.callback(client.close)
        node = client.add_node("main", fake.uri, password=fake.password, backoff=FAST)
        node.wait_ready(5)
        player = client.player(GUILD)
        player.connect(4242)
        player.play(fake.add_track("Outage", length=600_000).encoded, volume=30)
        wait_until(lambda: (saved() or {}).get("volume") == 30, 5)
        with caplog.at_level(logging.WARNING, logger="lavasync.client"):
            redis_server.stop()
            # Redis is gone for a while (2 s; the client must not care how long): calls go on
            player.set_volume(70)
            player.seek(10_000)
            track = fake.add_track("During", length=600_000)
            player.play(track.encoded)
            server = fake.player(node.session_id or "", GUILD)
            assert server is not None and server["track"]["info"]["title"] == "During"
            assert server["volume"] == 70
            # the outage lasts while the track plays on for 2 s
            wait_until(lambda: player.position >= 2_000, 6)
            failing = [r for r in caplog.records if "state store failed" in r.getMessage()]
            redis_server.start()  # empty: a restarted Redis without persistence
            r = redis_server.client()

            def caught_up() -> bool:
                state = saved() or {}
                return (
                    (state.get("track") or {}).get("info", {}).get("title") == "During"
                    and state.get("volume") == 70
                    and r.get("lavasync:{t}:session:p:main") == (node.session_id or "").encode()
                    and r.get(f"lavasync:{{t}}:lease:{GUILD}") == b"p"
                )

            wait_until(caught_up, 10)
        assert len(failing) == 1  # one warning per outage, not one per retry
        assert player.track is not None and player.track.info.title == "During"
        assert any("answers again" in rec.getMessage() for rec in caplog.records)
