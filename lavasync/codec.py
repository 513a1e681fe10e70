"""Local decode/encode of lavaplayer track blobs (the ``encoded`` string of a Lavalink track).

The blob is base64 of one lavaplayer message: a 4-byte header (2 flag bits, 30 size bits), an
optional version byte, the common track fields, a source-specific section, and the position as
the last 8 bytes. Versions 1, 2 and 3 are read and written; strings use Java's modified UTF-8.

Two layers:

* dict level, no model import: :func:`decode_info`, :func:`decode_blob`, :func:`encode_info`,
  :func:`with_position`. The info dicts are wire-shaped (camelCase keys, like Lavalink's JSON).
* model level: :func:`decode_track` and :func:`encode_track` work with
  :class:`lavasync.models.Track`. ``encode_track`` takes the version, header flags and
  source-specific bytes from ``track.encoded`` when that blob is for the same source, so
  ``encode_track(decode_track(x)) == x`` and a changed title keeps e.g. an http track's probe
  info. A Track without a usable blob is written as version 3 with no source section, which
  the server rejects for sources that need one (``http``/``local``): keep the decoded track.

:func:`check_blob` is the structural check used before a user's blob is sent (``play``,
``decode_tracks``): it reads what the server's reader needs and leaves the source section alone.

Every function here is pure and thread-safe. Bad blobs raise :class:`~lavasync.errors.DecodeError`
(a ``ValueError``); bad arguments to the encoders raise ``ValueError``.
"""

from __future__ import annotations

import argparse
import binascii
import dataclasses
import functools
import io
import json
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from .errors import DecodeError

if TYPE_CHECKING:
    from .models import Track, TrackInfo

__all__ = [
    "LAVASRC_SOURCES",
    "MAX_STRING_BYTES",
    "TrackBlob",
    "check_blob",
    "decode_blob",
    "decode_info",
    "decode_track",
    "encode_info",
    "encode_track",
    "parse_source_fields",
    "with_position",
]

#: Longest string (in modified UTF-8 bytes) a blob can hold: the length prefix is a u16.
MAX_STRING_BYTES = 0xFFFF
#: Sources whose LavaSrc plugin writes its extended section (album, artist, preview fields).
LAVASRC_SOURCES = frozenset(
    {"spotify", "applemusic", "tidal", "deezer", "yandexmusic", "vkmusic", "qobuz", "jiosaavn"}
)
_PROBE_SOURCES = frozenset({"http", "local"})

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_MAX_MESSAGE = 0x3FFFFFFF  # 30-bit size field
_VERSIONED = 1  # header flag bit: a version byte follows

_B64_STRICT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_HIGH = re.compile(rb"[\xf0-\xff]")  # 4-byte UTF-8 leads: Java's reader rejects them
_FOUR_BYTE = re.compile(rb"[\xf0-\xf4][\x80-\xbf]{3}")
_CESU_PAIR = re.compile(rb"\xed[\xa0-\xaf][\x80-\xbf]\xed[\xb0-\xbf][\x80-\xbf]")


# --------------------------------------------------------------------------- text layer


def _b64decode(encoded: str) -> bytes:
    """Standard base64 as Java's basic decoder takes it (padding optional), or DecodeError."""
    if not isinstance(encoded, str):
        raise DecodeError(f"an encoded track is a str, not {type(encoded).__name__}")
    try:
        data = encoded.encode("ascii")
    except UnicodeEncodeError:
        raise DecodeError("encoded track is not base64: it has non-ASCII characters") from None
    rest = len(data) & 3
    if rest == 1:
        raise DecodeError(_b64_problem(data, f"bad length {len(data)}"))
    if rest:  # Java accepts missing padding, not partial padding
        if data.endswith(b"="):
            raise DecodeError(_b64_problem(data, "bad padding"))
        data += b"=" * (4 - rest)
    elif data.endswith(b"==="):
        raise DecodeError(_b64_problem(data, "bad padding"))
    if sys.version_info >= (3, 11):
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error as exc:
            raise DecodeError(_b64_problem(data, str(exc))) from None
    try:
        raw = binascii.a2b_base64(data)
    except binascii.Error as exc:
        raise DecodeError(_b64_problem(data, str(exc))) from None
    # a2b_base64 skips characters outside the alphabet; the server does not. Fast check: a
    # canonical string re-encodes to itself. Otherwise it must still be strict base64.
    if binascii.b2a_base64(raw, newline=False) != data and not _B64_STRICT.fullmatch(data):
        raise DecodeError(_b64_problem(data, "bad padding"))
    return raw


