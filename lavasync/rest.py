"""Typed Lavalink v4 REST endpoints on top of :class:`~lavasync.transport.rest.RestTransport`.

Every method checks its arguments first (``ValueError``, nothing sent), then makes one call and
decodes the answer into :mod:`lavasync.models` types, liberally (``from_server``): a 2xx answer
that carries what the call needs never raises because another server left out or nulled a field.
Errors are those of the transport: ``AuthenticationError``, ``RestError``,
``ConnectionFailedError``, ``LavasyncTimeoutError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import quote

from .codec import check_blob
from .errors import DecodeError, RestError
from .models import (
    UNSET,
    Info,
    LoadResult,
    PlayerInfo,
    RoutePlannerStatus,
    Session,
    Stats,
    Track,
    UpdatePlayer,
    WireModel,
    parse_route_planner,
    snowflake,
)
from .transport.rest import QueryValue, RestTransport, Timeout

__all__ = ["RestClient"]

_IpAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _session_segment(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id.strip():
        raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
    return quote(session_id, safe="")


def _encoded_list(encoded: Sequence[str]) -> list[str]:
    """The blobs of a decode_tracks call, each checked locally; ValueError/DecodeError."""
    if isinstance(encoded, (str, bytes)) or not isinstance(encoded, Sequence):
        raise ValueError("encoded must be a sequence of base64 strings")
    blobs = list(encoded)
    if not blobs:
        raise ValueError("encoded must not be empty")
    for index, blob in enumerate(blobs):
        _nonempty(blob, f"encoded[{index}]")
        try:
            check_blob(blob)
        except DecodeError as exc:
            raise DecodeError(f"encoded[{index}]: {exc}") from None
    return blobs


def _nonempty(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


_T = TypeVar("_T")
_W = TypeVar("_W", bound=WireModel)


def _decode(method: str, path: str, data: Any, decode: Callable[[Any], _T]) -> _T:
    """Decode a 2xx answer; a body of the wrong shape becomes a RestError (not a ValueError,
    which would read as a bad argument of the caller)."""
    try:
        return decode(data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RestError(
            200,
            error="Invalid Response",
            message=f"unexpected response body: {exc}",
            path=path,
            method=method,
            body=data,
        ) from exc


def _one(cls: type[_W]) -> Callable[[Any], _W]:
    def decode(data: Any) -> _W:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        return cls.from_server(data)  # liberal: other servers omit or null some fields

    return decode


def _many(cls: type[_W]) -> Callable[[Any], list[_W]]:
    one = _one(cls)

    def decode(data: Any) -> list[_W]:
        if not isinstance(data, list):
            raise TypeError(f"expected a JSON array, got {type(data).__name__}")
        return [one(item) for item in data]

    return decode


def _address(address: object) -> str:
    """Normalise an address for the route planner; accepts ``InetAddress.toString()`` forms
    such as ``"/1.0.0.1"`` (what the status reports as ``failingAddress``)."""
    if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(address)
    if not isinstance(address, str):
        raise ValueError(f"address must be an IP address string, got {type(address).__name__}")
    text = address.strip().rsplit("/", 1)[-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"address is not an IPv4/IPv6 address: {address!r}") from None


_DECODE_INFO = _one(Info)
_DECODE_STATS = _one(Stats)
_DECODE_LOAD = _one(LoadResult)
_DECODE_TRACK = _one(Track)
_DECODE_TRACKS = _many(Track)
_DECODE_PLAYER = _one(PlayerInfo)
_DECODE_PLAYERS = _many(PlayerInfo)
_DECODE_SESSION = _one(Session)


def _decode_route_planner(data: Any) -> Optional[RoutePlannerStatus]:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return parse_route_planner(data)


class RestClient:
    """The Lavalink v4 REST API, one method per endpoint, returning models.

    Thread-safe: it holds no state of its own beyond the (thread-safe) transport.
    """

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    def __repr__(self) -> str:
        return f"<RestClient {self.transport.base_uri}>"

    def close(self) -> None:
        """Close the underlying transport."""
        self.transport.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- generic -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, QueryValue]] = None,
        json: Any = None,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> Any:
        """Any route, e.g. a plugin's (``GET /v4/loadsearch``): the decoded JSON, text or None."""
        return self.transport.request(
            method, path, params=params, json=json, timeout=timeout, trace=trace
        )

    # -- node ----------------------------------------------------------------------------------

    def version(self, *, timeout: Optional[Timeout] = None, trace: bool = False) -> str:
        """``GET /version``: the server version string, e.g. ``4.2.2``."""
        data = self.transport.request("GET", "/version", timeout=timeout, trace=trace)
        return data.strip() if isinstance(data, str) else str(data)

    def info(self, *, timeout: Optional[Timeout] = None, trace: bool = False) -> Info:
        """``GET /v4/info``: versions, sources, filters and plugins of the node."""
        data = self.transport.request("GET", "/v4/info", timeout=timeout, trace=trace)
        return _decode("GET", "/v4/info", data, _DECODE_INFO)

    def stats(self, *, timeout: Optional[Timeout] = None, trace: bool = False) -> Stats:
        """``GET /v4/stats``: node statistics (never frame statistics)."""
        data = self.transport.request("GET", "/v4/stats", timeout=timeout, trace=trace)
        return _decode("GET", "/v4/stats", data, _DECODE_STATS)

    # -- tracks --------------------------------------------------------------------------------

    def load_tracks(
        self,
        identifier: str,
        *,
        raise_on_error: bool = False,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> LoadResult:
        """``GET /v4/loadtracks``: resolve a URL, id or prefixed search (``ytsearch:...``).

        A failed load is a normal result (``load_type == "error"``); with
        ``raise_on_error=True`` it raises :class:`~lavasync.errors.LoadError` instead.
        """
        _nonempty(identifier, "identifier")
        data = self.transport.request(
            "GET",
            "/v4/loadtracks",
            params={"identifier": identifier},
            timeout=timeout,
            trace=trace,
        )
        result: LoadResult = _decode("GET", "/v4/loadtracks", data, _DECODE_LOAD)
        if raise_on_error:
            result.raise_for_error(identifier)
        return result

    def decode_track(
        self, encoded: str, *, timeout: Optional[Timeout] = None, trace: bool = False
    ) -> Track:
        """``GET /v4/decodetrack``: decode one blob on the server (needs its source there)."""
        _nonempty(encoded, "encoded")
        data = self.transport.request(
            "GET",
            "/v4/decodetrack",
            params={"encodedTrack": encoded},
            timeout=timeout,
            trace=trace,
        )
        return _decode("GET", "/v4/decodetrack", data, _DECODE_TRACK)

    def decode_tracks(
        self,
        encoded: Sequence[str],
        *,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> list[Track]:
        """``POST /v4/decodetracks``: decode several blobs in one call, in order.

        Each blob's structure is checked first (:func:`lavasync.codec.check_blob`): a bad one
        raises DecodeError (a ValueError) naming its index, and nothing is sent.
        """
        blobs = _encoded_list(encoded)
        data = self.transport.request(
            "POST", "/v4/decodetracks", json=blobs, timeout=timeout, trace=trace
        )
        return _decode("POST", "/v4/decodetracks", data, _DECODE_TRACKS)

    # -- players -------------------------------------------------------------------------------

    def get_players(
        self, session_id: str, *, timeout: Optional[Timeout] = None, trace: bool = False
    ) -> list[PlayerInfo]:
        """``GET /v4/sessions/{id}/players``: every player of the session."""
        path = f"/v4/sessions/{_session_segment(session_id)}/players"
        data = self.transport.request("GET", path, timeout=timeout, trace=trace)
        return _decode("GET", path, data, _DECODE_PLAYERS)

    def get_player(
        self,
        session_id: str,
        guild_id: Union[int, str],
        *,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> PlayerInfo:
        """``GET /v4/sessions/{id}/players/{guild}``; RestError 404 if there is no player."""
        path = self._player_path(session_id, guild_id)
        data = self.transport.request("GET", path, timeout=timeout, trace=trace)
        return _decode("GET", path, data, _DECODE_PLAYER)

    def update_player(
        self,
        session_id: str,
        guild_id: Union[int, str],
        update: UpdatePlayer,
        *,
        no_replace: bool = False,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> PlayerInfo:
        """``PATCH /v4/sessions/{id}/players/{guild}``: create or change a player.

        Only the fields set on ``update`` are sent. With ``no_replace=True`` a track already
        playing is kept. A call carrying ``voice`` blocks until the node reached Discord.
        """
        path = self._player_path(session_id, guild_id)
        if not isinstance(update, UpdatePlayer):
            raise ValueError(f"update must be an UpdatePlayer, got {type(update).__name__}")
        if not isinstance(no_replace, bool):
            raise ValueError(f"no_replace must be a bool, got {no_replace!r}")
        update.validate()
        params: Optional[dict[str, QueryValue]] = {"noReplace": True} if no_replace else None
        data = self.transport.request(
            "PATCH", path, params=params, json=update.to_wire(), timeout=timeout, trace=trace
        )
        return _decode("PATCH", path, data, _DECODE_PLAYER)

    def destroy_player(
        self,
        session_id: str,
        guild_id: Union[int, str],
        *,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> None:
        """``DELETE /v4/sessions/{id}/players/{guild}``; fine if there was no player.

        The bot stays in the Discord channel: leaving is an OP 4 of its own.
        """
        path = self._player_path(session_id, guild_id)
        self.transport.request("DELETE", path, timeout=timeout, trace=trace)

    def update_session(
        self,
        session_id: str,
        *,
        resuming: Any = UNSET,
        timeout: Any = UNSET,
        request_timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> Session:
        """``PATCH /v4/sessions/{id}``: set resuming and its window (``timeout``, seconds).

        Fields left UNSET are not sent; calling with neither just reads the settings.
        ``request_timeout`` is the HTTP timeout of this call.
        """
        path = f"/v4/sessions/{_session_segment(session_id)}"
        body: dict[str, Any] = {}
        if resuming is not UNSET:
            if not isinstance(resuming, bool):
                raise ValueError(f"resuming must be a bool, got {resuming!r}")
            body["resuming"] = resuming
        if timeout is not UNSET:
            if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
                raise ValueError(f"timeout must be a whole number of seconds >= 0, got {timeout!r}")
            body["timeout"] = timeout
        data = self.transport.request(
            "PATCH", path, json=body, timeout=request_timeout, trace=trace
        )
        return _decode("PATCH", path, data, _DECODE_SESSION)

    # -- route planner -------------------------------------------------------------------------

    def route_planner_status(
        self, *, timeout: Optional[Timeout] = None, trace: bool = False
    ) -> Optional[RoutePlannerStatus]:
        """``GET /v4/routeplanner/status``; None when no route planner is configured."""
        data = self.transport.request(
            "GET", "/v4/routeplanner/status", timeout=timeout, trace=trace
        )
        if data is None:
            return None
        return _decode("GET", "/v4/routeplanner/status", data, _decode_route_planner)

    def free_address(
        self,
        address: Union[str, _IpAddress],
        *,
        timeout: Optional[Timeout] = None,
        trace: bool = False,
    ) -> None:
        """``POST /v4/routeplanner/free/address``: unmark one failing address."""
        body = {"address": _address(address)}
        self.transport.request(
            "POST", "/v4/routeplanner/free/address", json=body, timeout=timeout, trace=trace
        )

    def free_all_addresses(self, *, timeout: Optional[Timeout] = None, trace: bool = False) -> None:
        """``POST /v4/routeplanner/free/all``: unmark every failing address."""
        self.transport.request("POST", "/v4/routeplanner/free/all", timeout=timeout, trace=trace)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _player_path(session_id: str, guild_id: Union[int, str]) -> str:
        session = _session_segment(session_id)
        guild = snowflake(guild_id, "guild_id")
        return f"/v4/sessions/{session}/players/{guild}"
