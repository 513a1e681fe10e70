"""Small pure pieces: backoff, URLs, voice regions, the penalty formula, event parsing."""

from __future__ import annotations

import pytest
from conftest import load_example

from lavasync.client import default_penalty, region_of
from lavasync.models import Stats
from lavasync.models.events import (
    PlayerUpdateEvent,
    ReadyEvent,
    StatsEvent,
    TrackEndEvent,
    TrackExceptionEvent,
    TrackStartEvent,
    TrackStuckEvent,
    UnknownEvent,
    WebSocketClosedEvent,
    parse_event,
)
from lavasync.node import Backoff
from lavasync.transport.websocket import websocket_url
from lavasync.voice import endpoint_region


def test_backoff_grows_exponentially_and_is_capped() -> None:
    b = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.0)
    assert [b.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_jitter_stays_within_its_fraction() -> None:
    b = Backoff(initial=1.0, maximum=1.0, jitter=0.2)
    delays = [b.delay(3) for _ in range(200)]
    assert all(0.8 <= d <= 1.2 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"initial": 2, "maximum": 1}, {"factor": 0.5}, {"jitter": 1.0}]
)
def test_backoff_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:2333", "ws://127.0.0.1:2333/v4/websocket"),
        ("https://lava.example:443/", "wss://lava.example:443/v4/websocket"),
        ("ws://h:1/v4/websocket", "ws://h:1/v4/websocket"),
    ],
)
def test_websocket_url(uri: str, expected: str) -> None:
    assert websocket_url(uri) == expected


def test_websocket_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError):
        websocket_url("ftp://x")


@pytest.mark.parametrize(
    ("endpoint", "location", "region"),
    [
        ("rotterdam1234.discord.media:443", "rotterdam", "eu"),
        ("us-east123.discord.media", "east", None),
        ("singapore56.discord.media:443", "singapore", "asia"),
        ("c-frankfurt01-abcd.discord.media:443", "frankfurt", "eu"),
    ],
)
def test_endpoint_regions(endpoint: str, location: str, region: object) -> None:
    assert endpoint_region(endpoint) == location
    if region is not None:
        assert region_of(endpoint) == region


def test_region_of_unknown_location_is_itself() -> None:
    assert region_of("atlantis") == "atlantis"
    assert region_of(None) is None


class _FakeNode:
    def __init__(
        self, stats: Stats | None, available: bool = True, recent: int = 0, stale: bool = False
    ) -> None:
        self.stats = stats
        self.available = available
        self.recent_players = recent
        self.stats_stale = stale


def _stats(load: float, playing: int, frames: dict[str, int] | None = None) -> Stats:
    data = load_example("ws_stats.json")
    data["cpu"]["systemLoad"] = load
    data["playingPlayers"] = playing
    data["frameStats"] = frames
    return Stats.from_wire(data)


def test_penalty_orders_by_load_players_and_frames() -> None:
    idle = default_penalty(_FakeNode(_stats(0.0, 0)))  # type: ignore[arg-type]
    busy_cpu = default_penalty(_FakeNode(_stats(0.5, 0)))  # type: ignore[arg-type]
    many = default_penalty(_FakeNode(_stats(0.0, 20)))  # type: ignore[arg-type]
    burst = default_penalty(_FakeNode(_stats(0.0, 0), recent=20))  # type: ignore[arg-type]
    bad_frames = default_penalty(
        _FakeNode(_stats(0.0, 0, {"sent": 2000, "nulled": 500, "deficit": 500}))  # type: ignore[arg-type]
    )
    assert idle == 0
    assert busy_cpu > idle and many > idle and bad_frames > idle
    assert burst == many  # players assigned since the last stats count like playing ones
    # systemLoad is a 0..1 fraction: a full machine is far worse than a half-loaded one
    full = default_penalty(_FakeNode(_stats(1.0, 0)))  # type: ignore[arg-type]
    assert full > 10 * busy_cpu


def test_penalty_puts_unready_or_statless_nodes_last() -> None:
    assert default_penalty(_FakeNode(None)) == float("inf")  # type: ignore[arg-type]
    assert default_penalty(_FakeNode(_stats(0, 0), available=False)) == float("inf")  # type: ignore[arg-type]
    # stats older than 2 x stats_interval: the server is alive but its load is unknown
    assert default_penalty(_FakeNode(_stats(0, 0), stale=True)) == float("inf")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ws_ready.json", ReadyEvent),
        ("ws_ready_resumed.json", ReadyEvent),
        ("ws_playerUpdate.json", PlayerUpdateEvent),
        ("ws_stats.json", StatsEvent),
        ("ws_stats_frameStats_null.json", StatsEvent),
        ("ws_event_TrackStartEvent.json", TrackStartEvent),
        ("ws_event_TrackEndEvent.json", TrackEndEvent),
        ("ws_event_TrackEndEvent_replaced.json", TrackEndEvent),
        ("ws_event_TrackExceptionEvent.json", TrackExceptionEvent),
        ("ws_event_TrackStuckEvent.json", TrackStuckEvent),
        ("ws_event_WebSocketClosedEvent.json", WebSocketClosedEvent),
        ("ws_event_WebSocketClosedEvent_local.json", WebSocketClosedEvent),
        ("plugin_lavalyrics_event_LyricsLineEvent.json", UnknownEvent),
        ("plugin_sponsorblock_event_SegmentSkipped.json", UnknownEvent),
    ],
)
def test_every_websocket_example_parses(name: str, cls: type) -> None:
    data = load_example(name)
    event = parse_event(data, replayed=True)
    assert type(event) is cls
    assert event.replayed is True
    assert event.raw is data
    if str(data.get("guildId", "")).isdigit():
        assert event.guild_id == int(data["guildId"])  # type: ignore[attr-defined]


def test_track_end_may_start_next_only_for_finished_and_load_failed() -> None:
    data = load_example("ws_event_TrackEndEvent.json")
    for reason, expected in [
        ("finished", True),
        ("loadFailed", True),
        ("stopped", False),
        ("replaced", False),
        ("cleanup", False),
        ("someNewReason", False),
    ]:
        event = parse_event({**data, "reason": reason})
        assert isinstance(event, TrackEndEvent)
        assert event.reason == reason
        assert event.may_start_next is expected


def test_unknown_op_is_kept_whole() -> None:
    event = parse_event({"op": "nodelinkThing", "guildId": "5", "x": [1]})
    assert isinstance(event, UnknownEvent)
    assert (event.op, event.type, event.guild_id, event.data["x"]) == (
        "nodelinkThing",
        None,
        5,
        [1],
    )


@pytest.mark.parametrize(
    "frame",
    [
        {"op": "playerUpdate", "guildId": "1"},
        {"op": "playerUpdate", "guildId": "x", "state": {}},
        {"op": "event", "type": "TrackEndEvent", "guildId": "1", "reason": "finished"},
        {
            "op": "event",
            "type": "WebSocketClosedEvent",
            "guildId": "1",
            "code": "x",
            "byRemote": True,
        },
        {"op": "ready", "resumed": False},
        {"op": 5},
    ],
)
def test_malformed_known_frames_raise_for_the_reader_to_skip(frame: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_event(frame)
