"""A small bot process for tests/test_multiprocess.py: one Client on a RedisStore.

argv: a JSON object with ``uri``, ``password``, ``redis``, ``identity``, ``namespace`` and
optionally ``shard_ids``, ``shard_count``, ``lease_ttl``. It prints one JSON line when ready, then
answers one JSON command per stdin line with one JSON line on stdout:

* ``{"op": "play", "guild", "channel", "tracks": [track wire...], "volume", "filters"}``: joins the
  channel, queues the tracks and starts the first;
* ``{"op": "state"}``: every player (track title, track position, volume, filters, queue titles);
* ``{"op": "close"}`` / ``{"op": "hand_off"}``: closes the client (that way) and exits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from lavasync import Client, Filters, Queue, Track
from lavasync.node import Backoff
from lavasync.redis_store import RedisStore
from lavasync.testing import FakeGateway

USER_ID = 170939974227591168


def state(client: Client) -> dict[str, Any]:
    players = {}
    for player in client.players:
        queue = player.queue
        players[str(player.guild_id)] = {
            "track": player.track.info.title if player.track is not None else None,
            "position": player.track_position,
            "volume": player.volume,
            "filters": player.filters.to_wire(),
            "channel": player.channel_id,
            "queue": [t.info.title for t in queue.upcoming] if queue is not None else None,
            "loop": queue.loop.value if queue is not None else None,
            "session": player.node.session_id,
        }
    return {"players": players, "session": client.nodes[0].session_id}


def main() -> int:
    args = json.loads(sys.argv[1])
    if os.environ.get("LAVASYNC_BOT_LOG"):  # for debugging a failing scenario
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    store = RedisStore(
        args["redis"],
        namespace=args["namespace"],
        identity=args["identity"],
        lease_ttl=args.get("lease_ttl", 15.0),
    )
    gateway = FakeGateway(USER_ID)
    client = Client(
        USER_ID,
        gateway.hook,
        state_store=store,
        save_interval=0.1,
        shard_ids=args.get("shard_ids"),
        shard_count=args.get("shard_count"),
    )
    gateway.deliver = client.handle_gateway
    node = client.add_node(
        "main",
        args["uri"],
        password=args["password"],
        resume_timeout=60,
        backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.0),
    )
    node.wait_ready(10)

    def reply(payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    reply({"ready": True, **state(client)})
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "play":
            player = client.player(command["guild"])
            player.connect(command["channel"])
            queue = Queue(player, client=client, loop=command.get("loop", "none"))
            queue.add([Track.from_wire(t) for t in command["tracks"]])
            queue.start()
            player.set_volume(command["volume"])
            player.set_filters(Filters.from_wire(command["filters"]))
            reply({"ok": True})
        elif op == "state":
            reply(state(client))
        elif op in ("close", "hand_off"):
            client.hand_off() if op == "hand_off" else client.close()
            gateway.close()
            store.close()
            reply({"closed": True})
            return 0
    client.close()
    gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
