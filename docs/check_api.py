"""Check a built docs site documents every public name (run by ``tox -e docs``).

Usage: ``python docs/check_api.py <html folder>``. Exits 1 listing each name of
``lavasync.__all__`` / ``lavasync.testing.__all__`` that has no entry in ``api.html``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import lavasync
import lavasync.testing


def missing(html: str) -> list[str]:
    """The public names without an anchor in the API page."""
    ids = set(re.findall(r'id="(lavasync[\w.]*)"', html))
    names = [f"lavasync.{n}" for n in lavasync.__all__]
    names += [f"lavasync.testing.{n}" for n in lavasync.testing.__all__]
    return [n for n in names if n not in ids]


def main(argv: list[str]) -> int:
    page = Path(argv[1]) / "api.html"
    gaps = missing(page.read_text(encoding="utf-8"))
    for name in gaps:
        print(f"not documented: {name}")
    print(f"{page}: {'every public name documented' if not gaps else f'{len(gaps)} missing'}")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
