"""Audio filters (PROTOCOL.md §5.3).

Every filter object takes the protocol's defaults for omitted fields, so ``Timescale(speed=1.2)``
means speed 1.2 with pitch and rate 1.0. In :class:`Filters` a filter that is None is off and is
not sent at all (absent means off; ``volume``, ``equalizer`` and ``plugin_filters`` must never
be sent as null). A PATCH with ``filters`` replaces the whole set, so build the complete set
you want: :meth:`Filters.replace` and :meth:`Filters.merge` make changed copies.

The server does not range-check most values: a bad value only fails later, during playback.
:meth:`Filters.validate` checks them client-side; lavasync calls it before sending.

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Optional, Union

from ._base import OMIT_NONE, WireModel

__all__ = [
    "BAND_COUNT",
    "BAND_FREQUENCIES",
    "ChannelMix",
    "Distortion",
    "EqualizerBand",
    "Filters",
    "Karaoke",
    "LowPass",
    "Rotation",
    "Timescale",
    "Tremolo",
    "Vibrato",
]

#: Equalizer bands 0..14; their centre frequencies in Hz.
BAND_COUNT: Final = 15
BAND_FREQUENCIES: Final = (25, 40, 63, 100, 160, 250, 400, 630, 1000, 1600, 2500, 4000, 6300,
                           10000, 16000)  # fmt: skip


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _within(value: Any, name: str, low: float, high: float) -> None:
    if not low <= _number(value, name) <= high:
        raise ValueError(f"{name} must be within {low}..{high}, not {value!r}")


def _positive(value: Any, name: str) -> None:
    if not _number(value, name) > 0:
        raise ValueError(f"{name} must be > 0, not {value!r}")


@dataclass
class EqualizerBand(WireModel):
    """One equalizer band: ``band`` 0..14, ``gain`` -0.25 (mute) .. 1.0; 0 leaves it unchanged.

    ``gain`` defaults to **1.0** because that is what the server assumes for a band object
    without ``gain`` (protocol default). Give the gain explicitly, or build bands with
    :meth:`Filters.equalizer_from_gains`.
    """

    band: int
    gain: float = 1.0

    def validate(self) -> None:
        """Raise ValueError for a band outside 0..14 or a gain outside -0.25..1.0."""
        if isinstance(self.band, bool) or not isinstance(self.band, int):
            raise ValueError(f"equalizer band must be an int 0..14, not {self.band!r}")
        if not 0 <= self.band < BAND_COUNT:
            raise ValueError(f"equalizer band must be within 0..14, not {self.band}")
        _within(self.gain, f"equalizer band {self.band} gain", -0.25, 1.0)


@dataclass
class Karaoke(WireModel):
    """Removes a frequency band (usually vocals); ``level``/``mono_level`` 0..1."""

    level: float = 1.0
    mono_level: float = 1.0
    filter_band: float = 220.0
    filter_width: float = 100.0

    def validate(self) -> None:
        """Raise ValueError for level or mono_level outside 0..1."""
        _within(self.level, "karaoke level", 0.0, 1.0)
        _within(self.mono_level, "karaoke mono_level", 0.0, 1.0)
        _number(self.filter_band, "karaoke filter_band")
        _number(self.filter_width, "karaoke filter_width")


@dataclass
class Timescale(WireModel):
    """Playback speed, pitch and rate; each must be > 0 (1.0 = unchanged)."""

    speed: float = 1.0
    pitch: float = 1.0
    rate: float = 1.0

    def validate(self) -> None:
        """Raise ValueError unless speed, pitch and rate are all > 0."""
        _positive(self.speed, "timescale speed")
        _positive(self.pitch, "timescale pitch")
        _positive(self.rate, "timescale rate")


@dataclass
class Tremolo(WireModel):
    """Volume oscillation: ``frequency`` > 0 Hz, ``depth`` in (0, 1]."""

    frequency: float = 2.0
    depth: float = 0.5

    def validate(self) -> None:
        """Raise ValueError for frequency <= 0 or depth outside (0, 1]."""
        _positive(self.frequency, "tremolo frequency")
        if not 0 < _number(self.depth, "tremolo depth") <= 1:
            raise ValueError(f"tremolo depth must be within (0, 1], not {self.depth!r}")


@dataclass
class Vibrato(WireModel):
    """Pitch oscillation: ``frequency`` in (0, 14] Hz, ``depth`` in (0, 1]."""

    frequency: float = 2.0
    depth: float = 0.5

    def validate(self) -> None:
        """Raise ValueError for frequency outside (0, 14] or depth outside (0, 1]."""
        if not 0 < _number(self.frequency, "vibrato frequency") <= 14:
            raise ValueError(f"vibrato frequency must be within (0, 14], not {self.frequency!r}")
        if not 0 < _number(self.depth, "vibrato depth") <= 1:
            raise ValueError(f"vibrato depth must be within (0, 1], not {self.depth!r}")


@dataclass
class Rotation(WireModel):
    """Pans the audio around the listener (``rotation_hz`` 0.2 is a slow "8D" effect)."""

    rotation_hz: float = 0.0

    def validate(self) -> None:
        """Raise ValueError unless rotation_hz is a finite number."""
        _number(self.rotation_hz, "rotation rotation_hz")


@dataclass
class Distortion(WireModel):
    """Sine/cosine/tangent distortion; no range limits (all defaults = no effect)."""

    sin_offset: float = 0.0
    sin_scale: float = 1.0
    cos_offset: float = 0.0
    cos_scale: float = 1.0
    tan_offset: float = 0.0
    tan_scale: float = 1.0
    offset: float = 0.0
    scale: float = 1.0

    def validate(self) -> None:
        """Raise ValueError unless every field is a finite number."""
        for f in dataclasses.fields(self):
            _number(getattr(self, f.name), f"distortion {f.name}")


@dataclass
class ChannelMix(WireModel):
    """Mixes the channels; each factor 0..1 (all 0.5 = mono)."""

    left_to_left: float = 1.0
    left_to_right: float = 0.0
    right_to_left: float = 0.0
    right_to_right: float = 1.0

    def validate(self) -> None:
        """Raise ValueError for a factor outside 0..1."""
        for f in dataclasses.fields(self):
            _within(getattr(self, f.name), f"channel_mix {f.name}", 0.0, 1.0)


@dataclass
class LowPass(WireModel):
    """Suppresses high frequencies; ``smoothing`` <= 1.0 disables it."""

    smoothing: float = 20.0

    def validate(self) -> None:
        """Raise ValueError unless smoothing is a finite number."""
        _number(self.smoothing, "low_pass smoothing")


_FILTER_TYPES: dict[str, type[WireModel]] = {
    "karaoke": Karaoke,
    "timescale": Timescale,
    "tremolo": Tremolo,
    "vibrato": Vibrato,
    "rotation": Rotation,
    "distortion": Distortion,
    "channel_mix": ChannelMix,
    "low_pass": LowPass,
}

GainsLike = Union[Mapping[int, float], Sequence[float]]


def unwrap_filters(d: dict[str, Any]) -> dict[str, Any]:
    """Undo the shapes other servers report filters in (NodeLink 3.x): a ``{"filters": {...}}``
    wrapper, an equalizer as ``{"bands": [...]}``, and a filter given as ``{}`` or null where a
    number belongs (dropped: off). Lavalink's own shape passes through unchanged."""
    inner = d.get("filters")
    if isinstance(inner, Mapping) and not any(k in d for k in _FILTER_KEYS):
        rest = {k: v for k, v in d.items() if k != "filters"}
        d = {**rest, **inner}
    equalizer = d.get("equalizer")
    if isinstance(equalizer, Mapping):
        bands = equalizer.get("bands")
        d = dict(d, equalizer=list(bands) if isinstance(bands, list) else [])
    volume = d.get("volume", 1.0)
    if volume is None or isinstance(volume, (Mapping, list, str, bool)):
        d = {k: v for k, v in d.items() if k != "volume"}
    return d


