"""A fresh clone of this repository runs part of the suite by itself.

The test clones the commit this checkout is at into an empty temporary folder (so no
reference folder or any other outside file sits beside it) and runs a slice of the suite that reads
the protocol data in ``tests/data`` with the clone's own code. It proves that the tests read
nothing outside the repository. It is skipped only where there is no git checkout (an unpacked
sdist); under CI (``CI`` set) a missing checkout fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Test files that read tests/data (payload examples and track vectors).
SLICE = ("tests/test_codec.py", "tests/test_models.py")


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _head_or_skip() -> str:
    """The commit this checkout is at; skip (or fail under CI) outside a git checkout."""
    reason = ""
    if shutil.which("git") is None:
        reason = "git is not installed"
    else:
        try:
            top = Path(_git("rev-parse", "--show-toplevel", cwd=ROOT)).resolve()
            if top != ROOT:
                reason = f"{ROOT} is not the top of a git checkout"
            else:
                return _git("rev-parse", "HEAD", cwd=ROOT)
        except RuntimeError as exc:
            reason = f"not a git checkout ({exc})"
    if os.environ.get("CI"):
        pytest.fail(f"CI runs from a git clone, yet: {reason}")
    pytest.skip(reason)


def _clean_env(clone: Path) -> dict[str, str]:
    """The environment with only the clone on PYTHONPATH and no pytest plugin autoloading."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env["PYTHONPATH"] = str(clone)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.timeout(300)
def test_a_fresh_clone_runs_its_tests_with_nothing_beside_it(tmp_path: Path) -> None:
    head = _head_or_skip()
    clone = tmp_path / "lavasync"
    _git("clone", "--quiet", "--no-checkout", str(ROOT), str(clone), cwd=tmp_path)
    _git("checkout", "--quiet", "--detach", head, cwd=clone)
    assert _git("rev-parse", "HEAD", cwd=clone) == head
    # Nothing but the clone in its folder: a test reading a sibling folder (or anything else
    # outside the repository) fails below.
    assert [p.name for p in tmp_path.iterdir()] == ["lavasync"]
    assert (clone / "tests" / "data" / "lavalink-v4" / "track_vectors.json").is_file()

    env = _clean_env(clone)
    where = subprocess.run(
        [sys.executable, "-c", "import lavasync; print(lavasync.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).resolve().is_relative_to(clone.resolve())

    run = subprocess.run(
        [sys.executable, "-m", "pytest", *SLICE, "-q", "-x", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-30:])
    assert run.returncode == 0, f"the clone's tests failed:\n{tail}"
    assert " passed" in tail and "skipped" not in tail, tail
