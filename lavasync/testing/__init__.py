"""Test helpers for lavasync users: a fake Lavalink v4 node and a fake Discord gateway.

``FakeNode`` is a real HTTP + WebSocket server on 127.0.0.1 that speaks Lavalink v4 (written
from the protocol, standard library only); ``FakeGateway`` answers the OP 4 payloads a client
sends through its ``send_gateway`` hook with the voice dispatches Discord would send::

    with FakeNode(player_update_interval=0.1) as fake, FakeGateway(USER_ID) as gateway:
        client = lavasync.Client(user_id=USER_ID, send_gateway=gateway.hook)
        gateway.deliver = client.handle_gateway
        client.add_node("fake", fake.uri, password=fake.password)

What ``/v4/loadtracks`` (and ``track.identifier``) answer:

* an identifier or uri of a catalogued track -> ``track`` (``BUILTIN_TRACKS``, plus every
  :meth:`FakeNode.add_track`; e.g. ``dQw4w9WgXcQ``);
* ``ytsearch:``/``ytmsearch:``/``scsearch:``/``bcsearch:`` + query -> ``search`` (catalogue
  matches, else five made-up results that load again by identifier);
* ``fake:playlist`` (built-ins) and ``fake:playlist:<N>`` (N generated tracks) -> ``playlist``;
* ``fake:error`` -> ``error`` (the generic 4.0.8+ shape); ``fake:empty`` and anything
  unknown -> ``empty`` (``data: null``);
* whatever :meth:`FakeNode.set_load_result` set for that exact identifier.
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
