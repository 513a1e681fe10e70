"""Errors carry their cause (issue 9): a node that is not ready says why.

``wait_ready`` raises NodeUnavailableError (still a LavasyncTimeoutError / TimeoutError) whose
message names each node's state and last connection error, and whose ``errors`` attribute holds
those errors; ``Node.last_error`` is the last connection error, cleared once the node is ready.
"""

from __future__ import annotations

import socket

import pytest
from conftest import FAST, wait_until

from lavasync import (
    AuthenticationError,
    Client,
    ConnectionFailedError,
    LavasyncTimeoutError,
    NodeState,
    NodeUnavailableError,
    RestError,
)
from lavasync.testing import FakeNode


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_node_says_connection_refused(client: Client, closed_port: int) -> None:
    node = client.add_node("dead", f"http://127.0.0.1:{closed_port}", password="pw", backoff=FAST)
    wait_until(lambda: node.last_error is not None, 5)
    with pytest.raises(NodeUnavailableError) as info:
        client.wait_ready(0.2)
    error = info.value
    assert isinstance(error, LavasyncTimeoutError) and isinstance(error, TimeoutError)
    assert "refused" in str(error).lower()
    assert "dead: connecting" in str(error)
    cause = error.errors["dead"]
    assert isinstance(cause, ConnectionFailedError)
    assert isinstance(cause.__cause__, ConnectionRefusedError)  # the OS's own error
    assert error.states == {"dead": "connecting"}
    # the node says the same on its own
    assert isinstance(node.last_error, ConnectionFailedError)
    with pytest.raises(NodeUnavailableError, match=r"(?i)refused") as own:
        node.wait_ready(0.1)
    assert isinstance(own.value.errors["dead"], ConnectionFailedError)


def test_each_node_is_named_with_its_own_cause(client: Client, closed_port: int) -> None:
    with FakeNode() as fake:
        fake.refuse_connections(True)  # the node is up but answers the handshake with 503
        busy = client.add_node("busy", fake.uri, password=fake.password, backoff=FAST)
        client.add_node("dead", f"http://127.0.0.1:{closed_port}", password="pw", backoff=FAST)
        wait_until(lambda: all(n.last_error is not None for n in client.nodes), 5)
        with pytest.raises(NodeUnavailableError) as info:
            client.wait_ready(0.2)
        text = str(info.value)
        assert "busy: connecting (last error: 503" in text
        assert "dead: connecting (last error:" in text and "refused" in text.lower()
        assert set(info.value.errors) == {"busy", "dead"}
        busy_error = info.value.errors["busy"]
        assert isinstance(busy_error, RestError) and busy_error.status == 503
        # ... and once the node takes us, the error is gone
        fake.refuse_connections(False)
        assert client.wait_ready(5) is busy
        assert busy.last_error is None


def test_a_player_call_on_a_lost_node_carries_the_cause(client: Client) -> None:
    with FakeNode() as fake:
        client.add_node("fake", fake.uri, password=fake.password, backoff=FAST)
        client.wait_ready(5)
        player = client.player(31)
        node = player.node
        fake.refuse_connections(True)
        fake.drop_connections()
        wait_until(lambda: node.last_error is not None, 5)
        with pytest.raises(NodeUnavailableError) as info:
            player.set_volume(10, timeout=0.3)
        cause = info.value.errors.get("fake")
        assert isinstance(cause, RestError) and cause.status == 503


def test_a_wrong_password_still_raises_authentication_error(client: Client) -> None:
    with FakeNode() as fake:
        node = client.add_node("fake", fake.uri, password="wrong", backoff=FAST)
        with pytest.raises(AuthenticationError):
            client.wait_ready(5)
        with pytest.raises(AuthenticationError):
            node.wait_ready(1)
        assert node.state is NodeState.FAILED
        assert isinstance(node.last_error, AuthenticationError)
        assert node.error is node.last_error


def test_a_failed_node_is_named_next_to_one_still_trying(client: Client, closed_port: int) -> None:
    with FakeNode() as fake:
        client.add_node("auth", fake.uri, password="wrong", backoff=FAST)
        client.add_node("dead", f"http://127.0.0.1:{closed_port}", password="pw", backoff=FAST)
        wait_until(lambda: client.node("auth").state is NodeState.FAILED, 5)
        wait_until(lambda: client.node("dead").last_error is not None, 5)
        with pytest.raises(NodeUnavailableError) as info:
            client.wait_ready(0.2)
        assert "auth: failed (last error: 401" in str(info.value)
        assert isinstance(info.value.errors["auth"], AuthenticationError)
        assert info.value.states == {"auth": "failed", "dead": "connecting"}
