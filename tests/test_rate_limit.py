"""429s and advertised rate limits (NodeLink blocks a client IP after 50 requests in 10 s).

FakeNode.rate_limit(limit, window, block_for) answers 429 with Retry-After past the limit and
puts X-RateLimit-Limit/Remaining/Reset on every answer. lavasync retries idempotent calls
within their timeout, paces a burst to the advertised limit, and otherwise raises
RateLimitedError saying when to retry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import FAST, USER_ID

from lavasync import Client, RateLimitedError, RestError
from lavasync.rest import RestClient
from lavasync.testing import FakeNode
from lavasync.transport.rest import RestTransport


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    with FakeNode() as node:
        yield node


def rest_for(fake: FakeNode, timeout: float = 5.0) -> RestClient:
    return RestClient(RestTransport(fake.uri, fake.password, client_name="t", timeout=timeout))


def statuses(fake: FakeNode) -> list[int]:
    return [r.status for r in fake.requests]


def test_the_fake_answers_429_with_retry_after_and_rate_headers(fake: FakeNode) -> None:
    fake.rate_limit(2, window=5.0, block_for=30.0)
    transport = RestTransport(fake.uri, fake.password, client_name="t", timeout=1.0)
    with transport:
        transport.request("GET", "/v4/stats")
        transport.request("GET", "/v4/stats")
        # the client now knows Remaining is 0 for ~5 s: it does not even send the next one
        with pytest.raises(RateLimitedError) as info:
            transport.request("GET", "/v4/stats")
    assert statuses(fake) == [200, 200]
    assert info.value.status == 429
    assert info.value.retry_after is not None and 3.0 < info.value.retry_after <= 5.1
    assert "retry in" in str(info.value)
    headers = fake.requests[-1].headers
    assert headers.get("Authorization") == fake.password


def test_an_idempotent_call_is_retried_after_retry_after(fake: FakeNode) -> None:
    fake.rate_limit(1, window=0.3)
    with rest_for(fake) as other, rest_for(fake) as rest:
        other.stats()  # another client used the window up; this one knows nothing of it
        stats = rest.stats()
    assert stats.players == 0
    assert statuses(fake) == [200, 429, 200]


def test_a_call_whose_timeout_cannot_wait_raises_saying_when(fake: FakeNode) -> None:
    fake.rate_limit(1, window=0.2, block_for=30.0)
    with rest_for(fake, timeout=1.0) as other, rest_for(fake, timeout=1.0) as rest:
        other.stats()
        with pytest.raises(RateLimitedError) as info:
            rest.stats()
    assert isinstance(info.value, RestError)
    assert info.value.retry_after is not None and info.value.retry_after > 20
    assert statuses(fake) == [200, 429]  # not retried: the wait is beyond the call's timeout


def test_a_non_idempotent_call_is_not_retried(fake: FakeNode) -> None:
    fake.rate_limit(1, window=0.3)
    track = fake.add_track("x")
    with rest_for(fake) as other, rest_for(fake) as rest:
        other.stats()
        with pytest.raises(RateLimitedError) as info:
            rest.decode_tracks([track.encoded])  # POST
    assert info.value.method == "POST"
    assert statuses(fake) == [200, 429]


def test_a_burst_is_paced_under_the_advertised_limit(fake: FakeNode) -> None:
    """A failover moving many players at once: no 429, every call lands."""
    fake.rate_limit(8, window=0.3)
    sid = fake.create_session()
    errors: list[BaseException] = []
    with rest_for(fake) as rest:
        rest.stats()  # learns the limit

        def worker(guild: int) -> None:
            try:
                rest.get_players(sid)
                rest.destroy_player(sid, guild)
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, args=(1000 + i,), name=f"burst-{i}") for i in range(15)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert errors == []
    assert 429 not in statuses(fake)
    assert len(fake.requests) == 31


def test_player_calls_ride_out_a_short_block() -> None:
    with FakeNode(dialect="nodelink") as fake, Client(USER_ID) as client:
        client.add_node("n", fake.uri, password=fake.password, backoff=FAST)
        client.wait_ready(5)
        fake.rate_limit(3, window=0.3)
        for _ in range(6):
            assert client.load("fake:empty").load_type == "empty"
        assert 429 not in statuses(fake)[-6:]
