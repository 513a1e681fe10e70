"""Track blob decode speed against json.loads of the same track's JSON, in the same run.

Run by hand: ``python bench/bench_codec.py``. For a few real vectors it times

* ``json.loads`` of the Track JSON object the server sends (encoded, info, pluginInfo,
  userData): the floor;
* ``decode_info`` (blob -> wire-shaped info dict), ``decode_blob`` and, when the models exist,
  ``decode_track`` (blob -> Track);
* ``encode_info`` (info dict -> blob),

and prints decodes per second and the ratio to the floor. Target: decode_info <= 1.5x json.loads.
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lavasync import codec

VECTORS = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "lavalink-v4" / "track_vectors.json"
)
if not VECTORS.is_file():
    VECTORS = Path(__file__).resolve().parents[1] / "tests" / "data" / "lavalink-v4" / VECTORS.name

TARGET = 1.5


def per_call(fns: list[Callable[[], Any]], rounds: int = 9) -> list[float]:
    """Best seconds per call of each function. The functions take turns in every round, so a
    burst of load on the machine hits them alike instead of skewing one ratio."""
    timers = [timeit.Timer(fn) for fn in fns]
    numbers = [max(1, timer.autorange()[0] // 2) for timer in timers]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, (timer, number) in enumerate(zip(timers, numbers)):
            best[i] = min(best[i], timer.timeit(number) / number)
    return best


def pick(vectors: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    def first(test: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return next(v for v in vectors if test(v))

    return [
        ("youtube v3 ascii", first(lambda v: v["version"] == 3 and v["info"]["title"].isascii())),
        ("youtube v3 emoji", first(lambda v: "\U0001f33f" in v["info"]["title"])),
        ("youtube v3 CJK", first(lambda v: v["info"]["title"].startswith("\u541b"))),
        ("spotify v3 LavaSrc", first(lambda v: v["info"]["sourceName"] == "spotify")),
        ("http v2 probe", first(lambda v: v["info"]["sourceName"] == "http")),
    ]


def main() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    try:
        codec.decode_track(vectors[0]["encoded"])
        have_models = True
    except ImportError:
        have_models = False
    print(f"python {sys.version.split()[0]}; ratios are to json.loads of the Track JSON\n")
    header = f"{'vector':<20} {'json.loads':>11} {'decode_info':>18} {'decode_blob':>18}"
    header += f" {'decode_track':>18} {'encode_info':>18}"
    print(header)
    worst = 0.0
    for name, vector in pick(vectors):
        encoded = vector["encoded"]
        info = codec.decode_info(encoded)
        track_json = json.dumps(
            {"encoded": encoded, "info": info, "pluginInfo": {}, "userData": {}},
            ensure_ascii=False,
        )
        blob = codec.decode_blob(encoded)
        fns: list[Callable[[], Any]] = [
            lambda text=track_json: json.loads(text),
            lambda e=encoded: codec.decode_info(e),
            lambda e=encoded: codec.decode_blob(e),
            lambda e=encoded: codec.decode_track(e),
            lambda b=blob: codec.encode_info(b.info, source_data=b.source_data),
        ]
        if not have_models:
            del fns[3]
        costs = per_call(fns)
        floor = costs[0]
        cells = [f"{floor * 1e6:8.2f} us"]
        cells += [f"{1 / cost / 1000:7.0f}k/s {cost / floor:5.2f}x" for cost in costs[1:]]
        if not have_models:
            cells.insert(3, "(no models)")
        worst = max(worst, costs[1] / floor)
        row = " ".join(f"{c:>18}" if i else f"{c:>11}" for i, c in enumerate(cells))
        print(f"{name:<20} {row}")
    verdict = "meets" if worst <= TARGET else "MISSES"
    print(f"\nworst decode_info / json.loads: {worst:.2f}x ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
