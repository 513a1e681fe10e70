"""Test helpers for lavasync users: a fake Lavalink v4 node and a fake Discord gateway.

``FakeNode`` is a real HTTP + WebSocket server on 127.0.0.1 that speaks Lavalink v4 (written
from the protocol, standard library only); ``FakeGateway`` answers the OP 4 payloads a client
sends through its ``send_gateway`` hook with the voice dispatches Discord would send.
"""

from __future__ import annotations

from ._catalogue import BUILTIN_TRACKS
from .gateway import FakeGateway
from .node import FakeNode, FakeSession, RecordedHandshake, RecordedRequest

__all__ = [
    "BUILTIN_TRACKS",
    "FakeGateway",
    "FakeNode",
    "FakeSession",
    "RecordedHandshake",
    "RecordedRequest",
]
