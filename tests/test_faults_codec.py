"""Bad encoded tracks are rejected locally, before anything is sent (issue 9).

``codec.check_blob`` reads a blob's structure the way the server's reader does; ``play()`` (for
strings) and ``decode_tracks`` (client and RestClient) use it, so a malformed blob never costs a
500 and a re-read. Blobs of sources lavasync does not know (plugins with their own trailing
fields) must still pass.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FAST, USER_ID, VECTORS

from lavasync import Client, DecodeError
from lavasync.codec import check_blob, decode_blob, encode_info
from lavasync.testing import FakeNode
from lavasync.testing.node import DEFAULT_SOURCES

ALL_VECTORS: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))
IDS = [
    f"{i}-{v['info']['sourceName'] or 'empty'}-v{v['version']}" for i, v in enumerate(ALL_VECTORS)
]
GUILD = 817327181659111454
PLUGIN = "myplugin"

#: Not base64 at all, the example of the issue.
GARBAGE = "garbage!!"
#: Valid base64 whose bytes are not a lavaplayer message.
NOT_A_TRACK = base64.b64encode(b"hello, this is certainly not an audio track").decode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def raw_of(encoded: str) -> bytes:
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def reframe(body: bytes, flags: int = 1) -> str:
    """A message with a header that agrees with ``body`` (so only the fields can be wrong)."""
    return b64(((flags << 30) | len(body)).to_bytes(4, "big") + body)


def plugin_blob(section: bytes = b"\x01\x00\x05extra\x00\x00\x00\x07\x2a\x01") -> str:
    """A v3 blob of a source lavasync does not know, with its own trailing fields."""
    info = {
        "title": "Plugin song",
        "author": "Someone",
        "length": 123_000,
        "identifier": "plugin-id-1",
        "isStream": False,
        "uri": "https://plugin.invalid/1",
        "artworkUrl": None,
        "isrc": None,
        "sourceName": PLUGIN,
        "position": 0,
    }
    return encode_info(info, source_data=section)


# --------------------------------------------------------------------------- the check itself


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=IDS)
def test_every_real_vector_passes(vector: dict[str, Any]) -> None:
    assert check_blob(vector["encoded"]) is None


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        (GARBAGE, "not standard base64"),
        ("QAAAjQMAC0RlYXRo-_", "URL-safe"),
        ("QAAA jQMA", "not standard base64"),
        (NOT_A_TRACK, "header says"),
        (b64(b"\x00\x00\x00\x00trailing"), "message size 0"),
        (b64(b"\x40\x00"), "the header alone is 4"),
        (b64(json.dumps({"track": "x"}).encode()), "truncated"),
    ],
)
def test_garbage_and_non_track_base64_are_rejected(encoded: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        check_blob(encoded)
    assert isinstance(info.value, ValueError)


def test_a_consistent_header_around_text_is_still_rejected() -> None:
    # header and size agree, but the body is prose: the title length runs past the end
    with pytest.raises(DecodeError, match="title claims"):
        check_blob(reframe(b"\x03hello world, not a track at all"))
    # a body whose strings are not modified UTF-8 (a 4-byte sequence): the server's readUTF fails
    body = b"\x03\x00\x04\xf0\x9f\x8c\xbf" + bytes(60)
    with pytest.raises(DecodeError, match="title"):
        check_blob(reframe(body))


@pytest.mark.parametrize("vector", ALL_VECTORS[::4], ids=IDS[::4])
def test_truncated_real_tracks_are_rejected_at_every_offset(vector: dict[str, Any]) -> None:
    raw = raw_of(vector["encoded"])
    blob = decode_blob(vector["encoded"])
    source_start = len(raw) - 8 - len(blob.source_data)
    offsets = sorted({1, 3, 4, 5, 6, 10, 20, len(raw) // 2, source_start, len(raw) - 1})
    for cut in offsets:
        # bytes missing at the end: the header promises more than there is
        with pytest.raises(DecodeError, match="truncated"):
            check_blob(b64(raw[:cut]))
        # header rewritten to match the cut: the walk runs into a cut field instead
        if 4 < cut < source_start + 8:
            with pytest.raises(DecodeError, match=r"truncated|cut off|claims"):
                check_blob(reframe(raw[4:cut], flags=raw[0] >> 6))


def test_unknown_sources_with_trailing_fields_pass() -> None:
    blob = plugin_blob()
    check_blob(blob)
    assert decode_blob(blob).source_data.endswith(b"\x2a\x01")
    # a known source may carry bytes this decoder does not understand, too (LavaSrc's yt-dlp)
    youtube = next(v for v in ALL_VECTORS if v["info"]["sourceName"] == "youtube")
    raw = raw_of(youtube["encoded"])
    body = raw[4:-8] + b"\x00\x03abc\x07" + raw[-8:]
    check_blob(reframe(body, flags=raw[0] >> 6))
    # bytes after the message (outside its size) are ignored, as the server ignores them
    check_blob(b64(raw + b"\x00\x01\x02"))


@pytest.mark.parametrize("version", [0, 4, 200])
def test_version_bytes_follow_the_server(version: int) -> None:
    # lavaplayer reads a version byte of 0 with the v1 layout and does not reject versions
    # above 3: the check must not be stricter than the server it protects.
    v1 = next(v for v in ALL_VECTORS if v["version"] == 1)
    raw = raw_of(v1["encoded"])
    if version == 0:
        check_blob(reframe(b"\x00" + raw[4:], flags=1))
    else:
        v3 = raw_of(next(v for v in ALL_VECTORS if v["version"] == 3)["encoded"])
        check_blob(b64(v3[:4] + bytes((version,)) + v3[5:]))
        with pytest.raises(DecodeError, match="truncated"):
            check_blob(b64(v3[:4] + bytes((version,)) + v3[5:20]))


# --------------------------------------------------------------------------- nothing is sent


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(source_managers=(*DEFAULT_SOURCES, PLUGIN), stats_interval=1.0) as node:
        yield node


@pytest.fixture
def client(fake: FakeNode) -> Iterator[Client]:
    c = Client(USER_ID, lambda guild, payload: None)
    try:
        c.add_node("fake", fake.uri, password=fake.password, backoff=FAST)
        c.wait_ready(5)
        yield c
    finally:
        assert c.close(5)


def bad_blobs() -> list[str]:
    real = ALL_VECTORS[0]["encoded"]
    return [GARBAGE, NOT_A_TRACK, real[: len(real) // 2], real[:-12]]


def rest_calls(fake: FakeNode) -> list[tuple[str, str]]:
    """The REST calls a test's actions caused (the client's own session PATCH excluded)."""
    return [
        (r.method, r.path)
        for r in fake.requests
        if r.path != "/v4/sessions/" + fake.session_ids()[0]
    ]


def test_play_rejects_bad_strings_and_sends_nothing(fake: FakeNode, client: Client) -> None:
    player = client.player(GUILD)
    fake.clear_requests()
    for bad in bad_blobs():
        with pytest.raises(ValueError) as info:
            player.play(bad)
        assert isinstance(info.value, DecodeError)
    assert rest_calls(fake) == []
    assert player.track is None


def test_play_sends_a_good_plugin_blob(fake: FakeNode, client: Client) -> None:
    player = client.player(GUILD)
    fake.clear_requests()
    info = player.play(plugin_blob())
    assert info.track is not None and info.track.info.source_name == PLUGIN
    patches = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith(str(GUILD))]
    assert patches and patches[-1].json["track"]["encoded"] == plugin_blob()


def test_decode_tracks_rejects_a_bad_blob_and_sends_nothing(fake: FakeNode, client: Client) -> None:
    good = ALL_VECTORS[0]["encoded"]
    fake.clear_requests()
    with pytest.raises(DecodeError, match=r"encoded\[0\]"):
        client.decode_tracks([GARBAGE])
    for bad in bad_blobs():
        with pytest.raises(DecodeError, match=r"encoded\[1\]"):
            client.decode_tracks([good, bad])
        with pytest.raises(DecodeError, match=r"encoded\[1\]"):
            client.nodes[0].rest.decode_tracks([good, bad])
    assert rest_calls(fake) == []
    # the good one (and a plugin blob) still goes to the node
    tracks = client.decode_tracks([good, plugin_blob()])
    assert [t.info.source_name for t in tracks] == ["youtube", PLUGIN]
    assert rest_calls(fake) == [("POST", "/v4/decodetracks")]