def _b64_problem(data: bytes, fallback: str) -> str:
    if b"-" in data or b"_" in data:
        return (
            "encoded track uses URL-safe base64 ('-' or '_'); Lavalink wants the standard "
            "alphabet ('+' and '/')"
        )
    if not _B64_STRICT.fullmatch(data.rstrip(b"=")):
        return (
            "encoded track is not standard base64 "
            "(whitespace or characters outside A-Z a-z 0-9 + / =)"
        )
    return f"encoded track is not base64: {fallback}"


# --------------------------------------------------------------------------- modified UTF-8


def _join_surrogates(text: str) -> str:
    # Pairs of UTF-16 surrogates become one code point; lone ones stay as they are.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _java_decode(chunk: bytes, name: str) -> str:
    """Exactly what Java's ``DataInput.readUTF`` accepts (incl. overlong forms), slow path."""
    units: list[str] = []
    i = 0
    n = len(chunk)
    while i < n:
        c = chunk[i]
        if c < 0x80:
            units.append(chr(c))
            i += 1
        elif c >> 5 == 0b110:
            if i + 1 >= n or chunk[i + 1] >> 6 != 0b10:
                raise DecodeError(f"{name}: malformed modified UTF-8 at byte {i}")
            units.append(chr(((c & 0x1F) << 6) | (chunk[i + 1] & 0x3F)))
            i += 2
        elif c >> 4 == 0b1110:
            if i + 2 >= n or chunk[i + 1] >> 6 != 0b10 or chunk[i + 2] >> 6 != 0b10:
                raise DecodeError(f"{name}: malformed modified UTF-8 at byte {i}")
            units.append(
                chr(((c & 0x0F) << 12) | ((chunk[i + 1] & 0x3F) << 6) | (chunk[i + 2] & 0x3F))
            )
            i += 3
        else:
            raise DecodeError(f"{name}: malformed modified UTF-8 at byte {i} (0x{c:02x})")
    return _join_surrogates("".join(units))


@functools.lru_cache(maxsize=1024)
def _utf8_of_pair_bytes(pair: bytes) -> bytes:
    high = ((pair[1] & 0x0F) << 6) | (pair[2] & 0x3F)  # the surrogates' low 10 bits each
    low = ((pair[4] & 0x0F) << 6) | (pair[5] & 0x3F)
    return chr(0x10000 + (high << 10) + low).encode("utf-8")


def _utf8_of_pair(match: re.Match[bytes]) -> bytes:
    return _utf8_of_pair_bytes(match.group())


#: ``chunk.translate(_HIGH_TABLE)`` has a 1 where ``chunk`` has a byte of 0xF0 or more (a
#: 4-byte UTF-8 lead, which Java's reader rejects): one C-level pass, cheaper than a regex.
_HIGH_TABLE = bytes(int(byte >= 0xF0) for byte in range(256))


def _mutf8_decode(chunk: bytes, name: str) -> str:
    """Modified UTF-8 of a non-ASCII string to a Python str.

    Without C0 80 (NUL) and ED-encoded surrogates it is plain UTF-8, except that Java rejects
    4-byte sequences. Surrogate pairs are rewritten as 4-byte UTF-8 before decoding; anything
    unusual (lone surrogates, overlong forms, errors) goes to the exact, slow reader.
    """
    if 1 in chunk.translate(_HIGH_TABLE):
        return _java_decode(chunk, name)  # raises: Java has no 4-byte sequences
    data = chunk
    if 0xED in data:  # surrogates (emoji are pairs of them); ED also leads plain Hangul
        data = _CESU_PAIR.sub(_utf8_of_pair, data)
    if 0xC0 in data:
        data = data.replace(b"\xc0\x80", b"\x00")
    try:  # most text is plain UTF-8 (CJK, accents): one C-level decode settles it
        return data.decode()
    except UnicodeDecodeError:
        return _java_decode(chunk, name)


