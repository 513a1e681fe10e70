"""Wire models: every example payload decodes into its model and encodes back unchanged."""

from __future__ import annotations

import copy
import json
import pickle
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
from conftest import EXAMPLES, load_example
from hypothesis import given, settings
from hypothesis import strategies as st

from lavasync.errors import DecodeError
from lavasync.models import (
    UNKNOWN_LENGTH,
    UNSET,
    BalancingIpRoutePlannerStatus,
    ErrorResponse,
    ExceptionInfo,
    Filters,
    Info,
    LoadResult,
    LoadType,
    NanoIpRoutePlannerStatus,
    PlayerInfo,
    PlayerState,
    Playlist,
    RotatingIpRoutePlannerStatus,
    RotatingNanoIpRoutePlannerStatus,
    RoutePlannerDetails,
    RoutePlannerFreeAddress,
    RoutePlannerStatus,
    Session,
    SessionUpdate,
    Severity,
    Stats,
    Track,
    TrackInfo,
    UpdatePlayer,
    UpdatePlayerTrack,
    Version,
    VoiceState,
    WireFormatError,
    WireModel,
    parse_route_planner,
    snowflake,
)
from lavasync.models.events import TrackEndReason

# --------------------------------------------------------------------------- the examples

Decoder = Callable[[Any], Any]


def _one(model: type[WireModel]) -> tuple[Decoder, Decoder, Decoder]:
    """(fast decode, dataclasses-json decode, encode) for a payload of one model."""
    return model.from_wire, model.from_dict, lambda obj: obj.to_wire()


def _many(model: type[WireModel]) -> tuple[Decoder, Decoder, Decoder]:
    return (
        lambda data: [model.from_wire(item) for item in data],
        lambda data: [model.from_dict(item) for item in data],
        lambda objs: [obj.to_wire() for obj in objs],
    )


def _route_planner() -> tuple[Decoder, Decoder, Decoder]:
    def by_dict(data: Any) -> Any:
        return type(parse_route_planner(data)).from_dict(data)

    return parse_route_planner, by_dict, lambda obj: obj.to_wire()


def _part(model: type[WireModel], key: str) -> tuple[Decoder, Decoder, Decoder]:
    """For WebSocket messages owned by the events module: the embedded model part."""
    return (
        lambda data: model.from_wire(data[key]),
        lambda data: model.from_dict(data[key]),
        lambda obj: obj.to_wire(),
    )


WHOLE: dict[str, tuple[Decoder, Decoder, Decoder]] = {
    "filters_all.json": _one(Filters),
    "plugin_lavasrc_playlist_pluginInfo.json": _one(LoadResult),
    "plugin_lavasrc_track_pluginInfo.json": _one(Track),
    "rest_decodetrack_response.json": _one(Track),
    "rest_decodetracks_response.json": _many(Track),
    "rest_error.json": _one(ErrorResponse),
    "rest_error_400_update_player.json": _one(ErrorResponse),
    "rest_info.json": _one(Info),
    "rest_info_docs.json": _one(Info),
    "rest_info_snapshot_build.json": _one(Info),
    "rest_player.json": _one(PlayerInfo),
    "rest_player_idle.json": _one(PlayerInfo),
    "rest_players.json": _many(PlayerInfo),
    "rest_routeplanner_free_address_request.json": _one(RoutePlannerFreeAddress),
    "rest_session_update_request.json": _one(SessionUpdate),
    "rest_session_update_request_disable.json": _one(SessionUpdate),
    "rest_session_update_response.json": _one(Session),
    "rest_stats.json": _one(Stats),
    "ws_stats.json": _one(Stats),
    "ws_stats_frameStats_null.json": _one(Stats),
}
for _path in sorted(EXAMPLES.glob("rest_loadtracks_*.json")):
    WHOLE[_path.name] = _one(LoadResult)
for _path in sorted(EXAMPLES.glob("rest_update_player_request_*.json")):
    WHOLE[_path.name] = _one(UpdatePlayer)
for _path in sorted(EXAMPLES.glob("rest_routeplanner_status_*.json")):
    WHOLE[_path.name] = _route_planner()

