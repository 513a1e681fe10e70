"""Wire helpers of the fake node: a small HTTP/1.1 reader and writer and RFC 6455 framing.

Standard library only. Everything here works on one socket owned by one thread (sends to a
WebSocket are serialised by the caller), so nothing is locked here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import select
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Optional

__all__ = [
    "Headers",
    "HttpRequest",
    "ProtocolError",
    "WsFrame",
    "accepted",
    "build_response",
    "encode_frame",
    "read_frame",
    "read_request",
    "reason_phrase",
    "ws_accept",
]

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 or RFC 6455."""


class Headers(Mapping[str, str]):
    """Header map with case-insensitive lookups; keeps the names as sent. Immutable."""

    def __init__(self, items: Optional[list[tuple[str, str]]] = None) -> None:
        self._items: list[tuple[str, str]] = list(items or [])
        self._index: dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            # repeated headers are joined the way HTTP allows (comma separated)
            self._index[key] = f"{self._index[key]}, {value}" if key in self._index else value

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"

    def raw(self) -> list[tuple[str, str]]:
        """Every header line as received, in order."""
        return list(self._items)


class HttpRequest:
    """One parsed request: method, raw target, path (no query), query string, headers, body."""

    __slots__ = ("body", "headers", "method", "path", "query_string", "target", "version")

    def __init__(
        self, method: str, target: str, version: str, headers: Headers, body: bytes
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        path, _, query = target.partition("?")
        self.path = path
        self.query_string = query

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


class _Reader:
    """Buffered reads from a socket; raises ConnectionError at EOF."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue  # the timeout only bounds sends; reads wait for data or shutdown
            if not chunk:
                raise ConnectionError("peer closed the connection")
            self.buf += chunk
            return

    def read_line(self, limit: int = MAX_HEADER_BYTES) -> bytes:
        while True:
            idx = self.buf.find(b"\n")
            if idx >= 0:
                line = bytes(self.buf[: idx + 1])
                del self.buf[: idx + 1]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("header line too long")
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def accepted(listener: socket.socket, wake: socket.socket) -> Iterator[socket.socket]:
    """The connections ``listener`` accepts, each with TCP_NODELAY, until ``wake`` becomes
    readable or the listener is closed (a fake server's accept loop)."""
    while True:
        try:
            ready, _, _ = select.select([listener, wake], [], [])
        except (OSError, ValueError):
            return
        if wake in ready:
            return
        try:
            sock, _ = listener.accept()
        except OSError:
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield sock


def make_reader(sock: socket.socket) -> _Reader:
    return _Reader(sock)


def read_request(reader: _Reader) -> Optional[HttpRequest]:
    """Read one request; None when the peer closed cleanly between requests."""
    try:
        line = reader.read_line()
        while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
            line = reader.read_line()
    except ConnectionError:
        return None
    try:
        method, target, version = line.decode("latin-1").strip().split(" ")
    except ValueError:
        raise ProtocolError(f"bad request line {line[:80]!r}") from None
    if not version.startswith("HTTP/1."):
        raise ProtocolError(f"unsupported version {version!r}")
    items: list[tuple[str, str]] = []
    total = 0
    while True:
        raw = reader.read_line()
        total += len(raw)
        if total > MAX_HEADER_BYTES:
            raise ProtocolError("headers too large")
        if raw in (b"\r\n", b"\n"):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"bad header line {raw[:80]!r}")
        items.append((name, value.strip()))
    headers = Headers(items)
    body = b""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        parts = []
        while True:
            size_line = reader.read_line().split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if size == 0:
                while reader.read_line() not in (b"\r\n", b"\n"):
                    pass
                break
            parts.append(reader.read_exact(size))
            reader.read_exact(2)
        body = b"".join(parts)
    elif "Content-Length" in headers:
        try:
            length = int(headers["Content-Length"])
        except ValueError:
            raise ProtocolError("bad Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ProtocolError("bad Content-Length")
        body = reader.read_exact(length)
    return HttpRequest(method, target, version, headers, body)


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def build_response(
    status: int,
    body: bytes = b"",
    headers: Optional[list[tuple[str, str]]] = None,
    *,
    content_type: Optional[str] = None,
    keep_alive: bool = True,
    api: Optional[list[tuple[str, str]]] = None,
) -> bytes:
    """Serialise a response; ``api`` headers (default ``Lavalink-Api-Version: 4``) lead."""
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    all_headers = list(api) if api is not None else [("Lavalink-Api-Version", "4")]
    all_headers += headers or []
    if content_type is not None:
        all_headers.append(("Content-Type", content_type))
    if status != 204 and status >= 200:
        all_headers.append(("Content-Length", str(len(body))))
    all_headers.append(("Date", formatdate(time.time(), usegmt=True)))
    if not keep_alive and status != 101:
        all_headers.append(("Connection", "close"))
    lines += [f"{k}: {v}" for k, v in all_headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if status in (101, 204) else head + body


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ws_accept(key: str) -> str:
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def valid_ws_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


class WsFrame:
    __slots__ = ("fin", "opcode", "payload")

    def __init__(self, fin: bool, opcode: int, payload: bytes) -> None:
        self.fin = fin
        self.opcode = opcode
        self.payload = payload


def encode_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A server frame (never masked)."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 0x10000:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def close_payload(code: Optional[int], reason: str = "") -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")[:123]


def read_frame(reader: _Reader) -> WsFrame:
    """Read one frame from a client (masked frames are unmasked; unmasked ones accepted)."""
    b0, b1 = reader.read_exact(2)
    if b0 & 0x70:
        raise ProtocolError("reserved bits set")
    fin = bool(b0 & 0x80)
    opcode = b0 & 0x0F
    masked = bool(b1 & 0x80)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", reader.read_exact(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", reader.read_exact(8))
    if n > MAX_BODY_BYTES:
        raise ProtocolError("frame too large")
    if opcode >= 0x8 and (n > 125 or not fin):
        raise ProtocolError("bad control frame")
    mask = reader.read_exact(4) if masked else b""
    payload = reader.read_exact(n)
    if masked and n:
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
    return WsFrame(fin, opcode, payload)
