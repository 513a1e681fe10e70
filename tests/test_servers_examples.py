"""The demo and every example, run against NodeLink's shapes (FakeNode(dialect="nodelink")).

Each example runs with ``--fake-dialect nodelink`` (its own fake plays NodeLink: the full flow,
voice included) and with ``--uri`` pointed at a NodeLink-dialect fake in this process. The
expected lines are the same as against Lavalink (tests/test_examples.py, tests/test_demo.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from test_demo import LOCAL_STEPS, URI_STEPS, demo_args, parse
from test_examples import EXPECTED, SCRIPTS, assert_lines_in_order, finish, start

from lavasync import _demo
from lavasync.testing import FakeNode


@pytest.fixture(scope="module")
def nodelink_runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every example started at once against its own NodeLink-dialect fake node."""
    procs = {script: start(script, "--fake-dialect", "nodelink") for script in SCRIPTS}
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_against_a_nodelink_fake(
    script: str, nodelink_runs: dict[str, subprocess.Popen[str]]
) -> None:
    code, lines, err = finish(nodelink_runs[script])
    assert code == 0, f"{script} exited {code}\nstdout:\n" + "\n".join(lines) + f"\nstderr:\n{err}"
    assert err == "", f"{script} wrote to stderr (a logged warning?):\n{err}"
    assert_lines_in_order(lines, EXPECTED[script])


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_against_a_nodelink_node_given_by_uri(script: str) -> None:
    with FakeNode(password="s3cret", dialect="nodelink") as fake:
        code, lines, err = finish(start(script, "--uri", fake.uri, "--password", "s3cret"))
        sessions = fake.session_ids()
    assert code == 0, f"{script} exited {code}\nstdout:\n" + "\n".join(lines) + f"\nstderr:\n{err}"
    assert err == ""
    assert any(line.startswith("voice skipped") for line in lines), lines
    assert len(sessions) == 1


def test_demo_runs_every_step_against_a_nodelink_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert _demo.run(demo_args("--fake-dialect", "nodelink")) == 0
    captured = capsys.readouterr()
    steps = parse(captured.out)
    labels = [label for label, _ in steps]
    collapsed = [x for i, x in enumerate(labels) if x != "position" or labels[i - 1] != x]
    assert collapsed == LOCAL_STEPS, captured.out
    text = dict(steps)
    assert text["server"].startswith("NodeLink 3.7.0 (API v4)"), captured.out
    assert text["seek"] == "now at 1.0 s"
    assert text["filter"].startswith("nightcore: timescale Timescale(speed=1.25")
    assert text["end"] == "'Never Gonna Give You Up': finished (may start next: True)"
    assert captured.err == ""


def test_demo_against_a_nodelink_node_given_by_uri(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeNode(password="s3cret", dialect="nodelink") as fake:
        code = _demo.run(demo_args("--uri", fake.uri, "--password", "s3cret"))
    assert code == 0
    steps = parse(capsys.readouterr().out)
    assert [label for label, _ in steps] == URI_STEPS
    assert steps[1][1].startswith("NodeLink 3.7.0")
