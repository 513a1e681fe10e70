"""Every script in examples/ runs to the end as a subprocess and prints what it promises.

Each example runs twice: with no arguments (its own in-process FakeNode and FakeGateway: the
full flow, voice included) and with ``--uri``/``--password`` pointed at a FakeNode in this
process (the "real node" path, where voice is skipped). The no-argument runs start together
(module fixture) so the file costs about as long as the slowest example.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import lavasync
from lavasync.testing import FakeNode

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
ALL_SCRIPTS = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))
TIMEOUT = 50.0  # seconds per script; each takes a few

# Regular expressions that must match lines of stdout, in this order (other lines may come
# between). Every example needs an entry: a new script without one fails below.
EXPECTED: dict[str, list[str]] = {
    "play_and_wait.py": [
        r"connected: node main, session \w+",
        r"loaded: 'A short song' by lavasync, 1500 ms",
        r"joined: channel 1126593424391868476",
        r"playing: 'A short song' from \d+ ms, volume 100",
        r"ended: 'A short song', reason finished",
        r"left the channel",
    ],
    "callbacks.py": [
        r"loaded 3 tracks: Short song 1, Short song 2, Short song 3",
        r"started: 'Short song 1' \(2 left in the queue\)",
        r"ended: 'Short song 1', reason finished",
        r"started: 'Short song 2' \(1 left in the queue\)",
        r"ended: 'Short song 2', reason finished",
        r"started: 'Short song 3' \(0 left in the queue\)",
        r"ended: 'Short song 3', reason finished",
        r"queue empty after 3 tracks; history: 3 tracks",
        r"left the channel",
    ],
    "poll_loop.py": [
        r"loaded 2 tracks",
        r"ready: session \w+, resumed=False",
        r"start: 'Short song 1'",
        r"update: position \d+ ms, connected=True",
        r"end: 'Short song 1', reason finished",
        r"start: 'Short song 2'",
        r"end: 'Short song 2', reason finished",
        r"left the channel",
    ],
    "host_gateway.py": [
        r"loaded: 'A short song'",
        # the two shards' messages arrive on two threads, in either order
        r"guild \d+: playing on shard [01]",
        r"guild \d+: playing on shard [01]",
        r"2 players, connected: \[True, True\]",
        r"guild 817327181659111454: 'A short song' finished",
        r"guild 700000000000000000: 'A short song' finished",
        r"shard 0 sent 2 OP 4 frames",  # join + leave, each on the guild's own shard
        r"shard 1 sent 2 OP 4 frames",
        r"first OP 4: \{.*\}",
    ],
    "queue_bot.py": [
        r"loaded 'Four short songs': A, B, C, D",
        r"shuffled: [ABCD], [ABCD], [ABCD], [ABCD]",
        r"now playing: [ABCD]",
        r"skipped to: [ABCD] \(history: [ABCD]\)",
        r"loop track: [ABCD] again",
        r"loop queue: [ABCD] \(then: [ABCD], [ABCD]\)",
        r"loop queue: [ABCD] \(then: [ABCD], [ABCD]\)",
        r"loop queue: [ABCD] \(then: [ABCD], [ABCD]\)",
        r"queue idle; history: [ABCD](, [ABCD]){4}",
        r"left the channel",
    ],
    "gateway_bot.py": [
        r"loaded: 'A short song'",
        r"shard 0 ready",
        r"shard 1 ready",
        r"guild 817327181659111454: playing on shard 0",
        r"guild 700000000000000000: playing on shard 1",
        r"guild 817327181659111454: 'A short song' finished",
        r"guild 700000000000000000: 'A short song' finished",
        r"left 2 channel\(s\)",
        r"shard 1 dropped; resumed: True",
        r"shard 0 sent 2 OP 4 frames",  # join + leave, each through the guild's own shard
        r"shard 1 sent 2 OP 4 frames",
    ],
    "discordpy_bot.py": [
        r"loaded: 'A short song'",
        r"joined: channel 1126593424391868476",
        r"playing: 'A short song'",
        r"event: lavasync_track_end 'A short song' finished",
        r"left the channel",
    ],
    "hikari_bot.py": [
        r"loaded: 'A short song'",
        r"shard 0 ready",
        r"joined: channel 1126593424391868476",
        r"playing: 'A short song'",
        r"event: track_end 'A short song' finished",
        r"left the channel",
    ],
}

# Examples that need an optional library (an extra); skipped where it is not installed.
REQUIRES = {"discordpy_bot.py": "discord", "hikari_bot.py": "hikari"}


def runnable(script: str) -> bool:
    module = REQUIRES.get(script)
    return module is None or importlib.util.find_spec(module) is not None


#: The examples this environment can run (tests/test_servers_examples.py runs them too).
SCRIPTS = [script for script in ALL_SCRIPTS if runnable(script)]


def subprocess_env() -> dict[str, str]:
    """The environment for a script: it imports the same lavasync as this test process."""
    env = dict(os.environ)
    package_parent = str(Path(lavasync.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES_DIR / script), *args],
        cwd=ROOT,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, list[str], str]:
    """Wait for a script; returns (exit code, stdout lines, stderr). Kills it on timeout."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not finish in {TIMEOUT} s\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out.splitlines(), err