def _cesu_pair(match: re.Match[bytes]) -> bytes:
    cp = ord(match.group().decode("utf-8")) - 0x10000
    pair = chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF))
    return pair.encode("utf-8", "surrogatepass")


def _mutf8_encode(text: str) -> bytes:
    """What Java's ``writeUTF`` writes: surrogate pairs as 2x3 bytes, NUL as C0 80."""
    data = text.encode("utf-8", "surrogatepass")
    if _HIGH.search(data):
        data = _FOUR_BYTE.sub(_cesu_pair, data)
    return data.replace(b"\x00", b"\xc0\x80")


# --------------------------------------------------------------------------- decoding


def _cut(name: str) -> DecodeError:
    return DecodeError(f"track blob is truncated: {name} is cut off")


def _overrun(name: str, claimed: int, left: int) -> DecodeError:
    return DecodeError(
        f"track blob is truncated: {name} claims {claimed} bytes, {max(left, 0)} are left"
    )


def _read_utf(raw: bytes, pos: int, end: int, name: str) -> tuple[str, int]:
    start = pos + 2
    if start > end:
        raise _cut(name)
    stop = start + ((raw[pos] << 8) | raw[pos + 1])
    if stop > end:
        raise _overrun(name, stop - start, end - start)
    chunk = raw[start:stop]
    if chunk.isascii():
        return chunk.decode(), stop
    return _mutf8_decode(chunk, name), stop


def _read_opt_utf(raw: bytes, pos: int, end: int, name: str) -> tuple[Optional[str], int]:
    if pos >= end:
        raise _cut(name)
    if raw[pos]:
        return _read_utf(raw, pos + 1, end, name)
    return None, pos + 1


# (flags, version, size, title, author, length, identifier, is_stream, uri, artwork_url, isrc,
#  source_name, source_data, position, unpadded)
_Parsed = tuple[
    int,
    int,
    int,
    str,
    str,
    int,
    str,
    bool,
    Optional[str],
    Optional[str],
    Optional[str],
    str,
    bytes,
    int,
    bool,
]


def _frame(raw: bytes) -> tuple[bytes, int, int]:
    """Check a message's header; return (the message cut to its size, flags, size)."""
    if len(raw) < 4:
        raise DecodeError(f"track blob is truncated: {len(raw)} bytes, the header alone is 4")
    flags = raw[0] >> 6
    size = int.from_bytes(raw[:4], "big") & _MAX_MESSAGE
    if size == 0:
        raise DecodeError("track blob has message size 0 (lavaplayer's end-of-stream marker)")
    end = 4 + size
    if end > len(raw):
        raise DecodeError(
            f"track blob is truncated: header says {size} bytes, {len(raw) - 4} are present"
        )
    if end < len(raw):
        raw = raw[:end]  # bytes after the message are ignored, as the server does
    return raw, flags, size


