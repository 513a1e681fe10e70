"""Track catalogue of the FakeNode: what ``/v4/loadtracks`` answers and how blobs decode."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Optional

from ..codec import decode_blob, encode_info, parse_source_fields
from ..models.track import Track
from ._catalogue import (
    BUILTIN_TRACKS,
    LOAD_FAILED_MESSAGE,
    PROBE_NAMES,
    SEARCH_PREFIXES,
    STREAM_LENGTH,
    make_info,
    probe_data,
    track_json,
)
from ._core import (
    _HttpError,
    _NodeCore,
)
from ._sessions import _Track

_DECODE_FAILED = "Failed to decode track due to a mismatching version or missing source manager"


class _Tracks(_NodeCore):
    """The track catalogue: built-in and added tracks, fixed load results, searches,
    playlists, and decoding blobs as the server would. Public methods take ``_lock``."""

    def add_track(
        self,
        title: str = "Fake Track",
        *,
        length: int = 30_000,
        author: str = "lavasync",
        identifier: Optional[str] = None,
        source_name: str = "http",
        uri: Optional[str] = None,
        is_stream: bool = False,
        artwork_url: Optional[str] = None,
        isrc: Optional[str] = None,
        probe: str = "mp3",
        plugin_info: Optional[Mapping[str, Any]] = None,
    ) -> Track:
        """Add a track to the catalogue and return it as a :class:`lavasync.Track`.

        ``track.encoded`` is a real v3 blob that decodes and plays; the track loads by
        identifier (and uri) through ``/v4/loadtracks``. ``track.to_wire()`` gives the Track
        JSON (for :meth:`set_load_result`). ``is_stream`` makes it a live stream (length 2^63-1).
        """
        unknown_ok = self.dialect == "nodelink" and length == -1  # NodeLink's unknown length
        if (
            not isinstance(length, int)
            or isinstance(length, bool)
            or (length < 0 and not unknown_ok)
        ):
            raise ValueError("length must be a non-negative int")
        with self._lock:
            self._track_seq += 1
            n = self._track_seq
            if identifier is None:
                if source_name in ("http", "local"):
                    identifier = uri or f"https://fake.invalid/{self.name}/{n}.mp3"
                else:
                    identifier = f"fake{n:07d}"
            if uri is None and source_name in ("http", "local"):
                uri = identifier
            info = make_info(
                title=title,
                author=author,
                length=STREAM_LENGTH if is_stream else length,
                identifier=identifier,
                source_name=source_name,
                uri=uri,
                is_stream=is_stream,
                artwork_url=artwork_url,
                isrc=isrc,
            )
            data = probe_data(probe) if source_name in ("http", "local") else b""
            track = track_json(encode_info(info, source_data=data), info, dict(plugin_info or {}))
            self._register(track)
            wire = copy.deepcopy(track)
        return Track.from_wire(wire)

    def set_load_result(self, identifier: str, result: dict[str, Any]) -> None:
        """Answer exactly this LoadResult JSON for ``identifier`` (loadtracks and PATCH)."""
        with self._lock:
            self._load_results[identifier] = copy.deepcopy(result)

    def _register(self, track: dict[str, Any]) -> None:
        info = track["info"]
        self._catalogue[info["identifier"]] = track
        if info.get("uri"):
            self._catalogue.setdefault(info["uri"], track)
        if track.get("pluginInfo"):
            key = (info["sourceName"], info["identifier"])
            self._plugin_info[key] = dict(track["pluginInfo"])

    def _load(self, identifier: str) -> dict[str, Any]:
        with self._lock:
            if identifier in self._load_results:
                return copy.deepcopy(self._load_results[identifier])
            if identifier == "fake:empty":
                return {"loadType": "empty", "data": None}
            if identifier == "fake:error":
                return {"loadType": "error", "data": self._load_error()}
            if identifier.startswith("fake:playlist"):
                return self._playlist(identifier)
            for prefix, source in SEARCH_PREFIXES.items():
                if identifier.startswith(prefix) and source in self.source_managers:
                    return self._search(identifier[len(prefix) :].strip(), source)
            track = self._catalogue.get(identifier)
            if track is not None and track["info"]["sourceName"] in self.source_managers:
                return {"loadType": "track", "data": copy.deepcopy(track)}
            return {"loadType": "empty", "data": None}

    def _load_error(self) -> dict[str, Any]:
        cause = f"com.sedmelluq.discord.lavaplayer.tools.FriendlyException: {LOAD_FAILED_MESSAGE}"
        return {
            "message": LOAD_FAILED_MESSAGE,
            "severity": "fault",
            "cause": cause,
            "causeStackTrace": f"{cause}\n\tat lavalink.server.util.LoadingKt.loadAudioItem"
            "(loading.kt:20)\nCaused by: java.io.IOException: fake node load failure\n",
        }

    def _playlist(self, identifier: str) -> dict[str, Any]:
        rest = identifier[len("fake:playlist") :]
        if rest.startswith(":") and rest[1:].isdigit():
            n = int(rest[1:])
            tracks = []
            for i in range(1, n + 1):
                key = f"fakepl{n}-{i:05d}"
                track = self._catalogue.get(key)
                if track is None:
                    info = make_info(
                        title=f"Playlist track {i} of {n}",
                        author="lavasync",
                        length=180_000 + i,
                        identifier=key,
                        source_name="youtube",
                        uri=f"https://www.youtube.com/watch?v={key}",
                    )
                    track = track_json(encode_info(info), info)
                    self._register(track)
                tracks.append(track)
            name = f"Fake playlist of {n}"
        elif rest == "":
            tracks = [t for t in BUILTIN_TRACKS if t["info"]["sourceName"] in self.source_managers]
            name = "Fake playlist"
        else:
            return {"loadType": "empty", "data": None}
        data = {"info": {"name": name, "selectedTrack": -1}, "pluginInfo": {}, "tracks": tracks}
        return {"loadType": "playlist", "data": copy.deepcopy(data)}

    def _search(self, query: str, source: str) -> dict[str, Any]:
        if not query:
            return {"loadType": "empty", "data": None}
        words = query.lower().split()
        seen: set[str] = set()
        hits = []
        for track in self._catalogue.values():
            info = track["info"]
            text = f"{info['title']} {info['author']}".lower()
            matches = info["sourceName"] == source and all(w in text for w in words)
            if matches and info["identifier"] not in seen:
                seen.add(info["identifier"])
                hits.append(track)
        if not hits:
            for i in range(1, 6):
                ident = f"{source[:2]}{abs(hash((query, i))) % 10**10:010d}"
                uri = (
                    f"https://www.youtube.com/watch?v={ident}"
                    if source == "youtube"
                    else f"https://{source}.com/fake/{ident}"
                )
                info = make_info(
                    title=f"{query} (result {i})",
                    author=f"{source} artist {i}",
                    length=120_000 + 1000 * i,
                    identifier=ident,
                    source_name=source,
                    uri=uri,
                )
                track = track_json(encode_info(info), info)
                self._register(track)
                hits.append(track)
        return {"loadType": "search", "data": copy.deepcopy(hits)}

    def _decode(self, encoded: str) -> _Track:
        """Decode a blob as the server would; _HttpError 500 on any failure."""
        try:
            blob = decode_blob(encoded)
        except ValueError as exc:
            raise _HttpError(500, str(exc)) from None
        info = blob.info
        source = info["sourceName"]
        if source not in self.source_managers:
            raise _HttpError(500, _DECODE_FAILED)
        if source in ("http", "local"):
            probe = parse_source_fields(source, blob.source_data, blob.version).get("probeInfo")
            if not probe or probe.split("|")[0] not in PROBE_NAMES:
                raise _HttpError(500, _DECODE_FAILED)
        plugin_info = self._plugin_info.get((source, info["identifier"]), {})
        return _Track(encoded, dict(info), blob.source_data, blob.version, dict(plugin_info))
