"""The JSON error body of a non-2xx REST answer (PROTOCOL.md §1.1).

A plain dataclass; safe to share between threads as long as nobody mutates it.
"""

from dataclasses import dataclass
from typing import Optional

from ._base import WireModel

__all__ = ["ErrorResponse"]


@dataclass
class ErrorResponse(WireModel):
    """Spring's error object: ``timestamp`` is epoch ms; ``trace`` only with ``?trace=true``."""

    timestamp: int
    status: int
    error: str
    message: str
    path: str
    trace: Optional[str] = None