def _parse(encoded: str) -> _Parsed:
    """Decode a blob into its fields (see ``_Parsed``), or raise DecodeError."""
    raw, flags, size = _frame(_b64decode(encoded))
    end = 4 + size
    if flags & _VERSIONED:
        version = raw[4]
        if not 1 <= version <= 3:
            raise DecodeError(f"unsupported track message version {version} (known: 1, 2, 3)")
    else:
        version = 1
    # Hot path, written out inline without bounds checks: reading past the end raises
    # IndexError, and a string running past it leaves ``pos > end`` (positions only grow), so
    # one test at the end catches every cut. Then the checked reader explains what is wrong.
    try:
        pos = 5 if flags & _VERSIONED else 4
        start = pos + 2
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        title = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "title")
        start = pos + 2
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        author = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "author")
        length = int.from_bytes(raw[pos : pos + 8], "big", signed=True)
        start = pos + 10
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        identifier = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "identifier")
        is_stream = raw[pos] != 0
        pos += 1
        uri = artwork_url = isrc = None
        if version >= 2:
            if raw[pos]:
                start = pos + 3
                pos = start + ((raw[start - 2] << 8) | raw[start - 1])
                chunk = raw[start:pos]
                uri = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "uri")
            else:
                pos += 1
            if version >= 3:
                if raw[pos]:
                    start = pos + 3
                    pos = start + ((raw[start - 2] << 8) | raw[start - 1])
                    chunk = raw[start:pos]
                    artwork_url = (
                        chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "artworkUrl")
                    )
                else:
                    pos += 1
                if raw[pos]:
                    start = pos + 3
                    pos = start + ((raw[start - 2] << 8) | raw[start - 1])
                    chunk = raw[start:pos]
                    isrc = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "isrc")
                else:
                    pos += 1
        start = pos + 2
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        source_name = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "sourceName")
        if end - pos < 8:
            raise IndexError
    except (IndexError, DecodeError):
        _explain(raw, version)
        raise  # _explain always raises; this keeps the original if it ever does not
    return (
        flags,
        version,
        size,
        title,
        author,
        length,
        identifier,
        is_stream,
        uri,
        artwork_url,
        isrc,
        source_name,
        raw[pos : end - 8],
        int.from_bytes(raw[end - 8 : end], "big", signed=True),
        len(encoded) & 3 != 0,
    )


def _explain(raw: bytes, version: int) -> None:
    """Re-read a message (already cut to its size) with every check, raising DecodeError."""
    _walk(raw, version)
    raise DecodeError("track blob could not be read")


def _walk(raw: bytes, version: int) -> int:
    """Read the common fields of a message (cut to its size) with every check.

    Returns where the source section starts; raises DecodeError if a field is cut off or a
    string is not modified UTF-8, or if fewer than 8 bytes are left for the position.
    """
    end = len(raw)
    pos = 5 if raw[0] >> 6 & _VERSIONED else 4
    _, pos = _read_utf(raw, pos, end, "title")
    _, pos = _read_utf(raw, pos, end, "author")
    if pos + 8 > end:
        raise _cut("length")
    _, pos = _read_utf(raw, pos + 8, end, "identifier")
    if pos >= end:
        raise _cut("isStream")
    pos += 1
    for name, since in (("uri", 2), ("artworkUrl", 3), ("isrc", 3)):
        if version >= since:
            _, pos = _read_opt_utf(raw, pos, end, name)
    _, pos = _read_utf(raw, pos, end, "sourceName")
    if end - pos < 8:
        raise _cut("position (the last 8 bytes)")
    return pos


def check_blob(encoded: str) -> None:
    """Raise DecodeError (a ValueError) unless ``encoded`` is shaped like a track blob.

    What Lavalink's reader would choke on is checked before anything is sent: base64, the
    header (flags and size against the bytes present), the version byte, each common field
    (title, author, length, identifier, isStream, uri, artworkUrl, isrc, sourceName) and its
    modified UTF-8, and room for the 8-byte position. Whatever sits between ``sourceName`` and
    the position is the source's own section and is not read, so blobs of sources (plugins)
    this module does not know pass. Like the server, a version byte of 0 reads with the v1
    layout; a version above 3 is a layout not known here, so only its framing is checked.
    Whether the node has the source is for the node to say.
    """
    raw, flags, _ = _frame(_b64decode(encoded))
    version = raw[4] if flags & _VERSIONED else 1
    if version <= 3:
        _walk(raw, version)


def _info_dict(p: _Parsed) -> dict[str, Any]:
    return {
        "identifier": p[6],
        "isSeekable": not p[7],
        "author": p[4],
        "length": p[5],
        "isStream": p[7],
        "position": p[13],
        "title": p[3],
        "uri": p[8],
        "artworkUrl": p[9],
        "isrc": p[10],
        "sourceName": p[11],
    }


def decode_info(encoded: str) -> dict[str, Any]:
    """Decode a blob into a wire-shaped TrackInfo dict (camelCase keys, as Lavalink sends it).

    ``isSeekable`` is ``not isStream`` (the blob does not carry it). Raises DecodeError.
    """
    return _info_dict(_parse(encoded))


