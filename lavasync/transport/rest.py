"""HTTP transport for the Lavalink v4 REST API: I/O only, dicts in and out.

One :class:`RestTransport` per node owns one pooled ``requests.Session``. Calls skip the
session's per-request machinery (environment and proxy lookups, cookie merging, hooks) and go
straight to the mounted ``HTTPAdapter`` with a request prepared from pre-built parts, which
roughly halves the client-side cost of a call. Errors of ``requests``/``urllib3`` are translated
into the lavasync exception tree and never reach the caller.
"""

from __future__ import annotations

import ipaddress
import json as _json
import logging
import math
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from http.client import HTTPException
from typing import Any, Optional, Union, cast
from urllib.parse import quote, urlsplit

import requests
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.timeout import Timeout as TimeoutSauce

from .. import __version__
from ..errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    LavasyncTimeoutError,
    RateLimitedError,
    RestError,
    TLSError,
)

__all__ = ["METHODS", "QueryValue", "RestTransport", "Timeout", "encode_query"]

_log = logging.getLogger("lavasync.rest")

#: A timeout in seconds: one number for both phases, or ``(connect, read)``.
Timeout = Union[float, tuple[float, float]]
#: What a query parameter value may be; ``bool`` is sent as ``true``/``false``.
QueryValue = Union[str, int, bool]

#: The HTTP methods :meth:`RestTransport.request` accepts.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

_NO_HOOKS: dict[str, list[Any]] = {"response": []}

#: Name prefix of the nodes' reader threads, which only read: REST from one is a bug.
READER_PREFIX = "lavasync-ws-"


def encode_query(params: Mapping[str, QueryValue]) -> str:
    """Percent-encode ``params`` into a query string (without ``?``).

    Every reserved character is escaped, including ``+``, ``/`` and ``=``: Lavalink decodes a
    raw ``+`` as a space, which corrupts base64 track blobs.
    """
    parts = []
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"query parameter names must be non-empty strings, got {key!r}")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int)):
            text = str(value)
        else:
            raise ValueError(
                f"query parameter {key!r} must be str, int or bool, got {type(value).__name__}"
            )
        parts.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(parts)


def _check_timeout(timeout: Any, name: str = "timeout") -> Timeout:
    """Validate a timeout value: a positive number or a pair of them."""
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"{name} must be a number or a (connect, read) pair, got {timeout!r}")
        connect, read = timeout
        return (_positive(connect, name), _positive(read, name))
    return _positive(timeout, name)


