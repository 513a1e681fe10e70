"""RestClient against FakeNode over loopback: every endpoint's request and decoded answer,
error mapping, and argument checks that must leave the wire untouched."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import websocket
from conftest import VECTORS, load_example
from test_rest_transport import canned, http_response

from lavasync.errors import AuthenticationError, LoadError, RestError
from lavasync.models import (
    EqualizerBand,
    Filters,
    Info,
    LoadResult,
    PlayerInfo,
    Session,
    Stats,
    Timescale,
    Track,
    UpdatePlayer,
    UpdatePlayerTrack,
    Vibrato,
)
from lavasync.rest import RestClient
from lavasync.testing import FakeNode
from lavasync.transport.rest import RestTransport

GUILD = 817327181659111454


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


@pytest.fixture
def client(fake: FakeNode) -> Iterator[RestClient]:
    rest = RestClient(RestTransport(fake.uri, fake.password, client_name="lavasync-tests/1.0"))
    try:
        yield rest
    finally:
        rest.close()


@pytest.fixture
def session_id(fake: FakeNode) -> Iterator[str]:
    """A live session: a raw WebSocket held open for the test, its ``ready`` read."""
    ws = websocket.create_connection(
        fake.ws_uri,
        header=[
            f"Authorization: {fake.password}",
            "User-Id: 170939974227591168",
            "Client-Name: lavasync-tests/1.0",
        ],
        timeout=5,
    )
    try:
        while True:
            message = json.loads(ws.recv())
            if message.get("op") == "ready":
                break
        fake.clear_requests()
        yield str(message["sessionId"])
    finally:
        ws.close()


def _vector(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return next(v for v in vectors if predicate(v))


def _only_request(fake: FakeNode) -> Any:
    requests = fake.requests
    assert len(requests) == 1, [(r.method, r.path) for r in requests]
    return requests[0]


def _assert_common_headers(sent: Any, fake: FakeNode) -> None:
    assert sent.headers["Authorization"] == fake.password
    assert sent.headers["Client-Name"] == "lavasync-tests/1.0"
    assert sent.headers["User-Agent"].startswith("lavasync/")


# -- node endpoints -------------------------------------------------------------------------------


def test_version(fake: FakeNode, client: RestClient) -> None:
    assert client.version() == "4.2.2"
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.query, sent.body) == ("GET", "/version", {}, b"")
    _assert_common_headers(sent, fake)


def test_info(fake: FakeNode, client: RestClient) -> None:
    info = client.info()
    assert isinstance(info, Info)
    assert info.version.semver == "4.2.2"
    assert (info.version.major, info.version.minor, info.version.patch) == (4, 2, 2)
    assert isinstance(info.source_managers, list)
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.query) == ("GET", "/v4/info", {})
    _assert_common_headers(sent, fake)


def test_stats(fake: FakeNode, client: RestClient) -> None:
    stats = client.stats()
    assert isinstance(stats, Stats)
    assert stats.players == 0
    assert stats.playing_players == 0
    assert stats.frame_stats is None  # REST stats never carry frame statistics
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.query) == ("GET", "/v4/stats", {})


# -- loading and decoding -------------------------------------------------------------------------


def test_load_tracks_single_track(fake: FakeNode, client: RestClient) -> None:
    track_json = fake.add_track("Loadable", identifier="loadable-1", length=42_000)
    result = client.load_tracks("loadable-1")
    assert isinstance(result, LoadResult)
    assert result.load_type == "track"
    [track] = result.tracks
    assert track.encoded == track_json.encoded
    assert track.info.title == "Loadable"
    assert track.info.length == 42_000
    sent = _only_request(fake)
    assert (sent.method, sent.path) == ("GET", "/v4/loadtracks")
    assert sent.query == {"identifier": ["loadable-1"]}
    _assert_common_headers(sent, fake)


@pytest.mark.parametrize(
    ("example", "load_type", "count"),
    [
        ("rest_loadtracks_playlist.json", "playlist", None),
        ("rest_loadtracks_search.json", "search", None),
        ("rest_loadtracks_empty.json", "empty", 0),
        ("rest_loadtracks_empty_null.json", "empty", 0),
        ("rest_loadtracks_error_4_0_8.json", "error", 0),
    ],
)
def test_load_tracks_every_result_type(
    fake: FakeNode, client: RestClient, example: str, load_type: str, count: Any
) -> None:
    payload = load_example(example)
    identifier = f"canned:{example} +/&"
    fake.set_load_result(identifier, payload)
    result = client.load_tracks(identifier)
    assert result.load_type == load_type
    if load_type == "playlist":
        assert result.playlist is not None
        assert result.playlist.info.name == payload["data"]["info"]["name"]
        expected = [t["encoded"] for t in payload["data"]["tracks"]]
        assert [t.encoded for t in result.tracks] == expected
    elif load_type == "search":
        assert [t.encoded for t in result.tracks] == [t["encoded"] for t in payload["data"]]
    else:
        assert len(result.tracks) == count
    if load_type == "error":
        assert result.exception is not None
        assert result.exception.message == payload["data"]["message"]
    assert _only_request(fake).query == {"identifier": [identifier]}


def test_load_tracks_can_raise_on_error(fake: FakeNode, client: RestClient) -> None:
    payload = load_example("rest_loadtracks_error_4_0_8.json")
    fake.set_load_result("broken", payload)
    with pytest.raises(LoadError) as caught:
        client.load_tracks("broken", raise_on_error=True)
    assert caught.value.identifier == "broken"
    assert caught.value.exception.severity == payload["data"]["severity"]
    assert str(caught.value) == payload["data"]["message"]
    assert client.load_tracks("broken").load_type == "error"  # default: a normal result


def test_decode_track_sends_percent_encoded_base64(fake: FakeNode, client: RestClient) -> None:
    vector = _vector(lambda v: "+" in v["encoded"] and "/" in v["encoded"])
    track = client.decode_track(vector["encoded"])
    assert isinstance(track, Track)
    assert track.encoded == vector["encoded"]
    assert track.info.title == vector["info"]["title"]
    assert track.info.identifier == vector["info"]["identifier"]
    sent = _only_request(fake)
    assert (sent.method, sent.path) == ("GET", "/v4/decodetrack")
    assert sent.query == {"encodedTrack": [vector["encoded"]]}


def test_decode_tracks(fake: FakeNode, client: RestClient) -> None:
    first = fake.add_track("First").encoded
    second = fake.add_track("Second", author="someone").encoded
    fake.clear_requests()
    tracks = client.decode_tracks([first, second])
    assert [t.info.title for t in tracks] == ["First", "Second"]
    assert tracks[1].info.author == "someone"
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.query) == ("POST", "/v4/decodetracks", {})
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == [first, second]


def test_decode_tracks_server_failure_is_rest_error(fake: FakeNode, client: RestClient) -> None:
    # well-formed, but no source manager has the name "": only the server can refuse it
    no_source = _vector(lambda v: v["info"]["sourceName"] == "")["encoded"]
    with pytest.raises(RestError) as caught:
        client.decode_tracks([no_source])
    assert caught.value.status == 500
    assert caught.value.path == "/v4/decodetracks"


# -- players and sessions -------------------------------------------------------------------------


def test_update_player_sends_only_what_was_set(
    fake: FakeNode, client: RestClient, session_id: str
) -> None:
    encoded = fake.add_track("Playing", length=600_000).encoded
    fake.clear_requests()
    update = UpdatePlayer(track=UpdatePlayerTrack(encoded=encoded), volume=55, paused=True)
    player = client.update_player(session_id, GUILD, update)
    assert isinstance(player, PlayerInfo)
    assert player.guild_id == GUILD
    assert player.volume == 55
    assert player.paused is True
    assert player.track is not None
    assert player.track.info.title == "Playing"
    sent = _only_request(fake)
    assert sent.method == "PATCH"
    assert sent.path == f"/v4/sessions/{session_id}/players/{GUILD}"
    assert sent.query == {}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {"track": {"encoded": encoded}, "volume": 55, "paused": True}
    assert sent.json == update.to_wire()
    _assert_common_headers(sent, fake)


def test_update_player_no_replace_and_string_guild(
    fake: FakeNode, client: RestClient, session_id: str
) -> None:
    first = fake.add_track("First", length=600_000).encoded
    second = fake.add_track("Second", length=600_000).encoded
    client.update_player(
        session_id, str(GUILD), UpdatePlayer(track=UpdatePlayerTrack(encoded=first))
    )
    fake.clear_requests()
    update = UpdatePlayer(track=UpdatePlayerTrack(encoded=second))
    player = client.update_player(session_id, GUILD, update, no_replace=True)
    assert player.track is not None
    assert player.track.info.title == "First"  # kept: noReplace with a track loaded
    sent = _only_request(fake)
    assert sent.query == {"noReplace": ["true"]}
    assert sent.path == f"/v4/sessions/{session_id}/players/{GUILD}"


def test_update_player_stop_sends_explicit_null(
    fake: FakeNode, client: RestClient, session_id: str
) -> None:
    encoded = fake.add_track("To Stop", length=600_000).encoded
    client.update_player(session_id, GUILD, UpdatePlayer(track=UpdatePlayerTrack(encoded=encoded)))
    fake.clear_requests()
    player = client.update_player(
        session_id, GUILD, UpdatePlayer(track=UpdatePlayerTrack(encoded=None))
    )
    assert player.track is None
    assert _only_request(fake).json == {"track": {"encoded": None}}


def test_get_player_and_players(fake: FakeNode, client: RestClient, session_id: str) -> None:
    client.update_player(session_id, GUILD, UpdatePlayer(volume=70))
    client.update_player(session_id, GUILD + 1, UpdatePlayer(volume=80))
    fake.clear_requests()
    player = client.get_player(session_id, GUILD)
    assert (player.guild_id, player.volume, player.track) == (GUILD, 70, None)
    players = client.get_players(session_id)
    assert sorted((p.guild_id, p.volume) for p in players) == [(GUILD, 70), (GUILD + 1, 80)]
    sent = fake.requests
    assert [(r.method, r.path, r.query) for r in sent] == [
        ("GET", f"/v4/sessions/{session_id}/players/{GUILD}", {}),
        ("GET", f"/v4/sessions/{session_id}/players", {}),
    ]


def test_get_missing_player_is_404(client: RestClient, session_id: str) -> None:
    with pytest.raises(RestError) as caught:
        client.get_player(session_id, GUILD)
    assert caught.value.status == 404
    assert caught.value.message == "Player not found"


def test_destroy_player(fake: FakeNode, client: RestClient, session_id: str) -> None:
    client.update_player(session_id, GUILD, UpdatePlayer(volume=70))
    fake.clear_requests()
    assert client.destroy_player(session_id, GUILD) is None
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.body) == (
        "DELETE",
        f"/v4/sessions/{session_id}/players/{GUILD}",
        b"",
    )
    assert sent.status == 204
    assert fake.player(session_id, GUILD) is None
    client.destroy_player(session_id, GUILD)  # again: still 204, no error


def test_unknown_session_is_404_session_not_found(fake: FakeNode, client: RestClient) -> None:
    with pytest.raises(RestError) as caught:
        client.get_players("no-such-session")
    assert caught.value.status == 404
    assert caught.value.message == "Session not found"
    assert caught.value.path == "/v4/sessions/no-such-session/players"


def test_update_session(fake: FakeNode, client: RestClient, session_id: str) -> None:
    session = client.update_session(session_id, resuming=True, timeout=30)
    assert isinstance(session, Session)
    assert (session.resuming, session.timeout) == (True, 30)
    read = client.update_session(session_id)
    assert (read.resuming, read.timeout) == (True, 30)
    first, second = fake.requests
    assert (first.method, first.path) == ("PATCH", f"/v4/sessions/{session_id}")
    assert first.json == {"resuming": True, "timeout": 30}
    assert second.json == {}


def test_session_ids_are_escaped_in_paths(fake: FakeNode, client: RestClient) -> None:
    with pytest.raises(RestError):
        client.get_players("a/b c")
    assert fake.requests[0].path in ("/v4/sessions/a%2Fb%20c/players", "/v4/sessions/a/b c/players")


# -- route planner --------------------------------------------------------------------------------


def test_route_planner_status_none_without_planner(fake: FakeNode, client: RestClient) -> None:
    assert client.route_planner_status() is None
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.status) == ("GET", "/v4/routeplanner/status", 204)


@pytest.mark.parametrize(
    "name",
    [
        "RotatingIpRoutePlanner",
        "NanoIpRoutePlanner",
        "RotatingNanoIpRoutePlanner",
        "BalancingIpRoutePlanner",
    ],
)
def test_route_planner_status_of_every_class(fake: FakeNode, client: RestClient, name: str) -> None:
    payload = load_example(f"rest_routeplanner_status_{name}.json")
    fake.set_route_planner(payload)
    status = client.route_planner_status()
    assert status is not None
    assert type(status).__name__ == f"{name}Status"
    assert status.class_name == name
    assert status.to_wire() == payload


def test_free_address_and_all_with_a_planner(fake: FakeNode, client: RestClient) -> None:
    payload = load_example("rest_routeplanner_status_RotatingIpRoutePlanner.json")
    fake.set_route_planner(payload)
    failing = payload["details"]["failingAddresses"][0]["failingAddress"]  # "/1.0.0.0" style
    assert client.free_address(failing) is None
    assert client.free_address(ipaddress.ip_address("1.0.0.7")) is None
    assert client.free_all_addresses() is None
    sent = fake.requests
    assert [(r.method, r.path, r.status) for r in sent] == [
        ("POST", "/v4/routeplanner/free/address", 204),
        ("POST", "/v4/routeplanner/free/address", 204),
        ("POST", "/v4/routeplanner/free/all", 204),
    ]
    assert sent[0].json == {"address": failing.rsplit("/", 1)[-1]}
    assert sent[1].json == {"address": "1.0.0.7"}


def test_free_address_sends_normalised_address(fake: FakeNode, client: RestClient) -> None:
    with pytest.raises(RestError) as caught:  # the fake has no route planner by default
        client.free_address("/1.0.0.1")
    assert caught.value.status == 500
    sent = _only_request(fake)
    assert (sent.method, sent.path) == ("POST", "/v4/routeplanner/free/address")
    assert sent.json == {"address": "1.0.0.1"}


def test_free_all_addresses(fake: FakeNode, client: RestClient) -> None:
    with pytest.raises(RestError):
        client.free_all_addresses()
    sent = _only_request(fake)
    assert (sent.method, sent.path, sent.body) == ("POST", "/v4/routeplanner/free/all", b"")


# -- generic and failures -------------------------------------------------------------------------


def test_generic_request_reaches_plugin_routes(fake: FakeNode, client: RestClient) -> None:
    answer = load_example("plugin_lavasearch_loadsearch_response.json")
    fake.add_route("GET", "/v4/loadsearch", lambda request: answer)
    fake.add_route("PUT", "/v4/sessions/s/players/1/sponsorblock/categories", lambda r: None)
    result = client.request("GET", "/v4/loadsearch", params={"query": "a+b", "types": "track"})
    assert result == answer
    categories = ["sponsor", "selfpromo"]
    path = "/v4/sessions/s/players/1/sponsorblock/categories"
    assert client.request("PUT", path, json=categories) is None
    first, second = fake.requests
    assert first.query == {"query": ["a+b"], "types": ["track"]}
    _assert_common_headers(first, fake)
    assert (second.method, second.path, second.json) == ("PUT", path, categories)


def test_generic_request_to_a_missing_plugin_is_404(fake: FakeNode, client: RestClient) -> None:
    with pytest.raises(RestError) as caught:  # LavaSearch is not loaded on the fake
        client.request("GET", "/v4/loadsearch", params={"query": "a b", "types": "track,album"})
    assert caught.value.status == 404
    sent = _only_request(fake)
    assert sent.query == {"query": ["a b"], "types": ["track,album"]}
    assert client.request("GET", "/v4/stats")["players"] == 0


def test_wrong_password_through_client(fake: FakeNode) -> None:
    client = RestClient(RestTransport(fake.uri, "nope", client_name="t"))
    with client, pytest.raises(AuthenticationError) as caught:
        client.stats()
    assert caught.value.status == 403
    assert client.transport.closed


def test_malformed_success_body_is_rest_error() -> None:
    with canned(http_response("200 OK", b'{"unexpected": true}', "application/json")) as server:
        client = RestClient(RestTransport(server.uri, "pw", client_name="t"))
        try:
            with pytest.raises(RestError, match="unexpected response body") as caught:
                client.info()
            with pytest.raises(RestError, match="unexpected response body"):
                client.decode_tracks([_vector(lambda v: True)["encoded"]])  # an object, not a list
        finally:
            client.close()
    assert caught.value.status == 200
    assert caught.value.body == {"unexpected": True}


# -- arguments are checked before anything is sent ------------------------------------------------


def _with_filters(**filters: Any) -> Callable[[RestClient, str], Any]:
    return lambda c, s: c.update_player(s, GUILD, UpdatePlayer(filters=Filters(**filters)))


BAD_CALLS: list[tuple[str, Callable[[RestClient, str], Any]]] = [
    ("empty identifier", lambda c, s: c.load_tracks("")),
    ("blank identifier", lambda c, s: c.load_tracks("   ")),
    ("identifier not str", lambda c, s: c.load_tracks(42)),
    ("empty encoded", lambda c, s: c.decode_track("")),
    ("empty decode list", lambda c, s: c.decode_tracks([])),
    ("empty blob in list", lambda c, s: c.decode_tracks(["QAAA", ""])),
    ("str as decode list", lambda c, s: c.decode_tracks("QAAA")),
    ("non-numeric guild", lambda c, s: c.get_player(s, "my-guild")),
    ("negative guild", lambda c, s: c.get_player(s, -5)),
    ("bool guild", lambda c, s: c.destroy_player(s, True)),
    ("non-numeric guild in update", lambda c, s: c.update_player(s, "x", UpdatePlayer())),
    ("empty session", lambda c, s: c.get_players("")),
    ("empty session for player", lambda c, s: c.get_player("", GUILD)),
    ("empty session update", lambda c, s: c.update_session("", resuming=True)),
    ("volume too high", lambda c, s: c.update_player(s, GUILD, UpdatePlayer(volume=1001))),
    ("volume negative", lambda c, s: c.update_player(s, GUILD, UpdatePlayer(volume=-1))),
    ("negative position", lambda c, s: c.update_player(s, GUILD, UpdatePlayer(position=-1))),
    ("band 15", _with_filters(equalizer=[EqualizerBand(band=15, gain=0.1)])),
    ("band -1", _with_filters(equalizer=[EqualizerBand(band=-1, gain=0.1)])),
    ("gain too low", _with_filters(equalizer=[EqualizerBand(band=1, gain=-0.5)])),
    ("gain too high", _with_filters(equalizer=[EqualizerBand(band=1, gain=1.5)])),
    ("timescale speed 0", _with_filters(timescale=Timescale(speed=0))),
    ("timescale pitch negative", _with_filters(timescale=Timescale(pitch=-1))),
    ("timescale rate 0", _with_filters(timescale=Timescale(rate=0))),
    ("vibrato frequency 15", _with_filters(vibrato=Vibrato(frequency=15))),
    ("vibrato frequency 0", _with_filters(vibrato=Vibrato(frequency=0))),
    ("vibrato depth 2", _with_filters(vibrato=Vibrato(depth=2))),
    ("vibrato depth 0", _with_filters(vibrato=Vibrato(depth=0))),
    ("update not a model", lambda c, s: c.update_player(s, GUILD, {"volume": 5})),
    ("no_replace not bool", lambda c, s: c.update_player(s, GUILD, UpdatePlayer(), no_replace=1)),
    ("resuming not bool", lambda c, s: c.update_session(s, resuming="yes")),
    ("resume timeout negative", lambda c, s: c.update_session(s, timeout=-1)),
    ("resume timeout float", lambda c, s: c.update_session(s, timeout=1.5)),
    ("address int", lambda c, s: c.free_address(16777217)),
    ("address None", lambda c, s: c.free_address(None)),
    ("address not an ip", lambda c, s: c.free_address("not-an-ip")),
    ("address empty", lambda c, s: c.free_address("")),
    ("request timeout zero", lambda c, s: c.stats(timeout=0)),
    ("generic path trailing slash", lambda c, s: c.request("GET", "/v4/stats/")),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[name for name, _ in BAD_CALLS])
def test_bad_arguments_send_nothing(
    fake: FakeNode, client: RestClient, session_id: str, call: Callable[[RestClient, str], Any]
) -> None:
    with pytest.raises(ValueError):
        call(client, session_id)
    assert fake.requests == []
