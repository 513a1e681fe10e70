"""HTTP server of the FakeNode: listening, accepting, TLS, and answering REST requests.

Plain sockets, standard library only. A connection's thread reads requests one after the
other; a ``GET /v4/websocket`` hands the socket to the WebSocket server (_ws.py), anything
else is dispatched to a route handler (_routes.py) or a route added with ``add_route``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, unquote

from . import _wire
from ._core import (
    _SEND_TIMEOUT,
    RecordedHandshake,
    RecordedRequest,
    _HttpError,
    _json_response,
    _NodeCore,
    _now_ms,
    _Response,
    log,
)
from ._routes import _ROUTES


class _HttpServer(_NodeCore):
    """The HTTP server: one accept thread (``fakenode-accept-<port>``), one thread per
    connection (``fakenode-http-<port>-<n>``), keep-alive REST answering with auth, Spring-like
    error bodies and a record of every request."""

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        wake_r, wake_w = socket.socketpair()
        self._listener, self._wake_r, self._wake_w = sock, wake_r, wake_w
        thread = threading.Thread(
            target=self._accept_loop,
            args=(sock, wake_r),
            name=f"fakenode-accept-{self.port}",
            daemon=True,
        )
        self._accept_thread = thread
        thread.start()

    def _stop_listening(self, timeout: float) -> None:
        thread, wake_w = self._accept_thread, self._wake_w
        self._accept_thread = None
        if wake_w is not None:
            try:
                wake_w.send(b"x")
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        for sock in _wire.accepted(listener, wake):
            with self._lock:
                if self._closed or self._killed:
                    sock.close()
                    return
                if self._refusing == "close":
                    sock.close()
                    continue
                self._conn_seq += 1
                sock.settimeout(_SEND_TIMEOUT)
                thread = threading.Thread(
                    target=self._serve,
                    args=(sock,),
                    name=f"fakenode-http-{self.port}-{self._conn_seq}",
                    daemon=True,
                )
                self._conns[sock] = thread
            thread.start()

    def _shutdown_all_sockets(self) -> None:
        with self._lock:
            socks = list(self._conns)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _join_conns(self, deadline: float) -> None:
        while True:
            with self._lock:
                threads = [t for t in self._conns.values() if t is not threading.current_thread()]
            if not threads:
                return
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return

    def _api(self) -> list[tuple[str, str]]:
        return self._dialect.api_headers

    def _tls_accept(self, sock: socket.socket) -> Optional[socket.socket]:
        """The TLS server handshake on an accepted socket (on its own thread, so a slow or
        refusing client blocks nobody); None if it failed, e.g. the client did not trust us."""
        assert self.ssl_context is not None
        try:
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.debug("fake node %s: TLS handshake failed: %s", self.name, exc)
            with self._lock:
                self._conns.pop(sock, None)
            sock.close()
            return None
        with self._lock:  # the TLS socket replaces the (now detached) plain one
            thread = self._conns.pop(sock, None)
            if thread is None or self._closed or self._killed:
                tls.close()
                return None
            self._conns[tls] = thread
        return tls

    def _serve(self, sock: socket.socket) -> None:
        if self.ssl_context is not None:
            tls = self._tls_accept(sock)
            if tls is None:
                return
            sock = tls
        reader = _wire.make_reader(sock)
        try:
            while True:
                try:
                    req = _wire.read_request(reader)
                except _wire.ProtocolError as exc:
                    self._send_bytes(sock, self._error_bytes(400, str(exc), "/", False, False))
                    return
                except (OSError, ConnectionError):
                    return
                if req is None:
                    return
                with self._cond:
                    if self._refusing == "close":
                        return
                    refused = self._refusing is not None
                    if not refused and not self._wait_answering():
                        return
                if refused:
                    self._answer_refused(sock, req)
                    return
                if not self._peer_alive(sock):
                    return
                if not self._dialect.v4_routes and req.path.startswith("/v4/"):
                    self._record(req, 404)
                    self._send_bytes(
                        sock, self._error_bytes(404, "Not Found", req.path, False, False)
                    )
                    return
                if req.path == "/v4/websocket" and req.method == "GET":
                    self._handshake(sock, reader, req)
                    return
                if not self._answer_rest(sock, req):
                    return
        finally:
            with self._lock:
                self._conns.pop(sock, None)
            try:
                sock.close()
            except OSError:
                pass

    def _wait_answering(self) -> bool:
        """Block while the node is stalled (caller holds the lock); False if it died meanwhile."""
        epoch = self._epoch
        self._cond.wait_for(lambda: self._answering or self._epoch != epoch or self._closed)
        return self._epoch == epoch and not self._closed

    @staticmethod
    def _peer_alive(sock: socket.socket) -> bool:
        """False if the client hung up while the request waited (a stalled node)."""
        try:
            ready, _, _ = select.select([sock], [], [], 0)
            if ready:  # peek at the TCP stream (an SSLSocket's own recv takes no flags)
                return socket.socket.recv(sock, 1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False
        return True

    @staticmethod
    def _send_bytes(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False

    def _answer_refused(self, sock: socket.socket, req: _wire.HttpRequest) -> None:
        if req.path == "/v4/websocket":
            with self._cond:
                hs = RecordedHandshake(req.headers, False, 503, None, False)
                self._handshakes.append(hs)
                self._cond.notify_all()
        else:
            self._record(req, 503)
        body = self._error_json(503, "Service Unavailable", req.path, False)
        self._send_bytes(
            sock,
            _wire.build_response(
                503, body, content_type="application/json", keep_alive=False, api=self._api()
            ),
        )

    def _error_json(self, status: int, message: str, path: str, trace: bool) -> bytes:
        payload: dict[str, Any] = {
            "timestamp": _now_ms(),
            "status": status,
            "error": _wire.reason_phrase(status),
        }
        if trace:
            payload["trace"] = (
                f"lavalink.server.FakeNodeException: {message}\n"
                "\tat lavasync.testing.FakeNode._answer_rest(node.py)\n"
            )
        payload["message"] = message
        payload["path"] = path
        payload, _ = self._dialect.error_body(status, message, payload)
        return _wire.json_bytes(payload)

    def _error_bytes(
        self, status: int, message: str, path: str, trace: bool, keep_alive: bool
    ) -> bytes:
        body = self._error_json(status, message, path, trace)
        return _wire.build_response(
            status, body, content_type="application/json", keep_alive=keep_alive, api=self._api()
        )

    def _record(self, req: _wire.HttpRequest, status: int) -> None:
        query = parse_qs(req.query_string, keep_blank_values=True)
        parsed: Any = None
        if req.body:
            try:
                parsed = json.loads(req.body.decode("utf-8"))
            except ValueError:
                parsed = None
        rec = RecordedRequest(
            req.method, req.path, query, req.headers, req.body, parsed, status, time.time()
        )
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()

    def _answer_rest(self, sock: socket.socket, req: _wire.HttpRequest) -> bool:
        path = unquote(req.path)
        query = parse_qs(req.query_string, keep_blank_values=True)
        trace = query.get("trace", [""])[0] == "true"
        failing = self._take_fault(("fail",), req.method, path)
        try:
            if failing is not None:
                raise _HttpError(failing.status, failing.message)
            response = self._rate_check() or self._dispatch(req, path, query)
        except _HttpError as exc:
            response = _Response(
                exc.status,
                self._error_json(exc.status, exc.message, path, trace),
                "application/json",
            )
        except Exception as exc:  # a bug in the fake: still answer like Spring would
            log.exception("fake node: handler failed")
            message = f"{type(exc).__name__}: {exc}"
            response = _Response(
                500, self._error_json(500, message, path, trace), "application/json"
            )
        self._record(req, response.status)
        keep = req.keep_alive
        data = _wire.build_response(
            response.status,
            b"" if req.method == "HEAD" else response.body,
            response.headers + self._rate_headers(),
            content_type=response.content_type,
            keep_alive=keep,
            api=self._api(),
        )
        late = (
            None if failing is not None else self._take_fault(("stall", "reset"), req.method, path)
        )
        if late is not None and late.kind == "stall" and not self._hold_answer(sock):
            return False
        if late is not None and late.kind == "reset":
            head = data.index(b"\r\n\r\n") + 4
            partial = min(late.keep, max(0, len(data) - head - 1))  # never the whole body
            self._send_and_reset(sock, data[: head + partial])
            return False
        return self._send_bytes(sock, data) and keep

    def _dispatch(
        self, req: _wire.HttpRequest, path: str, query: dict[str, list[str]]
    ) -> _Response:
        custom = self._custom_routes.get((req.method, path))
        params: dict[str, str] = {}
        handler_name: Optional[str] = None
        if custom is None:
            allowed: Optional[dict[str, str]] = None
            for pattern, methods in _ROUTES:
                m = pattern.fullmatch(path)
                if m:
                    allowed, params = methods, m.groupdict()
                    break
            if allowed is None:
                if any(p == path for (_, p) in self._custom_routes):
                    raise _HttpError(405, f"Request method '{req.method}' is not supported")
                raise _HttpError(404, f"No static resource {path.lstrip('/')}.")
            handler_name = allowed.get(req.method)
            if handler_name is None:
                allow = ", ".join(sorted(allowed))
                error = _HttpError(405, f"Request method '{req.method}' is not supported")
                body = self._error_json(405, error.message, path, False)
                return _Response(405, body, "application/json", [("Allow", allow)])
        auth = req.headers.get("Authorization")
        if auth is None or (auth != self.password and self.dialect == "nodelink"):
            _, text = self._dialect.error_body(401, "", {})
            return _Response(401, text or b"", "text/plain" if text else None)
        if auth != self.password:
            return _Response(403)
        if custom is not None:
            return self._run_custom(custom, req, query)
        assert handler_name is not None
        handler: Callable[..., _Response] = getattr(self, f"_h_{handler_name}")
        return handler(req, params, query)

    def _run_custom(
        self,
        handler: Callable[[RecordedRequest], Any],
        req: _wire.HttpRequest,
        query: dict[str, list[str]],
    ) -> _Response:
        parsed = None
        if req.body:
            try:
                parsed = json.loads(req.body.decode("utf-8"))
            except ValueError:
                parsed = None
        rec = RecordedRequest(req.method, req.path, query, req.headers, req.body, parsed, 0)
        result = handler(rec)
        if result is None:
            return _Response(204)
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
            status, payload = result
            if payload is None:
                return _Response(status)
            return _json_response(status, payload)
        return _json_response(200, result)

    @staticmethod
    def _json_body(req: _wire.HttpRequest) -> Any:
        ctype = req.headers.get("Content-Type")
        if not req.body and ctype is None:
            raise _HttpError(400, "Required request body is missing")
        media = (ctype or "application/octet-stream").split(";")[0].strip().lower()
        if media != "application/json" and not (
            media.startswith("application/") and media.endswith("+json")
        ):
            raise _HttpError(
                415, f"Content-Type '{ctype or 'application/octet-stream'}' is not supported"
            )
        if not req.body:
            raise _HttpError(400, "Required request body is missing")
        try:
            return json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _HttpError(400, f"JSON parse error: {exc}") from None