def _timeout_obj(timeout: Timeout) -> TimeoutSauce:
    """The urllib3 Timeout for a checked timeout, built once instead of on every call."""
    if isinstance(timeout, tuple):
        return TimeoutSauce(connect=timeout[0], read=timeout[1])
    return TimeoutSauce(connect=timeout, read=timeout)


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _header_safe(value: str) -> bool:
    """True if ``value`` can go into an HTTP header as is (no control characters)."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(ch < " " or ch == "\x7f" for ch in value)


#: A control character, space or DEL: never allowed in a request path.
_BAD_PATH_CHAR = re.compile("[\x00-\x20\x7f]")


def _check_path(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must be a string starting with '/', got {path!r}")
    if len(path) > 1 and path.endswith("/"):
        raise ValueError(f"path must not end with '/' (the server answers 404): {path!r}")
    if "?" in path or "#" in path:
        raise ValueError(f"path must not carry a query or fragment; use params=: {path!r}")
    if not path.isascii() or _BAD_PATH_CHAR.search(path):
        raise ValueError(f"path must be ASCII without spaces; percent-encode segments: {path!r}")
    return path


def _is_read_timeout(exc: BaseException) -> bool:
    """True if an error is, or wraps, a read timeout (urllib3's or the socket's)."""
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 8:
        if isinstance(current, (ReadTimeoutError, socket.timeout)):
            return True
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = nested[0] if nested else current.__cause__ or current.__context__
        seen += 1
    return False


#: Bodies up to this size go out in the same write as the request head.
_COALESCE_LIMIT = 256 * 1024


class _Registry:
    """The connections of one transport; once aborted, every connection (even one that
    connects later, racing the abort) has its socket shut down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        self.aborted = False

    def add(self, conn: Any) -> None:
        with self._lock:
            self._conns.add(conn)
            aborted = self.aborted
        if aborted:
            _shutdown(conn)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            conns = list(self._conns)
        for conn in conns:
            _shutdown(conn)


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Conn(urllib3.connection.HTTPConnection):
    """urllib3's connection, but the request head and a body of known small size leave in one
    write. Sent separately (the stock behaviour), the second small segment costs the server an
    extra wake-up per call, which on loopback was a large share of a PATCH's time."""

    #: every connection of one transport, so that close() can abort calls in flight
    _registry: Optional[_Registry] = None
    _coalesce = False  # a body of known length follows this request's head
    _holding = False  # the next send() is the head: keep it
    _held: Optional[bytes] = None

    def putrequest(
        self,
        method: str,
        url: str,
        skip_host: bool = False,
        skip_accept_encoding: bool = False,
    ) -> None:
        self._coalesce = self._holding = False
        self._held = None
        super().putrequest(
            method, url, skip_host=skip_host, skip_accept_encoding=skip_accept_encoding
        )

    def putheader(self, header: Any, *values: Any) -> None:
        if (
            type(header) is str
            and len(header) == 14  # cheap first test: this runs for every header of every call
            and header.lower() == "content-length"
            and len(values) == 1
        ):
            length = str(values[0])
            self._coalesce = length.isdigit() and 0 < int(length) <= _COALESCE_LIMIT
        super().putheader(header, *values)

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        self._holding, self._coalesce = self._coalesce, False
        super().endheaders(message_body, encode_chunked=encode_chunked)

    def send(self, data: Any) -> None:
        if self._holding and isinstance(data, bytes):
            self._holding = False
            self._held = data
            return
        held = self._held
        if held is not None:
            self._held = None
            if isinstance(data, (bytes, bytearray)):
                data = held + data
            else:
                super().send(held)
        super().send(data)

    def connect(self) -> None:
        super().connect()
        registry = self._registry
        if registry is not None:
            registry.add(self)

    def getresponse(self) -> Any:
        held = self._held
        if held is not None:  # a head whose body never came: send it anyway
            self._held = None
            super().send(held)
        return super().getresponse()


class _TLSConn(_Conn, urllib3.connection.HTTPSConnection):
    """The coalescing connection over TLS."""


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _Conn


class _TLSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TLSConn


class _Answer:
    """What :meth:`_Adapter.send` returns: the status, the headers (urllib3's case-insensitive
    HTTPHeaderDict) and the urllib3 response to read the body from."""

    __slots__ = ("headers", "raw", "status_code")

    def __init__(self, status_code: int, headers: Any, raw: Any) -> None:
        self.status_code = status_code
        self.headers = headers
        self.raw = raw


class _Adapter(HTTPAdapter):
    """The stock adapter with three per-call costs removed, all safe for one fixed origin
    reached without proxies: the connection pool is looked up once and reused, the request
    target is sliced off the URL instead of re-parsed, and cookies are not extracted
    (Lavalink sets none)."""

    def __init__(
        self, origin: str, pool_maxsize: int, ssl_context: Optional[ssl.SSLContext] = None
    ) -> None:
        #: this adapter's connections (idle or in use), for :meth:`abort`
        self.connections = _Registry()
        self._ssl_context = ssl_context  # read by init_poolmanager, which super() calls
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
        self._origin = origin
        self._pool: Any = None
        self._pool_lock = threading.Lock()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        if self._ssl_context is not None:
            pool_kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        # Connection classes of this adapter's own, so each connection registers itself here.
        attrs = {"_registry": self.connections}
        conn_cls = type("_Conn", (_Conn,), attrs)
        tls_cls = type("_TLSConn", (_TLSConn,), attrs)
        pool_cls = type("_Pool", (_Pool,), {"ConnectionCls": conn_cls})
        tls_pool_cls = type("_TLSPool", (_TLSPool,), {"ConnectionCls": tls_cls})
        self.poolmanager.pool_classes_by_scheme = {"http": pool_cls, "https": tls_pool_cls}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        context = self._ssl_context
        if context is None:
            stock: Any = super()  # the stubs leave cert_verify untyped
            stock.cert_verify(conn, url, verify, cert)
            return
        # The user's context decides alone: no CA bundle is loaded into it (requests would
        # add certifi's on every new connection) and its verify mode is kept as it is.
        conn.cert_reqs = context.verify_mode
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: Any,
        proxies: Optional[Mapping[str, str]] = None,
        cert: Any = None,
    ) -> Any:
        if proxies or cert is not None or verify is not True:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = super().get_connection_with_tls_context(
                        request, verify, proxies, cert
                    )
                pool = self._pool
        return pool

    def request_url(self, request: PreparedRequest, proxies: Optional[Mapping[str, str]]) -> str:
        url = request.url or ""
        if not proxies and url.startswith(self._origin):
            return url[len(self._origin) :] or "/"
        return super().request_url(request, proxies)

    def build_response(self, req: PreparedRequest, resp: Any) -> Any:
        # RestTransport.request reads only these three: a requests.Response (with its cookie
        # jar and header dict) would cost more than the rest of the adapter's own work.
        return _Answer(resp.status, resp.headers, resp)

    def abort(self) -> None:
        """Shut down every connection's socket, waking calls blocked on an answer."""
        self.connections.abort()

    def close(self) -> None:
        with self._pool_lock:
            self._pool = None
        super().close()


