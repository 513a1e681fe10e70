"""Shared parts of ``python -m lavasync`` and its ``load`` and ``stats`` commands.

Exit statuses of every command: 0 success, 1 the node failed us (unreachable, refused, an
error result), 2 bad arguments. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import unicodedata
from collections.abc import Sequence
from typing import Optional, TextIO
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .models import LoadResult, Stats, Track
from .rest import RestClient
from .transport.rest import RestTransport

#: Where the commands look when ``--uri``/``--password`` are not given.
DEFAULT_URI = "http://127.0.0.1:2333"
DEFAULT_PASSWORD = "youshallnotpass"
URI_ENV = "LAVASYNC_URI"
PASSWORD_ENV = "LAVASYNC_PASSWORD"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(ValueError):
    """A bad command-line value; printed as one line, exit status 2."""


def node_uri(text: str) -> str:
    """The REST base URI for what a user typed: ``http(s)://host:port`` as is, ``ws://`` and
    ``wss://`` (with or without ``/v4/websocket``) turned into ``http://``/``https://``.

    Raises :class:`UsageError` for anything else, with the reason.
    """
    raw = text.strip()
    if "://" not in raw:
        raise UsageError(f"--uri must look like http://host:2333, got {text!r} (no scheme)")
    parts = urlsplit(raw)
    scheme = {"http": "http", "https": "https", "ws": "http", "wss": "https"}.get(
        parts.scheme.lower()
    )
    if scheme is None:
        raise UsageError(
            f"--uri scheme must be http, https, ws or wss, got {parts.scheme!r} in {text!r}"
        )
    if not parts.hostname:
        raise UsageError(f"--uri has no host: {text!r}")
    try:
        parts.port  # noqa: B018  (ValueError for a port that is not a number or out of range)
    except ValueError:
        raise UsageError(f"--uri has an invalid port: {text!r}") from None
    if parts.query or parts.fragment:
        raise UsageError(f"--uri must not carry a query or fragment: {text!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/v4/websocket"):
        path = path[: -len("/v4/websocket")]
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """``--uri``, ``--password`` and ``--timeout``, defaulting to the environment."""
    parser.add_argument(
        "--uri",
        default=os.environ.get(URI_ENV, DEFAULT_URI),
        help=f"the node, http(s):// or ws(s):// (default ${URI_ENV} or {DEFAULT_URI})",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get(PASSWORD_ENV, DEFAULT_PASSWORD),
        help=f"the node's password (default ${PASSWORD_ENV} or {DEFAULT_PASSWORD})",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)"
    )


def positive(value: float, option: str) -> float:
    if not value > 0:
        raise UsageError(f"{option} must be > 0, got {value}")
    return value


def rest_client(args: argparse.Namespace, name: str) -> RestClient:
    """A RestClient for ``args.uri``/``args.password`` (UsageError for bad values)."""
    uri = node_uri(args.uri)
    timeout = positive(args.timeout, "--timeout")
    try:
        transport = RestTransport(
            uri,
            args.password,
            client_name=f"lavasync-{name}/{__version__}",
            timeout=(min(timeout, 5.0), timeout),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return RestClient(transport)


def error_line(command: str, exc: BaseException) -> str:
    """One line naming what went wrong, for stderr (usage errors without a type name)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, UsageError):
        text = f"{type(exc).__name__}: {text}"
    return f"python -m lavasync {command}: error: {text}"


# ---------------------------------------------------------------------------- formatting


def duration(ms: int) -> str:
    """``3:32`` or ``1:02:03`` for a length in ms; ``live`` for streams and unknown lengths."""
    if ms < 0 or ms >= 2**63 - 1:
        return "live"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def uptime_text(ms: int) -> str:
    """``2d 03:04:05`` style uptime."""
    seconds = max(0, ms) // 1000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def _width(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Left-aligned columns; the first row is the header."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths)]
        out.write("  ".join(cells).rstrip() + "\n")