class TrackBlob(NamedTuple):
    """Everything in a blob: the info dict plus what is needed to write it back unchanged."""

    info: dict[str, Any]
    version: int
    flags: int
    message_size: int
    source_data: bytes
    unpadded: bool = False

    @property
    def source_fields(self) -> dict[str, Any]:
        """The source section parsed for known sources (see :func:`parse_source_fields`)."""
        return parse_source_fields(self.info["sourceName"], self.source_data, self.version)


def decode_blob(encoded: str) -> TrackBlob:
    """Decode a blob into a :class:`TrackBlob`. Raises DecodeError."""
    p = _parse(encoded)
    return TrackBlob(_info_dict(p), p[1], p[0], p[2], p[12], p[14])


def parse_source_fields(source_name: str, data: bytes, version: int = 3) -> dict[str, Any]:
    """Interpret a source-specific section; ``{}`` when empty or not understood.

    * ``http``/``local``: ``{"probeInfo": str}`` (container probe name, maybe ``|`` + params).
    * LavaSrc sources (and LavaSrc's ``youtube``) in v3 blobs: ``albumName``, ``albumUrl``,
      ``artistUrl``, ``artistArtworkUrl``, ``previewUrl`` (each str or None), ``isPreview``.
    * LavaSrc sources in v2 blobs (LavaSrc v3, Lavalink v3): ``isrc`` and ``artworkUrl``.

    The section must parse exactly (no byte left over), else the result is ``{}``.
    """
    if not data:
        return {}
    end = len(data)
    try:
        if source_name in _PROBE_SOURCES:
            probe, pos = _read_utf(data, 0, end, "probeInfo")
            return {"probeInfo": probe} if pos == end else {}
        if source_name in LAVASRC_SOURCES and version <= 2:
            isrc, pos = _read_opt_utf(data, 0, end, "isrc")
            artwork, pos = _read_opt_utf(data, pos, end, "artworkUrl")
            return {"isrc": isrc, "artworkUrl": artwork} if pos == end else {}
        if source_name in LAVASRC_SOURCES or source_name == "youtube":
            fields: dict[str, Any] = {}
            pos = 0
            for key in ("albumName", "albumUrl", "artistUrl", "artistArtworkUrl", "previewUrl"):
                fields[key], pos = _read_opt_utf(data, pos, end, key)
            if pos == end - 1:
                fields["isPreview"] = data[pos] != 0
                pos += 1
            return fields if pos == end else {}
    except DecodeError:
        return {}
    return {}


# --------------------------------------------------------------------------- encoding


