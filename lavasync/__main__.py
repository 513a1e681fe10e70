"""``python -m lavasync``: small tools for bot authors.

Subcommands are listed in :data:`SUBCOMMANDS`; each entry names the command, its help line, a
function that adds its arguments, and the function that runs it (returns the exit status).

Errors are one line on stderr, never a traceback: exit status 2 for bad arguments (a bad
``--uri`` included), 1 when the node fails us, 130 on Ctrl-C (``stats --watch`` ends with 0).
``--uri`` takes ``http(s)://`` or ``ws(s)://`` (the WebSocket address of the same node).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Callable, NamedTuple, Optional

from . import __version__, _cli, _demo, _doctor, codec


class Subcommand(NamedTuple):
    """One ``python -m lavasync NAME`` command."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        "demo",
        "run the whole flow against an in-process fake node (or --uri/--password: a real one)",
        _demo.add_arguments,
        _demo.run,
    ),
    Subcommand(
        "decode",
        "print the fields of encoded track strings, one per line",
        codec._cli_configure_decode,
        codec._cli_decode,
    ),
    Subcommand(
        "doctor",
        "check a node step by step (reachability, auth, version, sources, latency, resume...)",
        _doctor.configure,
        _doctor.run,
    ),
    Subcommand(
        "load",
        "load an identifier or search on a node and print a table of what came back",
        _cli.configure_load,
        _cli.run_load,
    ),
    Subcommand(
        "stats",
        "print a node's statistics (--watch: again every few seconds until Ctrl-C)",
        _cli.configure_stats,
        _cli.run_stats,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m lavasync", description="Tools for the lavasync Lavalink client."
    )
    parser.add_argument("--version", action="version", version=f"lavasync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in SUBCOMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(child)
        child.set_defaults(run=command.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one subcommand; returns the process exit status (errors: one line on stderr)."""
    from .errors import LavasyncError

    args = build_parser().parse_args(argv)
    try:
        if isinstance(getattr(args, "uri", None), str):
            args.uri = _cli.node_uri(args.uri)  # ws(s):// works too; a bad one is a usage error
        status: int = args.run(args)
    except KeyboardInterrupt:
        print(f"python -m lavasync {args.command}: interrupted", file=sys.stderr)
        return 130
    except (LavasyncError, OSError) as exc:  # before ValueError: DecodeError is both
        print(_cli.error_line(args.command, exc), file=sys.stderr)
        return _cli.EXIT_FAILED
    except ValueError as exc:  # bad arguments, caught before anything was sent
        print(_cli.error_line(args.command, exc), file=sys.stderr)
        return _cli.EXIT_USAGE
    except Exception as exc:  # a bug: still one line (set LAVASYNC_TRACEBACK=1 to see it)
        if os.environ.get("LAVASYNC_TRACEBACK"):
            raise
        print(_cli.error_line(args.command, exc), file=sys.stderr)
        return _cli.EXIT_FAILED
    return status


if __name__ == "__main__":
    sys.exit(main())
