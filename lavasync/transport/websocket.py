"""The node's WebSocket, over websocket-client: I/O only.

Opens ``/v4/websocket`` with Lavalink's handshake headers and hands back raw text frames.
websocket-client errors never leave this module: they become lavasync errors or, for a socket
that died, :class:`SocketClosed`.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, Optional, Union
from urllib.parse import urlsplit, urlunsplit

import websocket

from ..errors import (
    AuthenticationError,
    ConnectionFailedError,
    LavasyncTimeoutError,
    RestError,
    TLSError,
)

__all__ = ["PONG", "SocketClosed", "SocketTimeout", "WebSocketConnection", "websocket_url"]


class SocketClosed(Exception):
    """The socket closed (close frame, reset, EOF). ``code``/``reason`` from a close frame."""

    def __init__(self, code: Optional[int] = None, reason: str = "") -> None:
        super().__init__(f"socket closed ({code}: {reason})" if code else "socket closed")
        self.code = code
        self.reason = reason


class SocketTimeout(Exception):
    """Nothing arrived within the receive timeout (the socket is still usable)."""


def websocket_url(base_uri: str) -> str:
    """``http(s)://host:port`` (or ``ws(s)://``) → ``ws(s)://host:port/v4/websocket``."""
    parts = urlsplit(base_uri)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) URI: {base_uri!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/v4/websocket"):
        path += "/v4/websocket"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


_TEXT = websocket.ABNF.OPCODE_TEXT
_BINARY = websocket.ABNF.OPCODE_BINARY
_CLOSE = websocket.ABNF.OPCODE_CLOSE
_PONG = websocket.ABNF.OPCODE_PONG


class _Pong:
    """The type of :data:`PONG`: false like the None of a ping, told apart by identity."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "PONG"


#: What :meth:`WebSocketConnection.recv` returns for a pong (``data is PONG``); it is falsy,
#: so code that skips empty frames skips it too.
PONG = _Pong()


class _ReadAheadSocket:
    """A socket whose ``recv`` reads ahead in 64 KiB chunks.

    websocket-client asks for each frame's header and payload separately, which costs two
    timed ``recv`` system calls per frame on a plain socket; this serves them from one read.
    Everything else is the wrapped socket's.
    """

    __slots__ = ("_buf", "_pos", "_sock", "_timeout")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._timeout = sock.gettimeout()

    def recv(self, bufsize: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            end = pos + bufsize
            self._pos = end
            return buf[pos:end]
        data = self._sock.recv(65536)
        if len(data) <= bufsize:
            return data
        self._buf, self._pos = data, bufsize
        return data[:bufsize]

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def settimeout(self, timeout: Optional[float]) -> None:
        self._sock.settimeout(timeout)
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WebSocketConnection:
    """One open WebSocket to a node. ``connect``, ``recv``, ``ping`` and ``close`` belong to one
    thread (the node's reader); ``abort`` may be called from any thread."""

    def __init__(self) -> None:
        # Not websocket-client's multithread mode: every send (pong, ping, close) happens on
        # the reader thread, and abort() works on the raw socket, so its locks are pure cost.
        self._ws: Any = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=False)
        #: ``Session-Resumed`` from the 101 response (None if the server did not send it).
        self.resumed_header: Optional[bool] = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None  # the raw TCP socket, once connected
        self._aborted = False

    @classmethod
    def open(cls, url: str, **options: Any) -> WebSocketConnection:
        """Create and :meth:`connect` in one step."""
        conn = cls()
        conn.connect(url, **options)
        return conn

    def connect(
        self,
        url: str,
        *,
        password: str,
        user_id: int,
        client_name: str,
        session_id: Optional[str] = None,
        timeout: float = 10.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        """Connect and complete the handshake, or raise a lavasync error. :meth:`abort` from
        another thread interrupts the handshake.

        401 → :class:`AuthenticationError`; other refused handshakes → :class:`RestError`;
        a failed TLS handshake → :class:`TLSError`; unreachable → :class:`ConnectionFailedError`;
        too slow → :class:`LavasyncTimeoutError`. The low-level error is the ``__cause__``.
        ``ssl_context`` is used for ``wss://`` (default: the system's trusted CAs).
        """
        headers = [
            f"Authorization: {password}",
            f"User-Id: {user_id}",
            f"Client-Name: {client_name}",
        ]
        if session_id:
            headers.append(f"Session-Id: {session_id}")
        ws = self._ws
        sock = self._open_socket(url, timeout, ssl_context)
        try:
            ws.connect(url, socket=sock, timeout=timeout, header=headers, suppress_origin=True)
        except websocket.WebSocketBadStatusException as exc:
            status = int(exc.status_code)
            body = exc.resp_body.decode("utf-8", "replace") if exc.resp_body else ""
            if status in (401, 403):
                raise AuthenticationError(
                    status, message="WebSocket handshake refused: wrong password", path=url
                ) from None
            raise RestError(
                status,
                message=f"WebSocket handshake refused ({status}) {body}".strip(),
                path=url,
                method="GET",
                body=body,
                headers=getattr(exc, "resp_headers", None) or None,  # a v3 server says so
            ) from None
        except (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError) as exc:
            raise LavasyncTimeoutError(f"WebSocket handshake with {url} timed out") from exc
        except (websocket.WebSocketException, OSError, ssl.SSLError, ValueError) as exc:
            raise ConnectionFailedError(f"cannot open WebSocket {url}: {exc}") from exc
        finally:
            if not ws.connected:
                sock.close()
        headers_in = ws.getheaders() or {}
        raw = headers_in.get("session-resumed")
        self.resumed_header = None if raw is None else str(raw).strip().lower() == "true"

    def _open_socket(
        self, url: str, timeout: float, ssl_context: Optional[ssl.SSLContext] = None
    ) -> socket.socket:
        """TCP (and TLS for wss) to the node; registered before the handshake so that
        :meth:`abort` can interrupt it at any point."""
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if secure else 80)
            raw = socket.create_connection((host, port), timeout=timeout)
        except (socket.timeout, TimeoutError) as exc:
            raise LavasyncTimeoutError(f"connecting to {url} timed out") from exc
        except (OSError, ValueError) as exc:
            error = ConnectionFailedError(f"cannot open WebSocket {url}: {exc}")
            # nothing listens there: the node's process is down (its sessions with it)
            error.refused = isinstance(exc, ConnectionRefusedError)
            raise error from exc
        with self._lock:
            if self._aborted:
                raw.close()
                raise ConnectionFailedError(f"connecting to {url} was aborted")
            self._sock = raw
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not secure:
            return _ReadAheadSocket(raw)  # type: ignore[return-value]
        try:
            context = ssl_context if ssl_context is not None else ssl.create_default_context()
            tls = context.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            why = exc.verify_message or exc.reason or str(exc)
            raise TLSError(
                f"TLS with {url} failed: certificate verification failed: {why} "
                "(for a private CA, pass ssl_context= to add_node)",
                certificate=True,
            ) from exc
        except (socket.timeout, TimeoutError) as exc:
            raw.close()
            raise LavasyncTimeoutError(f"TLS handshake with {url} timed out") from exc
        except ssl.SSLError as exc:
            raw.close()
            raise TLSError(f"TLS with {url} failed: {exc}") from exc
        except (OSError, ValueError) as exc:
            raw.close()
            raise ConnectionFailedError(f"TLS with {url} failed: {exc}") from exc
        return _ReadAheadSocket(tls)  # type: ignore[return-value]

    def set_timeout(self, timeout: Optional[float]) -> None:
        """Receive timeout for :meth:`recv` (None blocks)."""
        self._ws.settimeout(timeout)

    def recv(self) -> Union[bytes, str, _Pong, None]:
        """The next text (or binary) frame's payload; :data:`PONG` for a pong, None for a ping
        (both falsy: a sign of life, no data).

        Pings are answered by websocket-client itself. Raises :class:`SocketTimeout` when
        nothing came within the timeout, :class:`SocketClosed` when the socket is gone.
        """
        try:
            opcode, data = self._ws.recv_data(control_frame=True)
        except (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError):
            raise SocketTimeout() from None
        except websocket.WebSocketConnectionClosedException:
            raise SocketClosed() from None
        except (websocket.WebSocketException, OSError, ssl.SSLError, ValueError) as exc:
            raise SocketClosed(None, str(exc)) from None
        if opcode in (_TEXT, _BINARY):
            return data  # type: ignore[no-any-return]
        if opcode == _CLOSE:
            code, reason = _parse_close(data)
            raise SocketClosed(code, reason)
        if opcode == _PONG:
            return PONG
        return None

    def ping(self) -> bool:
        """Send a ping frame; False if the socket is already gone."""
        try:
            self._ws.ping()
            return True
        except (websocket.WebSocketException, OSError, ssl.SSLError):
            return False

    def abort(self) -> None:
        """Wake a ``recv`` or a handshake blocked in another thread: shut the socket down.

        Before the TCP connection exists, the connect that follows fails at once instead.
        """
        with self._lock:
            self._aborted = True
            sock = self._sock
        _shutdown(sock)

    def close_now(self, code: int = 1000, reason: str = "") -> None:
        """Close from any thread, at once: a Close frame (``code``) goes out first, then the
        socket is shut, which wakes a ``recv`` blocked in the reader thread.

        The frame is written from this thread, as websocket-client's own cross-thread close
        does; the reader only ever writes pongs and pings, both a single small frame. Before
        the handshake completed, nothing is sent and the connect fails at once instead.
        """
        with self._lock:
            self._aborted = True
            sock = self._sock
            stream = self._ws.sock if self._ws.connected else None
            first = not self._closed.is_set()
            self._closed.set()  # close() after this sends nothing more
        if stream is not None and first:
            payload = code.to_bytes(2, "big") + reason.encode("utf-8")
            frame = websocket.ABNF.create_frame(payload, _CLOSE).format()
            try:
                stream.sendall(frame)
            except (OSError, ssl.SSLError, ValueError):
                pass
        _shutdown(sock)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (best effort, short timeout) and drop the socket. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._ws.settimeout(1.0)
            self._ws.send_close(code, reason.encode("utf-8"))
        except (websocket.WebSocketException, OSError, ssl.SSLError, ValueError):
            pass
        with self._lock:
            sock = self._sock
        if sock is not None:
            sock.close()


def _shutdown(sock: Optional[socket.socket]) -> None:
    """Shut ``sock`` down both ways (wakes a ``recv`` blocked in another thread); None: nothing."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _parse_close(data: bytes) -> tuple[Optional[int], str]:
    if len(data) >= 2:
        return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")
    return None, ""