def _utf(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str, not {type(value).__name__}")
    data = (
        value.encode("ascii") if value.isascii() and "\x00" not in value else _mutf8_encode(value)
    )
    n = len(data)
    if n > MAX_STRING_BYTES:
        raise ValueError(f"{name} is {n} bytes in modified UTF-8; a track string holds 65535")
    return n.to_bytes(2, "big") + data


def _opt_utf(value: Any, name: str) -> bytes:
    return b"\x00" if value is None else b"\x01" + _utf(value, name)


def _i64(value: Any, name: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if not _I64_MIN <= value <= _I64_MAX:
        raise ValueError(f"{name} {value} does not fit a signed 64-bit integer")
    return value.to_bytes(8, "big", signed=True)


def _encode(
    info: Mapping[str, Any],
    source_data: bytes,
    version: int,
    flags: Optional[int] = None,
    unpadded: bool = False,
) -> str:
    if isinstance(version, bool) or version not in (1, 2, 3):
        raise ValueError(f"version must be 1, 2 or 3, not {version!r}")
    if flags is None:
        flags = 0 if version == 1 else _VERSIONED
    elif flags not in (0, 1, 2, 3) or (version > 1 and not flags & _VERSIONED):
        raise ValueError(f"header flags {flags!r} do not fit version {version}")
    if not isinstance(source_data, (bytes, bytearray, memoryview)):
        raise ValueError(f"source_data must be bytes, not {type(source_data).__name__}")
    try:
        is_stream = info["isStream"]
        parts = [
            bytes((version,)) if flags & _VERSIONED else b"",
            _utf(info["title"], "title"),
            _utf(info["author"], "author"),
            _i64(info["length"], "length"),
            _utf(info["identifier"], "identifier"),
        ]
        source_name = info["sourceName"]
    except KeyError as exc:
        raise ValueError(f"track info lacks the field {exc.args[0]!r}") from None
    if not isinstance(is_stream, bool):
        raise ValueError(f"isStream must be a bool, not {type(is_stream).__name__}")
    parts.append(b"\x01" if is_stream else b"\x00")
    optional = (("uri", 2), ("artworkUrl", 3), ("isrc", 3))
    for key, since in optional:
        value = info.get(key)
        if version >= since:
            parts.append(_opt_utf(value, key))
        elif value is not None:
            raise ValueError(f"a version {version} track blob has no room for {key}")
    parts.append(_utf(source_name, "sourceName"))
    parts.append(bytes(source_data))
    parts.append(_i64(info.get("position", 0), "position"))
    body = b"".join(parts)
    if len(body) > _MAX_MESSAGE:
        raise ValueError(f"track message of {len(body)} bytes exceeds the 30-bit size field")
    header = ((flags << 30) | len(body)).to_bytes(4, "big")
    text = binascii.b2a_base64(header + body, newline=False).decode("ascii")
    return text.rstrip("=") if unpadded else text


def encode_info(info: Mapping[str, Any], *, source_data: bytes = b"", version: int = 3) -> str:
    """Write a blob from a wire-shaped info dict (camelCase keys; ``isSeekable`` is ignored).

    Needs title, author, length, identifier, isStream, sourceName; uri, artworkUrl, isrc default
    to None and position to 0. ``source_data`` is written between sourceName and position, as
    is. Version 1 has no uri, version 2 no artworkUrl/isrc: a non-None value there is a
    ValueError, as is a string over 65535 bytes of modified UTF-8.
    """
    return _encode(info, source_data, version)


def with_position(encoded: str, position: int) -> str:
    """The same blob with its position (start offset, ms) replaced; its size is unchanged.

    Raises DecodeError for a bad blob, ValueError for a negative or too large position.
    """
    if isinstance(position, bool) or not isinstance(position, int):
        raise ValueError(f"position must be an int, not {type(position).__name__}")
    if not 0 <= position <= _I64_MAX:
        raise ValueError(f"position must be between 0 and 2**63-1, not {position}")
    p = _parse(encoded)
    raw = bytearray(_b64decode(encoded))
    end = 4 + p[2]
    raw[end - 8 : end] = position.to_bytes(8, "big")
    text = binascii.b2a_base64(bytes(raw), newline=False).decode("ascii")
    return text.rstrip("=") if p[14] else text


# --------------------------------------------------------------------------- model level


_INFO_ORDER = (
    "identifier",
    "is_seekable",
    "author",
    "length",
    "is_stream",
    "position",
    "title",
    "uri",
    "source_name",
    "artwork_url",
    "isrc",
)
_MODELS: Optional[tuple[type[Track], type[TrackInfo]]] = None
_new = object.__new__
_a2b: Any = binascii.a2b_base64
#: a2b_base64 can refuse what Java's decoder refuses (3.11+); older Pythons take the slow path
_STRICT_B64 = sys.version_info >= (3, 11)


def _load_models() -> tuple[type[Track], type[TrackInfo]]:
    # Imported on first use so that the dict-level layer (used by the fake node) needs no
    # models; cached because an import statement in the hot path costs more than the parse.
    global _MODELS
    from .models import Track, TrackInfo

    # decode_track fills the instances' __dict__ directly: that needs exactly these fields
    # and no __post_init__ (a test keeps this true).
    info_names = tuple(field.name for field in dataclasses.fields(TrackInfo))
    track_names = tuple(field.name for field in dataclasses.fields(Track))
    if (
        info_names != _INFO_ORDER
        or track_names != ("encoded", "info", "plugin_info", "user_data")
        or hasattr(Track, "__post_init__")
        or hasattr(TrackInfo, "__post_init__")
    ):
        raise RuntimeError("lavasync.codec.decode_track does not match the Track models")
    _MODELS = (Track, TrackInfo)
    return _MODELS


def decode_track(encoded: str) -> Track:
    """Decode a blob into a :class:`~lavasync.models.Track` whose ``encoded`` is the input.

    ``is_seekable`` is ``not is_stream``; ``plugin_info`` and ``user_data`` are empty (they are
    not in the blob). Use :func:`decode_blob` for the version and source section. Raises
    DecodeError.
    """
    track_cls, info_cls = _MODELS or _load_models()
    # A dedicated parse of the fields a Track holds, inline (no tuple of every field, no
    # source-section slice). Anything unusual (not str, unpadded or bad base64, a bad header
    # or version, a cut string, text that is not plain modified UTF-8) goes to the checked
    # reader below, which decodes it or raises the precise DecodeError.
    try:
        if type(encoded) is not str or not _STRICT_B64 or len(encoded) & 3:
            raise ValueError
        if encoded.endswith("==="):  # a2b_base64 takes "====" where Java refuses it
            raise ValueError
        raw = _a2b(encoded, strict_mode=True)  # ValueError for non-ASCII or bad base64
        end = 4 + (int.from_bytes(raw[:4], "big") & _MAX_MESSAGE)
        if raw[0] & 0x40:  # versioned
            version = raw[4]
            pos = 5
            if not 1 <= version <= 3:
                raise ValueError
        else:
            version = 1
            pos = 4
        if end == 4 or end > len(raw):
            raise ValueError
        start = pos + 2
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        title = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "title")
        start = pos + 2
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        author = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "author")
        length = int.from_bytes(raw[pos : pos + 8], "big", signed=True)
        start = pos + 10
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        identifier = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "identifier")
        stream = raw[pos] != 0
        pos += 1
        uri = art = isrc = None
        if version >= 2:
            if raw[pos]:
                start = pos + 3
                pos = start + ((raw[start - 2] << 8) | raw[start - 1])
                chunk = raw[start:pos]
                uri = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "uri")
            else:
                pos += 1
            if version == 3:
                if raw[pos]:
                    start = pos + 3
                    pos = start + ((raw[start - 2] << 8) | raw[start - 1])
                    chunk = raw[start:pos]
                    art = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "art")
                else:
                    pos += 1
                if raw[pos]:
                    start = pos + 3
                    pos = start + ((raw[start - 2] << 8) | raw[start - 1])
                    chunk = raw[start:pos]
                    isrc = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "isrc")
                else:
                    pos += 1
        start = pos + 2
        pos = start + ((raw[start - 2] << 8) | raw[start - 1])
        chunk = raw[start:pos]
        source = chunk.decode() if chunk.isascii() else _mutf8_decode(chunk, "sourceName")
        if end - pos < 8:  # positions only grow: this also catches every string cut by `end`
            raise ValueError
        pos = int.from_bytes(raw[end - 8 : end], "big", signed=True)
    except (ValueError, IndexError):  # DecodeError is a ValueError
        (_, _, _, title, author, length, identifier, stream, uri, art, isrc, source, _, pos, _) = (
            _parse(encoded)
        )
    # Filled in directly, as the models' compiled wire decoder does (no __init__ call: the
    # values are already checked and neither class has a __post_init__).
    info = _new(info_cls)
    info.__dict__ = {
        "identifier": identifier,
        "is_seekable": not stream,
        "author": author,
        "length": length,
        "is_stream": stream,
        "position": pos,
        "title": title,
        "uri": uri,
        "source_name": source,
        "artwork_url": art,
        "isrc": isrc,
    }
    track = _new(track_cls)
    # plugin_info and user_data (empty: not in the blob) are made on first read
    track.__dict__ = {"encoded": encoded, "info": info}
    return track