def _clip(text: Optional[str], width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------------- load


def configure_load(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("identifier", help="a URL, an id, or a search like 'ytsearch:lofi'")
    add_node_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the LoadResult JSON")


def run_load(args: argparse.Namespace) -> int:
    """``python -m lavasync load IDENTIFIER``: a table of what the node answered.

    Exit 0 for tracks, a playlist, a search or an empty result; 1 for an ``error`` result.
    """
    if not args.identifier.strip():
        raise UsageError("the identifier is empty")
    out = sys.stdout
    with rest_client(args, "load") as rest:
        result = rest.load_tracks(args.identifier)
    if args.json:
        out.write(json.dumps(result.to_wire(), ensure_ascii=False) + "\n")
        return EXIT_FAILED if result.is_error else EXIT_OK
    return _print_load(args.identifier, result, out)


def _print_load(identifier: str, result: LoadResult, out: TextIO) -> int:
    tracks = result.tracks
    summary = f"{identifier}: {result.load_type}"
    if result.playlist is not None:
        summary += f", playlist {result.playlist.name!r}"
    if tracks:
        summary += f", {len(tracks)} track{'s' if len(tracks) != 1 else ''}"
    out.write(summary + "\n")
    out.flush()
    if result.is_error:
        exc = result.exception
        message = (exc.message if exc is not None else None) or "loading failed"
        severity = exc.severity if exc is not None else "?"
        out.write(f"error ({severity}): {message}\n")
        if exc is not None and exc.cause:
            out.write(f"cause: {_clip(exc.cause, 200)}\n")
        return EXIT_FAILED
    if not tracks:
        out.write("nothing found\n")
        return EXIT_OK
    selected = result.playlist.selected if result.playlist is not None else None
    rows = [["#", "type", "title", "author", "length", "source"]]
    for index, track in enumerate(tracks, 1):
        rows.append(_track_row(index, track, "selected" if track is selected else "track"))
    table(rows, out)
    return EXIT_OK


def _track_row(index: int, track: Track, kind: str) -> list[str]:
    info = track.info
    return [
        str(index),
        "stream" if info.is_stream else kind,
        _clip(info.title),
        _clip(info.author, 30),
        duration(info.length),
        info.source_name,
    ]


# ---------------------------------------------------------------------------- stats


def configure_stats(parser: argparse.ArgumentParser) -> None:
    add_node_arguments(parser)
    parser.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=5.0,
        default=None,
        metavar="SECONDS",
        help="print again every SECONDS (default 5) until Ctrl-C",
    )
    parser.add_argument(
        "--count", type=int, default=None, help="with --watch: stop after this many prints"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def run_stats(args: argparse.Namespace, stop: Optional[threading.Event] = None) -> int:
    """``python -m lavasync stats [--watch [S]] [--count N]``: the node's statistics.

    Ctrl-C ends a watch normally (exit 0).
    """
    if args.watch is not None:
        positive(args.watch, "--watch")
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    count = args.count if args.watch is not None else 1
    stop = stop or threading.Event()
    out = sys.stdout
    printed = 0
    with rest_client(args, "stats") as rest:
        try:
            while True:
                stats = rest.stats()
                if args.json:
                    out.write(json.dumps(stats.to_wire()) + "\n")
                else:
                    out.write(stats_line(stats) + "\n")
                out.flush()
                printed += 1
                if count is not None and printed >= count:
                    return EXIT_OK
                if stop.wait(args.watch):
                    return EXIT_OK
        except KeyboardInterrupt:
            return EXIT_OK


def stats_line(stats: Stats) -> str:
    """One line: players, uptime, CPU, memory, frames."""
    memory = stats.memory
    mib = 2**20
    parts = [
        f"players {stats.players} ({stats.playing_players} playing)",
        f"uptime {uptime_text(stats.uptime)}",
        f"cpu {stats.cpu.cores} cores, system {stats.cpu.system_load:.0%}, "
        f"node {stats.cpu.lavalink_load:.0%}",
        f"memory {memory.used // mib}/{memory.reservable // mib} MiB",
    ]
    frames = stats.frame_stats
    if frames is not None:
        parts.append(f"frames sent {frames.sent}, nulled {frames.nulled}, deficit {frames.deficit}")
    return "; ".join(parts)
