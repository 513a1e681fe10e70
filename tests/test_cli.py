"""``python -m lavasync load|stats``, URIs and one-line errors, and ``python -m lavasync.testing
serve``: in process through ``__main__.main`` against a FakeNode here, and as subprocesses where
the process itself matters (signals, exit codes, no traceback on stderr)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import USER_ID

import lavasync
from lavasync.__main__ import main
from lavasync._cli import _width, duration, node_uri
from lavasync.testing import FakeNode

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(password="pw") as node:
        yield node


def env() -> dict[str, str]:
    """The environment for a subprocess: it imports the same lavasync as this process."""
    variables = dict(os.environ)
    parent = str(Path(lavasync.__file__).resolve().parents[1])
    variables["PYTHONPATH"] = os.pathsep.join(
        p for p in (parent, variables.get("PYTHONPATH", "")) if p
    )
    variables["PYTHONUNBUFFERED"] = "1"
    return variables


@contextmanager
def spawned(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m *args`` running; killed and reaped on the way out if it still runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C ``proc`` and check it exits 0 without a traceback; returns its stderr."""
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return err


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------- load


def test_load_prints_a_table_of_the_track(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_track("Song", author="Band", length=213_000, identifier="https://x.test/s.mp3")
    code = main(["load", "https://x.test/s.mp3", "--uri", fake.uri, "--password", "pw"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "https://x.test/s.mp3: track, 1 track"
    assert lines[1].split() == ["#", "type", "title", "author", "length", "source"]
    assert lines[2].split() == ["1", "track", "Song", "Band", "3:33", "http"]


def test_load_a_playlist_marks_streams_and_lengths(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["load", "fake:playlist", "--uri", fake.uri, "--password", "pw"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("fake:playlist: playlist, playlist 'Fake playlist', ")
    rows = lines[2:]
    assert len(rows) == int(lines[0].rsplit(", ", 1)[1].split()[0])
    assert any(" stream " in row and " live " in row for row in rows), out
    # the columns line up, wide characters included (the built-ins have a Japanese title)
    assert len({_width(row.rsplit(" ", 1)[0]) for row in rows}) == 1, out


def test_load_search_lists_every_result(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", "scsearch:some words", "--uri", fake.uri, "--password", "pw"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "scsearch:some words: search, 5 tracks"
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4", "5"]
    assert all(line.endswith("soundcloud") for line in lines[2:])


def test_load_empty_says_so_and_exits_0(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", "fake:empty", "--uri", fake.uri, "--password", "pw"])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == ["fake:empty: empty", "nothing found"]


def test_load_error_prints_the_exception_and_exits_1(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["load", "fake:error", "--uri", fake.uri, "--password", "pw"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0] == "fake:error: error"
    assert lines[1] == "error (fault): Something went wrong while looking up the track."


def test_load_json_is_the_load_result(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", "dQw4w9WgXcQ", "--uri", fake.uri, "--password", "pw", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["loadType"] == "track"
    assert data["data"]["info"]["identifier"] == "dQw4w9WgXcQ"


def test_uri_and_password_come_from_the_environment(
    fake: FakeNode, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAVASYNC_URI", fake.uri)
    monkeypatch.setenv("LAVASYNC_PASSWORD", "pw")
    assert main(["load", "fake:empty"]) == 0
    assert capsys.readouterr().out.startswith("fake:empty: empty")


# ---------------------------------------------------------------------------- stats


def test_stats_prints_one_line(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["stats", "--uri", fake.uri, "--password", "pw"])
    out = capsys.readouterr().out
    assert code == 0
    (line,) = out.splitlines()
    assert line.startswith("players 0 (0 playing); uptime ")
    assert " MiB" in line
    assert len([r for r in fake.requests if r.path == "/v4/stats"]) == 1


def test_stats_watch_count_repeats(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stats", "--uri", fake.uri, "--password", "pw", "--watch", "0.01", "--count", "3"]
    argv.append("--json")
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["players"] == 0 for line in lines)
    assert len([r for r in fake.requests if r.path == "/v4/stats"]) == 3


def test_stats_watch_stops_on_ctrl_c_with_exit_0(fake: FakeNode) -> None:
    args = ("lavasync", "stats", "--uri", fake.uri, "--password", "pw", "--watch", "0.05")
    with spawned(*args) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("players 0"), first
        interrupt(proc)


# ---------------------------------------------------------------------------- URIs and errors


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:2333", "http://127.0.0.1:2333"),
        ("https://node.example:443/", "https://node.example:443"),
        ("ws://127.0.0.1:2333", "http://127.0.0.1:2333"),
        ("wss://node.example/v4/websocket", "https://node.example"),
        ("WS://127.0.0.1:2333/v4/websocket/", "http://127.0.0.1:2333"),
    ],
)
def test_ws_uris_mean_the_same_node(given: str, expected: str) -> None:
    assert node_uri(given) == expected


@pytest.mark.parametrize("command", ["load", "stats", "demo"])
def test_ws_uri_works_for_every_command(
    command: str, fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--uri", fake.ws_uri, "--password", "pw"]
    if command == "load":
        argv.insert(1, "dQw4w9WgXcQ")
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == "" and out
    assert fake.requests, "nothing reached the node"


BAD_URIS = [
    ("foo", "no scheme"),
    ("ftp://127.0.0.1:2333", "scheme must be http, https, ws or wss"),
    ("http://", "no host"),
    ("http://127.0.0.1:99999", "invalid port"),
    ("http://127.0.0.1:2333/?x=1", "query or fragment"),
]


@pytest.mark.parametrize("command", ["load", "stats", "doctor", "demo"])
@pytest.mark.parametrize(("uri", "why"), BAD_URIS)
def test_a_bad_uri_is_one_line_and_exit_2(
    command: str, uri: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--uri", uri]
    if command == "load":
        argv.insert(1, "x")
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"python -m lavasync {command}: error: --uri ")
    assert why in line


@pytest.mark.parametrize("command", ["load", "stats"])
def test_node_failures_are_one_line_and_exit_1(
    command: str, fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ([fake.uri, "wrong"], "AuthenticationError"),
        ([f"http://127.0.0.1:{closed_port()}", "pw"], "ConnectionFailedError"),
    ]
    for (uri, password), kind in cases:
        argv = [command, "--uri", uri, "--password", password]
        if command == "load":
            argv.insert(1, "x")
        assert main(argv) == 1
        _out, err = capsys.readouterr()
        (line,) = err.splitlines()
        assert line.startswith(f"python -m lavasync {command}: error: {kind}: "), line


def test_bad_option_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, why in [
        (["stats", "--watch", "0"], "--watch must be > 0"),
        (["stats", "--watch", "1", "--count", "0"], "--count must be >= 1"),
        (["load", " "], "the identifier is empty"),
        (["load", "x", "--timeout", "-1"], "--timeout must be > 0"),
        (["doctor", "--samples", "0"], "--samples must be >= 1"),
    ]:
        assert main(argv) == 2, argv
        (line,) = capsys.readouterr().err.splitlines()
        assert why in line, line


def test_subprocess_bad_uri_prints_no_traceback() -> None:
    for args in (("demo", "--uri", "foo"), ("load", "x", "--uri", "ftp://h")):
        proc = run("lavasync", *args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) == 1, proc.stderr


def test_durations() -> None:
    assert duration(0) == "0:00"
    assert duration(213_000) == "3:33"
    assert duration(3_723_000) == "1:02:03"
    assert duration(2**63 - 1) == "live"
    assert duration(-1) == "live"


# ---------------------------------------------------------------------------- serve


def test_serve_runs_a_node_a_client_can_use_and_stops_on_sigint() -> None:
    with spawned("lavasync.testing", "serve", "--password", "s3cret") as proc:
        assert proc.stdout is not None
        uri_line = proc.stdout.readline().strip()
        password_line = proc.stdout.readline().strip()
        assert uri_line.startswith("uri: http://127.0.0.1:"), uri_line
        assert password_line == "password: s3cret"
        uri = uri_line[len("uri: ") :]
        with lavasync.Client(USER_ID) as client:
            client.add_node("served", uri, password="s3cret")
            client.wait_ready(timeout=10)
            result = client.load("dQw4w9WgXcQ")
            assert result.load_type == "track"
            assert result.tracks[0].info.author == "Rick Astley"
        err = interrupt(proc)
    assert err.splitlines()[-1] == "stopped"


def test_serve_on_a_taken_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = run("lavasync.testing", "serve", "--port", str(port))
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(
        f"python -m lavasync.testing serve: error: cannot listen on 127.0.0.1:{port}"
    )
    assert proc.stdout == ""


def test_serve_rejects_an_unknown_dialect_in_one_line() -> None:
    proc = run("lavasync.testing", "serve", "--dialect", "no-such-server")
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("python -m lavasync.testing serve: error: ")
    assert "no-such-server" in line or "dialect" in line


def test_a_malformed_answer_is_a_node_failure_not_a_usage_error(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_route("GET", "/v4/loadtracks", lambda req: {"loadType": "track", "data": "nope"})
    assert main(["load", "x", "--uri", fake.uri, "--password", "pw"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m lavasync load: error: RestError: ")