def encode_track(track: Track) -> str:
    """Write a blob from ``track.info``.

    The version, header flags, padding style and source-specific bytes come from
    ``track.encoded`` when it decodes and names the same source (so a decoded track round-trips
    byte for byte, and an http track keeps its probe info). Otherwise the blob is version 3
    with no source section. A version 1/2 blob is kept at its version unless the info needs
    fields it has no room for; then it is written as version 3 if its source section does not
    depend on the version, else ValueError.
    """
    info = track.info
    fields = {
        "title": info.title,
        "author": info.author,
        "length": info.length,
        "identifier": info.identifier,
        "isStream": info.is_stream,
        "uri": info.uri,
        "artworkUrl": info.artwork_url,
        "isrc": info.isrc,
        "sourceName": info.source_name,
        "position": info.position,
    }
    try:
        old: Optional[_Parsed] = _parse(track.encoded) if track.encoded else None
    except DecodeError:
        old = None
    if old is None or old[11] != info.source_name:
        return _encode(fields, b"", 3)
    flags, version, source_data, unpadded = old[0], old[1], old[12], old[14]
    needed = 1 if info.uri is None else 2
    if info.artwork_url is not None or info.isrc is not None:
        needed = 3
    if needed > version:
        if source_data and info.source_name not in _PROBE_SOURCES:
            raise ValueError(
                f"this {info.source_name!r} track is a version {version} blob whose source "
                f"section may depend on the version; it cannot hold the fields set in its info"
            )
        version = 3
        flags |= _VERSIONED
    return _encode(fields, source_data, version, flags, unpadded)


