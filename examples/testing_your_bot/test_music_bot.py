"""Testing a bot command with lavasync's pytest plugin: no Java, no Discord.

The fixtures come with lavasync (``pytest11`` entry point): ``fake_node`` is a fake Lavalink
node on 127.0.0.1, ``lavasync_client`` a Client connected to it, and ``fake_gateway`` plays
Discord's side of voice, so ``player.connect()`` works. Run it with ``pytest`` from this folder
(or ``pytest -p lavasync.testing.plugin`` if lavasync is not installed, only on the path).
"""

from __future__ import annotations

import pytest
from music_bot import handle_play

import lavasync
from lavasync.testing import FakeGateway, FakeNode

GUILD = 817327181659111454
VOICE_CHANNEL = 1126593424391868476


def test_play_joins_the_channel_and_starts_the_track(
    lavasync_client: lavasync.Client, fake_node: FakeNode, fake_gateway: FakeGateway
) -> None:
    fake_node.add_track("Song of the day", author="The Band", identifier="https://x.test/a.mp3")

    reply = handle_play(lavasync_client, GUILD, VOICE_CHANNEL, "https://x.test/a.mp3")

    assert reply == "Now playing: Song of the day by The Band"
    # Discord saw the OP 4 join for the author's channel ...
    (guild, payload), *_ = fake_gateway.sent
    assert (guild, payload["d"]["channel_id"]) == (GUILD, str(VOICE_CHANNEL))
    # ... and the node has a connected player playing the track.
    (session,) = fake_node.session_ids()
    player = fake_node.player(session, GUILD)
    assert player is not None
    assert player["state"]["connected"] is True
    assert player["track"]["info"]["title"] == "Song of the day"


def test_play_searches_when_given_words(lavasync_client: lavasync.Client) -> None:
    reply = handle_play(lavasync_client, GUILD, VOICE_CHANNEL, "lofi beats")
    assert reply.startswith("Now playing: lofi beats")


@pytest.mark.parametrize(
    ("channel", "query", "expected"),
    [
        (VOICE_CHANNEL, "   ", "Usage: !play <song name or URL>"),
        (None, "anything", "Join a voice channel first."),
        (
            VOICE_CHANNEL,
            "https://x.test/missing.mp3",
            "Nothing found for 'https://x.test/missing.mp3'.",
        ),
    ],
)
def test_play_explains_what_went_wrong(
    lavasync_client: lavasync.Client, channel: int, query: str, expected: str
) -> None:
    assert handle_play(lavasync_client, GUILD, channel, query) == expected
    assert lavasync_client.get_player(GUILD) is None  # nothing joined


def test_a_failed_load_is_reported(lavasync_client: lavasync.Client, fake_node: FakeNode) -> None:
    fake_node.set_load_result(
        "https://x.test/broken.mp3",
        {"loadType": "error", "data": {"message": "boom", "severity": "fault", "cause": "x"}},
    )
    reply = handle_play(lavasync_client, GUILD, VOICE_CHANNEL, "https://x.test/broken.mp3")
    assert reply == "Could not load 'https://x.test/broken.mp3', try again later."


@pytest.mark.fake_node(password="s3cret")
def test_fixture_options_come_from_the_marker(
    lavasync_client: lavasync.Client, fake_node: FakeNode
) -> None:
    assert fake_node.password == "s3cret"
    assert lavasync_client.nodes[0].available
