"""FakeNode REST side checked against PROTOCOL.md §1 and §3 with raw http.client."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any, Optional
from urllib.parse import quote

import pytest
from conftest import VECTORS, load_example

from lavasync.codec import decode_info
from lavasync.testing import BUILTIN_TRACKS, FakeNode

VOICE = {
    "token": "tok",
    "endpoint": "c-fra05.discord.media:443",
    "sessionId": "abc",
    "channelId": "9",
}
VECTOR_LIST: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))


class Rest:
    """One keep-alive http.client connection to the fake node."""

    def __init__(self, fake: FakeNode) -> None:
        self.fake = fake
        self.conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: Optional[str] = "default",
        headers: Optional[dict[str, str]] = None,
        raw: Optional[bytes] = None,
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        h: dict[str, str] = {}
        if auth == "default":
            h["Authorization"] = self.fake.password
        elif auth is not None:
            h["Authorization"] = auth
        data = raw
        if body is not None:
            h["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        h.update(headers or {})
        self.conn.request(method, path, body=data, headers=h)
        resp = self.conn.getresponse()
        payload = resp.read()
        return resp.status, resp, payload

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, payload = self(method, path, body, **kw)
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(stats_interval=30, player_update_interval=30) as node:
        yield node


@pytest.fixture
def rest(fake: FakeNode) -> Iterator[Rest]:
    client = Rest(fake)
    yield client
    client.close()


@pytest.fixture
def sid(fake: FakeNode) -> str:
    return fake.create_session()


def events(fake: FakeNode, sid: str, skip: int = 0) -> list[dict[str, Any]]:
    """Messages sent to a session after the first ``skip``, without stats."""
    return [m for m in fake.sessions[sid].sent[skip:] if m["op"] != "stats"]


def ops(msgs: list[dict[str, Any]]) -> list[str]:
    return [m.get("type", m["op"]) for m in msgs]


def assert_error(payload: Any, status: int, message: Optional[str], path: str) -> None:
    assert set(payload) == {"timestamp", "status", "error", "message", "path"}
    assert payload["status"] == status
    assert payload["error"] == http.client.responses[status]
    assert payload["path"] == path
    assert abs(payload["timestamp"] - time.time() * 1000) < 60_000
    if message is not None:
        assert payload["message"] == message


# --------------------------------------------------------------------------- §1 common


def test_api_version_header_on_every_response(rest: Rest, sid: str) -> None:
    cases = [
        ("GET", "/version", "default", 200),
        ("GET", "/v4/nope", None, 404),
        ("POST", "/v4/info", None, 405),
        ("GET", "/v4/info", None, 401),
        ("GET", "/v4/info", "wrong", 403),
        ("DELETE", f"/v4/sessions/{sid}/players/1", "default", 204),
        ("GET", "/v4/loadtracks", "default", 400),
    ]
    for method, path, auth, status in cases:
        got, resp, _ = rest(method, path, auth=auth)
        assert got == status, (method, path)
        assert resp.getheader("Lavalink-Api-Version") == "4", (method, path)


def test_unknown_route_and_wrong_method_before_auth(rest: Rest) -> None:
    status, payload = rest.json("GET", "/v4/unknown", auth=None)
    assert status == 404
    assert_error(payload, 404, None, "/v4/unknown")
    status, resp, body = rest("DELETE", "/v4/stats", auth="wrong")
    assert status == 405
    assert resp.getheader("Allow") == "GET"
    assert_error(json.loads(body), 405, None, "/v4/stats")


def test_trailing_slash_is_404(rest: Rest, sid: str) -> None:
    assert rest("GET", "/v4/info/")[0] == 404
    assert rest("GET", f"/v4/sessions/{sid}/players/")[0] == 404
    assert rest("GET", f"/v4/sessions/{sid}/players")[0] == 200


def test_401_missing_and_403_wrong_have_empty_bodies(rest: Rest) -> None:
    status, _, body = rest("GET", "/v4/info", auth=None)
    assert (status, body) == (401, b"")
    status, _, body = rest("GET", "/v4/info", auth="Bearer youshallnotpass")
    assert (status, body) == (403, b"")
    assert rest("GET", "/version", auth=None)[0] == 401  # /version needs auth too


def test_trace_only_with_trace_true(rest: Rest) -> None:
    _, plain = rest.json("GET", "/v4/sessions/nope/players")
    assert "trace" not in plain
    _, traced = rest.json("GET", "/v4/sessions/nope/players?trace=true")
    assert isinstance(traced["trace"], str)
    assert traced["trace"]
    assert list(traced) == ["timestamp", "status", "error", "trace", "message", "path"]
    assert traced["path"] == "/v4/sessions/nope/players"  # no query string


def test_requests_are_recorded(fake: FakeNode, rest: Rest) -> None:
    rest("GET", "/v4/loadtracks?identifier=a%20b&x=1&x=2", headers={"X-Test": "yes"})
    rec = fake.wait_for_request("get", "/v4/loadtracks")
    assert rec.status == 200
    assert rec.query == {"identifier": ["a b"], "x": ["1", "2"]}
    assert rec.headers["x-test"] == "yes"
    assert rec.headers["AUTHORIZATION"] == fake.password
    rest("POST", "/v4/decodetracks", [])
    rec = fake.wait_for_request("POST", "/v4/decode")
    assert rec.json == []
    assert rec.body == b"[]"
    assert rec.status == 400
    fake.clear_requests()
    assert fake.requests == []
    with pytest.raises(TimeoutError):
        fake.wait_for_request("GET", "/v4/info", timeout=0.05)


# --------------------------------------------------------------------------- version/info/stats


def test_version_is_plain_text(rest: Rest) -> None:
    status, resp, body = rest("GET", "/version")
    assert (status, body) == (200, b"4.2.2")
    assert resp.getheader("Content-Type").startswith("text/plain")
    status, resp, body = rest("GET", "/version", headers={"Accept": "application/json"})
    assert resp.getheader("Content-Type") == "application/json"
    assert body == b"4.2.2"


def test_info(rest: Rest) -> None:
    status, info = rest.json("GET", "/v4/info")
    assert status == 200
    assert info["version"] == {
        "semver": "4.2.2",
        "major": 4,
        "minor": 2,
        "patch": 2,
        "preRelease": "",
    }
    assert set(info) == set(load_example("rest_info.json"))
    assert info["sourceManagers"][-1] == "http"
    assert "timescale" in info["filters"]
    assert "equalizer" in info["filters"]


def test_info_snapshot_and_prerelease() -> None:
    with FakeNode(version="0123456789abcdef0123456789abcdef01234567-SNAPSHOT") as node:
        _, info = Rest(node).json("GET", "/v4/info")
        assert info["version"]["major"] == 0
        assert info["version"]["preRelease"] is None
    with FakeNode(version="4.1.0-rc.1", disabled_filters=("karaoke",)) as node:
        _, info = Rest(node).json("GET", "/v4/info")
        assert info["version"]["preRelease"] == "rc.1"
        assert "karaoke" not in info["filters"]


def test_stats_rest(fake: FakeNode, rest: Rest, sid: str) -> None:
    track = fake.add_track()
    rest("PATCH", f"/v4/sessions/{sid}/players/1", {"track": {"encoded": track.encoded}})
    rest("PATCH", f"/v4/sessions/{sid}/players/2", {})
    status, stats = rest.json("GET", "/v4/stats")
    assert status == 200
    assert next(iter(stats)) == "frameStats"
    assert stats["frameStats"] is None
    assert (stats["players"], stats["playingPlayers"]) == (2, 1)
    assert set(stats) - {"frameStats"} == set(load_example("rest_stats.json"))


# --------------------------------------------------------------------------- loadtracks


def test_load_track_by_identifier_and_uri(rest: Rest) -> None:
    for ident in ("dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"):
        status, result = rest.json("GET", f"/v4/loadtracks?identifier={quote(ident, safe='')}")
        assert status == 200
        assert result["loadType"] == "track"
        data = result["data"]
        assert set(data) == {"encoded", "info", "pluginInfo", "userData"}
        assert decode_info(data["encoded"]) == data["info"]


def test_canned_blobs_are_real_server_blobs() -> None:
    """The built-in catalogue re-creates real v3 vectors byte for byte."""
    real = {v["encoded"] for v in VECTOR_LIST if v["version"] == 3}
    matches = [t for t in BUILTIN_TRACKS if t["encoded"] in real]
    assert len(matches) >= 4


def test_load_playlist_of_500(rest: Rest) -> None:
    status, result = rest.json("GET", "/v4/loadtracks?identifier=fake:playlist:500")
    assert status == 200
    assert result["loadType"] == "playlist"
    data = result["data"]
    assert data["info"] == {"name": "Fake playlist of 500", "selectedTrack": -1}
    assert data["pluginInfo"] == {}
    assert len(data["tracks"]) == 500
    assert len({t["encoded"] for t in data["tracks"]}) == 500
    assert decode_info(data["tracks"][499]["encoded"]) == data["tracks"][499]["info"]
    status, small = rest.json("GET", "/v4/loadtracks?identifier=fake:playlist")
    assert small["loadType"] == "playlist"
    assert len(small["data"]["tracks"]) >= 4


def test_search_prefixes(rest: Rest) -> None:
    _, yt = rest.json("GET", "/v4/loadtracks?identifier=" + quote("ytsearch:never gonna"))
    assert yt["loadType"] == "search"
    assert yt["data"][0]["info"]["identifier"] == "dQw4w9WgXcQ"
    _, sc = rest.json("GET", "/v4/loadtracks?identifier=" + quote("scsearch:some tune"))
    assert sc["loadType"] == "search"
    assert len(sc["data"]) == 5
    assert {t["info"]["sourceName"] for t in sc["data"]} == {"soundcloud"}
    # a search result loads again by its identifier
    ident = sc["data"][0]["info"]["identifier"]
    _, again = rest.json("GET", f"/v4/loadtracks?identifier={ident}")
    assert again["loadType"] == "track"
    assert again["data"]["encoded"] == sc["data"][0]["encoded"]


def test_empty_error_and_canned_results(fake: FakeNode, rest: Rest) -> None:
    assert rest.json("GET", "/v4/loadtracks?identifier=nothing-here")[1] == {
        "loadType": "empty",
        "data": None,
    }
    status, err = rest.json("GET", "/v4/loadtracks?identifier=fake:error")
    assert status == 200
    assert err["loadType"] == "error"
    assert err["data"]["message"] == "Something went wrong while looking up the track."
    assert err["data"]["severity"] == "fault"
    assert set(err["data"]) == set(load_example("rest_loadtracks_error_4_0_8.json")["data"])
    canned = load_example("rest_loadtracks_search.json")
    fake.set_load_result("my query & more", canned)
    _, got = rest.json("GET", "/v4/loadtracks?identifier=" + quote("my query & more", safe=""))
    assert got == canned


def test_loadtracks_missing_identifier_is_400(rest: Rest) -> None:
    status, payload = rest.json("GET", "/v4/loadtracks")
    assert status == 400
    assert_error(payload, 400, None, "/v4/loadtracks")


# --------------------------------------------------------------------------- decode


def test_decodetrack_with_vectors(rest: Rest) -> None:
    plus = next(v for v in VECTOR_LIST if "+" in v["encoded"] and v["version"] == 3)
    status, track = rest.json(
        "GET", "/v4/decodetrack?encodedTrack=" + quote(plus["encoded"], safe="")
    )
    assert status == 200
    assert track["encoded"] == plus["encoded"]
    assert {k: track["info"][k] for k in plus["info"]} == plus["info"]
    assert track["pluginInfo"] == {}
    assert track["userData"] == {}
    # the older parameter name
    status, again = rest.json("GET", "/v4/decodetrack?track=" + quote(plus["encoded"], safe=""))
    assert status == 200
    assert again == track


def test_decodetrack_raw_plus_is_500(rest: Rest) -> None:
    plus = next(v for v in VECTOR_LIST if "+" in v["encoded"])
    status, payload = rest.json("GET", "/v4/decodetrack?encodedTrack=" + plus["encoded"])
    assert status == 500
    assert_error(payload, 500, None, "/v4/decodetrack")


def test_decodetrack_errors(rest: Rest) -> None:
    status, payload = rest.json("GET", "/v4/decodetrack")
    assert (status, payload["message"]) == (400, "No track to decode provided")
    unknown = next(v for v in VECTOR_LIST if v["info"]["sourceName"] == "")
    status, payload = rest.json(
        "GET", "/v4/decodetrack?encodedTrack=" + quote(unknown["encoded"], safe="")
    )
    assert status == 500
    assert payload["message"] == (
        "Failed to decode track due to a mismatching version or missing source manager"
    )


def test_decodetracks(rest: Rest) -> None:
    request = load_example("rest_decodetracks_request.json")
    status, tracks = rest.json("POST", "/v4/decodetracks", request)
    assert status == 200
    assert [t["encoded"] for t in tracks] == request
    expected = load_example("rest_decodetracks_response.json")
    assert [t["info"]["title"] for t in tracks] == [t["info"]["title"] for t in expected]
    status, payload = rest.json("POST", "/v4/decodetracks", [])
    assert (status, payload["message"]) == (400, "No tracks to decode provided")
    assert rest("POST", "/v4/decodetracks", {"not": "a list"})[0] == 400
    assert rest("POST", "/v4/decodetracks", [*request, "!!!"])[0] == 500


def test_content_type_and_missing_body(rest: Rest, sid: str) -> None:
    path = f"/v4/sessions/{sid}/players/1"
    status, payload = rest.json("PATCH", path, raw=b"{}", headers={"Content-Type": "text/plain"})
    assert status == 415
    assert_error(payload, 415, None, path)
    assert rest("PATCH", path, raw=b"{}")[0] == 415  # a body without Content-Type
    assert rest("PATCH", path)[0] == 400  # no body at all
    assert rest("PATCH", path, raw=b"{nope", headers={"Content-Type": "application/json"})[0] == 400


# --------------------------------------------------------------------------- order of checks


def test_order_of_checks(rest: Rest, sid: str) -> None:
    # binding errors beat an unknown session
    assert rest("PATCH", "/v4/sessions/unknown/players/1", {"volume": "loud"})[0] == 400
    assert rest("GET", "/v4/sessions/unknown/players/notanumber")[0] == 400
    assert (
        rest(
            "PATCH",
            "/v4/sessions/unknown/players/1",
            raw=b"{}",
            headers={"Content-Type": "text/plain"},
        )[0]
        == 415
    )
    # then the session lookup, before the handler's own 400s
    status, payload = rest.json("PATCH", "/v4/sessions/unknown/players/1", {"endTime": 0})
    assert (status, payload["message"]) == (404, "Session not found")
    status, payload = rest.json("GET", f"/v4/sessions/{sid}/players/5")
    assert (status, payload["message"]) == (404, "Player not found")
    # auth beats all of these
    assert rest("PATCH", "/v4/sessions/unknown/players/x", {"volume": "loud"}, auth=None)[0] == 401


def test_guild_id_is_echoed_as_a_number(rest: Rest, sid: str) -> None:
    status, player = rest.json("PATCH", f"/v4/sessions/{sid}/players/0123", {})
    assert status == 200
    assert player["guildId"] == "123"
    assert player == {
        **load_example("rest_player_idle.json"),
        "guildId": "123",
        "state": player["state"],
    }
    assert player["state"]["ping"] == -1
    assert player["state"]["connected"] is False


# --------------------------------------------------------------------------- PATCH player 400/500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            load_example("rest_update_player_request_INVALID_both.json"),
            "Cannot specify both encodedTrack and identifier",
        ),
        (
            {"track": {"identifier": "x"}, "encodedTrack": None},
            "Cannot specify both track and encodedTrack/identifier",
        ),
        ({"track": {}, "identifier": "x"}, "Cannot specify both track and encodedTrack/identifier"),
        (
            {"voice": {**VOICE, "token": " "}},
            "token, endpoint, sessionId and channelId must be provided in voice state",
        ),
        (
            {"voice": {**VOICE, "channelId": None}},
            "token, endpoint, sessionId and channelId must be provided in voice state",
        ),
        ({"endTime": 0}, "End time must be greater than 0"),
        ({"endTime": -5}, "End time must be greater than 0"),
        ({"track": {"identifier": "nothing-matches"}}, "No matches found for identifier"),
        ({"track": {"identifier": "ytsearch:rick"}}, "Cannot play a playlist or search result"),
        ({"identifier": "fake:playlist"}, "Cannot play a playlist or search result"),
        (
            {"track": {"identifier": "fake:error"}},
            "Something went wrong while looking up the track.",
        ),
    ],
)
def test_patch_handler_400s(rest: Rest, sid: str, body: Any, message: str) -> None:
    status, payload = rest.json("PATCH", f"/v4/sessions/{sid}/players/7", body)
    assert status == 400
    assert payload["message"] == message


@pytest.mark.parametrize(
    "body",
    [
        {"voice": {"token": "t", "endpoint": "e", "sessionId": "s"}},  # channelId key missing
        {"voice": {**VOICE, "token": None}},
        {"track": None},
        {"track": {"identifier": None}},
        {"track": {"userData": None}},
        {"track": {"userData": [1]}},
        {"position": None},
        {"position": 1.5},
        {"volume": None},
        {"paused": "yes"},
        {"filters": None},
        {"filters": {"volume": None}},
        {"filters": {"equalizer": None}},
        {"filters": {"timescale": "fast"}},
        [],
    ],
)
def test_patch_binding_400s(rest: Rest, sid: str, body: Any) -> None:
    status, payload = rest.json("PATCH", f"/v4/sessions/{sid}/players/7", body)
    assert status == 400, body
    assert_error(payload, 400, None, f"/v4/sessions/{sid}/players/7")


def test_bad_no_replace_is_400(rest: Rest, sid: str) -> None:
    assert rest("PATCH", f"/v4/sessions/{sid}/players/7?noReplace=maybe", {})[0] == 400
    assert rest("PATCH", f"/v4/sessions/{sid}/players/7?noReplace=", {})[0] == 200


def test_disabled_filter_is_400() -> None:
    with FakeNode(disabled_filters=("karaoke", "rotation")) as node:
        rest = Rest(node)
        sid = node.create_session()
        status, payload = rest.json(
            "PATCH", f"/v4/sessions/{sid}/players/1", {"filters": {"rotation": None, "karaoke": {}}}
        )
        assert status == 400
        assert (
            payload["message"] == "Following filters are disabled in the config: rotation, karaoke"
        )
        assert node.player(sid, 1) is None  # checked before the player is created
        rest.close()


def test_non_numeric_channel_is_500_after_creating_the_player(
    fake: FakeNode, rest: Rest, sid: str
) -> None:
    status, payload = rest.json(
        "PATCH", f"/v4/sessions/{sid}/players/3", {"voice": {**VOICE, "channelId": "abc"}}
    )
    assert (status, payload["message"]) == (500, 'For input string: "abc"')
    assert fake.player(sid, 3) is not None


def test_equalizer_band_15_is_500_after_earlier_steps(fake: FakeNode, rest: Rest, sid: str) -> None:
    body = {"volume": 50, "filters": {"equalizer": [{"band": 15, "gain": 0.1}]}}
    status, payload = rest.json("PATCH", f"/v4/sessions/{sid}/players/3", body)
    assert (status, payload["message"]) == (500, "Index 15 out of bounds for length 15")
    player = fake.player(sid, 3)
    assert player is not None
    assert player["volume"] == 50
    assert player["filters"] == {}


def test_undecodable_track_is_500_after_the_pause_reset(
    fake: FakeNode, rest: Rest, sid: str
) -> None:
    path = f"/v4/sessions/{sid}/players/3"
    track = fake.add_track()
    rest("PATCH", path, {"track": {"encoded": track.encoded}, "paused": True})
    assert fake.player(sid, 3)["paused"] is True  # type: ignore[index]
    status, _ = rest.json("PATCH", path, {"track": {"encoded": "AAAA"}})
    assert status == 500
    player = fake.player(sid, 3)
    assert player is not None
    assert player["paused"] is False
    assert player["track"]["info"]["identifier"] == track.identifier


# --------------------------------------------------------------------------- PATCH player semantics


def test_play_replace_stop_events(fake: FakeNode, rest: Rest, sid: str) -> None:
    a, b = fake.add_track("A"), fake.add_track("B")
    path = f"/v4/sessions/{sid}/players/11"
    skip = len(fake.sessions[sid].sent)
    status, player = rest.json(
        "PATCH", path, {"track": {"encoded": a.encoded, "userData": {"q": 1}}}
    )
    assert status == 200
    assert player["track"]["info"]["title"] == "A"
    assert player["track"]["userData"] == {"q": 1}
    assert player["paused"] is False
    assert player["state"]["connected"] is False
    sent = events(fake, sid, skip)
    assert ops(sent) == ["TrackStartEvent", "playerUpdate", "playerUpdate"]
    assert sent[0]["guildId"] == "11"
    assert sent[0]["track"]["userData"] == {"q": 1}

    skip = len(fake.sessions[sid].sent)
    rest("PATCH", path, {"encodedTrack": b.encoded})  # the deprecated alias
    sent = events(fake, sid, skip)
    assert ops(sent) == ["TrackEndEvent", "TrackStartEvent", "playerUpdate", "playerUpdate"]
    assert sent[0]["reason"] == "replaced"
    assert sent[0]["track"]["info"]["title"] == "A"
    assert sent[1]["track"]["info"]["title"] == "B"
    assert sent[1]["track"]["userData"] == {}

    skip = len(fake.sessions[sid].sent)
    status, player = rest.json("PATCH", path, {"track": {"encoded": None}})
    assert player["track"] is None
    sent = events(fake, sid, skip)
    assert ops(sent) == ["TrackEndEvent"]
    assert sent[0]["reason"] == "stopped"
    # stopping an idle player emits nothing
    skip = len(fake.sessions[sid].sent)
    rest("PATCH", path, {"encodedTrack": None})
    assert events(fake, sid, skip) == []


def test_new_track_resets_paused(fake: FakeNode, rest: Rest, sid: str) -> None:
    t = fake.add_track()
    path = f"/v4/sessions/{sid}/players/1"
    assert rest.json("PATCH", path, {"paused": True})[1]["paused"] is True
    assert rest.json("PATCH", path, {"track": {"encoded": t.encoded}})[1]["paused"] is False
    assert (
        rest.json("PATCH", path, {"track": {"encoded": t.encoded}, "paused": True})[1]["paused"]
        is True
    )
    # a stop without paused un-pauses as well
    assert rest.json("PATCH", path, {"track": {"encoded": None}})[1]["paused"] is False


def test_no_replace(fake: FakeNode, rest: Rest, sid: str) -> None:
    a, b = fake.add_track("A"), fake.add_track("B")
    path = f"/v4/sessions/{sid}/players/1"
    # nothing loaded: plays normally
    _, player = rest.json("PATCH", path + "?noReplace=true", {"track": {"encoded": a.encoded}})
    assert player["track"]["info"]["title"] == "A"
    skip = len(fake.sessions[sid].sent)
    body = {
        "track": {"encoded": b.encoded, "userData": {"x": 1}},
        "volume": 30,
        "paused": True,
        "position": 5000,
        "filters": {"rotation": {"rotationHz": 0.2}},
    }
    _, player = rest.json("PATCH", path + "?noReplace=true", body)
    assert player["track"]["info"]["title"] == "A"
    assert player["track"]["userData"] == {}
    assert player["volume"] == 30
    assert player["paused"] is False
    assert player["filters"] == {"rotation": {"rotationHz": 0.2}}
    assert player["track"]["info"]["position"] == 0
    assert ops(events(fake, sid, skip)) == ["playerUpdate"]  # from the filters only
    # encoded: null is a no-op under noReplace
    _, player = rest.json("PATCH", path + "?noReplace=true", {"track": {"encoded": None}})
    assert player["track"]["info"]["title"] == "A"


def test_start_position_user_data_end_time(fake: FakeNode, rest: Rest, sid: str) -> None:
    t = fake.add_track(length=100_000)
    path = f"/v4/sessions/{sid}/players/1"
    _, player = rest.json("PATCH", path, {"track": {"encoded": t.encoded}, "position": 40_000})
    assert player["state"]["position"] == 40_000
    assert player["track"]["info"]["position"] == 40_000
    assert decode_info(player["track"]["encoded"])["position"] == 40_000
    # the blob's own position is the start offset when no position is sent
    _, player = rest.json("PATCH", path, {"track": {"encoded": player["track"]["encoded"]}})
    assert player["state"]["position"] == 40_000
    # userData without a new track replaces the current one's
    _, player = rest.json("PATCH", path, {"track": {"userData": {"who": "me"}}})
    assert player["track"]["userData"] == {"who": "me"}
    assert player["state"]["position"] == 40_000
    # seek emits one playerUpdate; negative clamps to 0
    skip = len(fake.sessions[sid].sent)
    _, player = rest.json("PATCH", path, {"position": -10})
    assert player["state"]["position"] == 0
    assert ops(events(fake, sid, skip)) == ["playerUpdate"]
    # pause / volume / userData emit nothing
    skip = len(fake.sessions[sid].sent)
    rest("PATCH", path, {"paused": True, "volume": 2000, "track": {"userData": {}}})
    assert events(fake, sid, skip) == []
    assert fake.player(sid, 1)["volume"] == 1000  # type: ignore[index]


def test_seek_past_end_time_finishes(fake: FakeNode, rest: Rest, sid: str) -> None:
    t = fake.add_track(length=100_000)
    path = f"/v4/sessions/{sid}/players/1"
    rest("PATCH", path, {"track": {"encoded": t.encoded}, "endTime": 50_000})
    skip = len(fake.sessions[sid].sent)
    _, player = rest.json("PATCH", path, {"position": 60_000})
    assert player["track"] is None
    sent = events(fake, sid, skip)
    assert sent[0]["type"] == "TrackEndEvent"
    assert sent[0]["reason"] == "finished"


def test_filters_are_echoed_normalised(fake: FakeNode, rest: Rest, sid: str) -> None:
    path = f"/v4/sessions/{sid}/players/1"
    body = {
        "filters": {
            "volume": 1,
            "equalizer": [{"band": 0, "gain": 0.2}, {"band": 3}],
            "timescale": {"speed": 1.2},
            "karaoke": None,
            "pluginFilters": {"x": {}},
        }
    }
    skip = len(fake.sessions[sid].sent)
    _, player = rest.json("PATCH", path, body)
    assert player["filters"] == {
        "volume": 1.0,
        "equalizer": [{"band": 0, "gain": 0.2}, {"band": 3, "gain": 1.0}],
        "timescale": {"speed": 1.2, "pitch": 1.0, "rate": 1.0},
    }
    assert ops(events(fake, sid, skip)) == ["playerUpdate"]
    all_filters = load_example("filters_all.json")
    all_filters.pop("pluginFilters", None)
    _, player = rest.json("PATCH", path, {"filters": all_filters})
    assert player["filters"] == load_example("rest_player.json")["filters"]
    assert rest.json("PATCH", path, {"filters": {}})[1]["filters"] == {}


def test_play_by_identifier(rest: Rest, sid: str) -> None:
    _, player = rest.json(
        "PATCH", f"/v4/sessions/{sid}/players/1", {"track": {"identifier": "dQw4w9WgXcQ"}}
    )
    assert player["track"]["info"]["identifier"] == "dQw4w9WgXcQ"


def test_get_players(fake: FakeNode, rest: Rest, sid: str) -> None:
    rest("PATCH", f"/v4/sessions/{sid}/players/1", {})
    rest("PATCH", f"/v4/sessions/{sid}/players/2", {"volume": 5})
    status, players = rest.json("GET", f"/v4/sessions/{sid}/players")
    assert status == 200
    assert sorted(p["guildId"] for p in players) == ["1", "2"]
    assert rest.json("GET", f"/v4/sessions/{sid}/players/2")[1]["volume"] == 5
    assert fake.sessions[sid].players[2]["volume"] == 5


# ---------------------------------------------------------------- DELETE, session, planner


def test_delete_player_events(fake: FakeNode, rest: Rest, sid: str) -> None:
    t = fake.add_track()
    path = f"/v4/sessions/{sid}/players/4"
    rest("PATCH", path, {"voice": VOICE, "track": {"encoded": t.encoded}})
    # start -> update x2, then the voice-ready update arrives on its own
    fake.wait_for_message(sid, lambda m: m["op"] == "playerUpdate", count=3)
    skip = len(fake.sessions[sid].sent)
    status, _, body = rest("DELETE", path)
    assert (status, body) == (204, b"")
    sent = events(fake, sid, skip)
    end, closed, update = sent[0], sent[1], sent[2]
    assert end["type"] == "TrackEndEvent"
    assert end["reason"] == "stopped"
    assert {k: closed[k] for k in ("type", "code", "reason", "byRemote")} == {
        "type": "WebSocketClosedEvent",
        "code": 1000,
        "reason": "",
        "byRemote": False,
    }
    assert update["op"] == "playerUpdate"
    assert update["guildId"] == "4"
    assert update["state"]["connected"] is False
    assert update["state"]["ping"] == -1
    assert rest("GET", path)[0] == 404
    assert rest("DELETE", path)[0] == 204  # no player: still 204
    assert rest("DELETE", "/v4/sessions/nope/players/4")[0] == 404


def test_patch_session(rest: Rest, sid: str) -> None:
    path = f"/v4/sessions/{sid}"
    assert rest.json("PATCH", path, {}) == (200, {"resuming": False, "timeout": 60})
    body = load_example("rest_session_update_request.json")
    assert rest.json("PATCH", path, body) == (
        200,
        load_example("rest_session_update_response.json"),
    )
    assert rest.json("PATCH", path, {"timeout": 5}) == (200, {"resuming": True, "timeout": 5})
    assert rest("PATCH", path, {"resuming": None})[0] == 400
    assert rest("PATCH", path, {"timeout": "60"})[0] == 400
    assert rest("PATCH", "/v4/sessions/unknown", {})[0] == 404
    assert rest("GET", path)[0] == 405


def test_route_planner(fake: FakeNode, rest: Rest) -> None:
    status, _, body = rest("GET", "/v4/routeplanner/status")
    assert (status, body) == (204, b"")
    status, payload = rest.json("POST", "/v4/routeplanner/free/address", {"address": "1.0.0.1"})
    assert (status, payload["message"]) == (500, "Can't access disabled route planner")
    assert rest("POST", "/v4/routeplanner/free/all")[0] == 500
    planner = load_example("rest_routeplanner_status_RotatingNanoIpRoutePlanner.json")
    fake.set_route_planner(planner)
    assert rest.json("GET", "/v4/routeplanner/status") == (200, planner)
    status, payload = rest.json("POST", "/v4/routeplanner/free/address", {"address": "nope"})
    assert (status, payload["message"]) == (400, "Invalid address: nope")
    assert rest("POST", "/v4/routeplanner/free/address", {"address": "1.0.0.1"})[0] == 204
    assert rest("POST", "/v4/routeplanner/free/all")[0] == 204


def test_custom_route(fake: FakeNode, rest: Rest) -> None:
    fake.add_route("GET", "/v4/lyrics", lambda req: (200, {"echo": req.query["track"][0]}))
    assert rest.json("GET", "/v4/lyrics?track=x") == (200, {"echo": "x"})
    assert rest("GET", "/v4/lyrics", auth=None)[0] == 401
    assert rest("POST", "/v4/lyrics")[0] == 405


# --------------------------------------------------------------------------- failure controls


def test_refuse_connections(fake: FakeNode, rest: Rest) -> None:
    fake.refuse_connections()
    status, resp, _ = rest("GET", "/v4/info")
    assert status == 503
    assert resp.getheader("Lavalink-Api-Version") == "4"
    fake.refuse_connections(how="close")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        Rest(fake)("GET", "/v4/info")
    fake.refuse_connections(False)
    assert Rest(fake)("GET", "/v4/info")[0] == 200


def test_stop_answering_hangs_rest_until_resumed(fake: FakeNode) -> None:
    fake.stop_answering()
    slow = Rest(fake)
    slow.conn.timeout = 0.3
    with pytest.raises(socket.timeout):
        slow("GET", "/version")
    slow.close()
    waiting = Rest(fake)
    waiting.conn.connect()
    waiting.conn.request("GET", "/version", headers={"Authorization": fake.password})
    fake.resume_answering()
    resp = waiting.conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"4.2.2")
    waiting.close()


def test_kill_and_revive_same_port(fake: FakeNode) -> None:
    port = fake.port
    assert Rest(fake)("GET", "/version")[0] == 200
    fake.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    fake.revive()
    assert fake.port == port
    assert Rest(fake)("GET", "/version")[0] == 200


def test_close_is_quick_and_idempotent() -> None:
    node = FakeNode().start()
    Rest(node)("GET", "/version")  # leaves a keep-alive connection open
    t0 = time.monotonic()
    node.close()
    node.close()
    assert time.monotonic() - t0 < 1.0