_FILTER_KEYS: Final = frozenset(
    {"volume", "equalizer", "karaoke", "timescale", "tremolo", "vibrato", "rotation",
     "distortion", "channelMix", "lowPass", "pluginFilters"}
)  # fmt: skip


@dataclass
class Filters(WireModel):
    """The full filter set of a player. None = off (not sent). See the module docstring.

    ``volume`` 0..5 multiplies the player volume (1.0 = unchanged). ``plugin_filters`` maps a
    plugin's filter name to its opaque config and is passed through untouched.
    """

    _wire_hook_first: ClassVar[bool] = True

    @staticmethod
    def _wire_liberal(d: dict[str, Any]) -> dict[str, Any]:
        return unwrap_filters(d)

    volume: Optional[float] = field(default=None, metadata=OMIT_NONE)
    equalizer: Optional[list[EqualizerBand]] = field(default=None, metadata=OMIT_NONE)
    karaoke: Optional[Karaoke] = field(default=None, metadata=OMIT_NONE)
    timescale: Optional[Timescale] = field(default=None, metadata=OMIT_NONE)
    tremolo: Optional[Tremolo] = field(default=None, metadata=OMIT_NONE)
    vibrato: Optional[Vibrato] = field(default=None, metadata=OMIT_NONE)
    rotation: Optional[Rotation] = field(default=None, metadata=OMIT_NONE)
    distortion: Optional[Distortion] = field(default=None, metadata=OMIT_NONE)
    channel_mix: Optional[ChannelMix] = field(default=None, metadata=OMIT_NONE)
    low_pass: Optional[LowPass] = field(default=None, metadata=OMIT_NONE)
    plugin_filters: Optional[dict[str, Any]] = field(default=None, metadata=OMIT_NONE)

    # ----------------------------------------------------------------- checks

    def validate(self) -> None:
        """Raise ValueError (naming the filter and value) if any configured value is invalid."""
        if self.volume is not None:
            _within(self.volume, "filter volume", 0.0, 5.0)
        if self.equalizer is not None:
            if not isinstance(self.equalizer, list):
                raise ValueError(f"equalizer must be a list, not {self.equalizer!r}")
            for band in self.equalizer:
                if not isinstance(band, EqualizerBand):
                    raise ValueError(f"equalizer items must be EqualizerBand, not {band!r}")
                band.validate()
        for name, model in _FILTER_TYPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, model):
                raise ValueError(f"{name} must be a {model.__name__} or None, not {value!r}")
            value.validate()  # type: ignore[attr-defined]
        plugin = self.plugin_filters
        if plugin is not None and (
            not isinstance(plugin, dict) or not all(isinstance(k, str) for k in plugin)
        ):
            raise ValueError(f"plugin_filters must be a dict with str keys, not {plugin!r}")

    @property
    def is_empty(self) -> bool:
        """True if no filter is set (sending this clears every filter)."""
        return (
            all(
                getattr(self, f.name) is None
                for f in dataclasses.fields(self)
                if f.name not in ("equalizer", "plugin_filters")
            )
            and not self.equalizer
            and not self.plugin_filters
            and not self._wire_extra
        )

    # ----------------------------------------------------------------- building

    def replace(self, **changes: Any) -> "Filters":
        """A copy with some filters changed; a filter given as None is switched off.

        Unknown filter keys the server reported are kept. Raises ValueError for a name that
        is not a filter.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown filter name(s): {', '.join(unknown)}")
        new = dataclasses.replace(self, **changes)
        if self._wire_extra:
            new.__dict__["_wire_extra"] = dict(self._wire_extra)
        return new

    def merge(self, other: "Filters") -> "Filters":
        """A copy of self with every filter ``other`` sets laid on top (plugin filters merged)."""
        if not isinstance(other, Filters):
            raise ValueError(f"merge() takes a Filters object, not {other!r}")
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(other):
            value = getattr(other, f.name)
            if value is not None:
                changes[f.name] = value
        if self.plugin_filters and other.plugin_filters:
            changes["plugin_filters"] = {**self.plugin_filters, **other.plugin_filters}
        merged = self.replace(**changes)
        if other._wire_extra:
            merged.__dict__["_wire_extra"] = {**(self._wire_extra or {}), **other._wire_extra}
        return merged

    @staticmethod
    def equalizer_bands(gains: GainsLike) -> list[EqualizerBand]:
        """Bands from ``{band: gain}`` or a sequence of up to 15 gains (index = band)."""
        if isinstance(gains, Mapping):
            items = list(gains.items())
        elif isinstance(gains, Sequence) and not isinstance(gains, (str, bytes)):
            items = list(enumerate(gains))
        else:
            raise ValueError(f"gains must be a mapping or a sequence, not {gains!r}")
        bands = [EqualizerBand(band=band, gain=gain) for band, gain in items]
        for band in bands:
            band.validate()
        return bands

    @classmethod
    def equalizer_from_gains(cls, gains: GainsLike) -> "Filters":
        """Filters with only an equalizer: ``Filters.equalizer_from_gains({0: 0.2, 1: 0.1})``."""
        return cls(equalizer=cls.equalizer_bands(gains))

    # ----------------------------------------------------------------- presets

    @classmethod
    def nightcore(cls, factor: float = 1.25) -> "Filters":
        """Faster and higher: speed and pitch times ``factor``."""
        return cls(timescale=Timescale(speed=factor, pitch=factor, rate=1.0))

    @classmethod
    def vaporwave(cls, factor: float = 0.8) -> "Filters":
        """Slower and lower: speed and pitch times ``factor``, with a little bass."""
        return cls(
            timescale=Timescale(speed=factor, pitch=factor, rate=1.0),
            equalizer=cls.equalizer_bands({0: 0.15, 1: 0.1}),
        )

    @classmethod
    def bass_boost(cls, level: float = 0.25) -> "Filters":
        """Lift the lowest bands by ``level`` (-0.25..1.0), tapering off towards band 4."""
        _within(level, "bass_boost level", -0.25, 1.0)
        return cls(
            equalizer=cls.equalizer_bands(
                {0: level, 1: level, 2: level * 0.75, 3: level * 0.5, 4: level * 0.25}
            )
        )

    @classmethod
    def vocal_removal(cls) -> "Filters":
        """The karaoke filter at its defaults: suppresses the centre vocal band."""
        return cls(karaoke=Karaoke())

    #: Alias of :meth:`vocal_removal`.
    karaoke_preset = vocal_removal

    @classmethod
    def eight_d(cls, rotation_hz: float = 0.2) -> "Filters":
        """Slow rotation around the listener ("8D audio")."""
        return cls(rotation=Rotation(rotation_hz=rotation_hz))
