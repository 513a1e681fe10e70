"""I/O layer: the REST transport (requests) and the WebSocket transport (websocket-client).

Transports move dicts and raise lavasync errors; they know nothing about models.
"""

from __future__ import annotations

from .rest import RestTransport

__all__ = ["RestTransport"]