class RestTransport:
    """Sends REST calls to one Lavalink node and returns the decoded bodies.

    Thread-safe: any number of threads may call :meth:`request` at once; they share one
    keep-alive connection pool of ``pool_maxsize`` connections. For ``https://``,
    ``ssl_context`` (if given) alone decides what is trusted; by default it is certifi's bundle.
    """

    def __init__(
        self,
        base_uri: str,
        password: str,
        *,
        client_name: str,
        timeout: Timeout = (5.0, 30.0),
        pool_maxsize: int = 32,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        if not isinstance(base_uri, str):
            raise ValueError(f"base_uri must be a string, got {base_uri!r}")
        parts = urlsplit(base_uri.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_uri must be an http(s):// URL with a host, got {base_uri!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"base_uri must not carry a query or fragment: {base_uri!r}")
        if not isinstance(password, str) or not _header_safe(password):
            raise ValueError("password must be a string of printable Latin-1 characters")
        if not isinstance(client_name, str) or not client_name.strip():
            raise ValueError(f"client_name must be a non-empty string, got {client_name!r}")
        if not _header_safe(client_name):
            raise ValueError(f"client_name must be printable Latin-1 text, got {client_name!r}")
        if isinstance(pool_maxsize, bool) or not isinstance(pool_maxsize, int) or pool_maxsize < 1:
            raise ValueError(f"pool_maxsize must be a positive int, got {pool_maxsize!r}")
        try:
            parts.port  # noqa: B018  (raises ValueError for a bad port)
        except ValueError as exc:
            raise ValueError(f"base_uri has an invalid port: {base_uri!r}") from exc
        if ssl_context is not None:
            if not isinstance(ssl_context, ssl.SSLContext):
                raise ValueError(f"ssl_context must be an ssl.SSLContext, got {ssl_context!r}")
            if parts.scheme != "https":
                raise ValueError(f"ssl_context is for https:// nodes, not {base_uri!r}")
            if ssl_context.check_hostname and _URLLIB3_1 and _is_ip(parts.hostname or ""):
                raise ValueError(
                    "urllib3 1.x cannot match an IP address with an ssl_context that checks "
                    f"host names: name the node by host name ({base_uri!r}) or use urllib3 2"
                )

        self.base_uri = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.timeout: Timeout = _check_timeout(timeout)
        self._timeout_obj = _timeout_obj(self.timeout)
        self.client_name = client_name
        self._closed = False
        self._lock = threading.Lock()
        self._closing = threading.Event()  # wakes calls waiting out a rate limit on close()
        self._rate = _RateLimit(self.base_uri)

        session = requests.Session()
        session.trust_env = False  # no proxy/netrc/CA lookups in the environment per call
        adapter = _Adapter(f"{parts.scheme}://{parts.netloc}", pool_maxsize, ssl_context)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        self._adapter = adapter
        user_agent = f"lavasync/{__version__}"
        # HTTP/1.1 keeps connections alive and a missing Accept means */*; every header
        # costs a little on each call, so only these go out.
        self._get_headers: dict[str, str] = {
            "User-Agent": user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Authorization": password,
            "Client-Name": client_name,
        }
        self._empty_headers = dict(self._get_headers, **{"Content-Length": "0"})
        self._json_headers = dict(self._get_headers, **{"Content-Type": "application/json"})

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the pooled connections and abort calls in flight (they raise
        ClientClosedError at once). Idempotent; later calls raise ClientClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        self._rate.wake()
        self._adapter.abort()
        self._session.close()

    def __enter__(self) -> RestTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RestTransport {self.base_uri} {state}>"

    #: The client's metrics hook (a guarded ``lavasync.metrics`` view), or None: set by the
    #: client on its nodes' transports; each answered call is reported to it.
    metrics: Optional[Any] = None

    def _observe(self, method: str, path: str, status: int, started: float) -> None:
        hook = self.metrics
        if hook is not None:
            hook.timed_rest(method, path, status, time.perf_counter() - started)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, QueryValue]] = None,
        json: Any = None,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
        _deadline: Optional[float] = None,
    ) -> Any:
        """Send one call; return the parsed JSON, the text of a text body, or None if empty.

        ``path`` starts with ``/`` and is sent as given (never with a slash appended);
        ``params`` are percent-encoded in full; ``json`` (if not None) is the request body;
        ``timeout`` overrides the transport default; ``trace=True`` asks the node for stack
        traces in its error bodies. Raises AuthenticationError (401/403), RestError (other
        non-2xx), RateLimitedError (429 that could not be waited out), ConnectionFailedError,
        LavasyncTimeoutError, ClientClosedError.

        Rate limits: a 429 is retried after ``Retry-After`` (or the ``X-RateLimit-Reset``) for
        idempotent methods (GET, PATCH, PUT, DELETE) while the call's timeout allows; once a
        server's ``X-RateLimit-Remaining`` reaches 0, later calls wait for its reset (bounded by
        their timeout), so a burst stays under the advertised limit.
        """
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ValueError(f"unsupported HTTP method {method!r}")
        method = method.upper()
        _check_path(path)
        if timeout is None:
            call_timeout, timeout_obj = self.timeout, self._timeout_obj
        else:
            call_timeout = _check_timeout(timeout)
            timeout_obj = _timeout_obj(call_timeout)
        if trace:
            params = dict(params or {}, trace=True)
        url = self.base_uri + path
        if params:
            url += "?" + encode_query(params)
        if json is None:
            body: Optional[bytes] = None
            headers = self._get_headers if method in ("GET", "HEAD") else self._empty_headers
        else:
            try:
                body = _json.dumps(json, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"json body is not serialisable: {exc}") from exc
            headers = dict(self._json_headers)
            headers["Content-Length"] = str(len(body))
        if self._closed:
            raise ClientClosedError(f"REST transport for {self.base_uri} is closed")
        if threading.current_thread().name.startswith(READER_PREFIX):
            raise RuntimeError(f"{method} {path}: REST is never sent from a node's reader thread")
        if _deadline is None:
            _deadline = time.monotonic() + _budget(call_timeout)
        self._rate.acquire(_deadline, self._closing, method, path)

        prepared = PreparedRequest()
        prepared.method = method
        prepared.url = url
        # A plain dict with canonical names: nothing downstream mutates it or needs the
        # case-insensitive lookups, and it saves building a CaseInsensitiveDict per call.
        prepared.headers = cast("CaseInsensitiveDict[str]", headers)
        prepared.body = body
        prepared.hooks = _NO_HOOKS
        started = time.perf_counter() if self.metrics is not None else 0.0

        try:
            # A prepared urllib3 Timeout is accepted as is (the stubs only list numbers).
            response = self._adapter.send(prepared, timeout=cast(Any, timeout_obj))
            # One read of the whole body: requests' .content would pull it in 10 KiB slices,
            # which costs milliseconds on a 500-track playlist.
            content = response.raw.read(decode_content=True)
        except (
            requests.RequestException,
            OSError,
            HTTPException,
            urllib3.exceptions.HTTPError,
        ) as exc:
            self._rate.failed()
            if started and not self._closed:  # no answer: status 0
                self._observe(method, path, 0, started)
            if self._closed:  # close() aborted the call
                raise ClientClosedError(f"REST transport for {self.base_uri} is closed") from exc
            if isinstance(exc, requests.Timeout) or _is_read_timeout(exc):
                raise LavasyncTimeoutError(
                    f"{method} {path} timed out after {call_timeout} s ({self.base_uri})"
                ) from exc
            _log.debug("%s %s on %s failed: %r", method, path, self.base_uri, exc)
            raise _connection_error(
                f"{method} {path}: cannot reach {self.base_uri}: {_reason(exc)}", exc
            ) from exc

        status = response.status_code
        if started:
            self._observe(method, path, status, started)
        retry_after = self._rate.update(response.headers, status)
        if status == 429:
            delay = 1.0 if retry_after is None else retry_after
            if method in _RETRY_METHODS and time.monotonic() + delay <= _deadline:
                _log.info("%s %s on %s: 429, retry in %.2f s", method, path, self.base_uri, delay)
                if self._closing.wait(delay):
                    raise ClientClosedError(f"REST transport for {self.base_uri} is closed")
                return self.request(
                    method, path, params=params, json=json, timeout=timeout, _deadline=_deadline
                )
            raise _rate_limited(status, method, path, content, retry_after)
        if status >= 300 or status < 200:
            error = _error(status, method, path, content)
            _log.debug("%s %s on %s: %s", method, path, self.base_uri, error)
            raise error
        if status == 204 or not content:
            return None
        return _decode(response.headers.get("Content-Type") or "", content, method, path, status)


