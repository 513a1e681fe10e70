"""RestTransport over real loopback sockets: what goes on the wire, and how failures map.

Most tests talk to ``lavasync.testing.FakeNode``; a few need a server that misbehaves in a
precise way (no answer, an empty 401, a body that is not JSON), served by ``CannedServer``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from conftest import VECTORS

from lavasync.errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    LavasyncError,
    LavasyncTimeoutError,
    RestError,
)
from lavasync.testing import FakeNode
from lavasync.transport.rest import RestTransport, encode_query


def _blob_with_plus_and_slash() -> str:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    for vector in vectors:
        if "+" in vector["encoded"] and "/" in vector["encoded"]:
            return str(vector["encoded"])
    raise AssertionError("no vector with both '+' and '/'")


class CannedServer:
    """A one-thread HTTP/1.1 server on 127.0.0.1 answering every request with fixed bytes,
    never answering (``reply=None``), or hanging up at once (``reply=b""``).
    Records each request head and body it read."""

    def __init__(self, reply: Optional[bytes]) -> None:
        self.reply = reply
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.got_request = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, name="fakenode-canned", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.05)
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    break
                buffer = rest[length:]
                self.heads.append(head)
                self.bodies.append(rest[:length])
                self.got_request.set()
                if self.reply is None:
                    self._stop.wait()  # hold the connection open, say nothing
                    return
                if not self.reply:
                    return  # hang up without an answer
                conn.sendall(self.reply)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)


def http_response(status: str, body: bytes, content_type: Optional[str]) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + body


def _failure(
    expected: type[LavasyncError],
    uri: str,
    *,
    password: str = "pw",
    path: str = "/v4/info",
    call_timeout: Optional[float] = None,
    **options: Any,
) -> Any:
    """Make one GET that must fail with ``expected``; return the exception."""
    with RestTransport(uri, password, client_name="t", **options) as rest:
        try:
            rest.request("GET", path, timeout=call_timeout)
        except expected as exc:
            return exc
    raise AssertionError(f"no {expected.__name__} raised")


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


@pytest.fixture
def transport(fake: FakeNode) -> Iterator[RestTransport]:
    with RestTransport(fake.uri, fake.password, client_name="lavasync-tests/1.0") as rest:
        yield rest


@contextlib.contextmanager
def canned(reply: Optional[bytes]) -> Iterator[CannedServer]:
    """A CannedServer for the duration of a with block."""
    server = CannedServer(reply)
    try:
        yield server
    finally:
        server.close()


# -- what is sent ---------------------------------------------------------------------------------


def test_get_sends_raw_password_and_client_headers(
    fake: FakeNode, transport: RestTransport
) -> None:
    assert transport.request("GET", "/v4/info")["version"]["major"] == 4
    [sent] = fake.requests
    assert sent.method == "GET"
    assert sent.path == "/v4/info"
    assert sent.query == {}
    assert sent.headers["Authorization"] == fake.password  # no Bearer/Basic prefix
    assert sent.headers["Client-Name"] == "lavasync-tests/1.0"
    assert sent.headers["User-Agent"].startswith("lavasync/")
    assert sent.body == b""


def test_version_is_returned_as_text(fake: FakeNode, transport: RestTransport) -> None:
    assert transport.request("GET", "/version") == "4.2.2"
    assert fake.requests[0].path == "/version"


def test_json_body_is_compact_and_typed(fake: FakeNode, transport: RestTransport) -> None:
    blob = fake.add_track("Body Test").encoded
    tracks = transport.request("POST", "/v4/decodetracks", json=[blob, blob])
    assert [t["info"]["title"] for t in tracks] == ["Body Test", "Body Test"]
    [sent] = fake.requests
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.body == json.dumps([blob, blob], separators=(",", ":")).encode()
    assert sent.json == [blob, blob]


@pytest.mark.parametrize("size", [1, 1000, 300_000])  # below and above the one-write limit
def test_bodies_of_any_size_arrive_intact(size: int) -> None:
    payload = {"blob": "x" * size}
    expected = json.dumps(payload, separators=(",", ":")).encode()
    with canned(http_response("200 OK", b'{"ok":true}', "application/json")) as server:
        with RestTransport(server.uri, "pw", client_name="t") as rest:
            assert rest.request("POST", "/v4/echo", json=payload) == {"ok": True}
            assert rest.request("GET", "/v4/after") == {"ok": True}  # same connection
        assert server.bodies == [expected, b""]
        assert server.heads[0].startswith(b"POST /v4/echo HTTP/1.1\r\n")
        assert f"Content-Length: {len(expected)}".encode() in server.heads[0]
        assert server.heads[1].startswith(b"GET /v4/after HTTP/1.1\r\n")


def test_query_values_are_fully_percent_encoded(fake: FakeNode, transport: RestTransport) -> None:
    blob = _blob_with_plus_and_slash()
    track = transport.request("GET", "/v4/decodetrack", params={"encodedTrack": blob})
    assert track["encoded"] == blob  # the server saw the '+' as '+', not as a space
    [sent] = fake.requests
    assert sent.query == {"encodedTrack": [blob]}


def test_encode_query_escapes_reserved_characters() -> None:
    assert encode_query({"q": "a+b/c=d &#?é"}) == "q=a%2Bb%2Fc%3Dd%20%26%23%3F%C3%A9"
    assert encode_query({"noReplace": True, "n": 3, "off": False}) == "noReplace=true&n=3&off=false"
    with pytest.raises(ValueError, match="must be str, int or bool"):
        encode_query({"x": 1.5})  # type: ignore[dict-item]


def test_identifier_with_reserved_characters_arrives_intact(
    fake: FakeNode, transport: RestTransport
) -> None:
    identifier = "ytsearch:AC/DC + Queen = rock & roll #1?"
    transport.request("GET", "/v4/loadtracks", params={"identifier": identifier})
    assert fake.requests[0].query == {"identifier": [identifier]}


def test_trace_flag_adds_query_and_comes_back_in_the_error(
    fake: FakeNode, transport: RestTransport
) -> None:
    with pytest.raises(RestError) as caught:
        transport.request("GET", "/v4/sessions/nope/players", trace=True)
    error = caught.value
    assert fake.requests[0].query == {"trace": ["true"]}
    assert error.status == 404
    assert error.trace  # the server includes a stack trace only when asked


def test_no_trailing_slash_is_ever_added(fake: FakeNode, transport: RestTransport) -> None:
    transport.request("GET", "/v4/stats")
    transport.request("GET", "/v4/loadtracks", params={"identifier": "x"})
    assert [r.path for r in fake.requests] == ["/v4/stats", "/v4/loadtracks"]


def test_base_uri_trailing_slash_is_dropped(fake: FakeNode) -> None:
    with RestTransport(fake.uri + "/", fake.password, client_name="t") as rest:
        rest.request("GET", "/v4/stats")
        assert rest.base_uri == fake.uri
    assert fake.requests[0].path == "/v4/stats"


@pytest.mark.parametrize(
    "path", ["/v4/stats/", "v4/stats", "/v4/loadtracks?identifier=x", "/v4/a b", ""]
)
def test_bad_paths_are_refused_before_sending(
    fake: FakeNode, transport: RestTransport, path: str
) -> None:
    with pytest.raises(ValueError, match="path"):
        transport.request("GET", path)
    assert fake.requests == []


def test_bad_call_arguments_are_refused_before_sending(
    fake: FakeNode, transport: RestTransport
) -> None:
    with pytest.raises(ValueError, match="method"):
        transport.request("BREW", "/v4/stats")
    with pytest.raises(ValueError, match="timeout"):
        transport.request("GET", "/v4/stats", timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        transport.request("GET", "/v4/stats", timeout=(1.0, -1.0))
    with pytest.raises(ValueError, match="serialisable"):
        transport.request("POST", "/v4/decodetracks", json={"x": object()})
    with pytest.raises(ValueError, match="serialisable"):
        transport.request("POST", "/v4/decodetracks", json=[float("nan")])
    assert fake.requests == []


@pytest.mark.parametrize(
    ("uri", "kwargs"),
    [
        ("ftp://127.0.0.1:1", {}),
        ("127.0.0.1:2333", {}),
        ("http://", {}),
        ("http://127.0.0.1:99999", {}),
        ("http://127.0.0.1:2333?x=1", {}),
        ("http://127.0.0.1:2333", {"client_name": ""}),
        ("http://127.0.0.1:2333", {"client_name": "bot\r\nX-Injected: 1"}),
        ("http://127.0.0.1:2333", {"password": "secret\n"}),
        ("http://127.0.0.1:2333", {"password": "p\u00e4ss\u2603"}),
        ("http://127.0.0.1:2333", {"password": None}),
        ("http://127.0.0.1:2333", {"timeout": -1}),
        ("http://127.0.0.1:2333", {"pool_maxsize": 0}),
    ],
)
def test_bad_constructor_arguments(uri: str, kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"client_name": "t", "password": "pw", **kwargs}
    password = options.pop("password")
    with pytest.raises(ValueError):
        RestTransport(uri, password, **options)


# -- what comes back ------------------------------------------------------------------------------


def test_204_returns_none(fake: FakeNode, transport: RestTransport) -> None:
    assert transport.request("GET", "/v4/routeplanner/status") is None
    assert fake.requests[0].status == 204


def test_chunked_and_gzip_bodies_are_decoded() -> None:
    body = json.dumps({"tracks": ["x" * 50] * 200}).encode()
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 999]), body[i : i + 999])
        for i in range(0, len(body), 999)
    )
    replies = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(gzip.compress(body))
        + gzip.compress(body),
    ]
    for reply in replies:
        with canned(reply) as server, RestTransport(server.uri, "pw", client_name="t") as rest:
            assert rest.request("GET", "/v4/a") == json.loads(body)
            assert rest.request("GET", "/v4/b") == json.loads(body)  # connection reused
            assert len(server.heads) == 2


def test_wrong_password_is_authentication_error(fake: FakeNode) -> None:
    error = _failure(AuthenticationError, fake.uri, password="wrong")
    assert error.status == 403
    assert error.path == "/v4/info"
    assert error.method == "GET"
    assert isinstance(error, RestError)
    assert fake.requests[0].headers["Authorization"] == "wrong"


def test_empty_401_is_authentication_error() -> None:
    with canned(http_response("401 Unauthorized", b"", None)) as server:
        error = _failure(AuthenticationError, server.uri)
        assert error.status == 401
        assert error.body is None
        assert "password" in str(error)


def test_session_not_found_is_rest_error_with_the_server_fields(
    fake: FakeNode, transport: RestTransport
) -> None:
    with pytest.raises(RestError) as caught:
        transport.request("GET", "/v4/sessions/unknown/players/1")
    error = caught.value
    assert not isinstance(error, AuthenticationError)
    assert error.status == 404
    assert error.message == "Session not found"
    assert error.error == "Not Found"
    assert error.path == "/v4/sessions/unknown/players/1"
    assert isinstance(error.timestamp, int)
    assert error.trace is None
    assert error.method == "GET"


def test_bad_request_is_rest_error_400(fake: FakeNode, transport: RestTransport) -> None:
    with pytest.raises(RestError) as caught:
        transport.request("POST", "/v4/decodetracks", json=[])
    error = caught.value
    assert error.status == 400
    assert error.message == "No tracks to decode provided"


def test_server_error_is_rest_error_500(fake: FakeNode, transport: RestTransport) -> None:
    with pytest.raises(RestError) as caught:
        transport.request("GET", "/v4/decodetrack", params={"encodedTrack": "bm90IGEgdHJhY2s="})
    error = caught.value
    assert error.status == 500


def test_non_json_error_body_is_tolerated() -> None:
    reply = http_response("502 Bad Gateway", b"<html>upstream down</html>", "text/html")
    with canned(reply) as server:
        error = _failure(RestError, server.uri, path="/v4/stats")
        assert error.status == 502
        assert error.body == "<html>upstream down</html>"
        assert error.message == "<html>upstream down</html>"
        assert error.path == "/v4/stats"


def test_invalid_json_success_body_is_rest_error() -> None:
    with canned(http_response("200 OK", b"{not json", "application/json")) as server:
        error = _failure(RestError, server.uri, path="/v4/stats")
        assert error.status == 200


def test_connection_refused_is_connection_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on the port any more
    error = _failure(ConnectionFailedError, f"http://127.0.0.1:{port}")
    assert "cannot reach" in str(error)
    assert not isinstance(error, LavasyncTimeoutError)


def test_read_timeout_is_lavasync_timeout_and_builtin_timeout() -> None:
    with canned(None) as server:
        error = _failure(LavasyncTimeoutError, server.uri, timeout=(2.0, 10.0), call_timeout=0.2)
        assert isinstance(error, TimeoutError)
        assert server.got_request.is_set()


def test_fake_that_stops_answering_times_out(fake: FakeNode) -> None:
    with RestTransport(fake.uri, fake.password, client_name="t", timeout=0.3) as rest:
        fake.stop_answering()
        try:
            with pytest.raises(TimeoutError):
                rest.request("GET", "/v4/stats")
        finally:
            fake.resume_answering()


def test_hang_up_without_answer_is_connection_failed() -> None:
    with canned(b"") as server:
        error = _failure(ConnectionFailedError, server.uri, timeout=5.0)
        assert server.got_request.is_set()
    assert not isinstance(error, LavasyncTimeoutError)


def test_closed_transport_refuses_calls(fake: FakeNode) -> None:
    rest = RestTransport(fake.uri, fake.password, client_name="t")
    rest.request("GET", "/v4/stats")
    rest.close()
    rest.close()  # idempotent
    assert rest.closed
    with pytest.raises(ClientClosedError):
        rest.request("GET", "/v4/stats")
    assert len(fake.requests) == 1


def test_errors_share_the_lavasync_root(fake: FakeNode, transport: RestTransport) -> None:
    with pytest.raises(LavasyncError):
        transport.request("GET", "/v4/nothing-here")


# -- threads --------------------------------------------------------------------------------------


def test_sixteen_threads_share_one_transport(fake: FakeNode, transport: RestTransport) -> None:
    threads_count, calls = 16, 10
    barrier = threading.Barrier(threads_count)
    results: dict[int, list[str]] = {}
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            seen = []
            for call in range(calls):
                identifier = f"thread {index} call {call} +/="
                data = transport.request("GET", "/v4/loadtracks", params={"identifier": identifier})
                seen.append(data["loadType"])
            results[index] = seen
        except BaseException as exc:  # reported below
            failures.append(exc)

    workers = [
        threading.Thread(target=work, args=(i,), name=f"lavasync-test-{i}")
        for i in range(threads_count)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not failures
    assert sorted(results) == list(range(threads_count))
    assert all(len(seen) == calls for seen in results.values())
    sent = sorted(r.query["identifier"][0] for r in fake.requests)
    expected = sorted(
        f"thread {i} call {c} +/=" for i in range(threads_count) for c in range(calls)
    )
    assert sent == expected
