"""Decode/encode speed of the wire models: compiled ``from_wire``/``to_wire`` against a
hand-written decoder (the floor, measured in the same run) and dataclasses-json.

Run by hand: ``python bench/bench_decode.py`` (``--quick`` for fewer rounds). The target is
``from_wire`` and ``to_wire`` at most 3x the hand-written floor.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lavasync.models import (
    LoadResult,
    PlayerState,
    Playlist,
    PlaylistInfo,
    Track,
    TrackInfo,
    snowflake,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "lavalink-v4" / "examples"
if not EXAMPLES.is_dir():
    EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "lavalink-v4" / "examples"


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the floor
# What one would write by hand for these classes: key lookups, defaults, the constructors.


def hand_player_update(d: dict[str, Any]) -> tuple[int, PlayerState]:
    s = d["state"]
    state = PlayerState(
        time=s["time"], position=s["position"], connected=s["connected"], ping=s["ping"]
    )
    return int(d["guildId"]), state


def hand_info(i: dict[str, Any]) -> TrackInfo:
    return TrackInfo(
        identifier=i["identifier"],
        is_seekable=i["isSeekable"],
        author=i["author"],
        length=i["length"],
        is_stream=i["isStream"],
        position=i["position"],
        title=i["title"],
        uri=i["uri"],
        source_name=i["sourceName"],
        artwork_url=i.get("artworkUrl"),
        isrc=i.get("isrc"),
    )


def hand_track(d: dict[str, Any]) -> Track:
    return Track(
        encoded=d["encoded"],
        info=hand_info(d["info"]),
        plugin_info=d.get("pluginInfo", {}),
        user_data=d.get("userData", {}),
    )


def hand_playlist_result(d: dict[str, Any]) -> LoadResult:
    p = d["data"]
    i = p["info"]
    playlist = Playlist(
        info=PlaylistInfo(name=i["name"], selected_track=i["selectedTrack"]),
        plugin_info=p.get("pluginInfo", {}),
        tracks=[hand_track(t) for t in p["tracks"]],
    )
    return LoadResult(load_type=d["loadType"], data=playlist)


def hand_encode_track(t: Track) -> dict[str, Any]:
    i = t.info
    return {
        "encoded": t.encoded,
        "info": {
            "identifier": i.identifier,
            "isSeekable": i.is_seekable,
            "author": i.author,
            "length": i.length,
            "isStream": i.is_stream,
            "position": i.position,
            "title": i.title,
            "uri": i.uri,
            "sourceName": i.source_name,
            "artworkUrl": i.artwork_url,
            "isrc": i.isrc,
        },
        "pluginInfo": dict(t.plugin_info),
        "userData": dict(t.user_data),
    }


# --------------------------------------------------------------------------- the contenders


def wire_player_update(d: dict[str, Any]) -> tuple[int, PlayerState]:
    return snowflake(d["guildId"], "guildId"), PlayerState.from_wire(d["state"])


def dcj_player_update(d: dict[str, Any]) -> tuple[int, PlayerState]:
    return int(d["guildId"]), PlayerState.from_dict(d["state"])


def per_op(func: Callable[[], Any], budget: float) -> float:
    """Best time of one call in seconds (several rounds of ~budget/5 s each, min taken)."""
    number = 1
    while True:
        elapsed = timeit.timeit(func, number=number)
        if elapsed >= budget / 25 or number >= 1 << 22:
            break
        number *= 4
    number = max(1, int(number * (budget / 5) / max(elapsed, 1e-9)))
    return min(timeit.repeat(func, number=number, repeat=5)) / number


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:10.2f} µs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter rounds (noisier)")
    args = parser.parse_args()
    budget = 0.15 if args.quick else 0.6

    player_update = load("ws_playerUpdate.json")
    track = load("rest_loadtracks_playlist.json")["data"]["tracks"][0]
    playlist = load("rest_loadtracks_playlist.json")
    playlist["data"]["tracks"] = [copy.deepcopy(track) for _ in range(500)]

    decode_cases: list[tuple[str, Any, Callable[..., Any], Callable[..., Any], Callable[..., Any]]]
    decode_cases = [
        (
            "playerUpdate (state + guild id)",
            player_update,
            hand_player_update,
            wire_player_update,
            dcj_player_update,
        ),
        ("one Track", track, hand_track, Track.from_wire, Track.from_dict),
        (
            "500-track playlist LoadResult",
            playlist,
            hand_playlist_result,
            LoadResult.from_wire,
            LoadResult.from_dict,
        ),
    ]
    worst = 0.0
    print(f"{'decode':34} {'hand (floor)':>13} {'from_wire':>13} {'ratio':>6} "
          f"{'from_dict':>14} {'ratio':>7}")  # fmt: skip
    for name, data, hand, wire, dcj in decode_cases:
        expected = hand(data)
        if wire(data) != expected or dcj(data) != expected:
            print(f"{name}: decoders disagree", file=sys.stderr)
            return 1
        floor = per_op(lambda hand=hand, data=data: hand(data), budget)
        fast = per_op(lambda wire=wire, data=data: wire(data), budget)
        slow = per_op(lambda dcj=dcj, data=data: dcj(data), budget if floor < 1e-4 else 1.0)
        worst = max(worst, fast / floor)
        print(f"{name:34} {fmt(floor)} {fmt(fast)} {fast / floor:5.2f}x {fmt(slow)} "
              f"{slow / floor:6.0f}x")  # fmt: skip

    obj = Track.from_wire(track)
    if obj.to_wire() != hand_encode_track(obj):
        print("encoders disagree", file=sys.stderr)
        return 1
    floor = per_op(lambda: hand_encode_track(obj), budget)
    fast = per_op(obj.to_wire, budget)
    slow = per_op(obj.to_dict, budget)
    worst = max(worst, fast / floor)
    print(f"{'encode':34} {'hand (floor)':>13} {'to_wire':>13} {'ratio':>6} "
          f"{'to_dict':>14} {'ratio':>7}")  # fmt: skip
    print(f"{'one Track':34} {fmt(floor)} {fmt(fast)} {fast / floor:5.2f}x {fmt(slow)} "
          f"{slow / floor:6.0f}x")  # fmt: skip
    verdict = "OK" if worst <= 3.0 else "OVER TARGET"
    print(f"\nworst from_wire/to_wire ratio to the floor: {worst:.2f}x (target <= 3x): {verdict}")
    return 0 if worst <= 3.0 else 2


if __name__ == "__main__":
    sys.exit(main())