# WebSocket messages are decoded by lavasync.models.events; here their model parts.
PARTS: dict[str, list[tuple[str, tuple[Decoder, Decoder, Decoder]]]] = {
    "ws_playerUpdate.json": [("state", _part(PlayerState, "state"))],
    "ws_event_TrackExceptionEvent.json": [
        ("track", _part(Track, "track")),
        ("exception", _part(ExceptionInfo, "exception")),
    ],
}
for _name in (
    "ws_event_TrackStartEvent.json",
    "ws_event_TrackEndEvent.json",
    "ws_event_TrackEndEvent_replaced.json",
    "ws_event_TrackStuckEvent.json",
):
    PARTS[_name] = [("track", _part(Track, "track"))]

# Lavalink payloads without a model of their own (checked elsewhere or not JSON objects).
NO_MODEL = {
    "rest_decodetracks_request.json",  # a JSON array of strings
    "ws_ready.json",  # ReadyEvent (events module)
    "ws_ready_resumed.json",
    "ws_event_WebSocketClosedEvent.json",  # only scalars: WebSocketClosedEvent
    "ws_event_WebSocketClosedEvent_local.json",
}


def _lavalink_examples() -> list[str]:
    names = [p.name for p in EXAMPLES.glob("*.json")]
    return sorted(n for n in names if n.startswith(("rest_", "ws_", "filters_", "plugin_lavasrc_")))


def test_every_lavalink_example_is_covered() -> None:
    missing = [
        n for n in _lavalink_examples() if n not in WHOLE and n not in PARTS and n not in NO_MODEL
    ]
    assert missing == []
    assert len(WHOLE) >= 45


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_example_round_trips(name: str) -> None:
    data = load_example(name)
    decode, _, encode = WHOLE[name]
    obj = decode(data)
    assert json.loads(json.dumps(encode(obj))) == data


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_from_wire_equals_dataclasses_json(name: str) -> None:
    data = load_example(name)
    decode, by_dict, _ = WHOLE[name]
    assert decode(data) == by_dict(data)


@pytest.mark.parametrize("name", sorted(PARTS))
def test_websocket_model_parts_round_trip(name: str) -> None:
    data = load_example(name)
    for key, (decode, by_dict, encode) in PARTS[name]:
        obj = decode(data)
        assert obj == by_dict(data)
        assert encode(obj) == data[key]


def test_examples_decode_into_the_right_types() -> None:
    track = LoadResult.from_wire(load_example("rest_loadtracks_track.json"))
    assert track.load_type == LoadType.TRACK
    assert isinstance(track.data, Track)
    playlist = LoadResult.from_wire(load_example("rest_loadtracks_playlist.json"))
    assert isinstance(playlist.data, Playlist)
    assert playlist.playlist is playlist.data
    search = LoadResult.from_wire(load_example("rest_loadtracks_search.json"))
    assert isinstance(search.data, list)
    assert all(isinstance(t, Track) for t in search.data)
    error = LoadResult.from_wire(load_example("rest_loadtracks_error.json"))
    assert isinstance(error.data, ExceptionInfo)
    assert error.data.severity == Severity.COMMON
    kinds = {
        "rest_routeplanner_status_RotatingIpRoutePlanner.json": RotatingIpRoutePlannerStatus,
        "rest_routeplanner_status_NanoIpRoutePlanner.json": NanoIpRoutePlannerStatus,
        "rest_routeplanner_status_RotatingNanoIpRoutePlanner.json": (
            RotatingNanoIpRoutePlannerStatus
        ),
        "rest_routeplanner_status_BalancingIpRoutePlanner.json": BalancingIpRoutePlannerStatus,
    }
    for name, kind in kinds.items():
        assert type(parse_route_planner(load_example(name))) is kind
    player = PlayerInfo.from_wire(load_example("rest_player.json"))
    assert player.guild_id == 123
    assert isinstance(player.track, Track)
    assert player.voice.channel_id == "..."  # a placeholder is kept as it came
    idle = PlayerInfo.from_wire(load_example("rest_player_idle.json"))
    assert idle.guild_id == 817327181659111454
    assert idle.track is None
    assert idle.voice.channel_id is None
    assert idle.filters == Filters()
    assert idle.filters.is_empty


# --------------------------------------------------------------------------- decoding rules


def _track_wire() -> dict[str, Any]:
    return copy.deepcopy(load_example("rest_decodetrack_response.json"))


