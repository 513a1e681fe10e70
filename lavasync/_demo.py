"""``python -m lavasync demo``: the whole flow in short readable lines.

With no arguments it starts a :class:`~lavasync.testing.FakeNode` in-process (and a fake Discord
gateway for voice), so it runs anywhere. With ``--uri``/``--password`` it talks to a real Lavalink
node: REST, WebSocket, events; the voice part needs a real Discord gateway and is skipped there.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any, Optional, TextIO

DEMO_USER_ID = 170939974227591168
DEMO_GUILD = 817327181659111454
DEMO_CHANNEL = 1126593424391868476


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uri", help="a real Lavalink node, e.g. http://127.0.0.1:2333")
    parser.add_argument("--password", default="youshallnotpass", help="the node's password")
    parser.add_argument("--user-id", type=int, default=DEMO_USER_ID, help="the bot's user id")
    parser.add_argument(
        "--fake-dialect",
        default="lavalink",
        choices=["lavalink", "nodelink"],
        help="without --uri: the server the in-process fake node plays (NodeLink's deviations)",
    )
    parser.add_argument(
        "--search",
        default="ytsearch:never gonna give you up",
        help="the search to run against a real node",
    )


class _Out:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, label: str, text: Any = "") -> None:
        self.stream.write(f"{label:<10} {text}\n")
        self.stream.flush()


@contextlib.contextmanager
def _local_node(dialect: str = "lavalink") -> Iterator[tuple[str, str, Any]]:
    from .testing import FakeGateway, FakeNode

    with FakeNode(stats_interval=2.0, player_update_interval=0.5, dialect=dialect) as fake:
        first = fake.add_track(
            "Never Gonna Give You Up",
            author="Rick Astley",
            length=4_000,
            identifier="https://example.com/rick.mp3",
        )
        others = [fake.add_track(f"Demo song {n}", length=60_000) for n in (1, 2, 3)]
        fake.set_load_result(
            "https://example.com/demo-playlist",
            {
                "loadType": "playlist",
                "data": {
                    "info": {"name": "Demo playlist", "selectedTrack": -1},
                    "pluginInfo": {},
                    "tracks": [t.to_wire() for t in (first, *others)],
                },
            },
        )
        fake.set_load_result(
            "ytsearch:lavasync demo",
            {
                "loadType": "search",
                "data": [t.to_wire() for t in (first, *others)],
            },
        )
        yield fake.uri, fake.password, (fake, FakeGateway)


def run(args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """Run the demo; returns the exit code (1 with one ``error`` line if the node fails us)."""
    from .errors import LavasyncError

    say = _Out(out or sys.stdout)
    try:
        if args.uri:
            return _run_against(args.uri, args.password, args.user_id, args.search, None, say=say)
        with _local_node(getattr(args, "fake_dialect", "lavalink")) as (uri, password, local):
            return _run_against(uri, password, DEMO_USER_ID, None, local, say=say)
    except LavasyncError as exc:
        say("error", f"{type(exc).__name__}: {exc}")
        return 1


def _run_against(
    uri: str,
    password: str,
    user_id: int,
    search: Optional[str],
    local: Optional[tuple[Any, Any]],
    *,
    say: _Out,
) -> int:
    import lavasync

    gateway = None
    if local is not None:
        gateway_cls = local[1]
        gateway = gateway_cls(user_id)
    hook = gateway.hook if gateway is not None else None
    try:
        with lavasync.Client(
            user_id, hook, client_name=f"lavasync-demo/{lavasync.__version__}"
        ) as client:
            if gateway is not None:
                gateway.deliver = client.handle_gateway
            node = client.add_node("demo", uri, password=password)
            client.wait_ready(10)
            say("connected", f"{node.name} at {uri}, session {node.session_id}")
            info = node.info or node.rest.info()  # read liberally: any v4 server fits
            server = str(node.version) if node.version else f"server {info.version.semver}"
            player_lib = f", lavaplayer {info.lavaplayer}" if info.lavaplayer else ""
            say(
                "server",
                f"{server}{player_lib}, sources: {', '.join(info.source_managers) or '-'}",
            )
            stats = node.rest.stats()
            say(
                "stats",
                f"{stats.players} players, {stats.playing_players} playing, "
                f"load {stats.cpu.system_load:.0%}, "
                f"memory {stats.memory.used // 2**20} MiB used",
            )
            if local is not None:
                identifiers = [
                    "https://example.com/rick.mp3",
                    "https://example.com/demo-playlist",
                    "ytsearch:lavasync demo",
                ]
            else:
                identifiers = [search or "ytsearch:lavalink"]
            first_track = None
            for identifier in identifiers:
                result = client.load(identifier)
                tracks = result.tracks
                detail = f"{len(tracks)} track(s)"
                if result.playlist is not None:
                    detail = f"playlist {result.playlist.info.name!r}, {detail}"
                say("load", f"{identifier} -> {result.load_type}: {detail}")
                if tracks and first_track is None:
                    first_track = tracks[0]
            if first_track is not None:
                decoded = lavasync.decode_track(first_track.encoded)
                say(
                    "decode",
                    f"locally: {decoded.info.title!r} by {decoded.info.author}, "
                    f"{decoded.info.length / 1000:.1f} s, source {decoded.info.source_name}",
                )
                # one blob to try `python -m lavasync decode <blob>` on
                say("encoded", first_track.encoded)
            if gateway is None or first_track is None:
                say("voice", "skipped (needs a Discord gateway; see examples/host_gateway.py)")
                say("done", "ok")
                return 0
            _voice_part(client, first_track, say)
            say("done", "ok")
            return 0
    finally:
        if gateway is not None:
            gateway.close()


def _voice_part(client: Any, track: Any, say: _Out) -> None:
    import lavasync

    player = client.player(DEMO_GUILD)
    player.connect(DEMO_CHANNEL, self_deaf=True)
    say("join", f"guild {DEMO_GUILD}, channel {player.channel_id}, connected={player.connected}")
    player.play(track)
    say("play", f"{track.info.title!r} ({track.info.length / 1000:.1f} s)")
    tick = threading.Event()
    for _ in range(3):
        tick.wait(0.3)
        say("position", f"{player.position / 1000:5.1f} s")
    player.pause()
    say("pause", f"paused at {player.position / 1000:.1f} s")
    player.seek(1_000)
    say("seek", f"now at {player.position / 1000:.1f} s")
    player.set_volume(60)
    say("volume", player.volume)
    player.set_filters(lavasync.Filters.nightcore())
    say("filter", f"nightcore: timescale {player.filters.timescale}")
    player.resume()
    end = player.wait_for_track_end(timeout=15)
    say("end", f"{end.track.info.title!r}: {end.reason} (may start next: {end.may_start_next})")
    player.disconnect()
    say("leave", f"left the channel; player destroyed={player.destroyed}")
