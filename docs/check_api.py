"""Check a built docs site documents every public name (run by ``tox -e docs``).

Usage: ``python docs/check_api.py <html folder>``. Exits 1 listing each name of
``lavasync.__all__`` / ``lavasync.testing.__all__`` that has no entry in ``api.html``, and each
voice close code of ``lavasync.voice.VOICE_CLOSE_CODES`` missing from the shards guide's table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import lavasync
import lavasync.testing
from lavasync.voice import VOICE_CLOSE_CODES


def missing(html: str) -> list[str]:
    """The public names without an anchor in the API page."""
    ids = set(re.findall(r'id="(lavasync[\w.]*)"', html))
    names = [f"lavasync.{n}" for n in lavasync.__all__]
    names += [f"lavasync.testing.{n}" for n in lavasync.testing.__all__]
    return [n for n in names if n not in ids]


def missing_codes(html: str) -> list[int]:
    """The voice close codes without a row (a ``<td>`` of their own) in the shards guide."""
    cells = set(re.findall(r"<td><p>(\d+)</p></td>|<td>(\d+)</td>", html))
    found = {int(a or b) for a, b in cells}
    return [code for code in VOICE_CLOSE_CODES if code not in found]


def main(argv: list[str]) -> int:
    page = Path(argv[1]) / "api.html"
    gaps = missing(page.read_text(encoding="utf-8"))
    for name in gaps:
        print(f"not documented: {name}")
    print(f"{page}: {'every public name documented' if not gaps else f'{len(gaps)} missing'}")
    shards = Path(argv[1]) / "guides" / "shards.html"
    codes = missing_codes(shards.read_text(encoding="utf-8"))
    for code in codes:
        print(f"voice close code not in the table: {code}")
    print(f"{shards}: {'every voice close code listed' if not codes else f'{len(codes)} missing'}")
    return 1 if gaps or codes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