def test_unknown_keys_are_kept_and_written_back() -> None:
    data = _track_wire()
    data["newKey"] = {"x": 1}
    data["info"]["chapter"] = 3
    track = Track.from_wire(data)
    assert track.wire_extras == {"newKey": {"x": 1}}
    assert track.info.wire_extras == {"chapter": 3}
    assert track.to_wire() == data
    assert Track.from_dict(data) == track  # dataclasses-json ignores them


def test_stats_op_key_is_kept() -> None:
    data = load_example("ws_stats.json")
    stats = Stats.from_wire(data)
    assert stats.frame_stats is not None
    assert stats.frame_stats.deficit == -3010
    assert stats.wire_extras == {"op": "stats"}


def test_frame_stats_absent_and_null_alike() -> None:
    absent = Stats.from_wire(load_example("rest_stats.json"))
    null = Stats.from_wire(load_example("ws_stats_frameStats_null.json"))
    assert absent.frame_stats is None
    assert null.frame_stats is None
    assert "frameStats" not in absent.to_wire()
    assert null.to_wire()["frameStats"] is None


def test_missing_optional_keys_default() -> None:
    old = _track_wire()
    del old["pluginInfo"], old["userData"], old["info"]["artworkUrl"], old["info"]["isrc"]
    track = Track.from_wire(old)
    assert track.plugin_info == {}
    assert track.user_data == {}
    assert track.info.artwork_url is None
    assert track.info.isrc is None
    assert track.to_wire() == old  # absent stays absent
    track.user_data = {"requester": 1}
    assert track.to_wire()["userData"] == {"requester": 1}  # unless it was changed

    exc = ExceptionInfo.from_wire({"message": None, "severity": "fault", "cause": "x"})
    assert exc.cause_stack_trace is None
    assert exc.to_wire() == {
        "message": None,
        "severity": "fault",
        "cause": "x",
    }
    voice = VoiceState.from_wire({"token": "t", "endpoint": "e", "sessionId": "s"})
    assert voice.channel_id is None
    filters = Filters.from_wire({"karaoke": {}, "equalizer": [{"band": 3}], "timescale": {}})
    assert filters.karaoke is not None
    assert filters.karaoke.filter_band == 220.0
    assert filters.equalizer is not None
    assert filters.equalizer[0].gain == 1.0
    assert filters.timescale is not None
    assert filters.timescale.speed == 1.0
    assert filters.to_wire() == {"karaoke": {}, "equalizer": [{"band": 3}], "timescale": {}}
    version = Version.from_wire(load_example("rest_info.json")["version"])
    assert version.build is None
    assert "build" not in version.to_wire()
    docs = Version.from_wire(load_example("rest_info_docs.json")["version"])
    assert docs.build == "test"


def test_unknown_enum_values_are_kept() -> None:
    result = LoadResult.from_wire({"loadType": "lyrics", "data": {"text": "la"}})
    assert result.load_type == "lyrics"
    assert result.data == {"text": "la"}
    assert result.tracks == []
    assert result.track is None
    assert result.exception is None
    assert result.to_wire() == {"loadType": "lyrics", "data": {"text": "la"}}
    exc = ExceptionInfo.from_wire({"message": "m", "severity": "catastrophic", "cause": "c"})
    assert exc.severity == "catastrophic"
    assert "catastrophic" not in Severity.ALL
    assert TrackEndReason.FINISHED in TrackEndReason.MAY_START_NEXT


def test_unknown_route_planner_class_is_kept() -> None:
    data = load_example("rest_routeplanner_status_BalancingIpRoutePlanner.json")
    data = dict(data, **{"class": "FancyIpRoutePlanner"})
    data["details"] = dict(data["details"], fancyIndex="7")
    status = parse_route_planner(data)
    assert type(status) is RoutePlannerStatus
    assert status.class_name == "FancyIpRoutePlanner"
    assert isinstance(status.details, RoutePlannerDetails)
    assert status.details.wire_extras == {"fancyIndex": "7"}
    assert status.to_wire() == data
    odd = {"class": "OddPlanner", "details": {"somethingElse": True}}
    odd_status = parse_route_planner(odd)
    assert odd_status is not None
    assert odd_status.details == {"somethingElse": True}
    assert odd_status.to_wire() == odd
    assert parse_route_planner(None) is None
    assert parse_route_planner({}) is None
    with pytest.raises(WireFormatError):
        parse_route_planner({"details": {}})


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"info": {}}, "'encoded' is missing"),
        ({"encoded": 5, "info": {}}, "Track.encoded"),
        ("not an object", "expected a JSON object"),
        ([], "expected a JSON object"),
        (None, "expected a JSON object"),
    ],
)
def test_bad_track_payloads_raise(data: Any, where: str) -> None:
    with pytest.raises(WireFormatError, match=where):
        Track.from_wire(data)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("length", "212000"),
        ("length", True),  # a bool is not an int
        ("length", 1.5),
        ("isStream", 0),
        ("title", None),
        ("uri", 3),
        ("artworkUrl", []),
    ],
)
def test_wrong_types_in_nested_model_name_the_path(key: str, value: Any) -> None:
    data = _track_wire()
    data["info"][key] = value
    with pytest.raises(WireFormatError, match=f"Track.info: TrackInfo.{key}: expected") as info:
        Track.from_wire(data)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, DecodeError)
    assert info.value.model == "Track"
    assert info.value.key == "info"


