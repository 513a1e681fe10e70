"""The lavasync exception tree.

Every error lavasync raises derives from :class:`LavasyncError`; errors of the underlying
libraries (``requests``, ``websocket-client``) never reach the caller. Where a builtin exception
means the same thing, the lavasync class inherits it too, so ``except TimeoutError`` works::

    LavasyncError
    ├── ConnectionFailedError                 cannot reach the node (refused, DNS, reset)
    │   ├── TLSError                          the TLS handshake failed (e.g. untrusted cert)
    │   └── NodeUnavailableError (+ LavasyncTimeoutError)
    │                                         no node ready in time (``.errors`` says why),
    │                                         or the node was lost mid-call
    ├── LavasyncTimeoutError (+ TimeoutError) a call or a wait did not finish in time
    │   ├── VoiceConnectTimeoutError          player.connect: a voice update never came
    │   └── NodeUnavailableError              (see above: also a timeout)
    ├── RestError                             the node answered a non-2xx status
    │   ├── AuthenticationError               401 / 403: wrong or missing password
    │   └── RateLimitedError                  429: too many requests; ``retry_after`` seconds
    ├── LoadError                             loadtracks answered ``loadType: "error"``
    ├── DecodeError (+ ValueError)            an encoded track blob could not be read
    ├── UnsupportedServerError                the server is not Lavalink v4 (a v3 server, say)
    ├── PlayerDestroyedError                  the player was destroyed while a call waited
    └── ClientClosedError                     the client (or node) was closed

Errors that wrap a lower-level failure keep it as ``__cause__`` (the OSError, SSLError, ...).
Bad arguments raise the builtin :class:`ValueError` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

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
    "RateLimitedError",
    "RestError",
    "TLSError",
    "UnsupportedServerError",
    "VoiceConnectTimeoutError",
]


class LavasyncError(Exception):
    """Root of every error lavasync raises."""


class ConnectionFailedError(LavasyncError):
    """The node could not be reached: connection refused or reset, DNS, TLS."""

    #: True when the connection was refused (nothing listens on the node's port).
    refused: bool = False


class TLSError(ConnectionFailedError):
    """The TLS handshake with the node failed; the ``ssl`` error is the ``__cause__``.

    ``certificate`` is True when the node's certificate was not trusted (unknown CA, expired,
    wrong host name): a configuration error, so the node fails instead of retrying. Pass
    ``ssl_context=`` to :meth:`lavasync.Client.add_node` for a private CA.
    """

    def __init__(self, message: str, *, certificate: bool = False) -> None:
        super().__init__(message)
        self.certificate = certificate


class LavasyncTimeoutError(LavasyncError, TimeoutError):
    """A request or a wait did not finish within its timeout. Also a builtin TimeoutError."""


class NodeUnavailableError(ConnectionFailedError, LavasyncTimeoutError):
    """No node is ready for the call, or the node was lost while the call waited.

    Also a :class:`LavasyncTimeoutError` (and a builtin TimeoutError): ``wait_ready`` raises it
    when its time is up. ``errors`` maps each node's name to its last connection error (None if
    it had none), ``states`` to its state (``"connecting"``, ``"failed"``, ...); both are empty
    when the error is not about waiting for nodes.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Optional[Mapping[str, Optional[BaseException]]] = None,
        states: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.errors: dict[str, Optional[BaseException]] = dict(errors or {})
        self.states: dict[str, str] = dict(states or {})


class VoiceConnectTimeoutError(LavasyncTimeoutError):
    """``player.connect`` timed out; ``missing`` names the voice updates that never came."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class RestError(LavasyncError):
    """The node answered a REST call with a non-2xx status.

    The fields mirror Lavalink's error body (``status``, ``error``, ``message``, ``path``,
    ``trace`` when requested with ``trace=True``); a body that is not JSON leaves them empty.
    """

    def __init__(
        self,
        status: int,
        *,
        error: str = "",
        message: str = "",
        path: str = "",
        trace: Optional[str] = None,
        timestamp: Optional[int] = None,
        method: str = "",
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.status = status
        #: the answer's HTTP headers where lavasync kept them (a refused WebSocket handshake)
        self.headers: dict[str, str] = dict(headers) if headers else {}
        self.error = error
        self.message = message
        self.path = path
        self.trace = trace
        self.timestamp = timestamp
        self.method = method
        self.body = body
        where = f"{method} {path}".strip()
        detail = message or error or "no error body"
        super().__init__(f"{status} {detail}" + (f" ({where})" if where else ""))


class AuthenticationError(RestError):
    """The node refused the password: 401 (missing) or 403 (wrong) on REST, 401 on the socket."""


class RateLimitedError(RestError):
    """The node (or a proxy before it) answered 429 and the call could not be retried in time.

    ``retry_after`` is how many seconds to wait before trying again (from ``Retry-After`` or
    ``X-RateLimit-Reset``; None if the server did not say). Idempotent calls are retried
    within their timeout before this is raised.
    """

    def __init__(
        self, status: int = 429, *, retry_after: Optional[float] = None, **kw: Any
    ) -> None:
        self.retry_after = retry_after
        when = f"retry in {retry_after:.1f} s" if retry_after is not None else "retry later"
        message = kw.pop("message", "") or "rate limited"
        super().__init__(status, message=f"{message}; {when}", **kw)


class UnsupportedServerError(LavasyncError):
    """The server speaks a protocol lavasync does not: a Lavalink v3 server, for instance.

    Raised by ``wait_ready`` (the node fails at once, no reconnect loop). ``version`` is what
    the server said it is (``"3.7.12"``, or ``"3"`` from a header), ``""`` when unknown.
    """

    def __init__(self, message: str, *, version: str = "") -> None:
        super().__init__(message)
        self.version = version


class LoadError(LavasyncError):
    """``loadtracks`` answered ``loadType: "error"`` and the caller asked for an exception.

    ``exception`` is the decoded Exception object (message, severity, cause, causeStackTrace).
    """

    def __init__(self, message: str, *, exception: Any = None, identifier: str = "") -> None:
        super().__init__(message)
        self.exception = exception
        self.identifier = identifier


class DecodeError(LavasyncError, ValueError):
    """An encoded track (or another binary payload) could not be decoded. Also a ValueError."""


class PlayerDestroyedError(LavasyncError):
    """The player was destroyed (or its node lost for good) while a call was waiting on it."""


class ClientClosedError(LavasyncError):
    """The client or node has been closed; it accepts no further calls."""
