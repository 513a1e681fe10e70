"""``python -m lavasync.testing serve``: a standalone fake Lavalink node, no Java needed.

Develop a bot against it: it prints two lines on stdout, ``uri: http://127.0.0.1:<port>`` and
``password: <password>`` (flushed at once, so a parent process can read them), then serves
until Ctrl-C (SIGINT) or SIGTERM, closes cleanly and exits 0. Errors are one line on stderr
with exit status 2 (bad arguments) or 1 (cannot start, e.g. the port is taken).
"""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, Optional

from .node import FakeNode

PROG = "python -m lavasync.testing"


def build_parser() -> argparse.ArgumentParser:
    """The parser: one subcommand, ``serve``."""
    parser = argparse.ArgumentParser(prog=PROG, description="lavasync's fake Lavalink node.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    serve = sub.add_parser(
        "serve",
        help="run a fake Lavalink v4 node until Ctrl-C",
        description="Run a fake Lavalink v4 node until Ctrl-C; prints its URI and password.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    serve.add_argument("--password", default="youshallnotpass", help="the node's password")
    serve.add_argument(
        "--dialect",
        default="lavalink",
        help="which server to imitate: lavalink (default) or another dialect FakeNode knows",
    )
    serve.add_argument(
        "--stats-interval", type=float, default=60.0, help="seconds between stats messages"
    )
    serve.add_argument(
        "--player-update-interval",
        type=float,
        default=None,
        help="seconds between playerUpdate messages (default: the dialect's, 5 or 2)",
    )
    return parser


def _node_options(args: argparse.Namespace) -> dict[str, Any]:
    """FakeNode keyword arguments; ValueError for a dialect this FakeNode cannot imitate."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "stats_interval": args.stats_interval,
        "player_update_interval": args.player_update_interval,
    }
    if "dialect" in inspect.signature(FakeNode).parameters:
        options["dialect"] = args.dialect
    elif args.dialect != "lavalink":
        raise ValueError(
            f"--dialect {args.dialect!r} is not supported by this lavasync version "
            "(its FakeNode only imitates Lavalink)"
        )
    return options


def serve(args: argparse.Namespace, stop: Optional[threading.Event] = None) -> int:
    """Run the node until ``stop`` is set (SIGINT/SIGTERM set it when run from the CLI)."""
    stop = stop or threading.Event()
    try:
        node = FakeNode(args.password, **_node_options(args))
    except (TypeError, ValueError) as exc:
        print(f"{PROG} serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        node.start()
    except OSError as exc:
        print(
            f"{PROG} serve: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        node.close()
        return 1
    try:
        print(f"uri: {node.uri}", flush=True)
        print(f"password: {node.password}", flush=True)
        print("fake Lavalink node running; Ctrl-C stops it", file=sys.stderr, flush=True)
        # a timed wait, so that a signal handler gets to run on every platform
        while not stop.wait(0.5):
            pass
    finally:
        node.close()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and run; returns the exit status."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, on_signal)
    try:
        return serve(args, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
