"""lavasync: a synchronous, threaded client for Lavalink v4."""

from __future__ import annotations

import logging

from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    DecodeError,
    LavasyncError,
    LavasyncTimeoutError,
    LoadError,
    NodeUnavailableError,
    PlayerDestroyedError,
    RestError,
    VoiceConnectTimeoutError,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AuthenticationError",
    "ClientClosedError",
    "ConnectionFailedError",
    "DecodeError",
    "LavasyncError",
    "LavasyncTimeoutError",
    "LoadError",
    "NodeUnavailableError",
    "PlayerDestroyedError",
    "RestError",
    "VoiceConnectTimeoutError",
    "__version__",
]
