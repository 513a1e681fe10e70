"""The REST Player object and the PATCH body that updates it (PROTOCOL.md §3.7, §3.8, §5.2).

``UpdatePlayer`` distinguishes a field that is not given (``UNSET``, never sent) from one
given as None (sent as JSON null): ``UpdatePlayerTrack(encoded=None)`` stops the track.

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

from ._base import MAX_LONG, UNSET, Unset, WireModel, snowflake_meta, unset_meta
from .filters import Filters, unwrap_filters
from .track import Track

__all__ = ["PlayerInfo", "PlayerState", "UpdatePlayer", "UpdatePlayerTrack", "VoiceState"]


@dataclass
class PlayerState(WireModel):
    """A player's sampled state: ``time`` is server epoch ms, ``position`` ms into the track.

    ``connected`` is true once Lavalink's voice WebSocket to Discord is open; ``ping`` is the
    voice heartbeat round trip in ms (-1 when there is no voice connection at all).
    """

    time: int
    position: int
    connected: bool
    ping: int

    @staticmethod
    def _wire_liberal(d: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(d.get("ping"), int):
            d["ping"] = -1  # unknown, as when there is no voice connection
        position = d.get("position")
        if isinstance(position, (int, float)) and position < 0:
            d["position"] = 0  # never expose a negative position
        return d


@dataclass
class VoiceState(WireModel):
    """Discord voice credentials: sent in a PATCH, echoed in the Player object.

    ``token``/``endpoint`` come from VOICE_SERVER_UPDATE, ``session_id`` and ``channel_id``
    from the bot's own VOICE_STATE_UPDATE. The server echoes ``""`` for unknown strings and
    null for an unknown ``channel_id`` (absent before 4.2). A ``channel_id`` that is not a
    number on the wire is kept as the string it was. Read liberally, null strings (NodeLink
    before a voice update) become ``""``.
    """

    token: str
    endpoint: str
    session_id: str
    channel_id: Optional[int] = field(default=None, metadata=snowflake_meta(lenient=True))

    def validate(self) -> None:
        """Raise ValueError unless all four values are given (as a PATCH requires since 4.2)."""
        for name in ("token", "endpoint", "session_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"voice {name} must be a non-empty string, not {value!r}")
        channel = self.channel_id
        if channel is None:
            raise ValueError("voice channel_id is missing (required by Lavalink 4.2+)")
        if isinstance(channel, bool) or not isinstance(channel, int):
            raise ValueError(f"voice channel_id must be a snowflake int, not {channel!r}")
        if not 0 <= channel <= MAX_LONG:
            raise ValueError(f"voice channel_id must be a snowflake int, not {channel!r}")


@dataclass
class PlayerInfo(WireModel):
    """The REST Player object: what the server holds for one guild.

    Named PlayerInfo because :class:`lavasync.Player` is the user-facing facade. ``track`` is
    None when idle; ``volume`` is 0..1000 percent. Read liberally (``PlayerInfo.from_server``),
    NodeLink's ``{"filters": {...}}`` wrapper is unwrapped and its null voice fields read ``""``.
    """

    _wire_essential: ClassVar[tuple[str, ...]] = ("guildId",)
    _wire_hook_first: ClassVar[bool] = True

    @staticmethod
    def _wire_liberal(d: dict[str, Any]) -> dict[str, Any]:
        filters = d.get("filters")
        if isinstance(filters, Mapping):
            d["filters"] = unwrap_filters(dict(filters))
        elif filters is None:
            d["filters"] = {}
        return d

    guild_id: int = field(metadata=snowflake_meta())
    track: Optional[Track]
    volume: int
    paused: bool
    state: PlayerState
    voice: VoiceState
    filters: Filters


def _user_data_ok(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


@dataclass
class UpdatePlayerTrack(WireModel):
    """The ``track`` object of a PATCH: play ``encoded`` or ``identifier``, or set user data.

    ``encoded=None`` stops the current track; ``user_data`` alone (no track change) replaces
    the current track's user data. UNSET fields are not sent.
    """

    encoded: Union[Optional[str], Unset] = field(default=UNSET, metadata=unset_meta())
    identifier: Union[str, Unset] = field(default=UNSET, metadata=unset_meta())
    user_data: Union[dict[str, Any], Unset] = field(default=UNSET, metadata=unset_meta())

    @property
    def changes_track(self) -> bool:
        """True if this starts or stops a track (``encoded`` or ``identifier`` given)."""
        return self.encoded is not UNSET or self.identifier is not UNSET

    def validate(self) -> None:
        """Raise ValueError for both encoded and identifier, an empty identifier or bad types."""
        if self.encoded is not UNSET and self.identifier is not UNSET:
            raise ValueError("track: give either encoded or identifier, not both")
        encoded = self.encoded
        if (
            encoded is not UNSET
            and encoded is not None
            and (not isinstance(encoded, str) or not encoded)
        ):
            raise ValueError(f"track.encoded must be a non-empty str or None, not {encoded!r}")
        identifier = self.identifier
        if identifier is not UNSET and (not isinstance(identifier, str) or not identifier.strip()):
            raise ValueError(f"track.identifier must be a non-empty string, not {identifier!r}")
        user_data = self.user_data
        if user_data is not UNSET and not _user_data_ok(user_data):
            raise ValueError(f"track.user_data must be a dict with str keys, not {user_data!r}")


@dataclass
class UpdatePlayer(WireModel):
    """Body of ``PATCH /v4/sessions/{id}/players/{guild}``: only the fields you set are sent.

    ``encoded_track`` and ``identifier`` are the deprecated top-level aliases of ``track``;
    prefer ``track=UpdatePlayerTrack(...)``. ``end_time=None`` is sent as null (which current
    servers ignore for the current track). Call :meth:`validate` before sending.
    """

    track: Union[UpdatePlayerTrack, Unset] = field(
        default=UNSET, metadata=unset_meta(lambda: UpdatePlayerTrack)
    )
    encoded_track: Union[Optional[str], Unset] = field(default=UNSET, metadata=unset_meta())
    identifier: Union[str, Unset] = field(default=UNSET, metadata=unset_meta())
    position: Union[int, Unset] = field(default=UNSET, metadata=unset_meta())
    end_time: Union[Optional[int], Unset] = field(default=UNSET, metadata=unset_meta())
    volume: Union[int, Unset] = field(default=UNSET, metadata=unset_meta())
    paused: Union[bool, Unset] = field(default=UNSET, metadata=unset_meta())
    filters: Union[Filters, Unset] = field(default=UNSET, metadata=unset_meta(lambda: Filters))
    voice: Union[VoiceState, Unset] = field(default=UNSET, metadata=unset_meta(lambda: VoiceState))

    @property
    def changes_track(self) -> bool:
        """True if this starts or stops a track (through ``track`` or the deprecated fields)."""
        track = self.track
        return (
            (track is not UNSET and track.changes_track)
            or self.encoded_track is not UNSET
            or self.identifier is not UNSET
        )

    def validate(self) -> None:
        """Raise ValueError for anything the server would reject or that would fail later.

        Checks: volume 0..1000, position >= 0, end_time > 0 (or None), encoded and identifier
        together, ``track`` mixed with the deprecated fields, an empty identifier, invalid
        filters (:meth:`Filters.validate`) and an incomplete voice state.
        """
        track = self.track
        if track is not UNSET:
            if not isinstance(track, UpdatePlayerTrack):
                raise ValueError(f"track must be an UpdatePlayerTrack, not {track!r}")
            if self.encoded_track is not UNSET or self.identifier is not UNSET:
                raise ValueError(
                    "track cannot be combined with the deprecated encoded_track/identifier"
                )
            track.validate()
        if self.encoded_track is not UNSET and self.identifier is not UNSET:
            raise ValueError("give either encoded_track or identifier, not both")
        encoded = self.encoded_track
        if (
            encoded is not UNSET
            and encoded is not None
            and (not isinstance(encoded, str) or not encoded)
        ):
            raise ValueError(f"encoded_track must be a non-empty string or None, not {encoded!r}")
        identifier = self.identifier
        if identifier is not UNSET and (not isinstance(identifier, str) or not identifier.strip()):
            raise ValueError(f"identifier must be a non-empty string, not {identifier!r}")
        position = self.position
        if position is not UNSET:
            _check_int(position, "position")
            if position < 0:
                raise ValueError(f"position must be >= 0 ms, not {position}")
        end_time = self.end_time
        if end_time is not UNSET and end_time is not None:
            _check_int(end_time, "end_time")
            if end_time <= 0:
                raise ValueError(f"end_time must be > 0 ms, not {end_time}")
        volume = self.volume
        if volume is not UNSET:
            _check_int(volume, "volume")
            if not 0 <= volume <= 1000:
                raise ValueError(f"volume must be within 0..1000, not {volume}")
        if self.paused is not UNSET and not isinstance(self.paused, bool):
            raise ValueError(f"paused must be a bool, not {self.paused!r}")
        filters = self.filters
        if filters is not UNSET:
            if not isinstance(filters, Filters):
                raise ValueError(f"filters must be a Filters object, not {filters!r}")
            filters.validate()
        voice = self.voice
        if voice is not UNSET:
            if not isinstance(voice, VoiceState):
                raise ValueError(f"voice must be a VoiceState, not {voice!r}")
            voice.validate()


def _check_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if value > MAX_LONG:
        raise ValueError(f"{name} must fit in 64 bits, not {value}")
