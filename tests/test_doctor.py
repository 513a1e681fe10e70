"""``python -m lavasync doctor`` against FakeNodes set up to be healthy or broken in one way."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from conftest import wait_until

from lavasync.__main__ import main
from lavasync._doctor import percentile
from lavasync.testing import FakeNode

ORDER = [
    "reachability",
    "auth",
    "server",
    "plugins",
    "sources",
    "load youtube",
    "load soundcloud",
    "load bandcamp",
    "load (others)",
    "rest latency",
    "websocket",
    "resume",
    "route planner",
    "stats",
]
QUERY = "never gonna give you up"
# GET /v4/info as NodeLink 3.7.0 answers it (COMPATIBLE_SERVERS.md)
NODELINK_INFO = {
    "version": {
        "semver": "3.7.0",
        "major": 3,
        "minor": 7,
        "patch": 0,
        "prerelease": [],
        "build": [],
    },
    "buildTime": -1,
    "git": {"branch": "unknown", "commit": "unknown", "commitTime": -1},
    "node": "v22.23.3",
    "voice": {"name": "@performanc/voice", "version": "github:PerformanC/voice"},
    "isNodelink": True,
    "sourceManagers": ["local", "http"],
    "filters": ["tremolo", "vibrato", "lowpass", "timescale"],
    "plugins": [],
}


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode(password="pw") as node:
        yield node


def doctor(
    capsys: pytest.CaptureFixture[str], uri: str, *args: str, password: str = "pw"
) -> tuple[int, list[tuple[str, str, str]], str]:
    """Run the doctor; returns (exit code, [(status, name, reason)], stderr)."""
    code = main(["doctor", "--uri", uri, "--password", password, "--samples", "5", *args])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[-1].startswith("result: ")
    rows = []
    for line in lines[:-1]:
        status, rest = line[:4].strip(), line[6:]
        rows.append((status, rest[:16].strip(), rest[17:]))
    return code, rows, err


def by_name(rows: list[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    return {name: (status, reason) for status, name, reason in rows}


def test_a_healthy_node_is_all_ok_and_exits_0(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, err = doctor(capsys, fake.uri)
    assert code == 0, rows
    assert [name for _, name, _ in rows] == ORDER
    checks = by_name(rows)
    assert all(status == "OK" for status, name, _ in rows if name != "load (others)"), rows
    assert checks["load (others)"] == ("SKIP", "no search prefix to try: twitch, vimeo, http")
    assert checks["server"][1].startswith("Lavalink 4.2.2 (lavaplayer ")
    assert checks["load soundcloud"][1].startswith(f"'scsearch:{QUERY}': search, 5 tracks in ")
    assert checks["rest latency"][1].endswith("over 5 calls (GET /version)")
    assert checks["route planner"][1] == "none configured (no IP rotation)"
    # progress on stderr, one line per step since stderr is not a terminal here
    progress = err.splitlines()
    assert progress[0] == "[1/11] reachability..."
    assert progress[-1] == "[11/11] stats..."


def test_the_resume_probe_really_drops_and_resumes_and_leaves_nothing(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, _ = doctor(capsys, fake.uri)
    assert code == 0
    status, reason = by_name(rows)["resume"]
    handshakes = fake.handshakes
    assert len(handshakes) == 2
    first = fake.wait_for_connection(count=1)
    assert handshakes[0].headers.get("Session-Id") is None
    assert handshakes[1].headers.get("Session-Id") == first
    assert fake.wait_for_connection(count=2) == first  # the same session, resumed
    assert (status, reason.split(" in ")[0]) == ("OK", f"dropped and resumed session {first}")
    patches = [r.json for r in fake.requests if r.method == "PATCH"]
    assert patches[0] == {"resuming": True, "timeout": 10}
    assert patches[-1] == {"resuming": False}
    wait_until(lambda: fake.session_ids() == [])  # the doctor's session is gone


def test_json_document(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--uri", fake.uri, "--password", "pw", "--json", "--samples", "7"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["result"] == "OK" and document["exit_code"] == 0
    assert document["uri"] == fake.uri
    checks = {c["name"]: c for c in document["checks"]}
    assert [c["name"] for c in document["checks"]] == ORDER
    latency = checks["rest latency"]["details"]
    assert latency["samples"] == 7
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]
    assert checks["server"]["details"] == {"kind": "lavalink", "version": "4.2.2", "major": 4}
    assert checks["sources"]["details"]["sources"] == list(fake.source_managers)
    assert checks["websocket"]["details"]["session_id"]
    assert checks["resume"]["details"]["session_resumed_header"] is True
    assert set(checks["stats"]["details"]) >= {"players", "uptime_ms", "memory_used"}
    versions = [r for r in fake.requests if r.path == "/version"]
    assert len(versions) == 1 + 7  # the auth check, then the samples


def test_ws_uri_is_the_same_node(fake: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, _ = doctor(capsys, fake.ws_uri)
    assert code == 0, rows


def test_wrong_password_fails_auth_and_exits_2(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, _ = doctor(capsys, fake.uri, password="wrong")
    assert code == 2
    assert rows[0][0] == "OK"
    assert rows[1] == ("FAIL", "auth", "the node refused the password (HTTP 403: wrong password)")
    assert {status for status, _, _ in rows[2:]} == {"SKIP"}
    assert fake.handshakes == []  # nothing after the failed check


def test_closed_port_fails_reachability_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, rows, _ = doctor(capsys, f"http://127.0.0.1:{port}")
    assert code == 2
    assert rows[0] == (
        "FAIL",
        "reachability",
        f"connection refused at 127.0.0.1:{port}: is the node running there?",
    )
    assert len(rows) == 11 and {status for status, _, _ in rows[1:]} == {"SKIP"}


def test_https_to_a_plain_node_fails_the_tls_handshake(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, _ = doctor(capsys, fake.uri.replace("http://", "https://"))
    assert code == 2
    status, name, reason = rows[0]
    assert (status, name) == ("FAIL", "reachability")
    assert reason.startswith(f"TLS handshake with 127.0.0.1:{fake.port} failed")


def test_a_v3_server_is_named_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeNode(password="pw", version="3.7.11") as v3:
        v3.add_route("GET", "/v4/info", lambda req: (404, {"status": 404, "error": "Not Found"}))
        code, rows, _ = doctor(capsys, v3.uri)
    assert code == 2
    status, reason = by_name(rows)["server"]
    assert status == "FAIL"
    assert (
        reason == "Lavalink 3.7.11 is a v3 server (GET /v4/info: 404); lavasync needs Lavalink v4"
    )
    assert by_name(rows)["websocket"][0] == "SKIP"


def test_a_v3_version_in_info_fails_too(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeNode(password="pw", version="3.7.11") as v3:
        code, rows, _ = doctor(capsys, v3.uri)
    assert code == 2
    assert by_name(rows)["server"] == (
        "FAIL",
        "Lavalink 3.7.11 is a v3 server; lavasync needs v4",
    )


def test_nodelink_is_recognised_not_taken_for_v3(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeNode(password="pw", version="3.7.0", source_managers=("local", "http")) as node:
        node.add_route("GET", "/v4/info", lambda req: NODELINK_INFO)
        node.add_route("GET", "/v4/routeplanner/status", lambda req: (404, {"status": 404}))
        code, rows, _ = doctor(capsys, node.uri)
    checks = by_name(rows)
    assert checks["server"] == ("OK", "NodeLink 3.7.0 (a Lavalink v4 compatible server)")
    assert checks["route planner"][0] == "SKIP"
    assert checks["sources"][1].startswith("sources: local, http; filters: tremolo")
    assert code == 0, rows


def test_a_broken_source_warns_and_exits_1(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"message": "blocked", "severity": "fault", "cause": "x"}
    fake.set_load_result(f"scsearch:{QUERY}", {"loadType": "error", "data": error})
    fake.set_load_result(f"bcsearch:{QUERY}", {"loadType": "search", "data": []})
    code, rows, _ = doctor(capsys, fake.uri)
    assert code == 1
    checks = by_name(rows)
    assert checks["load soundcloud"] == ("WARN", f"'scsearch:{QUERY}': load error: blocked")
    assert checks["load bandcamp"][0] == "WARN"
    assert "no results" in checks["load bandcamp"][1]
    assert checks["load youtube"][0] == "OK"


def test_failing_route_planner_addresses_warn(
    fake: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.set_route_planner(
        {
            "class": "RotatingIpRoutePlanner",
            "details": {
                "ipBlock": {"type": "Inet6Address", "size": "18446744073709551616"},
                "failingAddresses": [
                    {
                        "failingAddress": "/1.0.0.0",
                        "failingTimestamp": 1573520707545,
                        "failingTime": "Mon Nov 11 20:05:07 EST 2019",
                    }
                ],
                "rotateIndex": "0",
                "ipIndex": "0",
                "currentAddress": "/1.0.0.1",
            },
        }
    )
    code, rows, _ = doctor(capsys, fake.uri)
    assert code == 1
    assert by_name(rows)["route planner"] == (
        "WARN",
        "RotatingIpRoutePlanner, Inet6Address block of 18446744073709551616 addresses; "
        "1 failing: /1.0.0.0",
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([5.0, 1.0], 50) == 1.0
