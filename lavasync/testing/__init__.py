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

Fault controls: the public, stable API for breaking things on purpose (every method may be
called from any thread, while clients are connected):

* drop: :meth:`FakeNode.drop_connections` cuts every WebSocket without a close frame (resuming
  sessions pause); :meth:`FakeNode.close_websockets` closes them with a code and reason;
  :meth:`FakeNode.expire_session` ends a session as if its resume window ran out.
* crash: :meth:`FakeNode.kill` (``lose_sessions=True`` forgets every session) and
  :meth:`FakeNode.revive`, which listens again on the same port.
* stall: :meth:`FakeNode.stop_answering` holds every frame, pong and REST answer until
  :meth:`FakeNode.resume_answering`.
* 5xx and 429: :meth:`FakeNode.refuse_connections` answers 503 to every request and
  handshake (``how="close"``: drops the TCP connection); :meth:`FakeNode.add_route` overrides
  any route, e.g. ``fake.add_route("GET", "/v4/info", lambda req: (429, {...}))``.
* player events: :meth:`FakeNode.stuck_track` (TrackStuckEvent), :meth:`FakeNode.fail_track`
  (TrackExceptionEvent then TrackEndEvent), :meth:`FakeNode.finish_track`,
  :meth:`FakeNode.close_voice` (WebSocketClosedEvent, e.g. 4014).
* raw frames: :meth:`FakeNode.emit` (a message, queued while a session is paused),
  :meth:`FakeNode.send_raw` (any text or binary frame, never queued), :meth:`FakeNode.burst`.
* voice: :meth:`FakeNode.set_voice_delay` (a voice PATCH blocks that long),
  :meth:`FakeNode.set_voice_failure`; on the gateway side ``FakeGateway.delay``,
  ``FakeGateway.missing``, :meth:`FakeGateway.kick`, :meth:`FakeGateway.region_move`.

``FakeDiscordGateway`` is a whole Discord gateway over a real loopback WebSocket (HELLO,
IDENTIFY/READY, heartbeats, RESUME, INVALID_SESSION, OP 4 answers, shard faults), for bots
that run their own gateway connection, e.g. :mod:`lavasync.ext.gateway`.

For pytest, :mod:`lavasync.testing.plugin` (installed as a plugin) gives ready-made fixtures:
``fake_node``, ``fake_gateway`` and ``lavasync_client``. ``python -m lavasync.testing serve``
runs a FakeNode on its own, to develop a bot against without Java.
"""

from __future__ import annotations

from ._catalogue import BUILTIN_TRACKS
from .discord import FakeDiscordGateway
from .gateway import FakeGateway
from .node import FakeNode, FakeSession, RecordedHandshake, RecordedRequest

__all__ = [
    "BUILTIN_TRACKS",
    "FakeDiscordGateway",
    "FakeGateway",
    "FakeNode",
    "FakeSession",
    "RecordedHandshake",
    "RecordedRequest",
]
