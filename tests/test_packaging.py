"""What the built sdist and wheel hold (run by ``tox -e pkg`` on the files it just built).

``tox -e pkg`` runs ``python -m build`` and ``twine check``, then this file with
``LAVASYNC_DIST`` naming the folder of the fresh build. Without that variable (a plain
``pytest``) there is nothing built to look at and the tests are skipped.
"""

from __future__ import annotations

import email
import email.message
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

DIST = os.environ.get("LAVASYNC_DIST", "")

pytestmark = pytest.mark.skipif(
    not DIST, reason="LAVASYNC_DIST is not set (tox -e pkg builds the dists and sets it)"
)

#: Paths (relative to the sdist's top folder) a user needs to run the suite and build the docs.
SDIST_MUST_HOLD = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "tox.ini",
    "CHANGELOG.md",
    "README.md",
    "LICENSE",
    "tests/conftest.py",
    "tests/test_codec.py",
    "tests/data/README.md",
    "tests/data/lavalink-v4/track_vectors.json",
    "tests/data/lavalink-v4/examples/README.md",
    "examples/play_and_wait.py",
    "bench/README.md",
    "docs/conf.py",
    "docs/index.md",
    "lavasync/py.typed",
)


def _one(pattern: str) -> Path:
    found = sorted(Path(DIST).glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {DIST}, found {found}"
    return found[0]


def _sdist_names() -> set[str]:
    with tarfile.open(_one("lavasync-*.tar.gz")) as tar:
        names = tar.getnames()
    tops = {n.split("/", 1)[0] for n in names}
    assert len(tops) == 1, tops
    return {n.split("/", 1)[1] for n in names if "/" in n}


def _wheel_metadata() -> email.message.Message:
    with zipfile.ZipFile(_one("lavasync-*.whl")) as whl:
        (meta,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(whl.read(meta))


def test_the_sdist_holds_the_tests_their_data_examples_and_docs() -> None:
    names = _sdist_names()
    missing = [p for p in SDIST_MUST_HOLD if p not in names]
    assert not missing, f"missing from the sdist: {missing}"
    assert any(n.startswith("tests/data/lavalink-v4/examples/") for n in names)
    assert any(n.startswith("docs/guides/") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("docs/_build")]


def test_the_wheel_holds_the_package_only() -> None:
    with zipfile.ZipFile(_one("lavasync-*.whl")) as whl:
        tops = {n.split("/", 1)[0] for n in whl.namelist()}
        assert "lavasync/py.typed" in whl.namelist()
    assert tops == {"lavasync", next(t for t in tops if t.endswith(".dist-info"))}


def test_the_metadata_uses_an_spdx_license_and_the_three_runtime_dependencies() -> None:
    meta = _wheel_metadata()
    assert meta["License-Expression"] == "MIT"
    assert not [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
    assert "LICENSE" in meta.get_all("License-File", [])
    runtime = sorted(
        r.split("<")[0].split(">")[0].split("=")[0].strip()
        for r in meta.get_all("Requires-Dist", [])
        if "extra ==" not in r
    )
    assert runtime == ["dataclasses-json", "requests", "websocket-client"]
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["Description-Content-Type"] == "text/markdown"
