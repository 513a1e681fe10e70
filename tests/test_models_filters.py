"""Filters: wire shape, validation, building helpers and presets."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import load_example

from lavasync.models import (
    ChannelMix,
    Distortion,
    EqualizerBand,
    Filters,
    Karaoke,
    LowPass,
    Rotation,
    Timescale,
    Tremolo,
    Vibrato,
)


def test_none_filters_are_not_sent() -> None:
    assert Filters().to_wire() == {}
    wire = Filters(timescale=Timescale(speed=1.2)).to_wire()
    assert wire == {"timescale": {"speed": 1.2, "pitch": 1.0, "rate": 1.0}}
    assert "volume" not in wire
    assert "equalizer" not in wire
    assert "pluginFilters" not in wire
    assert Filters().to_dict() == {}  # dataclasses-json leaves them out too


def test_defaults_follow_the_protocol() -> None:
    assert Karaoke().to_wire() == {
        "level": 1.0,
        "monoLevel": 1.0,
        "filterBand": 220.0,
        "filterWidth": 100.0,
    }
    assert Tremolo() == Tremolo(frequency=2.0, depth=0.5)
    assert Vibrato() == Vibrato(frequency=2.0, depth=0.5)
    assert Rotation().rotation_hz == 0.0
    assert LowPass().smoothing == 20.0
    assert ChannelMix().to_wire() == {
        "leftToLeft": 1.0,
        "leftToRight": 0.0,
        "rightToLeft": 0.0,
        "rightToRight": 1.0,
    }
    assert Distortion().to_wire()["sinScale"] == 1.0
    assert EqualizerBand(band=2).gain == 1.0  # a band without gain means 1.0 on the server
    everything = Filters.from_wire(load_example("filters_all.json"))
    everything.validate()  # the protocol's defaults are valid (tremolo/vibrato depth 0.5)


def test_plugin_filters_pass_through() -> None:
    data = {"pluginFilters": {"echo": {"delay": [1, 2], "nested": {"x": None}}}}
    filters = Filters.from_wire(data)
    assert filters.plugin_filters == data["pluginFilters"]
    assert filters.to_wire() == data
    filters.validate()
    assert not filters.is_empty


VALID = Filters(
    volume=5.0,
    equalizer=[EqualizerBand(0, -0.25), EqualizerBand(14, 1.0)],
    karaoke=Karaoke(level=0.0, mono_level=1.0),
    timescale=Timescale(speed=0.01, pitch=3.0, rate=1.0),
    tremolo=Tremolo(frequency=0.1, depth=1.0),
    vibrato=Vibrato(frequency=14.0, depth=0.01),
    rotation=Rotation(rotation_hz=-0.2),
    distortion=Distortion(scale=100.0),
    channel_mix=ChannelMix(0.5, 0.5, 0.5, 0.5),
    low_pass=LowPass(smoothing=1.0),
)


def test_boundaries_are_valid() -> None:
    VALID.validate()
    Filters(volume=0.0).validate()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"volume": 5.01}, "volume"),
        ({"volume": -0.1}, "volume"),
        ({"volume": math.nan}, "volume"),
        ({"volume": "1"}, "volume"),
        ({"equalizer": [EqualizerBand(15, 0.1)]}, "band"),
        ({"equalizer": [EqualizerBand(-1, 0.1)]}, "band"),
        ({"equalizer": [EqualizerBand(0, 1.01)]}, "gain"),
        ({"equalizer": [EqualizerBand(0, -0.26)]}, "gain"),
        ({"equalizer": [{"band": 0, "gain": 0.1}]}, "EqualizerBand"),
        ({"timescale": Timescale(speed=0)}, "speed"),
        ({"timescale": Timescale(pitch=-1)}, "pitch"),
        ({"timescale": Timescale(rate=0.0)}, "rate"),
        ({"tremolo": Tremolo(frequency=0)}, "tremolo frequency"),
        ({"tremolo": Tremolo(depth=0)}, "tremolo depth"),
        ({"tremolo": Tremolo(depth=1.5)}, "tremolo depth"),
        ({"vibrato": Vibrato(frequency=0)}, "vibrato frequency"),
        ({"vibrato": Vibrato(frequency=14.5)}, "vibrato frequency"),
        ({"vibrato": Vibrato(depth=0)}, "vibrato depth"),
        ({"vibrato": Vibrato(depth=1.01)}, "vibrato depth"),
        ({"karaoke": Karaoke(level=1.5)}, "karaoke level"),
        ({"karaoke": Karaoke(mono_level=-0.1)}, "karaoke mono_level"),
        ({"channel_mix": ChannelMix(left_to_right=1.2)}, "left_to_right"),
        ({"channel_mix": ChannelMix(right_to_right=-0.5)}, "right_to_right"),
        ({"timescale": Karaoke()}, "Timescale"),
        ({"plugin_filters": {1: "x"}}, "plugin_filters"),
    ],
)
def test_invalid_filters_raise(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VALID.replace(**changes).validate()


def test_replace_makes_a_copy() -> None:
    base = Filters.nightcore()
    changed = base.replace(rotation=Rotation(0.3), timescale=None)
    assert changed.rotation == Rotation(0.3)
    assert changed.timescale is None
    assert base.timescale is not None
    assert base.rotation is None
    with pytest.raises(ValueError, match="unknown filter name"):
        base.replace(reverb=1)


def test_replace_keeps_unknown_server_filters() -> None:
    filters = Filters.from_wire({"echo": {"delay": 1.0}, "volume": 1.5})
    changed = filters.replace(volume=2.0)
    assert changed.to_wire() == {"echo": {"delay": 1.0}, "volume": 2.0}
    assert not Filters.from_wire({"echo": {}}).is_empty


def test_merge() -> None:
    a = Filters(timescale=Timescale(speed=1.1), plugin_filters={"x": 1, "y": 1})
    b = Filters(rotation=Rotation(0.2), timescale=Timescale(pitch=2.0), plugin_filters={"y": 2})
    merged = a.merge(b)
    assert merged.timescale == Timescale(pitch=2.0)
    assert merged.rotation == Rotation(0.2)
    assert merged.plugin_filters == {"x": 1, "y": 2}
    assert a.rotation is None  # untouched
    assert Filters().merge(a) == a
    with pytest.raises(ValueError, match="Filters"):
        a.merge({"volume": 1})  # type: ignore[arg-type]


def test_equalizer_from_gains() -> None:
    filters = Filters.equalizer_from_gains({0: 0.2, 1: 0.1})
    assert filters.to_wire() == {"equalizer": [{"band": 0, "gain": 0.2}, {"band": 1, "gain": 0.1}]}
    assert Filters.equalizer_bands([0.1, 0.0, -0.2]) == [
        EqualizerBand(0, 0.1),
        EqualizerBand(1, 0.0),
        EqualizerBand(2, -0.2),
    ]
    with pytest.raises(ValueError, match="band"):
        Filters.equalizer_from_gains({15: 0.1})
    with pytest.raises(ValueError, match="gain"):
        Filters.equalizer_from_gains([2.0])
    with pytest.raises(ValueError, match="mapping or a sequence"):
        Filters.equalizer_bands("0.1")


def test_is_empty() -> None:
    assert Filters().is_empty
    assert Filters(equalizer=[], plugin_filters={}).is_empty
    assert not Filters(volume=1.0).is_empty
    assert not Filters.eight_d().is_empty


@pytest.mark.parametrize(
    "preset",
    [
        Filters.nightcore(),
        Filters.vaporwave(),
        Filters.bass_boost(),
        Filters.bass_boost(level=1.0),
        Filters.bass_boost(level=-0.25),
        Filters.vocal_removal(),
        Filters.karaoke_preset(),
        Filters.eight_d(),
    ],
)
def test_presets_validate_and_round_trip(preset: Filters) -> None:
    preset.validate()
    assert not preset.is_empty
    assert Filters.from_wire(preset.to_wire()) == preset


def test_preset_contents() -> None:
    assert Filters.eight_d().rotation == Rotation(rotation_hz=0.2)
    nightcore = Filters.nightcore()
    assert nightcore.timescale is not None
    assert nightcore.timescale.speed > 1
    assert nightcore.timescale.pitch > 1
    vaporwave = Filters.vaporwave()
    assert vaporwave.timescale is not None
    assert vaporwave.timescale.speed < 1
    boost = Filters.bass_boost(level=0.4)
    assert boost.equalizer is not None
    assert boost.equalizer[0] == EqualizerBand(0, 0.4)
    assert all(band.band < 5 for band in boost.equalizer)
    assert Filters.vocal_removal().karaoke == Karaoke()
    with pytest.raises(ValueError, match="bass_boost level"):
        Filters.bass_boost(level=2.0)