#: urllib3 1.x sends no SNI for an IP address, which a context with check_hostname refuses.
_URLLIB3_1 = str(getattr(urllib3, "__version__", "2")).startswith("1.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _connection_error(message: str, exc: BaseException) -> ConnectionFailedError:
    """ConnectionFailedError, or TLSError when an ``ssl`` error is somewhere in the chain."""
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 8:
        if isinstance(current, ssl.SSLError):
            certificate = isinstance(current, ssl.SSLCertVerificationError)
            return TLSError(message, certificate=certificate)
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            nested.append(reason)
        current = nested[0] if nested else current.__cause__ or current.__context__
        seen += 1
    return ConnectionFailedError(message)


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 error chain."""
    text = str(exc)
    for arg in getattr(exc, "args", ()):
        reason = getattr(arg, "reason", None)
        if reason is not None:
            text = str(reason)
    return text


def _decode(content_type: str, content: bytes, method: str, path: str, status: int) -> Any:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return _json.loads(content)
        except ValueError as exc:
            raise RestError(
                status,
                error="Invalid JSON",
                message=f"the node sent a body that is not JSON: {exc}",
                path=path,
                method=method,
                body=content.decode("utf-8", "replace"),
            ) from exc
    text = content.decode("utf-8", "replace")
    if kind.startswith("text/"):
        return text
    try:  # no or unusual content type: JSON if it parses, else the text
        return _json.loads(content)
    except ValueError:
        return text


def _error(status: int, method: str, path: str, content: bytes) -> RestError:
    """Build the exception for a non-2xx answer from Lavalink's error body (if any)."""
    body: Any = None
    if content:
        try:
            body = _json.loads(content)
        except ValueError:
            body = content.decode("utf-8", "replace")
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    error = fields.get("error")
    message = fields.get("message")
    trace = fields.get("trace")
    timestamp = fields.get("timestamp")
    server_path = fields.get("path")
    cls = AuthenticationError if status in (401, 403) else RestError
    if not message and status in (401, 403):
        message = "missing password" if status == 401 else "wrong password"
    if not message and isinstance(body, str):
        message = body.strip()[:200]
    return cls(
        status,
        error=error if isinstance(error, str) else "",
        message=message if isinstance(message, str) else "",
        path=server_path if isinstance(server_path, str) and server_path else path,
        trace=trace if isinstance(trace, str) else None,
        timestamp=timestamp if isinstance(timestamp, int) else None,
        method=method,
        body=body,
    )


# --------------------------------------------------------------------------- rate limits

#: Methods retried after a 429 (the server did not act on the request; these are idempotent).
_RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PATCH", "PUT", "DELETE"})


#: Added to an advertised reset: clocks and the header's rounding may put it a little early.
_RESET_MARGIN = 0.05


def _budget(timeout: Timeout) -> float:
    """How long one call may take in all, waits for rate limits included: its read timeout."""
    return timeout[1] if isinstance(timeout, tuple) else timeout


def _header_number(headers: Any, name: str) -> Optional[float]:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _reset_in(value: float) -> float:
    """Seconds until a ``X-RateLimit-Reset``: epoch ms, epoch seconds or a delta in seconds."""
    if value > 1e12:
        return value / 1000.0 - time.time()
    if value > 1e9:
        return value - time.time()
    return value


class _RateLimit:
    """One node's advertised rate limit, shared by every call of its transport.

    Thread-safe: one condition; waits release it. ``remaining`` counts the calls left in the
    current window (the server's ``X-RateLimit-Remaining``, decremented locally for calls in
    flight); ``blocked_until`` is set by a 429's ``Retry-After``. Once a window is over, one
    call goes out alone to learn the next window's numbers (others wait for its answer, up to
    a second), so a burst never outruns what the server advertised.
    """

    def __init__(self, origin: str) -> None:
        self._origin = origin
        self._cond = threading.Condition()
        self._known = False  # the server advertises a limit
        self._remaining: Optional[int] = None
        self._reset_at = 0.0
        self._blocked_until = 0.0
        self._probe_until = 0.0  # a call learning the new window is in flight until then
        self._inflight = 0  # calls sent and not answered yet (the server has not counted them)

    def wake(self) -> None:
        """Wake every waiting call (the transport is closing)."""
        with self._cond:
            self._cond.notify_all()

    def acquire(self, deadline: float, closing: threading.Event, method: str, path: str) -> None:
        """Wait (up to ``deadline``) until a call may go out; RateLimitedError if it cannot."""
        with self._cond:
            while True:
                if closing.is_set():
                    raise ClientClosedError(f"REST transport for {self._origin} is closed")
                now = time.monotonic()
                if self._blocked_until > now:
                    until = self._blocked_until
                elif self._remaining is not None and self._reset_at > now:
                    if self._remaining > 0:
                        self._remaining -= 1
                        self._inflight += 1
                        return
                    until = self._reset_at
                elif not self._known:
                    self._inflight += 1
                    return
                elif self._probe_until <= now:
                    self._remaining = None  # the window is over: ask the server again
                    self._probe_until = now + 1.0
                    self._inflight += 1
                    return
                else:
                    until = self._probe_until
                if until > deadline:
                    raise RateLimitedError(
                        429,
                        retry_after=max(0.0, until - now),
                        message=f"{self._origin} is rate limiting this client (not sent)",
                        path=path,
                        method=method,
                    )
                self._cond.wait(until - now)

    def failed(self) -> None:
        """A call sent got no answer: it no longer counts as in flight."""
        with self._cond:
            self._inflight = max(0, self._inflight - 1)
            self._probe_until = 0.0
            self._cond.notify_all()

    def update(self, headers: Any, status: int) -> Optional[float]:
        """Take in an answer's rate-limit headers; returns a 429's wait in seconds (or None)."""
        remaining = _header_number(headers, "X-RateLimit-Remaining")
        reset = _header_number(headers, "X-RateLimit-Reset")
        retry_after = _header_number(headers, "Retry-After") if status == 429 else None
        if not self._known and remaining is None and retry_after is None:
            with self._cond:
                self._inflight = max(0, self._inflight - 1)
            return None
        now = time.monotonic()
        reset_in = _reset_in(reset) if reset is not None else None
        if status == 429 and retry_after is None and reset_in is not None:
            retry_after = reset_in
        if retry_after is not None:
            retry_after = max(0.0, retry_after)
        with self._cond:
            self._probe_until = 0.0
            self._inflight = max(0, self._inflight - 1)
            if reset_in is not None and remaining is not None:
                self._known = True
                reset_at = now + max(0.0, reset_in) + _RESET_MARGIN
                if self._remaining is None or reset_at > self._reset_at + 0.5:
                    # a new window; calls still on their way will count against it too
                    self._remaining = max(0, int(remaining) - self._inflight)
                else:
                    self._remaining = min(self._remaining, int(remaining))
                self._reset_at = reset_at  # the latest word (a server may shorten it)
            if retry_after is not None:
                self._blocked_until = max(self._blocked_until, now + retry_after)
            self._cond.notify_all()
        return retry_after


def _rate_limited(
    status: int, method: str, path: str, content: bytes, retry_after: Optional[float]
) -> RateLimitedError:
    plain = _error(status, method, path, content)
    return RateLimitedError(
        status,
        retry_after=retry_after,
        error=plain.error or "Too Many Requests",
        message=plain.message or "rate limited by the node",
        path=plain.path,
        trace=plain.trace,
        timestamp=plain.timestamp,
        method=method,
        body=plain.body,
    )
