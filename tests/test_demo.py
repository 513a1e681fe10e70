"""The demo (``python -m lavasync demo``, code in lavasync/_demo.py) walks through every step.

In process: ``_demo.add_arguments(parser)`` and ``_demo.run(args)`` with no arguments (its own
FakeNode and FakeGateway) and with ``--uri`` pointed at a FakeNode here (voice skipped). As a
subprocess: ``python -m lavasync demo`` exits 0 within 30 s and prints the same steps.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lavasync
from lavasync import _demo
from lavasync.__main__ import SUBCOMMANDS
from lavasync.testing import FakeNode

ROOT = Path(__file__).resolve().parents[1]

#: The steps of a run against the built-in fake node; "position" lines repeat (one or more).
LOCAL_STEPS = [
    "connected",
    "server",
    "stats",
    "load",
    "load",
    "load",
    "decode",
    "encoded",
    "join",
    "play",
    "position",
    "pause",
    "seek",
    "volume",
    "filter",
    "end",
    "leave",
    "done",
]

#: The steps of a run against a node given by ``--uri`` (no gateway: voice is skipped).
URI_STEPS = ["connected", "server", "stats", "load", "decode", "encoded", "voice", "done"]


def parse(output: str) -> list[tuple[str, str]]:
    """``label   text`` lines as (label, text)."""
    steps = []
    for line in output.splitlines():
        label, _, text = line.strip().partition(" ")
        steps.append((label, text.strip()))
    return steps


def seconds(text: str) -> float:
    match = re.search(r"(\d+\.\d) s", text)
    assert match, f"no '<n.n> s' in {text!r}"
    return float(match.group(1))


def check_local_run(output: str) -> None:
    """Everything a no-argument demo run must show, in order."""
    steps = parse(output)
    labels = [label for label, _ in steps]
    collapsed = [x for i, x in enumerate(labels) if x != "position" or labels[i - 1] != x]
    assert collapsed == LOCAL_STEPS, output
    text = {}
    for label, value in steps:
        text.setdefault(label, []).append(value)

    assert re.fullmatch(r"demo at http://127\.0\.0\.1:\d+, session \w+", text["connected"][0])
    assert text["server"][0].startswith("Lavalink 4."), output
    stats = r"\d+ players, \d+ playing, load \d+%, memory \d+ MiB used"
    assert re.fullmatch(stats, text["stats"][0]), output
    assert text["load"] == [
        "https://example.com/rick.mp3 -> track: 1 track(s)",
        "https://example.com/demo-playlist -> playlist: playlist 'Demo playlist', 4 track(s)",
        "ytsearch:lavasync demo -> search: 4 track(s)",
    ]
    assert text["decode"][0].startswith("locally: 'Never Gonna Give You Up' by Rick Astley, 4.0 s")
    # the printed blob is one to try `python -m lavasync decode` on
    assert lavasync.decode_track(text["encoded"][0]).info.title == "Never Gonna Give You Up"
    assert text["join"][0].endswith("connected=True"), output
    assert text["play"][0] == "'Never Gonna Give You Up' (4.0 s)"
    positions = [seconds(x) for x in text["position"]]
    assert positions == sorted(positions), f"position went backwards: {positions}"
    assert positions[-1] > 0.0, f"the position never moved: {positions}"
    assert seconds(text["pause"][0]) >= positions[-1]
    assert text["seek"][0] == "now at 1.0 s"
    assert text["volume"] == ["60"]
    assert text["filter"][0].startswith("nightcore: timescale Timescale(speed=1.25")
    assert text["end"][0] == "'Never Gonna Give You Up': finished (may start next: True)"
    assert text["leave"][0].endswith("destroyed=True")
    assert text["done"] == ["ok"]


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _demo.add_arguments(parser)
    return parser.parse_args(argv)


def test_demo_runs_every_step_against_its_own_fake_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert _demo.run(demo_args()) == 0
    captured = capsys.readouterr()
    check_local_run(captured.out)
    assert captured.err == ""


def test_demo_against_a_node_given_by_uri_skips_voice(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeNode(password="s3cret") as fake:
        code = _demo.run(demo_args("--uri", fake.uri, "--password", "s3cret"))
        sessions = fake.session_ids()
        loads = [r.query for r in fake.requests if r.path == "/v4/loadtracks"]
    assert code == 0
    steps = parse(capsys.readouterr().out)
    assert [label for label, _ in steps] == URI_STEPS
    assert steps[0][1].startswith(f"demo at {fake.uri}, session ")
    assert steps[3][1].startswith("ytsearch:never gonna give you up -> search: ")
    assert steps[6][1].startswith("skipped")
    assert len(sessions) == 1
    assert len(loads) == 1


def test_demo_search_option_is_what_it_loads(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeNode() as fake:
        fake.add_track("Only match", identifier="https://example.com/only.mp3")
        code = _demo.run(demo_args("--uri", fake.uri, "--search", "https://example.com/only.mp3"))
    assert code == 0
    out = capsys.readouterr().out
    assert "https://example.com/only.mp3 -> track: 1 track(s)" in out
    assert "locally: 'Only match' by lavasync" in out


def test_demo_is_a_subcommand() -> None:
    (demo,) = [command for command in SUBCOMMANDS if command.name == "demo"]
    assert demo.run is _demo.run


def test_python_m_lavasync_demo() -> None:
    env = dict(os.environ)
    package_parent = str(Path(lavasync.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "lavasync", "demo"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    check_local_run(proc.stdout)
    assert proc.stderr == ""


def test_demo_with_a_wrong_password_says_why_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeNode(password="right") as fake:
        code = _demo.run(demo_args("--uri", fake.uri, "--password", "wrong"))
    assert code == 1
    steps = parse(capsys.readouterr().out)
    assert steps[-1][0] == "error"
    assert steps[-1][1].startswith("AuthenticationError")
