"""What server a node runs: Lavalink (which 4.x) or another implementation of the v4 API.

A server's own version is not the protocol's: NodeLink 3.7 speaks Lavalink's v4 API. Lavalink
v3 servers are refused at connect (:func:`v3_version`), since nothing in v4 works against them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from .models import Info

__all__ = ["LAVALINK", "NODELINK", "UNKNOWN", "ServerVersion", "detect_server", "v3_version"]

LAVALINK = "lavalink"
NODELINK = "nodelink"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ServerVersion:
    """Which server a node runs and its own version. Immutable; safe to share between threads.

    ``implementation`` is ``"lavalink"``, ``"nodelink"`` or ``"unknown"`` (another server
    speaking v4); ``semver`` and ``as_tuple`` are that server's own version, ``api`` the
    Lavalink REST/WebSocket API it speaks (always 4 for a node lavasync connected to).
    """

    implementation: str
    semver: str
    major: int
    minor: int
    patch: int
    api: int = 4

    @property
    def as_tuple(self) -> tuple[int, int, int]:
        """``(major, minor, patch)`` of the server's own version."""
        return (self.major, self.minor, self.patch)

    @property
    def is_lavalink(self) -> bool:
        """True for the official Lavalink server (not another implementation of its API)."""
        return self.implementation == LAVALINK

    def __str__(self) -> str:
        name = {LAVALINK: "Lavalink", NODELINK: "NodeLink"}.get(self.implementation, "server")
        return f"{name} {self.semver} (API v{self.api})"


def detect_server(info: Info) -> ServerVersion:
    """Tell the implementation from ``/v4/info``: NodeLink marks itself (``isNodelink``),
    Lavalink names its JVM and lavaplayer; anything else is ``unknown``."""
    extras = info.wire_extras
    version = info.version
    if extras.get("isNodelink") is True or "nodelink" in str(extras.get("name", "")).lower():
        kind = NODELINK
    elif info.jvm or info.lavaplayer:
        kind = LAVALINK
    else:
        kind = UNKNOWN
    return ServerVersion(kind, version.semver, version.major, version.minor, version.patch)


def lavalink_notes(version: ServerVersion) -> Optional[str]:
    """What differs for an older Lavalink 4.x (said once at INFO), or None."""
    if not version.is_lavalink or version.major != 4 or version.minor >= 2:
        return None
    notes = [
        "no DAVE (Discord's end-to-end voice encryption) support",
        "the player's voice.channelId is not echoed (lavasync keeps its own)",
    ]
    if version.minor == 0:
        notes.append("exceptions carry no causeStackTrace")
    return f"Lavalink {version.semver} predates 4.2: " + "; ".join(notes) + "; it works otherwise"


_MAJOR = re.compile(r"\s*v?(\d+)")


def v3_version(headers: Mapping[str, str], version_text: Optional[str] = None) -> Optional[str]:
    """The version of a Lavalink v3 server, from a refused handshake's headers
    (``Lavalink-Major-Version``/``Lavalink-Api-Version``) or its ``/version`` text; None if
    nothing says it is older than v4."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for key in ("lavalink-major-version", "lavalink-api-version"):
        value = lowered.get(key)
        if value is not None:
            m = _MAJOR.match(value)
            if m and int(m.group(1)) < 4:
                return version_text.strip() if version_text else m.group(1)
            if m:
                return None  # the server says it is v4 or newer
    if any(k.startswith("nodelink") or k == "iamnodelink" for k in lowered):
        return None  # NodeLink's own 3.x is not Lavalink v3
    if version_text:
        m = _MAJOR.match(version_text)
        if m and int(m.group(1)) < 4:
            return version_text.strip()
    return None
