"""Running a bench's FakeNode in a child process, so it never competes for this GIL.

The bench script runs itself with ``--serve``: the child starts its FakeNode, prints one JSON
line (its address and whatever else the parent needs) and then serves until its stdin closes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Child:
    """A child process running ``script --serve``; ``info`` is the JSON line it printed."""

    def __init__(self, script: str) -> None:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, script, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=path),
        )
        self.info: dict[str, Any] = json.loads(self.readline())

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the FakeNode child process died")
        return line

    def send(self, command: Any) -> None:
        """Write one JSON line to the child's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)


def announce(info: dict[str, Any]) -> None:
    """Child side: hand the parent ``info`` (one JSON line on stdout)."""
    print(json.dumps(info), flush=True)
