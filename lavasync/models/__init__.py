"""Lavalink v4 wire types: dataclasses with camelCase wire names (dataclasses-json).

Every model has ``from_wire`` (fast decoder) and ``to_wire`` (JSON-ready dict) besides
dataclasses-json's ``from_dict``/``to_dict``/``to_json``/``schema()``. See ``_base`` for
the rules. Events live in :mod:`lavasync.models.events`.
"""

from ._base import UNSET, Unset, UnsetType, WireFormatError, WireModel, snowflake
from .track import UNKNOWN_LENGTH, Track, TrackInfo

__all__ = [
    "UNKNOWN_LENGTH",
    "UNSET",
    "Track",
    "TrackInfo",
    "Unset",
    "UnsetType",
    "WireFormatError",
    "WireModel",
    "snowflake",
]
