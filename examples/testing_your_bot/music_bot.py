"""A bot's ``!play`` command, written against lavasync and nothing else (no Discord library).

The Discord side is the host bot's business: it calls :func:`handle_play` with the guild, the
voice channel the author is in, and the text after ``!play``, and sends back the reply.
``test_music_bot.py`` next to it tests the command with lavasync's pytest fixtures.
"""

from __future__ import annotations

from typing import Optional

import lavasync


def handle_play(
    client: lavasync.Client, guild_id: int, voice_channel_id: Optional[int], query: str
) -> str:
    """``!play <query>``: join the author's voice channel and play the first match.

    Returns the message to send back to the text channel.
    """
    query = query.strip()
    if not query:
        return "Usage: !play <song name or URL>"
    if voice_channel_id is None:
        return "Join a voice channel first."
    identifier = query if query.startswith(("http://", "https://")) else f"ytsearch:{query}"
    result = client.load(identifier)
    if result.is_error:
        return f"Could not load {query!r}, try again later."
    track = result.track or (result.tracks[0] if result.tracks else None)
    if track is None:
        return f"Nothing found for {query!r}."
    player = client.player(guild_id)
    if not player.connected or player.channel_id != voice_channel_id:
        player.connect(voice_channel_id, self_deaf=True)
    player.play(track)
    return f"Now playing: {track.info.title} by {track.info.author}"
