"""Failed player calls never make local state lie (issue 9), and the FakeNode REST fault controls
they are tested with (``fail_next``, ``stall_answers``, ``reset_mid_body``) over raw http.client."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Optional

import pytest
from conftest import USER_ID, ready_client, session_id

from lavasync import (
    Client,
    ConnectionFailedError,
    Filters,
    LavasyncTimeoutError,
    RestError,
    Timescale,
)
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
CHANNEL = 1126593424391868476
VOICE = {
    "token": "tok",
    "endpoint": "c-fra05.discord.media:443",
    "sessionId": "abc",
    "channelId": "9",
}


def request(
    fake: FakeNode, method: str, path: str, body: Any = None, *, timeout: float = 5.0
) -> tuple[int, Any]:
    """One request on a fresh connection; (status, the JSON body parsed, or the text, or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=timeout)
    try:
        headers = {"Authorization": fake.password}
        data: Optional[bytes] = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(payload)
        return resp.status, payload.decode() or None
    finally:
        conn.close()


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(stats_interval=30, player_update_interval=30) as node:
        yield node


# --------------------------------------------------------------------------- the fake's controls


def test_fail_next_answers_an_error_without_applying_the_change(fake: FakeNode) -> None:
    sid = fake.create_session()
    path = f"/v4/sessions/{sid}/players/1"
    fake.fail_next("PATCH", "/players/", status=500, count=2)
    assert request(fake, "GET", "/version")[0] == 200  # another path: untouched
    for _ in range(2):
        status, body = request(fake, "PATCH", path, {"volume": 41})
        assert status == 500
        assert body["status"] == 500 and body["message"] == "Internal Server Error"
        assert body["path"] == path
    assert fake.player(sid, 1) is None  # nothing was applied
    assert request(fake, "PATCH", path, {"volume": 41})[0] == 200  # count used up
    assert fake.player(sid, 1)["volume"] == 41  # type: ignore[index]
    fake.fail_next(None, path, status=404, message="Session not found")
    status, body = request(fake, "GET", path)
    assert (status, body["message"]) == (404, "Session not found")
    assert [r.status for r in fake.requests if r.path == path] == [500, 500, 200, 404]


def test_stall_answers_applies_the_change_and_holds_the_answer(fake: FakeNode) -> None:
    sid = fake.create_session()
    path = f"/v4/sessions/{sid}/players/1"
    assert request(fake, "PATCH", path, {"volume": 34})[0] == 200
    fake.stall_answers("/players/1", method="PATCH")
    with pytest.raises(socket.timeout):
        request(fake, "PATCH", path, {"volume": 41}, timeout=0.3)
    assert fake.player(sid, 1)["volume"] == 41  # type: ignore[index]  # applied all the same
    assert request(fake, "GET", path)[0] == 200  # GET does not match the rule
    # a held answer goes out once released
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        headers = {"Authorization": fake.password, "Content-Type": "application/json"}
        conn.request("PATCH", path, body=json.dumps({"paused": True}).encode(), headers=headers)
        fake.wait_for_request("PATCH", path, count=3)  # recorded: the handler ran
        assert fake.player(sid, 1)["paused"] is True  # type: ignore[index]
        fake.release_answers()
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["paused"] is True
    finally:
        conn.close()
    assert request(fake, "PATCH", path, {"volume": 50}, timeout=2)[0] == 200  # no longer stalled


def test_stall_answers_count_limits_the_held_answers(fake: FakeNode) -> None:
    sid = fake.create_session()
    path = f"/v4/sessions/{sid}/players/1"
    fake.stall_answers(path, count=1)
    with pytest.raises(socket.timeout):
        request(fake, "PATCH", path, {"volume": 20}, timeout=0.3)
    assert request(fake, "PATCH", path, {"volume": 21}, timeout=2)[1]["volume"] == 21


def test_reset_mid_body_applies_the_change_then_resets(fake: FakeNode) -> None:
    sid = fake.create_session()
    path = f"/v4/sessions/{sid}/players/1"
    fake.reset_mid_body("/players/", method="PATCH", keep=5)
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        headers = {"Authorization": fake.password, "Content-Type": "application/json"}
        conn.request("PATCH", path, body=json.dumps({"volume": 41}).encode(), headers=headers)
        statuses: list[int] = []

        def read() -> None:
            resp = conn.getresponse()
            statuses.append(resp.status)
            resp.read()

        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
            read()
    finally:
        conn.close()
    assert statuses == [200]  # the status line and headers came, the body did not
    assert fake.player(sid, 1)["volume"] == 41  # type: ignore[index]
    assert fake.requests[-1].status == 200
    assert request(fake, "PATCH", path, {"volume": 42})[1]["volume"] == 42  # count=1 used up


def test_fault_controls_reject_bad_arguments(fake: FakeNode) -> None:
    with pytest.raises(ValueError):
        fake.fail_next("PATCH", None, status=42)
    with pytest.raises(ValueError):
        fake.stall_answers(None, count=0)
    with pytest.raises(ValueError):
        fake.reset_mid_body(None, keep=-1)
    fake.fail_next(None, None, count=None)
    assert request(fake, "GET", "/version")[0] == 500
    fake.clear_faults()
    assert request(fake, "GET", "/version")[0] == 200


# --------------------------------------------------------------------------- player calls