# --------------------------------------------------------------------------- CLI


def _shown(value: Any) -> str:
    if isinstance(value, str) and value.isprintable():
        return value
    return repr(value)


def _duration(ms: int) -> str:
    if ms == _I64_MAX:
        return f"{ms} (unknown / live)"
    if ms < 0:
        return str(ms)
    minutes, millis = divmod(ms, 60_000)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02}" if hours else str(minutes)
    return f"{ms} ({clock}:{millis / 1000:06.3f})"


_CLI_ORDER = (
    "title",
    "author",
    "length",
    "identifier",
    "isStream",
    "isSeekable",
    "uri",
    "artworkUrl",
    "isrc",
    "sourceName",
    "position",
)


def _describe(encoded: str) -> list[tuple[str, str]]:
    blob = decode_blob(encoded)
    info = blob.info
    rows = [(key, _shown(info[key])) for key in _CLI_ORDER]
    rows[2] = ("length", _duration(info["length"]))
    rows[10] = ("position", _duration(info["position"]))
    rows += [
        ("version", str(blob.version)),
        ("flags", str(blob.flags)),
        ("messageSize", str(blob.message_size)),
        ("sourceData", blob.source_data.hex() or "(none)"),
    ]
    rows += [(f"source.{key}", _shown(value)) for key, value in blob.source_fields.items()]
    return rows


def _cli_configure_decode(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m lavasync decode``."""
    parser.add_argument(
        "blobs",
        nargs="+",
        metavar="BLOB",
        help="encoded track string(s); '-' reads lines from stdin",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per blob")


def _cli_decode(args: argparse.Namespace) -> int:
    """``python -m lavasync decode BLOB...``: print each blob's fields, one per line."""
    blobs: list[str] = []
    for blob in args.blobs:
        if blob == "-":
            blobs.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            blobs.append(blob)
    if isinstance(sys.stdout, io.TextIOWrapper):  # an emoji title on a non-UTF-8 console
        sys.stdout.reconfigure(errors="backslashreplace")
    status = 0
    for index, blob in enumerate(blobs):
        try:
            if args.json:
                b = decode_blob(blob)
                out = {
                    **b.info,
                    "version": b.version,
                    "flags": b.flags,
                    "messageSize": b.message_size,
                    "sourceData": b.source_data.hex(),
                    "sourceFields": b.source_fields,
                }
                print(json.dumps(out, ensure_ascii=True))
                continue
            rows = _describe(blob)
        except DecodeError as exc:
            print(f"error: blob {index + 1}: {exc}", file=sys.stderr)
            status = 1
            continue
        if index:
            print()
        width = max(len(key) for key, _ in rows) + 1
        for key, value in rows:
            print(f"{key + ':':<{width}} {value}")
    return status
