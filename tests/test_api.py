"""The public surface: the names DESIGN.md promises, a sorted __all__, the exception tree."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import lavasync
from lavasync import errors


def test_all_is_sorted_and_every_name_exists() -> None:
    assert lavasync.__all__ == sorted(lavasync.__all__)
    assert len(set(lavasync.__all__)) == len(lavasync.__all__)
    for name in lavasync.__all__:
        assert hasattr(lavasync, name), name


@pytest.mark.parametrize(
    "name",
    [
        "Client",
        "Player",
        "Node",
        "Filters",
        "Timescale",
        "Track",
        "LoadResult",
        "decode_track",
        "ReadyEvent",
        "StatsEvent",
        "PlayerUpdateEvent",
        "TrackStartEvent",
        "TrackEndEvent",
        "TrackExceptionEvent",
        "TrackStuckEvent",
        "WebSocketClosedEvent",
        "PlayerMovedEvent",
        "NodeConnectedEvent",
        "NodeDisconnectedEvent",
        "NodeResumedEvent",
        "UnknownEvent",
        "LavasyncError",
        "AuthenticationError",
        "RestError",
        "NodeUnavailableError",
        "LoadError",
        "DecodeError",
        "Queue",
    ],
)
def test_design_names_are_exported(name: str) -> None:
    assert name in lavasync.__all__


def test_the_client_api_of_the_design_exists() -> None:
    for method in [
        "add_node",
        "wait_ready",
        "handle_gateway",
        "load",
        "player",
        "poll",
        "events",
        "on",
        "add_listener",
        "remove_listener",
        "close",
    ]:
        assert callable(getattr(lavasync.Client, method)), method
    for method in [
        "connect",
        "play",
        "pause",
        "resume",
        "seek",
        "set_volume",
        "set_filters",
        "wait_for_track_end",
        "stop",
        "disconnect",
        "destroy",
    ]:
        assert callable(getattr(lavasync.Player, method)), method
    assert isinstance(lavasync.Player.position, property)


def test_exception_tree() -> None:
    assert issubclass(lavasync.AuthenticationError, lavasync.RestError)
    assert issubclass(lavasync.RestError, lavasync.LavasyncError)
    assert issubclass(lavasync.LavasyncTimeoutError, TimeoutError)
    assert issubclass(lavasync.VoiceConnectTimeoutError, lavasync.LavasyncTimeoutError)
    assert issubclass(lavasync.NodeUnavailableError, lavasync.ConnectionFailedError)
    assert issubclass(lavasync.DecodeError, ValueError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), lavasync.LavasyncError)
    err = lavasync.RestError(
        404, error="Not Found", message="Session not found", path="/v4/x", method="GET"
    )
    assert (err.status, err.error, err.message, err.path) == (
        404,
        "Not Found",
        "Session not found",
        "/v4/x",
    )
    assert "Session not found" in str(err)


def test_the_package_ships_py_typed_and_a_null_handler() -> None:
    assert (Path(lavasync.__file__).parent / "py.typed").is_file()
    handlers = logging.getLogger("lavasync").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_bad_client_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError):
        lavasync.Client("not a number")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lavasync.Client(0)
    with pytest.raises(ValueError):
        lavasync.Client(1, send_gateway="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lavasync.Client(1, client_name="")
    with lavasync.Client(1) as client:
        with pytest.raises(ValueError):
            client.add_node("", "http://127.0.0.1:1", password="x")
        with pytest.raises(ValueError):
            client.add_node("n", "ftp://127.0.0.1:1", password="x")
        with pytest.raises(ValueError):
            client.add_node("n", "http://127.0.0.1:1", password="x", resume_timeout=-1)
        with pytest.raises(ValueError):
            client.player("guild")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            client.load("")
        with pytest.raises(ValueError):
            client.add_listener(int, print)  # type: ignore[arg-type]
        assert client.nodes == []
