"""How FakeNode speaks when it plays another server: the shapes where servers differ.

``Dialect`` is Lavalink 4.2 (FakeNode's own behaviour: every hook is a no-op).
``NodeLinkDialect`` reproduces what NodeLink 3.7 sends, as written down in the reference
notes on Lavalink-compatible servers: its headers and ``/version``, an ``/v4/info`` without
``jvm``/``lavaplayer``, ``nodelinkLoad`` in stats, load errors under ``exception``, null voice
fields, wrapped filters, extra events, no replay after a resume, no playerUpdate while paused,
``ping`` -1 until a voice heartbeat, version-2 blobs, 500s for bad input, plain-text refusals,
GET creating players and snowflake-only guild ids. ``LavalinkV3Dialect`` is an old v3 server:
no ``/v4`` routes at all, ``Lavalink-Major-Version: 3`` on its answers and a 3.x ``/version``.

Dialects hold no state of their own; FakeNode calls them under its lock.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Optional

from ..codec import decode_blob, encode_info

__all__ = ["DIALECTS", "Dialect", "LavalinkV3Dialect", "NodeLinkDialect", "make_dialect"]

_SNOWFLAKE = re.compile(r"[0-9]{17,20}")


class Dialect:
    """Lavalink v4 (the reference shapes): every hook leaves FakeNode's answer as it is."""

    name = "lavalink"
    default_version = "4.2.2"
    #: headers on every HTTP answer, first of all
    api_headers: list[tuple[str, str]] = [("Lavalink-Api-Version", "4")]
    replays_on_resume = True
    updates_while_paused = True
    get_creates_player = False
    #: a default rate limit (limit, window s) advertised in X-RateLimit-* headers, or None
    default_rate_limit: Optional[tuple[int, float]] = None
    #: the ping a player reports right after its voice connected
    ping_on_connect = 0
    #: paths answered with a plain 404 (no such route on this server)
    v4_routes = True
    #: seconds between playerUpdates when FakeNode is not given ``player_update_interval``
    player_update_interval = 5.0

    def version_text(self, version: str) -> str:
        return version

    def info(self, info: dict[str, Any]) -> dict[str, Any]:
        return info

    def stats(self, stats: dict[str, Any], *, rest: bool) -> dict[str, Any]:
        return stats

    def load_result(self, result: dict[str, Any]) -> dict[str, Any]:
        return result

    def player(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def event(self, message: dict[str, Any]) -> dict[str, Any]:
        return message

    def error_body(
        self, status: int, message: str, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], Optional[bytes]]:
        """The error body to send: a JSON payload, or (payload, raw text) for a text body."""
        return payload, None

    def handshake_refusal(self, status: int) -> bytes:
        return b""

    def check_guild(self, raw: str) -> Optional[str]:
        """An error message if the server refuses this guild id in a path, else None."""
        return None

    def patch_error(self, body: dict[str, Any]) -> Optional[tuple[int, str]]:
        """An error a PATCH body earns on this server before anything is applied."""
        return None

    def extra_events(self, kind: str, **fields: Any) -> list[tuple[str, dict[str, Any]]]:
        """Events this server adds for a player change (``kind``): (type, fields) pairs."""
        return []