def test_more_wrong_types() -> None:
    info = load_example("rest_info.json")
    with pytest.raises(WireFormatError, match="every item must be a string"):
        Info.from_wire(dict(info, sourceManagers=["youtube", 3]))
    with pytest.raises(WireFormatError, match="sourceManagers: expected a JSON array"):
        Info.from_wire(dict(info, sourceManagers="youtube"))
    with pytest.raises(WireFormatError, match="pluginInfo"):
        Track.from_wire(dict(_track_wire(), pluginInfo=None))
    with pytest.raises(WireFormatError, match="guildId: expected a snowflake"):
        PlayerInfo.from_wire(dict(load_example("rest_player_idle.json"), guildId="abc"))
    with pytest.raises(WireFormatError, match="required key 'state'"):
        PlayerInfo.from_wire(
            {k: v for k, v in load_example("rest_player_idle.json").items() if k != "state"}
        )
    with pytest.raises(WireFormatError, match=r"LoadResult\.data"):
        LoadResult.from_wire({"loadType": "track", "data": None})
    with pytest.raises(WireFormatError, match=r"LoadResult\.data"):
        LoadResult.from_wire({"loadType": "search", "data": [{"encoded": "x"}]})
    with pytest.raises(WireFormatError, match=r"Filters\.equalizer"):
        Filters.from_wire({"equalizer": [{"gain": 0.1}]})


def test_floats_accept_ints_and_keep_them() -> None:
    filters = Filters.from_wire({"rotation": {"rotationHz": 0}, "volume": 2})
    assert filters.rotation is not None
    assert filters.rotation.rotation_hz == 0
    assert filters.to_wire() == {"rotation": {"rotationHz": 0}, "volume": 2}


def test_from_wire_accepts_any_mapping() -> None:
    data = _track_wire()
    proxy = types.MappingProxyType({**data, "info": types.MappingProxyType(data["info"])})
    assert Track.from_wire(proxy) == Track.from_wire(data)


def test_timestamps_stay_ints() -> None:
    error = ErrorResponse.from_wire(load_example("rest_error.json"))
    assert type(error.timestamp) is int
    assert error.timestamp == 1667857581613
    assert type(ErrorResponse.from_dict(load_example("rest_error.json")).timestamp) is int
    info = Info.from_dict(load_example("rest_info.json"))
    assert type(info.build_time) is int
    assert type(info.git.commit_time) is int


def test_unknown_length_stream() -> None:
    data = _track_wire()
    data["info"].update(length=2**63 - 1, isStream=True, isSeekable=False)
    track = Track.from_wire(data)
    assert track.info.length == UNKNOWN_LENGTH == 9223372036854775807
    assert track.info.is_unknown_length
    assert track.info.duration is None
    assert track.to_wire()["info"]["length"] == 9223372036854775807
    assert json.loads(track.to_json())["info"]["length"] == 9223372036854775807
    normal = Track.from_wire(_track_wire())
    assert not normal.info.is_unknown_length
    assert normal.info.duration == 212000


def test_subclass_gets_its_own_codec() -> None:
    @dataclass
    class TaggedTrack(Track):
        tag: str = "none"

    data = dict(_track_wire(), tag="mine")
    tagged = TaggedTrack.from_wire(data)
    assert type(tagged) is TaggedTrack
    assert tagged.tag == "mine"
    assert tagged.to_wire() == data
    assert type(Track.from_wire(data)) is Track  # the parent codec is untouched


