"""``GET /v4/loadtracks`` results (PROTOCOL.md §3.4) and the Exception object (§2.3).

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, TypeVar, Union

from ..errors import LoadError
from ._base import WireFormatError, WireModel, _meta
from ._enums import WireEnum
from .track import Track

__all__ = [
    "ExceptionInfo",
    "LoadData",
    "LoadResult",
    "LoadType",
    "Playlist",
    "PlaylistInfo",
    "Severity",
]


class LoadType(WireEnum):
    """The ``loadType`` values: a ``str`` enum, equal to the wire strings.

    ``LoadResult.load_type`` holds a member for these and the raw string for any other value
    (plugins), so ``result.load_type == "track"`` and ``== LoadType.TRACK`` both work.
    """

    TRACK = "track"
    PLAYLIST = "playlist"
    SEARCH = "search"
    EMPTY = "empty"
    ERROR = "error"

    #: Every known load type.
    ALL: ClassVar[frozenset[str]]


LoadType.ALL = frozenset(LoadType)


class Severity(WireEnum):
    """The ``severity`` values of an Exception: a ``str`` enum, equal to the wire strings.

    ``ExceptionInfo.severity`` holds a member for these and the raw string for any other value.
    """

    COMMON = "common"
    SUSPICIOUS = "suspicious"
    FAULT = "fault"

    #: Every known severity.
    ALL: ClassVar[frozenset[str]]


Severity.ALL = frozenset(Severity)


def _severity(value: Any) -> Union[Severity, str]:
    if not isinstance(value, str):
        raise ValueError(f"severity is not a string: {value!r}")
    return Severity.parse(value)


def _load_type(value: Any) -> Union[LoadType, str]:
    if not isinstance(value, str):
        raise ValueError(f"loadType is not a string: {value!r}")
    return LoadType.parse(value)


@dataclass
class ExceptionInfo(WireModel):
    """Lavalink's Exception object (track exceptions and ``error`` load results).

    ``cause_stack_trace`` was added in 4.1.0 (None from older servers). Since 4.0.8 every load
    error is the same generic message; the real reason is only inside ``cause_stack_trace``.
    """

    message: Optional[str]
    #: A :class:`Severity` member, or the raw string for a value lavasync does not know.
    severity: Union[Severity, str] = dataclasses.field(
        metadata=_meta({"decode": _severity}, decoder=_severity)
    )
    cause: str
    cause_stack_trace: Optional[str] = None


@dataclass
class PlaylistInfo(WireModel):
    """``selected_track`` indexes the playlist's tracks; -1 when none is selected."""

    name: str
    selected_track: int = -1


@dataclass
class Playlist(WireModel):
    """A loaded playlist; ``plugin_info`` is an opaque object set by plugins."""

    info: PlaylistInfo
    plugin_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    tracks: list[Track] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        """Shortcut for ``info.name``."""
        return self.info.name

    @property
    def selected(self) -> Optional[Track]:
        """The selected track, or None when none is selected (or the index is out of range)."""
        index = self.info.selected_track
        return self.tracks[index] if 0 <= index < len(self.tracks) else None


#: What ``LoadResult.data`` holds, by load type: Track, Playlist, list of Track,
#: ExceptionInfo, or for ``empty`` and unknown types the raw JSON value (``{}``/None/...).
LoadData = Union[Track, Playlist, list[Track], ExceptionInfo, dict[str, Any], None]

_DATA_MODELS: dict[str, type[WireModel]] = {
    LoadType.TRACK: Track,
    LoadType.PLAYLIST: Playlist,
    LoadType.ERROR: ExceptionInfo,
}


def _encode_data(data: Any) -> Any:
    if isinstance(data, WireModel):
        return data.to_wire()
    if isinstance(data, list):
        return [item.to_wire() if isinstance(item, WireModel) else item for item in data]
    if isinstance(data, dict):
        return dict(data)
    return data


_LR = TypeVar("_LR", bound="LoadResult")


def _identity(value: Any) -> Any:
    return value


