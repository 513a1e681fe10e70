"""Canned data of the fake node: built-in tracks, filter defaults, fixed server strings.

Kept in a module (not a JSON file) so it ships with the package without package-data rules.
Pure data and pure functions; thread-safe.
"""

from __future__ import annotations

from typing import Any, Optional

from ..codec import encode_info

__all__ = [
    "BUILTIN_TRACKS",
    "DEFAULT_FILTERS",
    "DEFAULT_SOURCES",
    "FILTER_DEFAULTS",
    "LOAD_FAILED_MESSAGE",
    "PROBE_NAMES",
    "SEARCH_PREFIXES",
    "STREAM_LENGTH",
    "make_info",
    "probe_data",
    "track_json",
]

#: ``length`` of a live stream (Java ``Long.MAX_VALUE``).
STREAM_LENGTH = 2**63 - 1

#: Source managers the fake registers, in the server's order (``http`` always last).
DEFAULT_SOURCES = ("youtube", "soundcloud", "bandcamp", "twitch", "vimeo", "http")

#: Container probe names lavaplayer's http/local sources know.
PROBE_NAMES = frozenset(
    {"mp3", "ogg", "flac", "wav", "matroska/webm", "mp4", "adts", "mpegts-adts", "m3u", "pls"}
    | {"plain"}
)

#: Search prefixes and the source their results come from.
SEARCH_PREFIXES = {
    "ytsearch:": "youtube",
    "ytmsearch:": "youtube",
    "scsearch:": "soundcloud",
    "bcsearch:": "bandcamp",
}

#: Every field of each built-in filter object, at its protocol default (PROTOCOL.md §5.3).
FILTER_DEFAULTS: dict[str, dict[str, float]] = {
    "karaoke": {"level": 1.0, "monoLevel": 1.0, "filterBand": 220.0, "filterWidth": 100.0},
    "timescale": {"speed": 1.0, "pitch": 1.0, "rate": 1.0},
    "tremolo": {"frequency": 2.0, "depth": 0.5},
    "vibrato": {"frequency": 2.0, "depth": 0.5},
    "rotation": {"rotationHz": 0.0},
    "distortion": {
        "sinOffset": 0.0,
        "sinScale": 1.0,
        "cosOffset": 0.0,
        "cosScale": 1.0,
        "tanOffset": 0.0,
        "tanScale": 1.0,
        "offset": 0.0,
        "scale": 1.0,
    },
    "channelMix": {"leftToLeft": 1.0, "leftToRight": 0.0, "rightToLeft": 0.0, "rightToRight": 1.0},
    "lowPass": {"smoothing": 20.0},
}

#: Names in ``/v4/info.filters`` when nothing is disabled.
DEFAULT_FILTERS = ("volume", "equalizer", *FILTER_DEFAULTS)

#: The generic text of every load failure since Lavalink 4.0.8.
LOAD_FAILED_MESSAGE = "Something went wrong while looking up the track."


def make_info(
    *,
    title: str,
    author: str,
    length: int,
    identifier: str,
    source_name: str,
    uri: Optional[str] = None,
    is_stream: bool = False,
    artwork_url: Optional[str] = None,
    isrc: Optional[str] = None,
    position: int = 0,
) -> dict[str, Any]:
    """A wire-shaped TrackInfo dict, keys in the server's order."""
    return {
        "identifier": identifier,
        "isSeekable": not is_stream,
        "author": author,
        "length": length,
        "isStream": is_stream,
        "position": position,
        "title": title,
        "uri": uri,
        "sourceName": source_name,
        "artworkUrl": artwork_url,
        "isrc": isrc,
    }


def probe_data(probe: str) -> bytes:
    """The source section of an http/local blob: one length-prefixed probe name."""
    raw = probe.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def track_json(
    encoded: str,
    info: dict[str, Any],
    plugin_info: Optional[dict[str, Any]] = None,
    user_data: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """A Track object as the server writes it (pluginInfo and userData always present)."""
    return {
        "encoded": encoded,
        "info": dict(info),
        "pluginInfo": dict(plugin_info or {}),
        "userData": dict(user_data or {}),
    }


def _yt(title: str, author: str, length: int, video: str, art: Optional[str]) -> dict[str, Any]:
    return make_info(
        title=title,
        author=author,
        length=length,
        identifier=video,
        source_name="youtube",
        uri=f"https://www.youtube.com/watch?v={video}",
        artwork_url=art,
    )


def _builtin() -> list[dict[str, Any]]:
    """Track objects of the built-in catalogue (real track metadata, version 3 blobs)."""
    infos: list[tuple[dict[str, Any], bytes]] = [
        (
            _yt(
                "Rick Astley - Never Gonna Give You Up (Official Music Video)",
                "Rick Astley",
                213000,
                "dQw4w9WgXcQ",
                "https://i.ytimg.com/vi/dQw4w9WgXcQ/maxresdefault.jpg",
            ),
            b"",
        ),
        (
            _yt(
                'We Don\'t Talk About Bruno (From "Encanto")',
                "DisneyMusicVEVO",
                222000,
                "bvWRMAU6V-c",
                "https://i.ytimg.com/vi/bvWRMAU6V-c/maxresdefault.jpg",
            ),
            b"",
        ),
        (
            _yt(
                "Cozy animal crossing music that cure my headaches\U0001f33f",
                "Tendo Farms",
                4185000,
                "8TbLuBOClSg",
                "https://i.ytimg.com/vi_webp/8TbLuBOClSg/maxresdefault.webp",
            ),
            b"",
        ),
        (
            _yt(
                "\u541b\u306b\u5c4a\u3051",
                "\u690e\u540d\u771f\u663c\uff08CV.\u77f3\u898b\u821e\u83dc\u9999\uff09 - Topic",
                311000,
                "uPX5zQfDxxE",
                "https://i.ytimg.com/vi/uPX5zQfDxxE/mqdefault.jpg",
            ),
            b"",
        ),
        (
            make_info(
                title="Death of Me",
                author="SAINT PHNX",
                length=30040,
                identifier="https://www.mboxdrive.com/startmusic.mp3",
                source_name="http",
                uri="https://www.mboxdrive.com/startmusic.mp3",
            ),
            probe_data("mp3"),
        ),
        (
            make_info(
                title="Powered by Infomaniak.com",
                author="Contact FM",
                length=STREAM_LENGTH,
                identifier="http://radio-contact.ice.infomaniak.ch/radio-contact-high",
                source_name="http",
                uri="http://radio-contact.ice.infomaniak.ch/radio-contact-high",
                is_stream=True,
            ),
            probe_data("mp3"),
        ),
    ]
    return [track_json(encode_info(info, source_data=data), info) for info, data in infos]


#: Built-in catalogue: four youtube tracks (one with a non-BMP title, one CJK), one http mp3
#: file and one http live stream. Loadable by identifier or uri.
BUILTIN_TRACKS: tuple[dict[str, Any], ...] = tuple(_builtin())
