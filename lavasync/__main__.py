"""``python -m lavasync``: small tools for bot authors.

Subcommands are listed in :data:`SUBCOMMANDS`; each entry names the command, its help line, a
function that adds its arguments, and the function that runs it (returns the exit status).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Callable, NamedTuple, Optional

from . import __version__, _demo, codec


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
    """Run one subcommand; returns the process exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