class Env:
    def __init__(self, fake: FakeNode, client: Client) -> None:
        self.fake = fake
        self.client = client

    @property
    def sid(self) -> str:
        return session_id(self.client)

    def server(self) -> dict[str, Any]:
        player = self.fake.player(self.sid, GUILD)
        assert player is not None
        return player


@pytest.fixture
def env() -> Iterator[Env]:
    with ExitStack() as stack:
        fake = stack.enter_context(FakeNode(stats_interval=1.0, player_update_interval=0.2))
        gateway = stack.enter_context(FakeGateway(USER_ID))
        client = ready_client(stack, fake, gateway)
        stack.callback(fake.clear_faults)  # before the client closes
        yield Env(fake, client)


def playing(env: Env) -> Any:
    player = env.client.player(GUILD)
    player.connect(CHANNEL)
    track = env.fake.add_track("Long", length=600_000)
    player.play(track.encoded)
    player.set_volume(34)
    return player


def test_set_volume_with_a_lost_answer_re_reads_the_player(env: Env) -> None:
    player = playing(env)
    env.fake.stall_answers(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(LavasyncTimeoutError):
        player.set_volume(41, timeout=0.5)
    assert env.server()["volume"] == 41
    assert player.volume == 41  # what the server has, not the 34 from before


def test_pause_with_a_lost_answer_re_reads_the_player(env: Env) -> None:
    player = playing(env)
    env.fake.stall_answers(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(LavasyncTimeoutError):
        player.pause(timeout=0.5)
    assert env.server()["paused"] is True
    assert player.paused is True
    env.fake.release_answers()
    player.resume()
    env.fake.stall_answers(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(LavasyncTimeoutError):
        player.pause(timeout=0.5)
    env.fake.release_answers()
    env.fake.stall_answers(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(LavasyncTimeoutError):
        player.resume(timeout=0.5)
    assert env.server()["paused"] is False
    assert player.paused is False


def test_set_filters_with_a_lost_answer_re_reads_the_player(env: Env) -> None:
    player = playing(env)
    env.fake.stall_answers(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(LavasyncTimeoutError):
        player.set_filters(Filters(volume=0.5, timescale=Timescale(speed=1.5)), timeout=0.5)
    assert env.server()["filters"]["volume"] == 0.5
    assert player.filters.volume == 0.5
    assert player.filters.timescale is not None and player.filters.timescale.speed == 1.5


def test_a_reset_mid_answer_re_reads_the_player(env: Env) -> None:
    player = playing(env)
    env.fake.reset_mid_body(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(ConnectionFailedError):
        player.set_volume(41, timeout=2)
    assert env.server()["volume"] == 41
    assert player.volume == 41
    env.fake.reset_mid_body(f"/players/{GUILD}", method="PATCH")
    with pytest.raises(ConnectionFailedError):
        player.stop(timeout=2)
    assert env.server()["track"] is None
    assert player.track is None


def test_a_500_re_reads_the_player(env: Env) -> None:
    player = playing(env)
    env.fake.fail_next("PATCH", f"/players/{GUILD}", status=500)
    with pytest.raises(RestError) as info:
        player.set_volume(41)
    assert info.value.status == 500
    assert player.volume == 34 == env.server()["volume"]  # not applied: local state unchanged


@pytest.mark.parametrize(
    "message",
    ["Session not found", "The provided sessionId doesn't exist."],  # Lavalink, NodeLink
)
def test_session_not_found_during_a_call_keeps_the_track(env: Env, message: str) -> None:
    player = playing(env)
    title = player.track.info.title if player.track is not None else None
    assert title == "Long"
    # the server paused our session (socket dropped) before the reader noticed: every session
    # route answers 404 Session not found for a while
    env.fake.fail_next(None, f"/sessions/{env.sid}/", status=404, message=message, count=20)
    with pytest.raises(RestError) as info:
        player.set_volume(41, timeout=0.5)
    assert (info.value.status, info.value.message) == (404, message)
    assert player.track is not None and player.track.info.title == "Long"  # not "player gone"
    env.fake.clear_faults()
    assert player.fetch().track is not None  # and the server still plays it


def test_player_not_found_clears_the_track(env: Env) -> None:
    player = playing(env)
    # the node lost the player itself (session valid): the local track must not stay
    env.fake.fail_next("PATCH", f"/players/{GUILD}", status=500)
    env.fake.fail_next("GET", f"/players/{GUILD}", status=404, message="Player not found")
    with pytest.raises(RestError):
        player.set_volume(41)
    assert player.track is None


def test_fetch_of_a_player_the_node_lost_clears_the_track(env: Env) -> None:
    player = playing(env)
    env.fake.fail_next("GET", f"/players/{GUILD}", status=404, message="Player not found")
    with pytest.raises(RestError) as info:
        player.fetch()
    assert info.value.status == 404
    assert player.track is None  # the node has no player, so nothing plays


def test_an_unknown_404_does_not_clear_the_track(env: Env) -> None:
    player = playing(env)
    env.fake.fail_next("PATCH", f"/players/{GUILD}", status=500)
    env.fake.fail_next("GET", f"/players/{GUILD}", status=404, message="Not Found")  # a proxy
    with pytest.raises(RestError):
        player.set_volume(41)
    assert player.track is not None