def test_first_use_from_many_threads_compiles_once_and_right() -> None:
    @dataclass
    class Fresh(WireModel):
        guild_id: int
        items: list[TrackInfo] = field(default_factory=list)
        note: Optional[str] = None

    data = {"guildId": 5, "items": [_track_wire()["info"]] * 3, "note": "n"}
    barrier = threading.Barrier(8)
    results: list[Any] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait(timeout=10)
        obj = Fresh.from_wire(data)
        with lock:
            results.append(obj)

    threads = [threading.Thread(target=work, name=f"test-compile-{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    assert results[0].to_wire() == data


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_opt_text = st.none() | st.text(max_size=20)
_info = st.fixed_dictionaries(
    {
        "identifier": st.text(max_size=20),
        "isSeekable": st.booleans(),
        "author": st.text(max_size=20),
        "length": st.integers(0, 2**63 - 1),
        "isStream": st.booleans(),
        "position": st.integers(0, 2**63 - 1),
        "title": st.text(max_size=20),
        "uri": _opt_text,
        "sourceName": st.text(max_size=10),
    },
    optional={"artworkUrl": _opt_text, "isrc": _opt_text},
)
_track = st.fixed_dictionaries(
    {"encoded": st.text(max_size=30), "info": _info},
    optional={
        "pluginInfo": st.dictionaries(st.text(max_size=5), _json, max_size=3),
        "userData": st.dictionaries(st.text(max_size=5), _json, max_size=3),
        "someNewKey": _json,
    },
)


@settings(max_examples=150, deadline=None)
@given(_track)
def test_any_track_payload_round_trips(data: dict[str, Any]) -> None:
    track = Track.from_wire(data)
    assert track.to_wire() == data
    assert Track.from_wire(track.to_wire()) == track
    assert Track.from_dict(data) == track


# --------------------------------------------------------------------------- UNSET


def test_unset_sentinel() -> None:
    assert repr(UNSET) == "UNSET"
    assert not UNSET
    assert copy.copy(UNSET) is UNSET
    assert copy.deepcopy(UNSET) is UNSET
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET


def test_update_player_sends_only_what_was_set() -> None:
    assert UpdatePlayer().to_wire() == {}
    assert UpdatePlayer().to_dict() == {}
    assert UpdatePlayer().to_json() == "{}"
    stop = UpdatePlayer(track=UpdatePlayerTrack(encoded=None))
    assert stop.to_wire() == {"track": {"encoded": None}}
    assert json.loads(stop.to_json()) == {"track": {"encoded": None}}
    assert UpdatePlayer(end_time=None).to_wire() == {"endTime": None}
    assert UpdatePlayer(encoded_track=None).to_wire() == {"encodedTrack": None}
    assert UpdatePlayer(paused=False).to_wire() == {"paused": False}
    assert UpdatePlayer(filters=Filters()).to_wire() == {"filters": {}}
    user = UpdatePlayer(track=UpdatePlayerTrack(user_data={"a": 1}))
    assert user.to_wire() == {"track": {"userData": {"a": 1}}}
    assert not user.changes_track
    assert stop.changes_track


def test_update_player_decoding_keeps_absent_and_null_apart() -> None:
    stop = UpdatePlayer.from_wire(load_example("rest_update_player_request_stop.json"))
    assert stop.track is not UNSET
    assert stop.track.encoded is None
    assert stop.track.identifier is UNSET
    assert stop.volume is UNSET
    pause = UpdatePlayer.from_wire({"paused": True})
    assert pause.track is UNSET
    assert pause.paused is True
    assert UpdatePlayer.from_dict({"paused": True}) == pause
    with pytest.raises(WireFormatError, match=r"UpdatePlayer\.volume"):
        UpdatePlayer.from_wire({"volume": "loud"})
    with pytest.raises(WireFormatError, match=r"UpdatePlayer\.paused"):
        UpdatePlayer.from_wire({"paused": None})


# --------------------------------------------------------------------------- validation

_VOICE = VoiceState(token="t", endpoint="e", session_id="s", channel_id=42)


def test_valid_updates_pass() -> None:
    for update in (
        UpdatePlayer(),
        UpdatePlayer(track=UpdatePlayerTrack(encoded="QAAA"), position=0, end_time=1),
        UpdatePlayer(track=UpdatePlayerTrack(identifier="ytsearch:x"), volume=1000),
        UpdatePlayer(track=UpdatePlayerTrack(encoded=None), paused=True, volume=0),
        UpdatePlayer(encoded_track="QAAA", end_time=None),
        UpdatePlayer(voice=_VOICE, filters=Filters.nightcore()),
    ):
        update.validate()


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (UpdatePlayer(volume=1001), "volume"),
        (UpdatePlayer(volume=-1), "volume"),
        (UpdatePlayer(volume=True), "volume"),
        (UpdatePlayer(position=-1), "position"),
        (UpdatePlayer(end_time=0), "end_time"),
        (UpdatePlayer(end_time=-5), "end_time"),
        (UpdatePlayer(track=UpdatePlayerTrack(encoded="QAAA", identifier="x")), "not both"),
        (UpdatePlayer(encoded_track="QAAA", identifier="x"), "not both"),
        (UpdatePlayer(track=UpdatePlayerTrack(encoded="QAAA"), encoded_track="Q"), "deprecated"),
        (UpdatePlayer(track=UpdatePlayerTrack(), identifier="x"), "deprecated"),
        (UpdatePlayer(track=UpdatePlayerTrack(identifier="")), "identifier"),
        (UpdatePlayer(track=UpdatePlayerTrack(identifier="  ")), "identifier"),
        (UpdatePlayer(identifier=""), "identifier"),
        (UpdatePlayer(track=UpdatePlayerTrack(user_data=[1])), "user_data"),  # type: ignore[arg-type]
        (UpdatePlayer(filters=Filters(volume=6.0)), "volume"),
        (UpdatePlayer(voice=VoiceState("", "e", "s", 1)), "token"),
        (UpdatePlayer(voice=VoiceState("t", "", "s", 1)), "endpoint"),
        (UpdatePlayer(voice=VoiceState("t", "e", " ", 1)), "session_id"),
        (UpdatePlayer(voice=VoiceState("t", "e", "s", None)), "channel_id"),
        (UpdatePlayer(voice=VoiceState("t", "e", "s", "...")), "channel_id"),  # type: ignore[arg-type]
    ],
)
def test_invalid_updates_raise(update: UpdatePlayer, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        update.validate()


def test_invalid_example_request_is_rejected() -> None:
    both = UpdatePlayer.from_wire(load_example("rest_update_player_request_INVALID_both.json"))
    with pytest.raises(ValueError, match="not both"):
        both.validate()
    kotlin = UpdatePlayer.from_wire(load_example("rest_update_player_request_kotlin_test.json"))
    with pytest.raises(ValueError, match="end_time"):
        kotlin.validate()


def test_session_update_validation() -> None:
    SessionUpdate(resuming=True, timeout=60).validate()
    assert SessionUpdate(timeout=30).to_wire() == {"timeout": 30}
    with pytest.raises(ValueError, match="timeout"):
        SessionUpdate(timeout=-1).validate()
    with pytest.raises(ValueError, match="resuming"):
        SessionUpdate(resuming=1).validate()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- snowflake


def test_snowflake() -> None:
    assert snowflake(123) == 123
    assert snowflake("817327181659111454") == 817327181659111454
    assert snowflake("0123") == 123
    assert snowflake(2**63 - 1) == 2**63 - 1
    for bad in (True, False, -1, "-1", "12a", "", " 1", "1.0", 1.0, None, 2**63, "٣", [1]):
        with pytest.raises(ValueError, match="guild_id"):
            snowflake(bad, "guild_id")
    with pytest.raises(ValueError, match=r"^id "):
        snowflake("x")


def test_snowflakes_on_the_wire() -> None:
    idle = PlayerInfo.from_wire(load_example("rest_player_idle.json"))
    assert idle.to_wire()["guildId"] == "817327181659111454"
    voice = VoiceState("t", "e", "s", 927940243590627339)
    assert voice.to_wire()["channelId"] == "927940243590627339"
    assert VoiceState.from_wire(voice.to_wire()) == voice
    assert VoiceState.from_dict(voice.to_wire()) == voice
    assert json.loads(voice.to_json())["channelId"] == "927940243590627339"


# --------------------------------------------------------------------------- load results


def test_load_result_properties() -> None:
    track = LoadResult.from_wire(load_example("rest_loadtracks_track.json"))
    assert track.tracks == [track.data]
    assert track.track is track.data
    assert track.playlist is None
    assert track.exception is None
    assert not track.is_error
    playlist = LoadResult.from_wire(load_example("rest_loadtracks_playlist.json"))
    assert playlist.playlist is not None
    assert len(playlist.tracks) == 1
    assert playlist.track is None  # selectedTrack -1
    selected = LoadResult.from_wire(load_example("rest_loadtracks_playlist_test.json"))
    assert selected.playlist is not None
    assert selected.playlist.selected is None
    search = LoadResult.from_wire(load_example("rest_loadtracks_search.json"))
    assert len(search.tracks) == len(load_example("rest_loadtracks_search.json")["data"])
    assert search.track is None
    for name in ("rest_loadtracks_empty.json", "rest_loadtracks_empty_null.json"):
        empty = LoadResult.from_wire(load_example(name))
        assert empty.tracks == []
        assert empty.track is None
        assert empty.playlist is None
    error = LoadResult.from_wire(load_example("rest_loadtracks_error_4_0_8.json"))
    assert error.is_error
    assert error.tracks == []
    assert error.exception is not None
    assert "Caused by" in (error.exception.cause_stack_trace or "")


def test_empty_data_round_trips_as_it_came() -> None:
    assert LoadResult.from_wire({"loadType": "empty", "data": {}}).to_wire()["data"] == {}
    assert LoadResult.from_wire({"loadType": "empty", "data": None}).to_wire()["data"] is None
    assert LoadResult.from_wire({"loadType": "empty"}).to_wire() == {"loadType": "empty"}


def test_raise_for_error() -> None:
    from lavasync.errors import LoadError

    error = LoadResult.from_wire(load_example("rest_loadtracks_error.json"))
    with pytest.raises(LoadError, match="not made this video available") as info:
        error.raise_for_error("ytsearch:x")
    assert info.value.exception is error.exception
    assert info.value.identifier == "ytsearch:x"
    track = LoadResult.from_wire(load_example("rest_loadtracks_track.json"))
    assert track.raise_for_error() is track


def test_load_result_built_in_python() -> None:
    data = load_example("rest_loadtracks_track.json")["data"]
    built = LoadResult(load_type="track", data=Track.from_wire(data))
    assert built == LoadResult(load_type="track", data=data)  # type: ignore[arg-type]
    assert built.to_wire() == load_example("rest_loadtracks_track.json")


# --------------------------------------------------------------------------- track helpers


def test_track_helpers() -> None:
    track = Track.from_wire(_track_wire())
    assert track.identifier == "dQw4w9WgXcQ"
    assert track.length == 212000
    assert track.title.startswith("Rick Astley")
    tagged = track.with_user_data({"requester": "1"})
    assert tagged.user_data == {"requester": "1"}
    assert track.user_data == {}
    with pytest.raises(ValueError, match="user_data"):
        track.with_user_data(["x"])  # type: ignore[arg-type]
    assert Info.from_wire(load_example("rest_info.json")).has_plugin("some-plugin")
    snapshot = Info.from_wire(load_example("rest_info_snapshot_build.json"))
    assert snapshot.version.is_snapshot
    assert snapshot.has_source("http")
    assert Info.from_wire(load_example("rest_info.json")).version.as_tuple == (3, 7, 0)


# --------------------------------------------------------------------------- dataclasses-json API


@pytest.mark.filterwarnings("ignore")  # marshmallow deprecations raised inside dataclasses-json
@pytest.mark.parametrize(
    ("model", "name"),
    [
        (Track, "rest_decodetrack_response.json"),
        (UpdatePlayer, "rest_update_player_request_full.json"),
        (UpdatePlayer, "rest_update_player_request_stop.json"),
        (PlayerInfo, "rest_player_idle.json"),
        (LoadResult, "rest_loadtracks_search.json"),
        (Stats, "rest_stats.json"),
        (Filters, "filters_all.json"),
    ],
)
def test_schema_keeps_working(model: type[WireModel], name: str) -> None:
    data = load_example(name)
    schema = model.schema()
    obj = model.from_wire(data)
    assert schema.load(data) == obj
    dumped = schema.dump(obj)
    assert model.from_wire(json.loads(json.dumps(dumped))) == obj
    assert model.from_json(obj.to_json()) == obj


@pytest.mark.filterwarnings("ignore")
def test_schema_can_skip_unknown_keys() -> None:
    data = load_example("ws_stats.json")  # has "op"
    assert Stats.schema(unknown="exclude").load(data) == Stats.from_wire(data)
