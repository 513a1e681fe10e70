"""Track and TrackInfo (PROTOCOL.md §5.1).

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Optional

from ._base import MAX_LONG, WireModel

__all__ = ["UNKNOWN_LENGTH", "Track", "TrackInfo"]

#: ``TrackInfo.length`` of a live stream or a track of unknown duration (Java Long.MAX_VALUE).
UNKNOWN_LENGTH: Final = MAX_LONG


@dataclass
class TrackInfo(WireModel):
    """What Lavalink knows about a track. Times are milliseconds."""

    identifier: str
    is_seekable: bool
    author: str
    length: int
    is_stream: bool
    position: int
    title: str
    uri: Optional[str]
    source_name: str
    artwork_url: Optional[str] = None
    isrc: Optional[str] = None

    @property
    def is_unknown_length(self) -> bool:
        """True for streams and other tracks whose length is unknown: ``2**63-1`` (Lavalink)
        or a negative length such as ``-1`` (NodeLink)."""
        length = self.length
        return length >= UNKNOWN_LENGTH or length < 0

    @property
    def duration(self) -> Optional[int]:
        """The length in ms, or None when it is unknown (streams, ``-1``)."""
        length = self.length
        return None if length >= UNKNOWN_LENGTH or length < 0 else length


@dataclass
class Track(WireModel):
    """A playable track: the encoded lavaplayer blob plus its decoded info.

    ``plugin_info`` (set by plugins) and ``user_data`` (set by the client) are opaque JSON
    objects passed through untouched. ``encoded`` embeds the position at the moment the server
    wrote it, so it is not a stable identity key; compare ``info.identifier`` instead.
    """

    _wire_essential: ClassVar[tuple[str, ...]] = ("encoded", "info")

    encoded: str
    info: TrackInfo
    plugin_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    user_data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only reached when the instance has no such attribute: a Track made by
        # lavasync.decode_track leaves its (always empty) plugin_info and user_data out until
        # first read, then keeps that dict (setdefault: every thread gets the same one).
        if name in ("plugin_info", "user_data"):
            return self.__dict__.setdefault(name, {})
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def identifier(self) -> str:
        """Shortcut for ``info.identifier``."""
        return self.info.identifier

    @property
    def title(self) -> str:
        """Shortcut for ``info.title``."""
        return self.info.title

    @property
    def length(self) -> int:
        """Shortcut for ``info.length`` (ms; 2**63-1 when unknown)."""
        return self.info.length

    def with_user_data(self, user_data: dict[str, Any]) -> "Track":
        """A copy of this track carrying ``user_data`` (sent along when it is played)."""
        if not isinstance(user_data, dict):
            raise ValueError(f"user_data must be a dict, not {type(user_data).__name__}")
        return dataclasses.replace(self, user_data=dict(user_data))
