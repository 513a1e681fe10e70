"""What a new user meets in the first hour (issue 12, section 6).

Wire enums are ``str`` enums equal to their strings, keeping unknown values raw;
``FakeNode.add_track`` returns a Track; the README's testing snippet runs as written (and closes
its client); the README says how a Queue starts and names the filter classes; every public
method of ``lavasync.__all__`` has a docstring.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import USER_ID, load_example

import lavasync
from lavasync.models import ExceptionInfo, IpBlock, IpBlockType, LoadResult, Severity
from lavasync.models._base import WireModel
from lavasync.models.events import TrackEndEvent, TrackEndReason, parse_event
from lavasync.testing import FakeNode

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _end_frame(reason: str) -> dict[str, Any]:
    frame = load_example("ws_event_TrackEndEvent.json")
    return {**frame, "reason": reason}


# --------------------------------------------------------------------------- wire enums


@pytest.mark.parametrize(
    ("wire", "member"),
    [
        ("finished", TrackEndReason.FINISHED),
        ("loadFailed", TrackEndReason.LOAD_FAILED),
        ("stopped", TrackEndReason.STOPPED),
        ("replaced", TrackEndReason.REPLACED),
        ("cleanup", TrackEndReason.CLEANUP),
    ],
)
def test_track_end_reason_is_a_str_enum_member_equal_to_its_string(
    wire: str, member: TrackEndReason
) -> None:
    event = parse_event(_end_frame(wire))
    assert isinstance(event, TrackEndEvent)
    assert event.reason is member
    assert event.reason == wire and isinstance(event.reason, str)
    assert str(event.reason) == wire and f"{event.reason}" == wire
    assert json.dumps(event.reason) == json.dumps(wire)
    assert {wire: 1}[event.reason] == 1  # hashes like the string


def test_an_unknown_track_end_reason_is_kept_as_the_raw_string() -> None:
    event = parse_event(_end_frame("pluginReason"))
    assert isinstance(event, TrackEndEvent)
    assert type(event.reason) is str and event.reason == "pluginReason"
    assert event.may_start_next is False


def test_load_type_and_severity_are_enum_members_and_round_trip_unchanged() -> None:
    wire = {
        "loadType": "error",
        "data": {"message": "gone", "severity": "suspicious", "cause": "x"},
    }
    result = LoadResult.from_wire(wire)
    assert result.load_type is lavasync.LoadType.ERROR and result.load_type == "error"
    assert result.exception is not None
    assert result.exception.severity is Severity.SUSPICIOUS
    assert result.exception.severity == "suspicious"
    assert json.dumps(result.to_wire(), sort_keys=True) == json.dumps(wire, sort_keys=True)


def test_unknown_load_type_and_severity_stay_raw_strings() -> None:
    result = LoadResult.from_wire({"loadType": "pluginType", "data": {"x": 1}})
    assert type(result.load_type) is str and result.load_type == "pluginType"
    exc = ExceptionInfo.from_wire({"message": None, "severity": "catastrophic", "cause": "c"})
    assert type(exc.severity) is str and exc.severity == "catastrophic"
    assert exc.to_wire()["severity"] == "catastrophic"


def test_ip_block_type_is_an_enum_and_unknown_types_stay_raw() -> None:
    block = IpBlock.from_wire({"type": "Inet6Address", "size": "18446744073709551616"})
    assert block.type is IpBlockType.INET6 and block.type == "Inet6Address"
    other = IpBlock.from_wire({"type": "InetSomething", "size": "1"})
    assert type(other.type) is str and other.type == "InetSomething"


@pytest.mark.parametrize(
    "enum_cls", [TrackEndReason, lavasync.LoadType, Severity, IpBlockType, lavasync.LoopMode]
)
def test_every_wire_enum_is_a_str_enum(enum_cls: type[enum.Enum]) -> None:
    assert issubclass(enum_cls, str) and issubclass(enum_cls, enum.Enum)
    for member in enum_cls:
        assert member == member.value


# --------------------------------------------------------------------------- FakeNode.add_track


def test_add_track_returns_a_track_that_loads_decodes_and_plays() -> None:
    with FakeNode() as fake, lavasync.Client(USER_ID, None) as client:
        track = fake.add_track("First hour", author="someone", length=42_000)
        assert isinstance(track, lavasync.Track)
        assert (track.title, track.info.author, track.length) == ("First hour", "someone", 42_000)
        assert lavasync.decode_track(track.encoded).info.title == "First hour"
        client.add_node("fake", fake.uri, password=fake.password)
        client.wait_ready(10)
        loaded = client.load(track.identifier)
        assert loaded.tracks == [track]
        assert track.to_wire()["encoded"] == track.encoded


# --------------------------------------------------------------------------- README


def _readme_block(after_heading: str) -> str:
    section = README.split(after_heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block after {after_heading!r}"
    return match.group(1)


def test_the_readme_testing_snippet_runs_as_written_and_closes_its_client() -> None:
    code = _readme_block("## Testing your bot with the fake node")
    assert "wait_ready" in code and "..." not in code
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    client = namespace["client"]
    assert client.closed  # the autouse fixture also checks no thread was left behind
    assert namespace["end"].reason == "finished"


def test_the_readme_says_how_a_queue_starts_and_names_the_filter_classes() -> None:
    flat = " ".join(README.split())
    assert "never starts playback" in flat and "queue.start()" in flat
    assert "lavasync.Timescale" in flat
    for name in ("EqualizerBand", "Karaoke", "Tremolo", "Vibrato", "Rotation", "Distortion"):
        assert f"`{name}`" in flat, name
    assert "`ChannelMix`" in flat and "`LowPass`" in flat
    for name in ("Timescale", "EqualizerBand", "ChannelMix", "LowPass"):
        assert name in lavasync.__all__


# --------------------------------------------------------------------------- docstrings


def _undocumented() -> list[str]:
    missing = []
    for name in lavasync.__all__:
        obj = getattr(lavasync, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if not inspect.isclass(obj) or issubclass(obj, enum.Enum):
            continue
        for attr, value in vars(obj).items():
            # from_wire/to_wire are compiled onto each model; WireModel documents them
            if attr.startswith("_") or (issubclass(obj, WireModel) and hasattr(WireModel, attr)):
                continue
            func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if callable(func) and not (getattr(func, "__doc__", None) or "").strip():
                missing.append(f"{name}.{attr}")
    return missing


def test_every_public_class_function_and_method_has_a_docstring() -> None:
    assert _undocumented() == []
