"""REST routes of the FakeNode: the v4 route table and a handler for each route.

Each handler gets the request, the path parameters and the query, and returns a _Response or
raises _HttpError; the HTTP server (_http.py) has already checked the method and the password.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import time
from typing import Any, Optional

from . import _wire
from ._catalogue import (
    DEFAULT_FILTERS,
    FILTER_DEFAULTS,
    LOAD_FAILED_MESSAGE,
    track_json,
)
from ._core import (
    OPEN,
    _bad_body,
    _HttpError,
    _is_int,
    _is_number,
    _json_response,
    _NodeCore,
    _parse_long,
    _Response,
)
from ._sessions import FakeSession, _Player, _Track

_VOICE_BLANK = "token, endpoint, sessionId and channelId must be provided in voice state"
_BOOL_WORDS = {"true": True, "on": True, "yes": True, "1": True}
_BOOL_WORDS.update({"false": False, "off": False, "no": False, "0": False})

_SID = r"(?P<sid>[^/]+)"
_GID = r"(?P<gid>[^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(p), m)
    for p, m in [
        (r"/version", {"GET": "version"}),
        (r"/v4/info", {"GET": "info"}),
        (r"/v4/stats", {"GET": "stats"}),
        (r"/v4/loadtracks", {"GET": "loadtracks"}),
        (r"/v4/decodetrack", {"GET": "decodetrack"}),
        (r"/v4/decodetracks", {"POST": "decodetracks"}),
        (rf"/v4/sessions/{_SID}/players", {"GET": "get_players"}),
        (
            rf"/v4/sessions/{_SID}/players/{_GID}",
            {"GET": "get_player", "PATCH": "patch_player", "DELETE": "delete_player"},
        ),
        (rf"/v4/sessions/{_SID}", {"PATCH": "patch_session"}),
        (r"/v4/routeplanner/status", {"GET": "routeplanner_status"}),
        (r"/v4/routeplanner/free/address", {"POST": "routeplanner_free_address"}),
        (r"/v4/routeplanner/free/all", {"POST": "routeplanner_free_all"}),
        (r"/v4/websocket", {"GET": "websocket"}),
    ]
]


class _Routes(_NodeCore):
    """The REST route handlers (``_h_<name>`` for each name in ``_ROUTES``): bind the body
    as Spring would (400 on wrong shapes), then apply it under ``_lock``."""

    def _guild(self, params: dict[str, str]) -> int:
        raw = params["gid"]
        refused = self._dialect.check_guild(raw)
        if refused is not None:
            raise _HttpError(400, refused)
        value = _parse_long(raw)
        if value is None:
            raise _HttpError(
                400,
                "Failed to convert value of type 'java.lang.String' to required type 'long'; "
                f'For input string: "{raw}"',
            )
        return value

    def _session(self, params: dict[str, str]) -> FakeSession:
        session = self._sessions.get(params["sid"])
        if session is None or session.state != OPEN:
            raise _HttpError(404, "Session not found")
        return session

    def _h_version(self, req: _wire.HttpRequest, params: Any, query: Any) -> _Response:
        accept = req.headers.get("Accept", "*/*").lower()
        if "application/json" in accept and "*/*" not in accept and "text/plain" not in accept:
            ctype = "application/json"
        else:
            ctype = "text/plain;charset=UTF-8"
        return _Response(200, self.version.encode("utf-8"), ctype)

    def _h_info(self, req: Any, params: Any, query: Any) -> _Response:
        m = re.fullmatch(
            r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?",
            self.version,
        )
        if m:
            version: dict[str, Any] = {
                "semver": self.version,
                "major": int(m.group(1)),
                "minor": int(m.group(2)),
                "patch": int(m.group(3)),
                "preRelease": m.group(4) or "",
            }
        else:
            version = {
                "semver": self.version,
                "major": 0,
                "minor": 0,
                "patch": 0,
                "preRelease": None,
            }
        filters = [f for f in DEFAULT_FILTERS if f not in self.disabled_filters]
        filters += [f for f in self.plugin_filters if f not in self.disabled_filters]
        started = int(time.time() * 1000) - int((time.monotonic() - self._started_mono) * 1000)
        info = {
            "version": version,
            "buildTime": started,
            "git": {"branch": "main", "commit": "fa4e0de", "commitTime": started},
            "jvm": "17.0.12",
            "lavaplayer": "2.2.6",
            "sourceManagers": list(self.source_managers),
            "filters": filters,
            "plugins": [{"name": n, "version": v} for n, v in self.plugins],
        }
        return _json_response(200, self._dialect.info(info))

    def _h_stats(self, req: Any, params: Any, query: Any) -> _Response:
        with self._lock:
            stats: dict[str, Any] = {"frameStats": None}
            stats.update(self._stats())
        return _json_response(200, self._dialect.stats(stats, rest=True))

    def _h_loadtracks(self, req: Any, params: Any, query: dict[str, list[str]]) -> _Response:
        if "identifier" not in query:
            raise _HttpError(
                400,
                "Required request parameter 'identifier' for method parameter type String is "
                "not present",
            )
        return _json_response(200, self._dialect.load_result(self._load(query["identifier"][0])))

    def _h_decodetrack(self, req: Any, params: Any, query: dict[str, list[str]]) -> _Response:
        values = query.get("encodedTrack") or query.get("track")
        if not values:
            raise _HttpError(400, "No track to decode provided")
        encoded = values[0]
        with self._lock:
            track = self._decode(encoded)
        info = dict(track.info)
        return _json_response(200, track_json(encoded, info, track.plugin_info))

    def _h_decodetracks(self, req: _wire.HttpRequest, params: Any, query: Any) -> _Response:
        body = self._json_body(req)
        if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
            raise _bad_body("expected a JSON array of strings")
        if not body:
            raise _HttpError(400, "No tracks to decode provided")
        out = []
        with self._lock:
            for encoded in body:
                track = self._decode(encoded)
                out.append(track_json(encoded, dict(track.info), track.plugin_info))
        return _json_response(200, out)

    def _h_get_players(self, req: Any, params: dict[str, str], query: Any) -> _Response:
        with self._lock:
            session = self._session(params)
            players = [self._dialect.player(p.json()) for p in session._players.values()]
            return _json_response(200, players)

    def _h_get_player(self, req: Any, params: dict[str, str], query: Any) -> _Response:
        guild_id = self._guild(params)
        with self._lock:
            session = self._session(params)
            player = session._players.get(guild_id)
            if player is None and self._dialect.get_creates_player:
                player = self._get_or_create(session, guild_id)
                self._dialect_events(player, "created")
            if player is None:
                raise _HttpError(404, "Player not found")
            return _json_response(200, self._dialect.player(player.json()))

    def _h_delete_player(self, req: Any, params: dict[str, str], query: Any) -> _Response:
        guild_id = self._guild(params)
        with self._lock:
            session = self._session(params)
            player = session._players.get(guild_id)
            if player is not None:
                if player.track is not None:
                    self._end_track(player, "stopped")
                was_connected = player.connected
                self._freeze(player)
                player.connected = False
                player.ping = -1
                player.destroyed = True
                self._reschedule(player)
                del session._players[guild_id]
                self._dialect_events(player, "destroyed")
                if was_connected:
                    self._event(
                        player, "WebSocketClosedEvent", code=1000, reason="", byRemote=False
                    )
                    self._player_update(player)
        return _Response(204)

    def _h_patch_session(
        self, req: _wire.HttpRequest, params: dict[str, str], query: Any
    ) -> _Response:
        body = self._json_body(req)
        if not isinstance(body, dict):
            raise _bad_body("expected a JSON object")
        if "resuming" in body and not isinstance(body["resuming"], bool):
            raise _bad_body("'resuming' must be a boolean")
        if "timeout" in body and not _is_int(body["timeout"]):
            raise _bad_body("'timeout' must be an integer")
        with self._lock:
            session = self._session(params)
            if "resuming" in body:
                session.resuming = body["resuming"]
            if "timeout" in body:
                session.timeout = body["timeout"]
            return _json_response(200, {"resuming": session.resuming, "timeout": session.timeout})

    def _h_routeplanner_status(self, req: Any, params: Any, query: Any) -> _Response:
        with self._lock:
            status = copy.deepcopy(self._route_planner)
        return _Response(204) if status is None else _json_response(200, status)

    def _h_routeplanner_free_address(
        self, req: _wire.HttpRequest, params: Any, query: Any
    ) -> _Response:
        body = self._json_body(req)
        if not isinstance(body, dict) or not isinstance(body.get("address"), str):
            raise _bad_body('expected {"address": string}')
        with self._lock:
            if self._route_planner is None:
                raise _HttpError(500, "Can't access disabled route planner")
            address = body["address"]
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise _HttpError(400, f"Invalid address: {address}") from None
            details = self._route_planner.get("details") or {}
            failing = details.get("failingAddresses")
            if isinstance(failing, list):
                details["failingAddresses"] = [
                    f for f in failing if f.get("failingAddress", "").lstrip("/") != address
                ]
        return _Response(204)

    def _h_routeplanner_free_all(self, req: Any, params: Any, query: Any) -> _Response:
        with self._lock:
            if self._route_planner is None:
                raise _HttpError(500, "Can't access disabled route planner")
            details = self._route_planner.get("details") or {}
            if isinstance(details.get("failingAddresses"), list):
                details["failingAddresses"] = []
        return _Response(204)

    def _h_websocket(self, req: Any, params: Any, query: Any) -> _Response:
        raise _HttpError(400, 'Can "Upgrade" only to "WebSocket".')

    def _check_filters(self, filters: Any) -> None:
        """Binding-level checks of a Filters object (400 on wrong shapes)."""
        if not isinstance(filters, dict):
            raise _bad_body("'filters' must be an object")
        for key in ("volume", "equalizer", "pluginFilters"):
            if key in filters and filters[key] is None:
                raise _bad_body(f"'filters.{key}' must not be null")
        if "volume" in filters and not _is_number(filters["volume"]):
            raise _bad_body("'filters.volume' must be a number")
        if "equalizer" in filters:
            bands = filters["equalizer"]
            if not isinstance(bands, list):
                raise _bad_body("'filters.equalizer' must be an array")
            for band in bands:
                if not isinstance(band, dict) or not _is_int(band.get("band")):
                    raise _bad_body("an equalizer band needs an integer 'band'")
                if "gain" in band and not _is_number(band["gain"]):
                    raise _bad_body("'gain' must be a number")
        if "pluginFilters" in filters and not isinstance(filters["pluginFilters"], dict):
            raise _bad_body("'filters.pluginFilters' must be an object")
        for name, defaults in FILTER_DEFAULTS.items():
            value = filters.get(name)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _bad_body(f"'filters.{name}' must be an object or null")
            for key in defaults:
                if key in value and not _is_number(value[key]):
                    raise _bad_body(f"'filters.{name}.{key}' must be a number")

    def _normalise_filters(self, filters: dict[str, Any]) -> dict[str, Any]:
        """The Filters object as the server reports it (all fields of configured filters)."""
        out: dict[str, Any] = {}
        if "volume" in filters:
            out["volume"] = float(filters["volume"])
        if "equalizer" in filters:
            out["equalizer"] = [
                {"band": b["band"], "gain": float(b.get("gain", 1.0))} for b in filters["equalizer"]
            ]
        for name, defaults in FILTER_DEFAULTS.items():
            value = filters.get(name)
            if value is not None:
                out[name] = {k: float(value.get(k, d)) for k, d in defaults.items()}
        plugin = filters.get("pluginFilters")
        if plugin:
            kept = {k: v for k, v in plugin.items() if k in self.plugin_filters}
            if kept:
                out["pluginFilters"] = copy.deepcopy(kept)
        return out

    def _bind_update(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _bad_body("expected a JSON object")
        for key in ("track", "identifier", "position", "volume", "paused", "filters", "voice"):
            if key in body and body[key] is None:
                raise _bad_body(f"'{key}' must not be null")
        if "track" in body:
            t = body["track"]
            if not isinstance(t, dict):
                raise _bad_body("'track' must be an object")
            if "encoded" in t and t["encoded"] is not None and not isinstance(t["encoded"], str):
                raise _bad_body("'track.encoded' must be a string or null")
            if "identifier" in t and not isinstance(t["identifier"], str):
                raise _bad_body("'track.identifier' must be a string")
            if "userData" in t and not isinstance(t["userData"], dict):
                raise _bad_body("'track.userData' must be an object")
        encoded = body.get("encodedTrack")
        if encoded is not None and not isinstance(encoded, str):
            raise _bad_body("'encodedTrack' must be a string or null")
        if "identifier" in body and not isinstance(body["identifier"], str):
            raise _bad_body("'identifier' must be a string")
        for key in ("position", "volume"):
            if key in body and not _is_int(body[key]):
                raise _bad_body(f"'{key}' must be an integer")
        if "endTime" in body and body["endTime"] is not None and not _is_int(body["endTime"]):
            raise _bad_body("'endTime' must be an integer or null")
        if "paused" in body and not isinstance(body["paused"], bool):
            raise _bad_body("'paused' must be a boolean")
        if "filters" in body:
            self._check_filters(body["filters"])
        if "voice" in body:
            v = body["voice"]
            if not isinstance(v, dict):
                raise _bad_body("'voice' must be an object")
            for key in ("token", "endpoint", "sessionId", "channelId"):
                if key not in v:
                    raise _bad_body(f"field '{key}' is required in voice")
            for key in ("token", "endpoint", "sessionId"):
                if not isinstance(v[key], str):
                    raise _bad_body(f"'voice.{key}' must be a string")
            if v["channelId"] is not None and not isinstance(v["channelId"], str):
                raise _bad_body("'voice.channelId' must be a string or null")

    def _h_patch_player(
        self, req: _wire.HttpRequest, params: dict[str, str], query: dict[str, list[str]]
    ) -> _Response:
        guild_id = self._guild(params)
        raw_nr = query.get("noReplace", [""])[0]
        if raw_nr.strip() == "":
            no_replace = False
        elif raw_nr.strip().lower() in _BOOL_WORDS:
            no_replace = _BOOL_WORDS[raw_nr.strip().lower()]
        else:
            raise _HttpError(
                400,
                "Failed to convert value of type 'java.lang.String' to required type 'boolean'; "
                f"Invalid boolean value [{raw_nr}]",
            )
        body = self._json_body(req)
        self._bind_update(body)
        refused = self._dialect.patch_error(body)
        if refused is not None:
            raise _HttpError(*refused)
        with self._lock:
            session = self._session(params)
            # the handler's own cheap checks, before any state is touched
            track_req: Optional[dict[str, Any]] = None
            if "track" in body:
                if "encodedTrack" in body or "identifier" in body:
                    raise _HttpError(400, "Cannot specify both track and encodedTrack/identifier")
                track_req = body["track"]
            elif "encodedTrack" in body or "identifier" in body:
                track_req = {}
                if "encodedTrack" in body:
                    track_req["encoded"] = body["encodedTrack"]
                if "identifier" in body:
                    track_req["identifier"] = body["identifier"]
            if track_req is not None and "encoded" in track_req and "identifier" in track_req:
                raise _HttpError(400, "Cannot specify both encodedTrack and identifier")
            if "filters" in body:
                names = [k for k in body["filters"] if k in self.disabled_filters]
                names += [
                    k
                    for k in (body["filters"].get("pluginFilters") or {})
                    if k in self.disabled_filters
                ]
                if names:
                    raise _HttpError(
                        400, f"Following filters are disabled in the config: {', '.join(names)}"
                    )
            voice = body.get("voice")
            if voice is not None:
                channel = voice["channelId"]
                if (
                    not voice["token"].strip()
                    or not voice["endpoint"].strip()
                    or not voice["sessionId"].strip()
                    or channel is None
                    or not channel.strip()
                ):
                    raise _HttpError(400, _VOICE_BLANK)
            end_time = body.get("endTime")
            if end_time is not None and end_time <= 0:
                raise _HttpError(400, "End time must be greater than 0")

            created = guild_id not in session._players
            player = self._get_or_create(session, guild_id)
            new_track = track_req is not None and (
                "encoded" in track_req or "identifier" in track_req
            )

            # 1. voice
            if voice is not None:
                channel_id = _parse_long(voice["channelId"].strip())
                if channel_id is None:
                    raise _HttpError(500, f'For input string: "{voice["channelId"]}"')
                wanted = {
                    "token": voice["token"],
                    "endpoint": voice["endpoint"],
                    "sessionId": voice["sessionId"],
                    "channelId": str(channel_id),
                }
                self._connect_voice(player, wanted)
            # 2. paused
            if "paused" in body and not new_track:
                self._freeze(player)
                player.paused = body["paused"]
                self._reschedule(player)
            # 3. userData
            current = None if new_track else player.track
            if track_req is not None and "userData" in track_req and current is not None:
                current.user_data = copy.deepcopy(track_req["userData"])
            # 4. volume
            if "volume" in body:
                player.volume = max(0, min(1000, body["volume"]))
            # 5. position (seek)
            if "position" in body and not new_track and player.track is not None:
                self._seek(player, body["position"])
            # 6. endTime on the current track
            if end_time is not None and not new_track and player.track is not None:
                self._freeze(player)
                if end_time <= player.base_pos:
                    player.track.end_time = None
                else:
                    player.track.end_time = end_time
                self._reschedule(player)
            # 7. filters
            if "filters" in body:
                for band in body["filters"].get("equalizer", []):
                    if not 0 <= band["band"] < 15:
                        raise _HttpError(500, f"Index {band['band']} out of bounds for length 15")
                self._freeze(player)
                player.filters = self._normalise_filters(body["filters"])
                self._reschedule(player)
                self._player_update(player)
            # 8. track
            if (
                new_track
                and track_req is not None
                and not (no_replace and player.track is not None)
            ):
                self._freeze(player)
                player.paused = body.get("paused", False)
                self._reschedule(player)
                if "encoded" in track_req and track_req["encoded"] is None:
                    if player.track is not None:
                        self._end_track(player, "stopped")
                else:
                    track = self._resolve(track_req)
                    start = (
                        body["position"] if "position" in body else track.info.get("position", 0)
                    )
                    track.user_data = copy.deepcopy(track_req.get("userData", {}))
                    if end_time is not None:
                        track.end_time = end_time
                    self._start_track(player, track, int(start))
            self._patch_events(player, body, created)
            return _json_response(200, self._dialect.player(player.json()))

    def _resolve(self, track_req: dict[str, Any]) -> _Track:
        if "encoded" in track_req:
            return self._decode(track_req["encoded"])
        result = self._load(track_req["identifier"])
        kind = result.get("loadType")
        if kind == "track":
            data = result["data"]
            return self._decode(data["encoded"])
        if kind in ("playlist", "search"):
            raise _HttpError(400, "Cannot play a playlist or search result")
        if kind == "error":
            raise _HttpError(400, LOAD_FAILED_MESSAGE)
        raise _HttpError(400, "No matches found for identifier")

    def _seek(self, player: _Player, position: int) -> None:
        track = player.track
        assert track is not None
        if not track.is_stream:
            self._freeze(player)
            player.base_pos = player.base_src = max(0, position)
            if track.end_time is not None and player.base_pos >= track.end_time:
                self._end_track(player, "finished")
            else:
                self._reschedule(player)
        self._player_update(player)