def assert_lines_in_order(lines: Sequence[str], patterns: Sequence[str]) -> list[re.Match[str]]:
    """Each pattern fully matches a line, after the previous pattern's line. Returns matches."""
    matches = []
    position = 0
    for pattern in patterns:
        for index in range(position, len(lines)):
            match = re.fullmatch(pattern, lines[index])
            if match:
                matches.append(match)
                position = index + 1
                break
        else:
            shown = "\n".join(lines)
            pytest.fail(f"no line matching {pattern!r} after line {position}:\n{shown}")
    return matches


@pytest.fixture(scope="module")
def local_runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every example started at once, with no arguments (in-process fake node)."""
    procs = {script: start(script) for script in SCRIPTS}
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def test_the_documented_examples_exist() -> None:
    assert set(EXPECTED) <= set(ALL_SCRIPTS), "an example the README names is missing"
    assert set(ALL_SCRIPTS) <= set(EXPECTED), "a new example needs expected lines in EXPECTED"


@pytest.mark.parametrize("script", sorted(REQUIRES))
def test_examples_that_need_a_library_run_where_it_is_installed(script: str) -> None:
    if not runnable(script):
        pytest.skip(f"{script} needs {REQUIRES[script]} (its lavasync extra; tox -e ext)")
    assert script in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_against_the_fake_node(
    script: str, local_runs: dict[str, subprocess.Popen[str]]
) -> None:
    code, lines, err = finish(local_runs[script])
    assert code == 0, f"{script} exited {code}\nstdout:\n" + "\n".join(lines) + f"\nstderr:\n{err}"
    assert err == "", f"{script} wrote to stderr (a logged warning?):\n{err}"
    assert_lines_in_order(lines, EXPECTED[script])


def test_queue_bot_loops_repeat_the_right_tracks(
    local_runs: dict[str, subprocess.Popen[str]],
) -> None:
    code, lines, _ = finish(local_runs["queue_bot.py"])
    assert code == 0
    text = "\n".join(lines)
    shuffled = re.search(r"^shuffled: (.*)$", text, re.M)
    first = re.search(r"^now playing: (\w)$", text, re.M)
    skipped = re.search(r"^skipped to: (\w) ", text, re.M)
    again = re.search(r"^loop track: (\w) again$", text, re.M)
    looped = re.findall(r"^loop queue: (\w) ", text, re.M)
    history = re.search(r"^queue idle; history: (.*)$", text, re.M)
    assert shuffled and first and skipped and again and history
    order = shuffled.group(1).split(", ")
    assert sorted(order) == ["A", "B", "C", "D"]
    assert [first.group(1), skipped.group(1)] == order[:2]  # start, then skip to the second
    assert again.group(1) == skipped.group(1)  # loop track: the same one again
    # loop queue: the two never played, then the looped track, which went to the back
    assert looped == [*order[2:], skipped.group(1)]
    # the repeat of loop "track" is not history; every other play is, in order
    assert history.group(1).split(", ") == [order[0], order[1], *order[2:], order[1]]


def test_host_gateway_sends_op4_through_the_guilds_shard(
    local_runs: dict[str, subprocess.Popen[str]],
) -> None:
    code, lines, _ = finish(local_runs["host_gateway.py"])
    assert code == 0
    playing = {tuple(re.findall(r"\d+", x)) for x in lines if ": playing on shard " in x}
    assert playing == {("817327181659111454", "0"), ("700000000000000000", "1")}
    (line,) = [x for x in lines if x.startswith("first OP 4: ")]
    payload = json.loads(line[len("first OP 4: ") :])
    assert payload == {
        "op": 4,
        "d": {
            "guild_id": "817327181659111454",
            "channel_id": "1126593424391868476",
            "self_mute": False,
            "self_deaf": True,
        },
    }


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_against_a_node_given_by_uri_skips_voice(script: str) -> None:
    with FakeNode(password="s3cret") as fake:
        code, lines, err = finish(start(script, "--uri", fake.uri, "--password", "s3cret"))
        websocket_sessions = fake.session_ids()
    assert code == 0, f"{script} exited {code}\nstdout:\n" + "\n".join(lines) + f"\nstderr:\n{err}"
    assert err == ""
    assert any(line.startswith("voice skipped") for line in lines), lines
    assert len(websocket_sessions) == 1  # it really connected to the node it was given


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_with_a_wrong_password_fails_loudly(script: str) -> None:
    with FakeNode(password="right") as fake:
        code, _, err = finish(start(script, "--uri", fake.uri, "--password", "wrong"))
    assert code != 0
    assert "AuthenticationError" in err