class NodeLinkDialect(Dialect):
    """NodeLink 3.7: see the module docstring for the deviations it reproduces."""

    name = "nodelink"
    default_version = "3.7.0"
    api_headers = [("Nodelink-Api-Version", "4"), ("IamNodelink", "true")]
    replays_on_resume = False
    updates_while_paused = False
    get_creates_player = True
    default_rate_limit = (10_000, 10.0)  # advertised like NodeLink's, but generous for tests
    ping_on_connect = -1
    player_update_interval = 2.0

    def info(self, info: dict[str, Any]) -> dict[str, Any]:
        version = dict(info["version"])
        version.pop("preRelease", None)
        version["prerelease"] = []
        version["build"] = []
        return {
            "version": version,
            "buildTime": -1,
            "git": {"branch": "unknown", "commit": "unknown", "commitTime": -1},
            "node": "v22.23.3",
            "voice": {"name": "@performanc/voice", "version": "github:PerformanC/voice"},
            "isNodelink": True,
            "sourceManagers": list(info["sourceManagers"]),
            "filters": list(info["filters"]),
            "plugins": [],
        }

    def stats(self, stats: dict[str, Any], *, rest: bool) -> dict[str, Any]:
        out = copy.deepcopy(stats)
        cpu = out.get("cpu") or {}
        cpu["nodelinkLoad"] = cpu.pop("lavalinkLoad", 0.0)
        out["cpu"] = cpu
        if rest:
            out["frameStats"] = None
            out["detailedStats"] = {"players": {}, "sources": {}}
        return out

    def load_result(self, result: dict[str, Any]) -> dict[str, Any]:
        kind = result.get("loadType")
        data = result.get("data")
        if kind == "error":
            # no cause, no causeStackTrace: NodeLink's own message under "exception"
            return {
                "loadType": "error",
                "exception": {"message": "HTTP error 404 while resolving", "severity": "common"},
            }
        if kind == "empty":
            return {"loadType": "empty", "data": {}}
        if kind == "track" and isinstance(data, dict):
            return {"loadType": kind, "data": _version2(data)}
        if kind == "search" and isinstance(data, list):
            return {"loadType": kind, "data": [_version2(t) for t in data]}
        if kind == "playlist" and isinstance(data, dict):
            data = dict(data, tracks=[_version2(t) for t in data.get("tracks", [])])
            return {"loadType": kind, "data": data}
        return result

    def player(self, data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        voice = dict(out.get("voice") or {})
        for key in ("token", "endpoint", "sessionId", "channelId"):
            if not voice.get(key):
                voice[key] = None
        out["voice"] = voice
        filters = dict(out.get("filters") or {})
        filters.setdefault("volume", {})
        bands = filters.pop("equalizer", [])
        filters["equalizer"] = {"bands": bands}
        out["filters"] = {"filters": filters}
        out["fading"] = {"enabled": False}
        out["loudnessNormalizer"] = {"enabled": False}
        return out

    def event(self, message: dict[str, Any]) -> dict[str, Any]:
        track = message.get("track")
        if isinstance(track, dict):
            track = {k: v for k, v in track.items() if k != "pluginInfo"}
            if not track.get("userData"):
                track.pop("userData", None)
            track["endTime"] = None
            message = dict(message, track=track)
        if message.get("type") == "TrackStartEvent":
            message = dict(message, playingQuality="high")
        return message

    def error_body(
        self, status: int, message: str, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], Optional[bytes]]:
        if status == 401:
            return payload, b"Unauthorized"
        if status == 404 and message == "Session not found":
            message = "The provided sessionId doesn't exist."
        elif status == 404 and message.startswith("No static resource"):
            message = "The requested route was not found."
        out = dict(payload, message=message)
        out["trace"] = payload.get("trace") or f"Error: {message}\n    at NodeLink (fake.js:1:1)"
        return out, None

    def handshake_refusal(self, status: int) -> bytes:
        return b"Invalid password provided." if status == 401 else b""

    def check_guild(self, raw: str) -> Optional[str]:
        return None if _SNOWFLAKE.fullmatch(raw) else "Invalid path parameters"

    def patch_error(self, body: dict[str, Any]) -> Optional[tuple[int, str]]:
        track = body.get("track")
        if "identifier" in body or (isinstance(track, dict) and "identifier" in track):
            return 500, "Track identifier loading is not supported."
        return None

    def extra_events(self, kind: str, **fields: Any) -> list[tuple[str, dict[str, Any]]]:
        names = {
            "created": "PlayerCreatedEvent",
            "connected": "PlayerConnectedEvent",
            "destroyed": "PlayerDestroyedEvent",
            "volume": "VolumeChangedEvent",
            "filters": "FiltersChangedEvent",
            "paused": "PauseEvent",
            "seek": "SeekEvent",
        }
        name = names.get(kind)
        return [] if name is None else [(name, dict(fields))]


class LavalinkV3Dialect(Dialect):
    """A Lavalink v3 server: no ``/v4`` routes (404 with ``Lavalink-Major-Version: 3``),
    ``/version`` 3.x. lavasync must refuse it at connect, naming the version."""

    name = "lavalink-v3"
    default_version = "3.7.12"
    api_headers = [("Lavalink-Major-Version", "3")]
    v4_routes = False


DIALECTS: dict[str, type[Dialect]] = {
    "lavalink": Dialect,
    "nodelink": NodeLinkDialect,
    "lavalink-v3": LavalinkV3Dialect,
}


def make_dialect(name: str) -> Dialect:
    """The dialect called ``name``; ValueError naming the known ones otherwise."""
    cls = DIALECTS.get(name)
    if cls is None:
        raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, not {name!r}")
    return cls()


def _version2(track: dict[str, Any]) -> dict[str, Any]:
    """The track re-encoded the way NodeLink writes blobs: version 2 (no artworkUrl/isrc)."""
    try:
        blob = decode_blob(track["encoded"])
        info = dict(blob.info, artworkUrl=None, isrc=None)
        encoded = encode_info(info, source_data=blob.source_data, version=2)
    except (KeyError, ValueError):
        return track
    return dict(track, encoded=encoded)
