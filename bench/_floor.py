"""The floor of the failover and restart benches: the same voice PATCHes sent raw, no lavasync.

:func:`patch_body` builds one PATCH body; :func:`send_patches` sends a batch from ``concurrency``
threads, each with kept-alive connections, and times them between two barriers (connections are
made before the clock starts, thread start-up is outside it).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any, Optional

#: Where a PATCH goes: ((host, port), request target, body).
Request = tuple[tuple[str, int], str, bytes]


def patch_body(encoded: str, state: Optional[dict[str, Any]], channel_id: int) -> bytes:
    """A player PATCH playing ``encoded`` at 1 s; with ``state`` (a FakeGateway voice state,
    its missing fields made up) also the voice connection in ``channel_id``."""
    body: dict[str, Any] = {
        "volume": 100,
        "paused": False,
        "track": {"encoded": encoded},
        "position": 1000,
    }
    if state is not None:
        body["voice"] = {
            "token": state.get("token", "t"),
            "endpoint": state.get("endpoint", "rotterdam1234.discord.media:443"),
            "sessionId": state.get("session_id", "s"),
            "channelId": str(channel_id),
        }
    return json.dumps(body, separators=(",", ":")).encode()


def send_patches(requests: list[Request], headers: dict[str, str], concurrency: int) -> float:
    """Send every request from ``concurrency`` threads (round robin); the wall time for all.

    Raises the first failure (an answer other than 200 included) after every thread joined."""
    chunks = [requests[i::concurrency] for i in range(concurrency)]
    barrier = threading.Barrier(len(chunks) + 1)
    failures: list[BaseException] = []

    def worker(chunk: list[Request]) -> None:
        conns: dict[tuple[str, int], http.client.HTTPConnection] = {}
        try:
            for address, _, _ in chunk:
                if address not in conns:
                    conns[address] = http.client.HTTPConnection(*address)
            barrier.wait()
            for address, target, data in chunk:
                request_headers = dict(headers, **{"Content-Length": str(len(data))})
                conn = conns[address]
                conn.request("PATCH", target, body=data, headers=request_headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"floor PATCH: {response.status} {answer[:200]!r}")
                json.loads(answer)
            barrier.wait()
        except BaseException as exc:  # reported below
            failures.append(exc)
            barrier.abort()
        finally:
            for conn in conns.values():
                conn.close()

    threads = [
        threading.Thread(target=worker, args=(chunk,), name=f"bench-floor-{i}")
        for i, chunk in enumerate(chunks)
    ]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
        start = time.perf_counter()
        barrier.wait()
        elapsed = time.perf_counter() - start
    except threading.BrokenBarrierError:
        elapsed = 0.0
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return elapsed
