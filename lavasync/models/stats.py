"""Node statistics: the ``stats`` op and ``GET /v4/stats`` (PROTOCOL.md §2.3, §3.3).

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._base import WireModel

__all__ = ["Cpu", "FrameStats", "Memory", "Stats"]


@dataclass
class Memory(WireModel):
    """JVM heap in bytes: ``used == allocated - free``; ``reservable`` is the max heap."""

    free: int
    used: int
    allocated: int
    reservable: int


@dataclass
class Cpu(WireModel):
    """CPU cores and load; both loads are fractions 0.0-1.0 (not percent, not per core).

    Read liberally, NodeLink's ``nodelinkLoad`` stands in for a missing ``lavalinkLoad``.
    """

    cores: int
    system_load: float
    lavalink_load: float

    @staticmethod
    def _wire_liberal(d: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(d.get("lavalinkLoad"), (int, float)):
            for key in ("nodelinkLoad", "processLoad"):
                value = d.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    d["lavalinkLoad"] = value
                    break
        return d


@dataclass
class FrameStats(WireModel):
    """Per-player frame averages over the last minute; ``deficit = 3000 - (sent + nulled)``."""

    sent: int
    nulled: int
    deficit: int


@dataclass
class Stats(WireModel):
    """Node-wide statistics. ``frame_stats`` is None when absent or null (always on REST).

    The WebSocket message's ``op`` key is kept as an unknown key (see ``wire_extras``).
    Read liberally (``Stats.from_server``): missing numbers are 0.
    """

    _wire_essential: ClassVar[tuple[str, ...]] = ("players",)

    players: int
    playing_players: int
    uptime: int
    memory: Memory
    cpu: Cpu
    frame_stats: Optional[FrameStats] = None
