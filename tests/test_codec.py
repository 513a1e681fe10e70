"""Track blob codec: vectors, modified UTF-8, bad input, property tests, CLI."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import VECTORS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lavasync import codec
from lavasync.__main__ import main
from lavasync.codec import (
    decode_blob,
    decode_info,
    encode_info,
    parse_source_fields,
    with_position,
)
from lavasync.errors import DecodeError

ALL_VECTORS: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))
VECS = ALL_VECTORS
IDS = [
    f"{i}-v{v['version']}-{v['info']['sourceName'] or 'empty'}" for i, v in enumerate(ALL_VECTORS)
]
I64_MAX = 2**63 - 1

HTTP_V3 = next(v for v in ALL_VECTORS if v["info"]["sourceName"] == "http" and v["version"] == 3)
EMOJI = next(v for v in ALL_VECTORS if "\U0001f33f" in v["info"]["title"])
SPOTIFY_V3 = next(
    v for v in ALL_VECTORS if v["info"]["sourceName"] == "spotify" and v["version"] == 3
)
SPOTIFY_V2 = next(
    v for v in ALL_VECTORS if v["info"]["sourceName"] == "spotify" and v["version"] == 2
)


def raw_of(encoded: str) -> bytes:
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def reframe(body: bytes, flags: int = 1) -> str:
    """A blob whose header size matches ``body``."""
    return b64(((flags << 30) | len(body)).to_bytes(4, "big") + body)


def info(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "Title",
        "author": "Author",
        "length": 1000,
        "identifier": "id",
        "isStream": False,
        "uri": None,
        "artworkUrl": None,
        "isrc": None,
        "sourceName": "youtube",
        "position": 0,
    }
    base.update(changes)
    return base


def utf_field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


# --------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_vector_decodes_to_recorded_fields(vector: dict[str, Any]) -> None:
    blob = decode_blob(vector["encoded"])
    got = dict(blob.info)
    assert got.pop("isSeekable") is (not vector["info"]["isStream"])
    assert got == vector["info"]
    assert blob.version == vector["version"]
    assert blob.flags == vector["flags"]
    assert blob.message_size == vector["messageSize"]
    if "sourceSpecificHex" in vector:
        assert blob.source_data.hex() == vector["sourceSpecificHex"]
    expected = vector.get("sourceFields", vector.get("sourceFieldsLegacyLavaSrcV3", {}))
    assert blob.source_fields == expected
    assert decode_info(vector["encoded"]) == blob.info


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_vector_round_trips_byte_for_byte(vector: dict[str, Any]) -> None:
    blob = decode_blob(vector["encoded"])
    again = codec._encode(blob.info, blob.source_data, blob.version, blob.flags, blob.unpadded)
    assert again == vector["encoded"]
    # encode_info writes padded base64 but the same bytes, at the blob's own version
    written = encode_info(blob.info, source_data=blob.source_data, version=blob.version)
    assert raw_of(written) == raw_of(vector["encoded"])
    assert written.endswith("=") or len(written) % 4 == 0


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_with_position_rewrites_only_the_last_8_bytes(vector: dict[str, Any]) -> None:
    moved = with_position(vector["encoded"], 123_456)
    assert len(moved) == len(vector["encoded"])
    before, after = raw_of(vector["encoded"]), raw_of(moved)
    assert after[:-8] == before[:-8]
    assert int.from_bytes(after[-8:], "big") == 123_456
    assert decode_info(moved) == {**decode_info(vector["encoded"]), "position": 123_456}
    assert with_position(moved, vector["info"]["position"]) == vector["encoded"]


def test_walkthrough_blob_from_the_spec() -> None:
    blob = decode_blob(HTTP_V3["encoded"])
    assert raw_of(HTTP_V3["encoded"])[:5] == bytes.fromhex("4000008d03")
    assert blob.info["title"] == "Death of Me"
    assert blob.info["length"] == 30040
    assert blob.source_fields == {"probeInfo": "mp3"}


def test_missing_padding_is_accepted_and_kept() -> None:
    unpadded = HTTP_V3["encoded"].rstrip("=")
    assert len(unpadded) % 4 != 0
    assert decode_info(unpadded) == decode_info(HTTP_V3["encoded"])
    blob = decode_blob(unpadded)
    assert blob.unpadded
    assert not decode_blob(HTTP_V3["encoded"]).unpadded
    assert codec._encode(blob.info, blob.source_data, 3, 1, blob.unpadded) == unpadded
    moved = with_position(unpadded, 5)
    assert moved == with_position(HTTP_V3["encoded"], 5).rstrip("=")


def test_trailing_bytes_after_the_message_are_ignored() -> None:
    raw = raw_of(HTTP_V3["encoded"])
    assert decode_info(b64(raw + b"\x01\x02\x03")) == decode_info(HTTP_V3["encoded"])


def test_header_flags_2_reads_like_0_and_3_like_1() -> None:
    raw = raw_of(HTTP_V3["encoded"])
    three = b64(bytes([raw[0] | 0x80]) + raw[1:])
    blob = decode_blob(three)
    assert (blob.flags, blob.version) == (3, 3)
    assert codec._encode(blob.info, blob.source_data, 3, blob.flags) == three
    v1 = next(v for v in ALL_VECTORS if v["version"] == 1)
    raw1 = raw_of(v1["encoded"])
    two = b64(bytes([raw1[0] | 0x80]) + raw1[1:])
    assert decode_blob(two).version == 1
    assert decode_info(two)["title"] == v1["info"]["title"]


def test_version_byte_1_with_the_versioned_flag_uses_the_v1_layout() -> None:
    v1 = next(v for v in ALL_VECTORS if v["version"] == 1)
    body = b"\x01" + raw_of(v1["encoded"])[4:]
    blob = decode_blob(reframe(body))
    assert (blob.version, blob.flags) == (1, 1)
    assert blob.info["title"] == v1["info"]["title"]
    assert codec._encode(blob.info, b"", 1, 1) == reframe(body)


# --------------------------------------------------------------------------- modified UTF-8


def test_emoji_is_a_surrogate_pair_of_six_bytes() -> None:
    raw = raw_of(EMOJI["encoded"])
    assert bytes.fromhex("eda0bcedbcbf") in raw
    assert decode_info(EMOJI["encoded"])["title"].endswith("\U0001f33f")
    assert bytes.fromhex("0006eda0bcedbcbf") in raw_of(encode_info(info(title="\U0001f33f")))


def test_nul_is_written_as_c0_80_and_read_back() -> None:
    raw = raw_of(encode_info(info(title="a\x00b")))
    assert b"\x00\x04a\xc0\x80b" in raw
    assert decode_info(b64(raw))["title"] == "a\x00b"


def test_raw_nul_byte_is_accepted_like_java() -> None:
    raw = raw_of(encode_info(info(title="a_b")))
    assert decode_info(b64(raw.replace(b"a_b", b"a\x00b")))["title"] == "a\x00b"


def test_four_byte_utf8_is_rejected_like_java() -> None:
    raw = raw_of(encode_info(info(title="xxxx")))
    bad = raw.replace(b"xxxx", "\U0001f33f".encode())
    with pytest.raises(DecodeError, match="title: malformed modified UTF-8"):
        decode_info(b64(bad))


def test_overlong_forms_are_read_like_java() -> None:
    raw = raw_of(encode_info(info(title="xx")))
    # C1 81 is an overlong 'A'; Java's readUTF accepts it, strict UTF-8 does not
    assert decode_info(b64(raw.replace(b"xx", b"\xc1\x81")))["title"] == "A"
    raw3 = raw_of(encode_info(info(title="xxx")))
    assert decode_info(b64(raw3.replace(b"xxx", b"\xe0\x81\x81")))["title"] == "A"


@pytest.mark.parametrize(
    "chunk",
    [b"\x80x", b"\xc3", b"\xe2\x82", b"\xe2(\xa1", b"\xc3(", b"\xf8xxx", b"\xed\xa0"],
    ids=["lone-continuation", "cut-2", "cut-3", "bad-3", "bad-2", "f8", "cut-surrogate"],
)
def test_malformed_strings_raise_decode_error(chunk: bytes) -> None:
    marker = b"Z" * len(chunk)
    raw = raw_of(encode_info(info(author=marker.decode())))
    with pytest.raises(DecodeError, match="author: malformed"):
        decode_info(b64(raw.replace(marker, chunk)))


def test_lone_surrogate_survives_a_round_trip() -> None:
    encoded = encode_info(info(title="a\ud800b"))
    assert b"\xed\xa0\x80" in raw_of(encoded)
    assert decode_info(encoded)["title"] == "a\ud800b"


def test_cjk_and_two_byte_characters_are_plain_utf8() -> None:
    text = "君に届け é ß"
    raw = raw_of(encode_info(info(title=text)))
    assert utf_field(text.encode("utf-8")) in raw
    assert decode_info(b64(raw))["title"] == text


def test_string_limit_is_65535_modified_utf8_bytes() -> None:
    assert decode_info(encode_info(info(title="a" * 65535)))["title"] == "a" * 65535
    with pytest.raises(ValueError, match="65536 bytes"):
        encode_info(info(title="a" * 65536))
    # an emoji costs 6 bytes, NUL 2: 10922 emoji = 65532 bytes fit, one more NUL does not
    fits = "\U0001f600" * 10922 + "\x00a"  # 65532 + 2 + 1 bytes
    assert decode_info(encode_info(info(author=fits)))["author"] == fits
    with pytest.raises(ValueError, match="author is 65536 bytes"):
        encode_info(info(author="\U0001f600" * 10922 + "\x00\x00"))


# --------------------------------------------------------------------------- nullable fields


def test_nullable_fields_present_and_absent() -> None:
    full = info(uri="https://x/1", artworkUrl="https://x/a.jpg", isrc="USX", position=7)
    assert {k: v for k, v in decode_info(encode_info(full)).items() if k != "isSeekable"} == full
    assert decode_info(encode_info(info()))["uri"] is None
    only_isrc = info(isrc="Q")
    assert decode_info(encode_info(only_isrc))["isrc"] == "Q"


def test_older_versions_have_no_room_for_newer_fields() -> None:
    with pytest.raises(ValueError, match="no room for uri"):
        encode_info(info(uri="u"), version=1)
    with pytest.raises(ValueError, match="no room for artworkUrl"):
        encode_info(info(artworkUrl="a"), version=2)
    v1 = encode_info(info(), version=1)
    assert raw_of(v1)[0] == 0  # flags 0: no version byte
    assert decode_blob(v1).version == 1
    assert decode_blob(encode_info(info(uri="u"), version=2)).version == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": None}, "title must be a str"),
        ({"length": "5"}, "length must be an int"),
        ({"length": True}, "length must be an int"),
        ({"length": 2**63}, "signed 64-bit"),
        ({"position": -(2**63) - 1}, "signed 64-bit"),
        ({"isStream": 1}, "isStream must be a bool"),
        ({"uri": 5}, "uri must be a str"),
    ],
)
def test_encode_rejects_bad_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_info(info(**changes))


def test_encode_rejects_missing_fields_and_bad_options() -> None:
    partial = info()
    del partial["sourceName"]
    with pytest.raises(ValueError, match="'sourceName'"):
        encode_info(partial)
    with pytest.raises(ValueError, match="version must be 1, 2 or 3"):
        encode_info(info(), version=4)
    with pytest.raises(ValueError, match="source_data must be bytes"):
        encode_info(info(), source_data="00")  # type: ignore[arg-type]


def test_encode_extremes() -> None:
    blob = encode_info(info(length=I64_MAX, isStream=True, position=I64_MAX, title=""))
    got = decode_info(blob)
    assert (got["length"], got["position"], got["title"], got["isSeekable"]) == (
        I64_MAX,
        I64_MAX,
        "",
        False,
    )
    assert decode_info(encode_info(info(length=-(2**63))))["length"] == -(2**63)


def test_with_position_validates_its_argument() -> None:
    for bad in (-1, 2**63, 1.5, True):
        with pytest.raises(ValueError, match="position"):
            with_position(HTTP_V3["encoded"], bad)  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        with_position("QAAA", 0)


# --------------------------------------------------------------------------- source sections


def test_source_fields_parsing() -> None:
    probe = utf_field(b"mp3|bitrate=128")
    assert parse_source_fields("local", probe) == {"probeInfo": "mp3|bitrate=128"}
    assert parse_source_fields("http", probe + b"x") == {}  # must parse exactly
    assert parse_source_fields("http", b"\x00") == {}
    assert parse_source_fields("youtube", b"") == {}
    assert parse_source_fields("somethingelse", b"\x01\x02") == {}
    five_nulls = b"\x00" * 5
    assert parse_source_fields("deezer", five_nulls + b"\x01")["isPreview"] is True
    assert "isPreview" not in parse_source_fields("tidal", five_nulls)
    assert parse_source_fields("applemusic", five_nulls + b"\x01\x00") == {}
    ytdlp = parse_source_fields("youtube", b"\x01" + utf_field(b"Album") + b"\x00" * 4 + b"\x00")
    assert ytdlp["albumName"] == "Album"
    assert parse_source_fields("spotify", b"\x01\x00\x01Q\x00", version=2) == {
        "isrc": "Q",
        "artworkUrl": None,
    }


def test_unknown_source_keeps_its_section() -> None:
    section = bytes(range(40))
    blob = encode_info(info(sourceName="myplugin", position=9), source_data=section)
    decoded = decode_blob(blob)
    assert decoded.source_data == section
    assert decoded.source_fields == {}
    assert decoded.info["position"] == 9
    assert encode_info(decoded.info, source_data=decoded.source_data) == blob


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("", "truncated"),
        ("Q", "bad length"),
        ("QAAA", "truncated"),
        ("AAAAAQ==", "truncated"),
        ("QAAAAQ==", "truncated"),
        ("QAAAAA==", "message size 0"),
        ("AAAAAAAAAAAA", "message size 0"),
        ("QAAAjQMAC0Rl YXRo", "not standard base64"),
        ("QAAAjQMAC0Rl\nYXRo", "not standard base64"),
        ("QAAAjQMAC0Rl-_Ro", "URL-safe"),
        ("QAAAjQMAC0Rl*XRo", "not standard base64"),
        ("QAAAjQMAC0Rl\u00e9XRo", "non-ASCII"),
        ("QA==QA==", "not standard base64"),
        ("QAAAjQMAC0RlYXRo===", "bad padding"),
        ("QAAAjQMAC0RlYXRo====", "bad padding"),
        ("QAAAjQMAC0RlYXRoIA=", "bad padding"),
    ],
)
def test_bad_text_raises_decode_error(encoded: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_info(encoded)


def test_non_str_input_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="str, not bytes"):
        decode_info(HTTP_V3["encoded"].encode())  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="str, not NoneType"):
        decode_info(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [0, 4, 255])
def test_unknown_version_byte_raises(version: int) -> None:
    raw = bytearray(raw_of(HTTP_V3["encoded"]))
    raw[4] = version
    with pytest.raises(DecodeError, match=f"unsupported track message version {version}"):
        decode_info(b64(bytes(raw)))


def test_absurd_lengths_fail_fast() -> None:
    huge_header = (0x3FFFFFFF | 1 << 30).to_bytes(4, "big") + b"\x03"
    with pytest.raises(DecodeError, match="header says 1073741823 bytes"):
        decode_info(b64(huge_header + b"\x00" * 100))
    raw = bytearray(raw_of(HTTP_V3["encoded"]))
    raw[5:7] = b"\xff\xff"  # title claims 65535 bytes
    with pytest.raises(DecodeError, match="title claims 65535 bytes"):
        decode_info(b64(bytes(raw)))


def test_nothing_left_for_the_position() -> None:
    body = b"\x03" + utf_field(b"t") + utf_field(b"a") + bytes(8) + utf_field(b"i") + b"\x00"
    body += b"\x00\x00\x00" + utf_field(b"youtube") + bytes(7)
    with pytest.raises(DecodeError, match="position"):
        decode_info(reframe(body))
    assert decode_info(reframe(body + b"\x00"))["sourceName"] == "youtube"


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_every_prefix_fails_cleanly(vector: dict[str, Any]) -> None:
    raw = raw_of(vector["encoded"])
    source_start = len(raw) - 8 - len(decode_blob(vector["encoded"]).source_data)
    for cut in range(len(raw)):
        # the bytes cut short (header promises more) ...
        with pytest.raises(DecodeError, match="truncated"):
            decode_info(b64(raw[:cut]))
        # ... and a consistent header, so that the parser walks into the cut field; a cut
        # that leaves 8 bytes after sourceName is a (shorter) source section, not an error
        if cut > 4:
            cut_blob = reframe(raw[4:cut], flags=raw[0] >> 6)
            if cut < source_start + 8:
                with pytest.raises(DecodeError):
                    decode_info(cut_blob)
            else:
                assert decode_blob(cut_blob).source_data == raw[source_start : cut - 8]
    stripped = vector["encoded"].rstrip("=")
    for cut in range(len(stripped)):
        with pytest.raises(DecodeError):
            decode_info(stripped[:cut])


# --------------------------------------------------------------------------- property tests

SAFE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_decode_error(encoded: str) -> None:
    try:
        got = decode_blob(encoded)
    except DecodeError as exc:
        message = str(exc)
        assert message, "a DecodeError must say what is wrong"
        # decode_track's own inline parse refuses exactly what the checked reader refuses
        with pytest.raises(DecodeError) as caught:
            codec.decode_track(encoded)
        assert str(caught.value) == message
        return
    assert codec.decode_track(encoded).info.to_wire() == got.info
    assert set(got.info) >= {"title", "sourceName", "position"}
    assert isinstance(got.source_fields, dict)


@SAFE
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    _decodes_or_decode_error(b64(data))


@SAFE
@given(st.binary(min_size=1, max_size=300), st.integers(min_value=0, max_value=3))
def test_random_bodies_with_a_consistent_header_never_crash(body: bytes, flags: int) -> None:
    _decodes_or_decode_error(reframe(body, flags))


@SAFE
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    _decodes_or_decode_error(text)


@SAFE
@given(
    st.sampled_from(ALL_VECTORS),
    st.lists(
        st.tuples(
            st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_vectors_never_crash(
    vector: dict[str, Any], edits: list[tuple[str, int, int]]
) -> None:
    raw = bytearray(raw_of(vector["encoded"]))
    for op, where, value in edits:
        at = where % (len(raw) + 1)
        if op == "insert":
            raw.insert(at, value)
        elif raw and at < len(raw):
            if op == "set":
                raw[at] = value
            else:
                del raw[at]
    _decodes_or_decode_error(b64(bytes(raw)))
    if len(raw) > 4:  # keep the header consistent too, so mutations reach the fields
        _decodes_or_decode_error(reframe(bytes(raw[4:]), raw[0] >> 6))


TEXT = st.text(max_size=60)
OPTIONAL_TEXT = st.none() | TEXT
I64 = st.integers(min_value=-(2**63), max_value=I64_MAX)


@st.composite
def track_infos(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "title": draw(TEXT | st.just("a\x00\U0001f33f\u00e9\ufffd")),
        "author": draw(TEXT),
        "length": draw(I64 | st.just(I64_MAX)),
        "identifier": draw(TEXT),
        "isStream": draw(st.booleans()),
        "uri": draw(OPTIONAL_TEXT),
        "artworkUrl": draw(OPTIONAL_TEXT),
        "isrc": draw(OPTIONAL_TEXT),
        "sourceName": draw(TEXT),
        "position": draw(I64),
    }


@SAFE
@given(track_infos(), st.binary(max_size=40))
def test_generated_tracks_round_trip(fields: dict[str, Any], section: bytes) -> None:
    encoded = encode_info(fields, source_data=section)
    blob = decode_blob(encoded)
    assert blob.info == {**fields, "isSeekable": not fields["isStream"]}
    assert blob.source_data == section
    assert blob.version == 3
    assert encode_info(blob.info, source_data=blob.source_data) == encoded
    moved = with_position(encoded, 42)
    assert decode_info(moved)["position"] == 42


@SAFE
@given(track_infos(), st.sampled_from([1, 2]))
def test_generated_old_version_tracks_round_trip(fields: dict[str, Any], version: int) -> None:
    fields = {**fields, "artworkUrl": None, "isrc": None}
    if version == 1:
        fields["uri"] = None
    encoded = encode_info(fields, version=version)
    blob = decode_blob(encoded)
    assert blob.version == version
    assert {k: v for k, v in blob.info.items() if k != "isSeekable"} == fields


@SAFE
@given(st.text(max_size=300))
def test_modified_utf8_matches_java_rules(text: str) -> None:
    data = codec._mutf8_encode(text)
    assert b"\x00" not in data
    assert not any(b >= 0xF0 for b in data)  # no 4-byte sequences
    assert codec._mutf8_decode(data, "t") == text
    assert codec._java_decode(data, "t") == text


# --------------------------------------------------------------------------- CLI


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_cli_decode_prints_one_field_per_line() -> None:
    status, out, err = run_cli("decode", HTTP_V3["encoded"])
    assert status == 0, err
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["title"].strip() == "Death of Me"
    assert lines["length"].strip() == "30040 (0:30.040)"
    assert lines["version"].strip() == "3"
    assert lines["source.probeInfo"].strip() == "mp3"
    assert out.splitlines()[0].startswith("title:")


def test_cli_decode_json_and_errors() -> None:
    status, out, err = run_cli("decode", "--json", SPOTIFY_V3["encoded"], "not-base64!")
    assert status == 1
    record = json.loads(out.splitlines()[0])
    assert record["isrc"] == SPOTIFY_V3["info"]["isrc"]
    assert record["sourceFields"] == SPOTIFY_V3["sourceFields"]
    assert "blob 2" in err
    assert "URL-safe" in err


def test_cli_decode_live_stream_and_unprintable_title() -> None:
    live = next(v for v in ALL_VECTORS if v["info"]["length"] == I64_MAX)
    weird = encode_info(info(title="a\x00b"))
    status, out, _ = run_cli("decode", live["encoded"], weird)
    assert status == 0
    assert "unknown / live" in out
    assert "title:" in out
    assert "'a\\x00b'" in out


def test_cli_needs_a_subcommand() -> None:
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()):
        main([])
    assert exc.value.code == 2


def test_cli_as_a_module_reading_stdin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lavasync", "decode", "-"],
        input=f"{EMOJI['encoded']}\n\n{HTTP_V3['encoded']}\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        cwd=str(Path(__file__).resolve().parents[1]),
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\U0001f33f" in done.stdout
    assert done.stdout.count("title:") == 2


# --------------------------------------------------------------------------- model level


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_decode_track_gives_a_track(vector: dict[str, Any]) -> None:
    from lavasync.models import Track

    track = codec.decode_track(vector["encoded"])
    assert isinstance(track, Track)
    assert track.encoded == vector["encoded"]
    expected = vector["info"]
    got = track.info
    assert (got.title, got.author, got.length, got.identifier) == (
        expected["title"],
        expected["author"],
        expected["length"],
        expected["identifier"],
    )
    assert (got.is_stream, got.is_seekable) == (expected["isStream"], not expected["isStream"])
    assert (got.uri, got.artwork_url, got.isrc) == (
        expected["uri"],
        expected["artworkUrl"],
        expected["isrc"],
    )
    assert (got.source_name, got.position) == (expected["sourceName"], expected["position"])
    assert track.plugin_info == {}
    assert track.user_data == {}


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_encode_track_round_trips_every_vector(vector: dict[str, Any]) -> None:
    assert codec.encode_track(codec.decode_track(vector["encoded"])) == vector["encoded"]


def test_encode_track_keeps_the_source_section_of_a_changed_track() -> None:
    import dataclasses

    track = codec.decode_track(HTTP_V3["encoded"])
    changed = dataclasses.replace(
        track, info=dataclasses.replace(track.info, title="Renamed \U0001f33f", position=5000)
    )
    blob = decode_blob(codec.encode_track(changed))
    assert blob.info["title"] == "Renamed \U0001f33f"
    assert blob.info["position"] == 5000
    assert blob.source_fields == {"probeInfo": "mp3"}
    assert blob.version == 3


def test_encode_track_of_a_plain_track_writes_v3_without_section() -> None:
    from lavasync.models import Track, TrackInfo

    info = TrackInfo(
        identifier="abc",
        is_seekable=True,
        author="A",
        length=1000,
        is_stream=False,
        position=0,
        title="T",
        uri=None,
        source_name="youtube",
        isrc="ISRC1",
    )
    for encoded in ("", "garbage!", HTTP_V3["encoded"]):  # none, unreadable, other source
        blob = decode_blob(codec.encode_track(Track(encoded=encoded, info=info)))
        assert (blob.version, blob.flags, blob.source_data) == (3, 1, b"")
        assert blob.info["isrc"] == "ISRC1"
        assert blob.info["identifier"] == "abc"


def test_encode_track_upgrades_old_blobs_only_when_safe() -> None:
    import dataclasses

    v2 = codec.decode_track(ALL_VECTORS[0]["encoded"])  # youtube v2, no section
    art = dataclasses.replace(v2, info=dataclasses.replace(v2.info, artwork_url="https://a/b"))
    blob = decode_blob(codec.encode_track(art))
    assert (blob.version, blob.info["artworkUrl"]) == (3, "https://a/b")

    v1 = codec.decode_track(next(v for v in ALL_VECTORS if v["version"] == 1)["encoded"])
    with_uri = dataclasses.replace(v1, info=dataclasses.replace(v1.info, uri="https://u"))
    blob = decode_blob(codec.encode_track(with_uri))
    assert (blob.version, blob.flags, blob.info["uri"]) == (3, 1, "https://u")

    legacy = codec.decode_track(SPOTIFY_V2["encoded"])  # LavaSrc v3 section depends on v2
    assert codec.encode_track(legacy) == SPOTIFY_V2["encoded"]
    bad = dataclasses.replace(legacy, info=dataclasses.replace(legacy.info, isrc="X"))
    with pytest.raises(ValueError, match="version 2 blob"):
        codec.encode_track(bad)


def test_decode_track_refuses_excess_padding_like_java() -> None:
    # a2b_base64(strict_mode=True) takes a full quad followed by "====", Java's decoder does not
    encoded = next(v["encoded"] for v in ALL_VECTORS if not v["encoded"].endswith("="))
    with pytest.raises(DecodeError, match="padding"):
        codec.decode_track(encoded + "====")


def test_decode_track_rejects_bad_blobs() -> None:
    with pytest.raises(DecodeError):
        codec.decode_track("QAAA")
