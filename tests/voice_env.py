"""A client wired to a FakeNode and a sharded FakeGateway over loopback, for the shard, close-code,
gateway-dispatch and inactivity tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Optional

from conftest import FAST, USER_ID, session_id, voice_patches, wait_until

from lavasync import Client, Event, Player, Track, TrackStartEvent
from lavasync.testing import FakeGateway, FakeNode

CHANNEL = 1126593424391868476
OTHER_CHANNEL = 1126593424391868999


def guild_on(shard: int, index: int = 0, shards: int = 2) -> int:
    """A guild id that Discord's formula puts on ``shard`` (of ``shards``)."""
    return ((1_000_000 + index * shards + shard) << 22) | 12345


class Env:
    def __init__(self, fake: FakeNode, gateway: FakeGateway, client: Client) -> None:
        self.fake = fake
        self.gateway = gateway
        self.client = client
        self.events: list[Event] = []
        self.hook_threads: list[str] = []
        self.handled = 0  # dispatches handle_gateway has returned from
        client.add_listener(Event, self.events.append)

    def deliver(self, dispatch: dict[str, Any], shard_id: int) -> None:
        """The gateway thread's delivery: into the client, then counted."""
        try:
            self.client.handle_gateway(dispatch, shard_id)
        finally:
            self.handled += 1

    def hook(self, guild_id: int, payload: dict[str, Any]) -> None:
        self.hook_threads.append(threading.current_thread().name)
        self.gateway.hook(guild_id, payload)

    @property
    def sid(self) -> str:
        return session_id(self.client)

    def server(self, guild: int) -> Optional[dict[str, Any]]:
        """The fake Lavalink's player JSON for the guild."""
        return self.fake.player(self.sid, guild)

    def voice_patches(self, guild: int) -> list[dict[str, Any]]:
        return [r.json for r in voice_patches(self.fake, self.sid, guild)]

    def track_patches(self, guild: int) -> list[dict[str, Any]]:
        path = f"/v4/sessions/{self.sid}/players/{guild}"
        return [
            r.json
            for r in self.fake.requests
            if r.method == "PATCH"
            and r.path == path
            and r.json
            and (r.json.get("track") or {}).get("encoded")
        ]

    def op4s(self, guild: int) -> list[Optional[str]]:
        """The channel of every OP 4 sent for the guild, in order."""
        return [p["d"]["channel_id"] for g, p in self.gateway.sent if g == guild]

    def of(self, cls: type, **match: Any) -> list[Any]:
        return [
            e
            for e in list(self.events)
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())
        ]

    def wait_event(self, cls: type, count: int = 1, timeout: float = 5.0, **match: Any) -> Any:
        wait_until(lambda: len(self.of(cls, **match)) >= count, timeout)
        return self.of(cls, **match)[count - 1]

    def settle(self) -> None:
        """Wait until the dispatches delivered so far were handled, then until the worker tasks
        queued so far and the events emitted so far are done."""
        delivered = len(self.gateway.delivered)
        wait_until(lambda: self.handled >= delivered, 5)
        fence = threading.Event()
        self.client._call_soon(fence.set)
        assert fence.wait(5)
        marker = object()
        seen: list[object] = []
        self.client._dispatcher.submit(_Fence(seen, marker))
        wait_until(lambda: marker in seen, 5)

    def join(self, guild: int, channel: int = CHANNEL) -> Player:
        player = self.client.player(guild)
        player.connect(channel, timeout=5)
        assert player.connected
        return player

    def play(self, player: Player, length: int = 600_000) -> Track:
        track = self.fake.add_track(f"Song {player.guild_id}", length=length)
        starts = len(self.of(TrackStartEvent, guild_id=player.guild_id))
        player.play(track)
        # the start went through the reader (and the dispatcher): local state is settled
        self.wait_event(TrackStartEvent, count=starts + 1, guild_id=player.guild_id)
        return track


class _Fence(Event):
    """An event the dispatcher hands to no listener of interest: marks a point in its queue."""

    __slots__ = ("marker", "seen")

    def __init__(self, seen: list[object], marker: object) -> None:
        super().__init__()
        self.seen = seen
        self.marker = marker


@contextmanager
def open_env(
    *,
    shards: int = 2,
    client_shards: Optional[int] = 2,
    cleanup_threshold: float = 60.0,
    **client_kw: Any,
) -> Iterator[Env]:
    with ExitStack() as stack:
        fake = stack.enter_context(
            FakeNode(
                stats_interval=1.0,
                player_update_interval=0.2,
                cleanup_threshold=cleanup_threshold,
            )
        )
        gateway = stack.enter_context(FakeGateway(USER_ID, node=fake, shard_count=shards))
        holder: list[Env] = []

        def hook(guild_id: int, payload: dict[str, Any]) -> None:
            holder[0].hook(guild_id, payload)

        client = Client(USER_ID, hook, shard_count=client_shards, **client_kw)
        env = Env(fake, gateway, client)
        holder.append(env)
        gateway.deliver_sharded = env.deliver

        def fence_listener(event: Event) -> None:
            if isinstance(event, _Fence):
                event.seen.append(event.marker)

        client.add_listener(_Fence, fence_listener)
        try:
            client.add_node("fake", fake.uri, password=fake.password, backoff=FAST)
            client.wait_ready(5)
            yield env
        finally:
            assert client.close(5)