@dataclass
class LoadResult(WireModel):
    """The answer of ``loadtracks``: ``load_type`` plus ``data`` whose shape depends on it.

    Use the properties rather than ``data``: ``tracks`` (always a list), ``track``,
    ``playlist``, ``exception``. A wire ``data`` given as a dict (or list) is decoded into the
    matching model on construction; for ``empty`` and unknown load types it stays as it came
    (``{}``, None or absent: each is written back the same way).
    """

    _wire_essential: ClassVar[tuple[str, ...]] = ("loadType",)
    _wire_hook_first: ClassVar[bool] = True

    #: A :class:`LoadType` member, or the raw string for a value lavasync does not know.
    load_type: Union[LoadType, str] = dataclasses.field(
        metadata=_meta({"decode": _load_type}, decoder=_load_type)
    )
    data: LoadData = dataclasses.field(
        default=None, metadata=_meta({"encode": _encode_data}, decoder=_identity)
    )

    @staticmethod
    def _wire_liberal(d: dict[str, Any]) -> dict[str, Any]:
        """Other servers' shapes: an error under ``exception`` (NodeLink), odd data decoded
        liberally."""
        load_type = d.get("loadType")
        data = d.get("data")
        if load_type == LoadType.ERROR and not isinstance(data, (Mapping, ExceptionInfo)):
            exception = d.pop("exception", None)
            data = exception if isinstance(exception, Mapping) else {}
        model = _DATA_MODELS.get(load_type) if isinstance(load_type, str) else None
        if model is not None and isinstance(data, Mapping):
            data = model.from_server(data)
        elif load_type == LoadType.SEARCH:
            if isinstance(data, list):
                data = [Track.from_server(t) if isinstance(t, Mapping) else t for t in data]
            elif data is None:
                data = []
        d["data"] = data
        return d

    @classmethod
    def from_dict(cls: type[_LR], kvs: Any, *, infer_missing: Any = False) -> _LR:
        """dataclasses-json's decoder, with ``data`` decoded by the model its load type names."""
        if isinstance(kvs, Mapping):
            data = kvs.get("data")
            load_type = kvs.get("loadType")
            model = _DATA_MODELS.get(load_type) if isinstance(load_type, str) else None
            if model is not None and isinstance(data, Mapping):
                kvs = {**kvs, "data": model.from_dict(dict(data), infer_missing=infer_missing)}
            elif load_type == LoadType.SEARCH and isinstance(data, list):
                tracks = [
                    Track.from_dict(dict(t), infer_missing=infer_missing)
                    if isinstance(t, Mapping)
                    else t
                    for t in data
                ]
                kvs = {**kvs, "data": tracks}
        return super().from_dict(kvs, infer_missing=infer_missing)

    def __post_init__(self) -> None:
        data = self.data
        load_type = self.load_type
        try:
            model = _DATA_MODELS.get(load_type)
            if model is not None:
                if not isinstance(data, model):
                    if not isinstance(data, dict):
                        raise WireFormatError(f"expected a JSON object, got {type(data).__name__}")
                    self.data = model.from_wire(data)  # type: ignore[assignment]
            elif load_type == LoadType.SEARCH:
                if not isinstance(data, list):
                    raise WireFormatError(f"expected a JSON array, got {type(data).__name__}")
                self.data = [t if isinstance(t, Track) else Track.from_wire(t) for t in data]
        except WireFormatError as exc:
            raise WireFormatError(
                f"LoadResult.data ({load_type!r}): {exc}", model="LoadResult", key="data"
            ) from None

    @property
    def tracks(self) -> list[Track]:
        """The tracks: one for ``track``, the playlist's, the search results, else ``[]``."""
        data = self.data
        if isinstance(data, Track):
            return [data]
        if isinstance(data, Playlist):
            return data.tracks
        if self.load_type == LoadType.SEARCH and isinstance(data, list):
            return data
        return []

    @property
    def track(self) -> Optional[Track]:
        """The track of a ``track`` result, or a playlist's selected track; else None."""
        data = self.data
        if isinstance(data, Track):
            return data
        if isinstance(data, Playlist):
            return data.selected
        return None

    @property
    def playlist(self) -> Optional[Playlist]:
        """The playlist of a ``playlist`` result, else None."""
        return self.data if isinstance(self.data, Playlist) else None

    @property
    def exception(self) -> Optional[ExceptionInfo]:
        """The Exception of an ``error`` result, else None."""
        return self.data if isinstance(self.data, ExceptionInfo) else None

    @property
    def is_error(self) -> bool:
        """True for ``loadType: "error"``."""
        return self.load_type == LoadType.ERROR

    def raise_for_error(self, identifier: str = "") -> "LoadResult":
        """Raise :class:`lavasync.LoadError` for an ``error`` result; else return self."""
        exc = self.exception
        if self.load_type == LoadType.ERROR:
            message = (exc.message if exc is not None else None) or "loading failed"
            raise LoadError(message, exception=exc, identifier=identifier)
        return self
