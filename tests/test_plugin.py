"""The pytest plugin (lavasync.testing.plugin): its fixtures, run by a real pytest.

Each test writes test files into a temporary folder and runs pytest on them in a subprocess
with plugin autoloading off and the plugin named explicitly (``-p lavasync.testing.plugin``),
so it works whether or not the installed lavasync already declares the entry point. Outcomes
are read from pytest's JUnit XML report.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import lavasync

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "testing_your_bot"
PLUGIN = "lavasync.testing.plugin"


def run_pytest(
    folder: Path, report_dir: Path, *args: str, timeout: float = 50.0
) -> dict[str, tuple[str, str]]:
    """Run pytest in ``folder``; returns ``{test name: (outcome, message)}``."""
    report = report_dir / "report.xml"
    env = dict(os.environ)
    package_parent = str(Path(lavasync.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            PLUGIN,
            "-p",
            "pytest_timeout",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "-q",
            *args,
        ],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert report.exists(), f"pytest wrote no report\n{proc.stdout}\n{proc.stderr}"
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "") + (child.text or "")
                break
        name = case.get("name", "")
        # a teardown error comes as a second testcase element of the same name
        if outcomes.get(name, ("passed", ""))[0] == "passed":
            outcomes[name] = (outcome, message)
    return outcomes


def write(folder: Path, name: str, source: str) -> None:
    (folder / name).write_text(textwrap.dedent(source), encoding="utf-8")


INI = """
[pytest]
lavasync_thread_grace = 0.5
"""

FIXTURE_TESTS = """
import threading

import pytest

import lavasync
from lavasync.errors import ConnectionFailedError
from lavasync.testing import FakeGateway, FakeNode
from lavasync.transport.rest import RestTransport

SEEN = {}


def test_fake_node_is_a_started_fake_node(fake_node):
    assert isinstance(fake_node, FakeNode)
    with RestTransport(fake_node.uri, fake_node.password, client_name="t/1") as rest:
        assert rest.request("GET", "/version") == fake_node.version


def test_client_is_ready_on_the_fake_node(lavasync_client, fake_node):
    assert isinstance(lavasync_client, lavasync.Client)
    (node,) = lavasync_client.nodes
    assert node.name == "fake" and node.available
    assert node.session_id in fake_node.session_ids()
    assert lavasync_client.load("dQw4w9WgXcQ").load_type == "track"
    SEEN.update(client=lavasync_client, node=fake_node)


def test_everything_was_closed_after_the_previous_test():
    client, node = SEEN["client"], SEEN["node"]
    assert client.closed
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith(("lavasync", "fakenode"))], names
    with pytest.raises(ConnectionFailedError):
        RestTransport(node.uri, node.password, client_name="t/1").request("GET", "/version")


def test_gateway_makes_player_connect_work(lavasync_client, fake_gateway, fake_node):
    assert isinstance(fake_gateway, FakeGateway)
    player = lavasync_client.player(817327181659111454)
    player.connect(1126593424391868476, self_deaf=True)
    assert player.connected
    player.play(lavasync_client.load("dQw4w9WgXcQ").tracks[0])
    (sid,) = fake_node.session_ids()
    assert fake_node.player(sid, 817327181659111454)["state"]["connected"] is True
    assert fake_gateway.sent[0][1]["d"]["channel_id"] == "1126593424391868476"


@pytest.mark.fake_node(password="s3cret", version="4.1.0")
def test_marker_passes_options_to_the_fake_node(fake_node, lavasync_client):
    assert fake_node.password == "s3cret"
    assert lavasync_client.nodes[0].rest.version() == "4.1.0"


def test_fake_node_alone_starts_no_client(fake_node):
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith("lavasync")], names
"""

OVERRIDE_TESTS = """
import pytest


@pytest.fixture
def lavasync_user_id():
    return 42424242


def test_user_id_fixture_can_be_overridden(lavasync_client, fake_gateway, fake_node):
    assert lavasync_client.user_id == 42424242
    assert fake_gateway.user_id == 42424242
    assert fake_node.handshakes[0].headers.get("User-Id") == "42424242"
"""

LEAK_TESTS = """
import threading


def test_leaves_a_lavasync_thread(lavasync_client):
    never = threading.Event()
    threading.Thread(target=never.wait, name="lavasync-leaky", daemon=True).start()
"""


def test_setup_cfg_declares_the_pytest11_entry_point() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options.entry_points"]["pytest11"].split("\n")
    assert "lavasync = lavasync.testing.plugin" in [line.strip() for line in lines]
    found = metadata.entry_points()
    group = found.select(group="pytest11") if hasattr(found, "select") else found["pytest11"]
    for ep in group:  # once installed from this tree, the entry point names the module above
        if ep.name == "lavasync":
            assert ep.value == PLUGIN


def test_fixtures_in_a_real_pytest_run(tmp_path: Path) -> None:
    write(tmp_path, "pytest.ini", INI)
    write(tmp_path, "test_fixtures.py", FIXTURE_TESTS)
    write(tmp_path, "test_override.py", OVERRIDE_TESTS)
    outcomes = run_pytest(tmp_path, tmp_path)
    failed = {name: o for name, o in outcomes.items() if o[0] != "passed"}
    assert not failed, failed
    assert len(outcomes) == 7


def test_a_leaked_lavasync_thread_fails_the_test(tmp_path: Path) -> None:
    write(tmp_path, "pytest.ini", INI)
    write(tmp_path, "test_leak.py", LEAK_TESTS)
    outcomes = run_pytest(tmp_path, tmp_path)
    outcome, message = outcomes["test_leaves_a_lavasync_thread"]
    assert outcome == "error", outcomes
    assert "lavasync threads left alive after the test: ['lavasync-leaky']" in message


def test_the_bot_command_example_passes_with_the_plugin(tmp_path: Path) -> None:
    args = (f"--rootdir={EXAMPLE}", "-c", os.devnull, f"--basetemp={tmp_path / 'base'}")
    outcomes = run_pytest(EXAMPLE, tmp_path, *args)
    assert outcomes, "the example has no tests"
    failed = {name: o for name, o in outcomes.items() if o[0] != "passed"}
    assert not failed, failed
    assert "test_play_joins_the_channel_and_starts_the_track" in outcomes
