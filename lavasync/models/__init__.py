"""Lavalink v4 wire types: dataclasses with camelCase wire names (dataclasses-json).

Every model has ``from_wire`` (fast decoder) and ``to_wire`` (JSON-ready dict) besides
dataclasses-json's ``from_dict``/``to_dict``/``to_json``/``schema()``; see
:mod:`lavasync.models._base` for the rules. Events live in :mod:`lavasync.models.events`.
"""

from ._base import (
    MAX_LONG,
    UNSET,
    Unset,
    UnsetType,
    WireFormatError,
    WireModel,
    snowflake,
)
from .error import ErrorResponse
from .filters import (
    BAND_COUNT,
    BAND_FREQUENCIES,
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
from .info import Git, Info, Plugin, Version
from .load import (
    ExceptionInfo,
    LoadData,
    LoadResult,
    LoadType,
    Playlist,
    PlaylistInfo,
    Severity,
)
from .player import PlayerInfo, PlayerState, UpdatePlayer, UpdatePlayerTrack, VoiceState
from .routeplanner import (
    BalancingIpRoutePlannerDetails,
    BalancingIpRoutePlannerStatus,
    FailingAddress,
    IpBlock,
    NanoIpRoutePlannerDetails,
    NanoIpRoutePlannerStatus,
    RotatingIpRoutePlannerDetails,
    RotatingIpRoutePlannerStatus,
    RotatingNanoIpRoutePlannerDetails,
    RotatingNanoIpRoutePlannerStatus,
    RoutePlannerDetails,
    RoutePlannerFreeAddress,
    RoutePlannerStatus,
    parse_route_planner,
)
from .session import Session, SessionUpdate
from .stats import Cpu, FrameStats, Memory, Stats
from .track import UNKNOWN_LENGTH, Track, TrackInfo

__all__ = [  # noqa: RUF022 - plain sorted(), as tested
    "BAND_COUNT",
    "BAND_FREQUENCIES",
    "BalancingIpRoutePlannerDetails",
    "BalancingIpRoutePlannerStatus",
    "ChannelMix",
    "Cpu",
    "Distortion",
    "EqualizerBand",
    "ErrorResponse",
    "ExceptionInfo",
    "FailingAddress",
    "Filters",
    "FrameStats",
    "Git",
    "Info",
    "IpBlock",
    "Karaoke",
    "LoadData",
    "LoadResult",
    "LoadType",
    "LowPass",
    "MAX_LONG",
    "Memory",
    "NanoIpRoutePlannerDetails",
    "NanoIpRoutePlannerStatus",
    "PlayerInfo",
    "PlayerState",
    "Playlist",
    "PlaylistInfo",
    "Plugin",
    "RotatingIpRoutePlannerDetails",
    "RotatingIpRoutePlannerStatus",
    "RotatingNanoIpRoutePlannerDetails",
    "RotatingNanoIpRoutePlannerStatus",
    "Rotation",
    "RoutePlannerDetails",
    "RoutePlannerFreeAddress",
    "RoutePlannerStatus",
    "Session",
    "SessionUpdate",
    "Severity",
    "Stats",
    "Timescale",
    "Track",
    "TrackInfo",
    "Tremolo",
    "UNKNOWN_LENGTH",
    "UNSET",
    "Unset",
    "UnsetType",
    "UpdatePlayer",
    "UpdatePlayerTrack",
    "Version",
    "Vibrato",
    "VoiceState",
    "WireFormatError",
    "WireModel",
    "parse_route_planner",
    "snowflake",
]
