"""The Client: nodes, node selection, players, voice dispatches, events and lifecycle.

Threads (all named, all joined by :meth:`Client.close`):

* the caller's threads run their own REST calls and, for their own voice changes, the
  ``send_gateway`` hook;
* one reader thread per node (``lavasync-ws-<node>``) decodes frames, updates state and queues
  events; nothing else (no REST, no user code);
* one dispatcher thread (``lavasync-dispatch``) runs listeners;
* worker threads (``lavasync-worker-*``, at most 8, started on demand, gone when idle) run what
  follows from events with no caller: lost-player expiry (the OP 4 hook), voice follow-ups,
  rejoins; a node's session set-up after ``ready`` (re-sync included) and what follows a lost
  session run on ``lavasync-node-*`` threads (at most 4), so slow follow-ups never delay a node;
  rebuilds and moves run in parallel on ``lavasync-move-*`` threads (at most
  ``move_concurrency``).

Where a player lives (its node) is changed only through :class:`~lavasync._placement.Placement`,
serialised per player.

States: a Client is open from construction until :meth:`close`; after that every call raises
:class:`~lavasync.errors.ClientClosedError`.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any, Callable, Optional, TypeVar, Union

from . import __version__
from ._dispatch import Dispatcher, EventBuffer, ListenerRegistry
from ._placement import Placement
from ._presence import Inactivity, VoicePresence
from ._shards import Shards, check_shard_count
from ._workers import WorkerPool
from .errors import (
    ClientClosedError,
    LavasyncError,
    NodeUnavailableError,
)
from .metrics import _load_label, _SafeMetrics, _wrap
from .models import LoadResult, PlayerInfo, Track, snowflake
from .models import events as _events
from .models.events import Event, PlayerEvent, PlayerUpdateEvent
from .node import Backoff, Node, NodeState
from .player import Player
from .queue import Queue, _QueueRouter
from .rest import _encoded_list
from .store import FORMAT_VERSION, JsonFileStore, MemoryStore, SaveScheduler, StateStore
from .transport.rest import READER_PREFIX
from .voice import endpoint_region

__all__ = ["Client", "default_penalty", "region_of"]

log = logging.getLogger("lavasync.client")

GatewayHook = Callable[[int, dict[str, Any]], Any]
Penalty = Callable[[Node], float]
E = TypeVar("E", bound=Event)

#: Discord voice server locations grouped into regions, for node selection by region.
VOICE_REGIONS: dict[str, tuple[str, ...]] = {
    "asia": (
        "hongkong",
        "singapore",
        "sydney",
        "japan",
        "india",
        "southkorea",
        "tokyo",
        "seoul",
        "bombay",
        "mumbai",
    ),
    "eu": (
        "rotterdam",
        "amsterdam",
        "frankfurt",
        "london",
        "europe",
        "milan",
        "stockholm",
        "madrid",
        "paris",
        "warsaw",
        "bucharest",
        "russia",
        "finland",
        "helsinki",
        "dublin",
    ),
    "us": (
        "us-central",
        "us-east",
        "us-west",
        "us-south",
        "newark",
        "atlanta",
        "seattle",
        "santa-clara",
        "oregon",
        "dallas",
        "chicago",
        "montreal",
        "south-america",
        "brazil",
        "buenos-aires",
        "santiago",
        "toronto",
        "ashburn",
        "miami",
    ),
    "africa": ("southafrica", "johannesburg"),
}
_LOCATION_TO_REGION = {loc: region for region, locs in VOICE_REGIONS.items() for loc in locs}


def region_of(endpoint_or_location: Optional[str]) -> Optional[str]:
    """The region (``eu``, ``us``, ``asia``, ``africa``) of a voice endpoint or location name.

    ``rotterdam1234.discord.media:443`` → ``eu``. Unknown locations give the location itself, so a
    node may also declare exact locations as its regions.
    """
    if not endpoint_or_location:
        return None
    location = endpoint_or_location.lower()
    if "." in location or ":" in location:
        found = endpoint_region(endpoint_or_location)
        if found is None:
            return None
        location = found
    return _LOCATION_TO_REGION.get(location, location)


def default_penalty(node: Node) -> float:
    """Load penalty of a node from its latest stats (lower is better). Unit-correct:

    * players: one point per playing player, plus one per player assigned since the last stats
      report (stats come every 60 s, so a burst must not all land on one node);
    * CPU: ``cpu.systemLoad`` is already a 0..1 fraction: ``1.05 ** (100 * load) * 10 - 10``;
    * frames: ``deficit`` and ``nulled`` are per-player averages out of 3,000 frames a minute
      (null when unknown): each scaled to 0..1 of a minute, then weighted like the CPU term.

    Nodes that are not ready, or whose stats are missing or stale (none for 2 x
    ``stats_interval``), come last (``inf``).
    """
    stats = node.stats
    if not node.available or stats is None or node.stats_stale:
        return float("inf")
    players = stats.playing_players + node.recent_players
    load = min(max(stats.cpu.system_load, 0.0), 1.0)
    cpu = 1.05 ** (100.0 * load) * 10.0 - 10.0
    frames = 0.0
    fs = stats.frame_stats
    if fs is not None:
        deficit = min(max(fs.deficit, 0), 3000) / 3000.0
        nulled = min(max(fs.nulled, 0), 3000) / 3000.0
        frames = (1.03 ** (500.0 * deficit) * 600.0 - 600.0) + 2 * (
            1.03 ** (500.0 * nulled) * 300.0 - 300.0
        )
    return float(players + cpu + frames)


class Client:
    """A synchronous Lavalink v4 client. Use it as a context manager, or call :meth:`close`.

    Thread-safe: every method may be called from any thread. Listeners run on the dispatcher
    thread; :meth:`poll` may be called from any number of threads (each event goes to one).

    ``state_store`` (a :class:`~lavasync.store.StateStore` or a JSON file path; in memory by
    default) keeps session ids and player state so that a restarted process takes its players
    back. ``send_gateway(guild_id, payload)`` is the host's hook for OP 4 payloads
    (``{"op": 4, "d": {...}}``); it is called on the thread that asked for the voice change (or
    a ``lavasync-worker-*`` thread for automatic rejoins and lost-player expiry; never a
    reader). The host writes it to the shard that owns the
    guild. Feed every gateway dispatch to :meth:`handle_gateway`.

    ``metrics`` is an optional hook fed with REST latency, WebSocket round trips, reconnects,
    resumes, moves, load types, track exceptions and stuck tracks (see :mod:`lavasync.metrics`;
    :class:`lavasync.ext.prometheus.PrometheusMetrics` is one); its methods must not block.
    """

    def __init__(
        self,
        user_id: int,
        send_gateway: Optional[GatewayHook] = None,
        *,
        client_name: Optional[str] = None,
        poll_events: bool = True,
        event_buffer_size: int = 10_000,
        call_timeout: Optional[float] = 10.0,
        penalty: Optional[Penalty] = None,
        destroy_on_kick: bool = True,
        listener_error_hook: Optional[Callable[[BaseException, Any, Any], Any]] = None,
        move_concurrency: int = 256,
        lost_player_timeout: float = 30.0,
        state_store: Union[StateStore, str, os.PathLike[str], None] = None,
        save_interval: float = 5.0,
        metrics: Optional[Any] = None,
        shard_ids: Optional[Sequence[int]] = None,
        shard_count: Optional[int] = None,
        leave_after_alone: Optional[float] = None,
        leave_after_idle: Optional[float] = None,
    ) -> None:
        self.user_id = snowflake(user_id, "user_id")
        if self.user_id == 0:
            raise ValueError("user_id must be the bot's Discord user id, not 0")
        if send_gateway is not None and not callable(send_gateway):
            raise ValueError("send_gateway must be callable(guild_id, payload)")
        if client_name is not None and (not isinstance(client_name, str) or not client_name):
            raise ValueError("client_name must be a non-empty string like 'mybot/1.0'")
        if call_timeout is not None and call_timeout <= 0:
            raise ValueError("call_timeout must be > 0 or None")
        if move_concurrency < 1:
            raise ValueError("move_concurrency must be >= 1")
        if lost_player_timeout < 0:
            raise ValueError("lost_player_timeout must be >= 0")
        if isinstance(save_interval, bool) or not isinstance(save_interval, (int, float)):
            raise ValueError(f"save_interval must be a number of seconds, not {save_interval!r}")
        if not 0 <= save_interval < float("inf"):
            raise ValueError(f"save_interval must be >= 0 seconds, not {save_interval}")
        shard_count = check_shard_count(shard_count)
        for name, limit in (
            ("leave_after_alone", leave_after_alone),
            ("leave_after_idle", leave_after_idle),
        ):
            if limit is not None and (
                isinstance(limit, bool)
                or not isinstance(limit, (int, float))
                or not 0 < limit < float("inf")
            ):
                raise ValueError(
                    f"{name} must be a positive number of seconds or None, not {limit!r}"
                )
        owned: Optional[frozenset[int]] = None
        if shard_ids is not None:
            if shard_count is None:
                raise ValueError("shard_ids needs shard_count (how many shards the bot has)")
            ids = list(shard_ids)
            for shard in ids:
                if isinstance(shard, bool) or not isinstance(shard, int):
                    raise ValueError(f"shard ids are integers, not {shard!r}")
                if not 0 <= shard < shard_count:
                    raise ValueError(f"shard id {shard} is outside 0..{shard_count - 1}")
            owned = frozenset(ids)
        #: The shards this process runs (None: all): it restores only their guilds.
        self.shard_ids: Optional[frozenset[int]] = owned
        self.client_name = client_name or f"lavasync/{__version__}"
        self.send_gateway = send_gateway
        self.call_timeout = call_timeout
        self.penalty: Penalty = penalty or default_penalty
        self.destroy_on_kick = destroy_on_kick
        self.move_concurrency = move_concurrency
        self.lost_player_timeout = lost_player_timeout
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._players: dict[int, Player] = {}
        self._ready_cond = threading.Condition(self._lock)
        self._closed = False
        self._listeners = ListenerRegistry()
        self._dispatcher = Dispatcher(
            self._listeners, maxsize=event_buffer_size, error_hook=listener_error_hook
        )
        self._poll: Optional[EventBuffer] = (
            EventBuffer(event_buffer_size, drop_oldest=True, name="poll buffer")
            if poll_events
            else None
        )
        self._lost: dict[str, float] = {}  # node name -> when its session was lost
        if state_store is None:
            state_store = MemoryStore()
        elif isinstance(state_store, (str, os.PathLike)):
            state_store = JsonFileStore(state_store)
        elif not isinstance(state_store, StateStore):
            raise ValueError("state_store is a StateStore, a JSON file path, or None")
        self.state_store: StateStore = state_store
        self.save_interval = save_interval
        self._shards = Shards(self, shard_count)  # before the store: it reads shard_count
        self._init_store()
        self._placement = Placement(self)
        self._presence = VoicePresence(self.user_id)
        self._inactivity = Inactivity(self, leave_after_alone, leave_after_idle)
        self._workers = WorkerPool("lavasync-worker", 8)
        # Node set-up and session loss get a lane of their own: slow follow-ups on the workers
        # (a hung DELETE, a slow send_gateway hook) must not delay another node's READY.
        self._node_tasks = WorkerPool("lavasync-node", 4)
        self._movers = WorkerPool("lavasync-move", move_concurrency)
        self._save_lock = threading.RLock()  # reentrant: a store's save() may call close()
        self._store_final = False  # close() wrote the last state: nothing may overwrite it
        self._saver = SaveScheduler(self._save_in_background, save_interval)
        #: The metrics hook given as ``metrics=`` (see :mod:`lavasync.metrics`), or None.
        self.metrics = metrics
        self._metrics = _wrap(metrics)  # raises ValueError for an object that is no hook
        bind = getattr(metrics, "bind", None)
        if callable(bind):
            bind(self)
        # last: a constructor that raises leaves no thread behind
        self._dispatcher.start()
        self._saver.start()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has started; later calls raise ``ClientClosedError``."""
        return self._closed

    def close(self, timeout: float = 5.0) -> bool:
        """Stop every thread and close every connection. Idempotent.

        Players keep playing on the server until their session's resume timeout (use
        ``destroy``/``disconnect`` first to stop them). The state store gets a last save first.
        REST calls in flight are aborted: their callers get
        :class:`~lavasync.errors.ClientClosedError` at once, and so does every caller that waits
        for a node or a player.

        Returns True if every other lavasync thread exited within ``timeout`` seconds (always,
        unless a listener or the ``send_gateway`` hook is blocked). It may be called from any
        thread, a listener included: then it returns normally, and the dispatcher thread (the
        one it runs on, not counted) exits as soon as that listener returns. Later calls do
        nothing and return True.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            nodes = list(self._nodes.values())
            self._ready_cond.notify_all()
        deadline = time.monotonic() + timeout
        for node in nodes:
            node.rest.close()  # first: wakes every call in flight, the workers' included
        exited = self._saver.stop(max(0.1, deadline - time.monotonic()))
        self._write_state(final=True)  # after the store thread: nothing saves after this one
        self._release_leases()  # after the last write: the next owner reads it
        for node in nodes:
            exited &= node.close(max(0.1, deadline - time.monotonic()))
        exited &= self._movers.close(max(0.1, deadline - time.monotonic()))
        exited &= self._workers.close(max(0.1, deadline - time.monotonic()))
        exited &= self._node_tasks.close(max(0.1, deadline - time.monotonic()))
        for player in list(self._players.values()):
            player._mark_destroyed("closed")
        if self._poll is not None:
            self._poll.close()
        exited &= self._dispatcher.close(max(0.1, deadline - time.monotonic()))
        return exited

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")

    # ------------------------------------------------------------------ nodes

    def add_node(
        self,
        name: str,
        uri: str,
        *,
        password: str,
        region: Union[str, Sequence[str], None] = None,
        resume_timeout: Optional[int] = 60,
        session_id: Optional[str] = None,
        rest_timeout: Any = (5.0, 30.0),
        connect_timeout: float = 10.0,
        backoff: Optional[Backoff] = None,
        ping_interval: float = 15.0,
        ping_timeout: float = 10.0,
        stats_interval: float = 60.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> Node:
        """Add a node and start connecting to it in the background.

        ``region`` (a name or several) declares where the node is (``"eu"``, ``"us"``, a voice
        location like ``"rotterdam"``...). ``resume_timeout`` (seconds) turns resuming on; None
        turns it off. ``session_id`` resumes a session from an earlier process.
        ``ssl_context`` is used by both REST and the WebSocket of an ``https://`` node (e.g.
        ``ssl.create_default_context(cafile="my-ca.pem")`` for a private CA); an untrusted
        certificate makes the node fail with a :class:`~lavasync.errors.TLSError`.
        """
        self._check_open()
        if session_id is None:
            stored = self._stored.get("nodes", {}).get(name)
            if isinstance(stored, dict) and isinstance(stored.get("session_id"), str):
                session_id = stored["session_id"]
        regions: tuple[str, ...]
        if region is None:
            regions = ()
        elif isinstance(region, str):
            regions = (region,)
        else:
            regions = tuple(region)
        node = Node(
            self,
            name,
            uri,
            password,
            regions=regions,
            resume_timeout=resume_timeout,
            session_id=session_id,
            rest_timeout=rest_timeout,
            connect_timeout=connect_timeout,
            backoff=backoff,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            stats_interval=stats_interval,
            ssl_context=ssl_context,
        )
        with self._lock:
            self._check_open()
            if name in self._nodes:
                raise ValueError(f"a node named {name!r} already exists")
            self._nodes[name] = node
            self._restore_players(node)
        node.rest.transport.metrics = self._metrics
        node.connect()
        return node

    def remove_node(self, name: str, *, move_players: bool = True, timeout: float = 10.0) -> None:
        """Remove a node; its players move to other nodes first (or are destroyed)."""
        with self._lock:
            node = self._nodes.get(name)
        if node is None:
            raise ValueError(f"no node named {name!r}")
        if move_players:
            self.move_players(node, None, reason="node removed", timeout=timeout)
        with self._lock:
            self._nodes.pop(name, None)
        for player in self._players_on(node):
            self._placement.destroy(player, "node removed", timeout=timeout)
        node.close(timeout)

    @property
    def nodes(self) -> list[Node]:
        """A snapshot of every node added (in the order added), ready or not."""
        with self._lock:
            return list(self._nodes.values())

    def node(self, name: str) -> Node:
        """The node added under ``name``; raises ``ValueError`` if there is none."""
        with self._lock:
            try:
                return self._nodes[name]
            except KeyError:
                raise ValueError(f"no node named {name!r}") from None

    def wait_ready(self, timeout: Optional[float] = 10.0) -> Node:
        """Block until at least one node is ready and return it.

        Raises :class:`~lavasync.errors.NodeUnavailableError` (also a TimeoutError) on timeout,
        naming each node's state and last connection error (also in its ``errors`` and
        ``states``), or the node's own error when every node failed for good (e.g. a wrong
        password, an untrusted certificate).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready_cond:
            while True:
                self._check_open()
                nodes = list(self._nodes.values())
                for node in nodes:
                    if node.available:
                        return node
                if not nodes:
                    raise NodeUnavailableError("no node added: call add_node() first")
                failed = [n for n in nodes if n.state is NodeState.FAILED]
                if len(failed) == len(nodes):
                    error = failed[0].error
                    assert error is not None
                    raise error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    states = "; ".join(f"{n.name}: {n._status()}" for n in nodes)
                    raise NodeUnavailableError(
                        f"no node ready after {timeout} s ({states})",
                        errors={n.name: n.last_error or n.error for n in nodes},
                        states={n.name: n.state.value for n in nodes},
                    )
                self._ready_cond.wait(remaining if remaining is None else min(remaining, 0.5))

    def best_node(self, region: Optional[str] = None, *, exclude: Sequence[Node] = ()) -> Node:
        """The ready node with the lowest penalty, preferring nodes of ``region``."""
        with self._lock:
            candidates = [
                n
                for n in self._nodes.values()
                if n.available and not n.draining and n not in exclude
            ]
        if not candidates:
            raise NodeUnavailableError("no node is ready")
        wanted = region_of(region) if region else None

        def key(node: Node) -> tuple[int, float]:
            in_region = 0
            if wanted is not None and node.regions:
                regions = {region_of(r) for r in node.regions} | set(node.regions)
                in_region = 0 if wanted in regions or region in regions else 1
            elif wanted is not None:
                in_region = 1
            try:
                score = float(self.penalty(node))
            except Exception:
                log.exception("the penalty function raised for node %s", node.name)
                score = float("inf")
            return (in_region, score)

        return min(candidates, key=key)

    def _notify_ready(self) -> None:
        with self._ready_cond:
            self._ready_cond.notify_all()

    # ------------------------------------------------------------------ REST shortcuts

    def _rest_node(self, node: Optional[Node]) -> Node:
        self._check_open()
        if node is not None:
            return node
        try:
            return self.best_node()
        except NodeUnavailableError:
            return self.wait_ready(self.call_timeout)

    def load(
        self,
        identifier: str,
        *,
        raise_on_error: bool = False,
        node: Optional[Node] = None,
        timeout: Optional[float] = None,
    ) -> LoadResult:
        """Resolve an identifier (URL, ``ytsearch:...``) to a :class:`LoadResult`.

        With ``raise_on_error``, ``loadType: "error"`` raises :class:`LoadError`.
        """
        if not isinstance(identifier, str) or not identifier.strip():
            raise ValueError("identifier must be a non-empty string")
        target = self._rest_node(node)
        result = target.rest.load_tracks(identifier, timeout=timeout)
        metrics = self._metrics
        if metrics is not None:
            metrics.load(_load_label(result.load_type))
        if raise_on_error:
            result.raise_for_error(identifier)
        return result

    def decode_tracks(self, encoded: Sequence[str], *, node: Optional[Node] = None) -> list[Track]:
        """Decode tracks on a node (``POST /v4/decodetracks``). See also lavasync.decode_track.

        Blobs are checked locally first: a malformed one raises DecodeError (a ValueError)
        before any node is asked.
        """
        blobs = _encoded_list(encoded)
        return self._rest_node(node).rest.decode_tracks(blobs)

    # ------------------------------------------------------------------ players

    def player(self, guild_id: int, *, node: Optional[Node] = None) -> Player:
        """The guild's player, created (on the best node, or ``node``) if it does not exist.

        Creating a player sends nothing: Lavalink creates its side on the first call.
        """
        guild = snowflake(guild_id, "guild_id")
        self._check_open()
        with self._lock:
            player = self._players.get(guild)
            if player is not None:
                return player
        target = node if node is not None else self._choose_node(None)
        with self._lock:
            self._check_open()
            player = self._players.get(guild)
            if player is None:
                player = Player(self, guild, target)
                self._players[guild] = player
                target.recent_players += 1
            return player

    def _choose_node(self, region: Optional[str]) -> Node:
        try:
            return self.best_node(region)
        except NodeUnavailableError:
            return self.best_node_or_wait(region)

    def best_node_or_wait(self, region: Optional[str] = None) -> Node:
        """Like :meth:`best_node`, after waiting up to ``call_timeout`` for a node to be ready."""
        self.wait_ready(self.call_timeout)
        return self.best_node(region)

    def get_player(self, guild_id: int) -> Optional[Player]:
        """The guild's player if it exists (never creates one)."""
        return self._players.get(snowflake(guild_id, "guild_id"))

    @property
    def players(self) -> list[Player]:
        """A snapshot of every player this client has (not destroyed), on any node."""
        with self._lock:
            return list(self._players.values())

    def _players_on(self, node: Node) -> list[Player]:
        with self._lock:
            return [p for p in self._players.values() if p._node is node]

    def _destroy_player(self, player: Player, reason: str, *, timeout: Optional[float]) -> None:
        self._placement.destroy(player, reason, timeout=timeout)

    # ------------------------------------------------------------------ voice / gateway

    def handle_gateway(self, dispatch: Mapping[str, Any], shard_id: Optional[int] = None) -> None:
        """Feed any raw gateway dispatch (``{"t": ..., "d": ...}``); irrelevant ones are ignored.

        ``shard_id`` says which shard it came from (sharded bots; READY's ``shard`` says it too).
        Used: READY/RESUMED (the shard is up: rejoin its lost voice connections), the voice
        updates, GUILD_CREATE/GUILD_DELETE (outages, removal, who is in voice), CHANNEL_DELETE.
        Never blocks: what follows runs on lavasync's workers.
        """
        if shard_id is not None:
            shard_id = self._shards.check(shard_id)
        if not isinstance(dispatch, Mapping):
            return
        kind = dispatch.get("t")
        data = dispatch.get("d")
        if kind in ("READY", "RESUMED"):
            if not self._closed:
                if kind == "READY":
                    shard_id = self._shards.from_ready(data, shard_id)
                self._shards.ready(0 if shard_id is None else shard_id)
            return
        if not isinstance(data, Mapping):
            return
        if kind == "VOICE_SERVER_UPDATE":
            self.handle_voice_server_update(data)
        elif kind == "VOICE_STATE_UPDATE":
            self.handle_voice_state_update(data)
        elif kind in ("GUILD_CREATE", "GUILD_DELETE", "CHANNEL_DELETE"):
            self._handle_guild_dispatch(kind, data)

    @property
    def shard_count(self) -> Optional[int]:
        """How many shards the bot runs (``Client(shard_count=...)``, or READY's ``shard``);
        None while unknown (then every guild counts as shard 0)."""
        return self._shards.count

    def shard_of(self, guild_id: int) -> int:
        """The shard carrying a guild: ``(guild_id >> 22) % shard_count`` (0 when unknown)."""
        return self._shards.shard_of(snowflake(guild_id, "guild_id"))

    def shard_lost(self, shard_id: int) -> None:
        """The host's gateway socket for ``shard_id`` closed (for whatever reason).

        Every player of a guild on that shard that is in a voice channel is marked voice-lost
        at once (``connected`` False, a :class:`~lavasync.VoiceLostEvent`, its channel
        remembered); nothing is destroyed on Lavalink. The shard's next READY or RESUMED (or
        :meth:`shard_ready`) rejoins them. Cheap and non-blocking: call it from the gateway
        thread. Does nothing once the client is closed."""
        shard_id = self._shards.check(shard_id)
        if not self._closed:
            self._shards.lost(shard_id)

    def shard_ready(self, shard_id: int) -> None:
        """The shard is up again (what a READY or RESUMED dispatch does by itself): rejoin its
        lost voice connections, paced, on lavasync's workers. Without a :meth:`shard_lost`
        before, only players whose voice Lavalink reports closed are rejoined. Does nothing
        once the client is closed."""
        shard_id = self._shards.check(shard_id)
        if not self._closed:
            self._shards.ready(shard_id)

    def _handle_guild_dispatch(self, kind: str, data: Mapping[str, Any]) -> None:
        """GUILD_CREATE, GUILD_DELETE, CHANNEL_DELETE (the host's thread: state only)."""
        if self._closed:
            return
        if kind == "CHANNEL_DELETE":
            guild = _guild_of(data)
            try:
                channel = int(data["id"])
            except (KeyError, TypeError, ValueError):
                return
            if guild is None:
                return
            self._presence.channel_deleted(guild, channel)
            player = self._players.get(guild)
            voice = player.voice if player is not None else None
            if (
                player is not None
                and voice is not None
                and channel in (voice.channel_id, voice.lost_channel())
            ):
                self._call_soon(
                    partial(self._destroy_player, player, "channel deleted", timeout=None)
                )
            return
        try:
            guild = int(data["id"])
        except (KeyError, TypeError, ValueError):
            return
        player = self._players.get(guild)
        if kind == "GUILD_CREATE":
            self._presence.guild_create(guild, data)
            if data.get("unavailable") is True:
                return
            self._shards.guild_available(guild)
        elif data.get("unavailable") is True:  # GUILD_DELETE: an outage
            self._shards.guild_unavailable(guild)
        else:  # GUILD_DELETE: the bot was removed from the guild
            self._shards.guild_removed(guild)
            self._presence.forget_guild(guild)
            if player is not None:
                self._call_soon(
                    partial(self._destroy_player, player, "removed from guild", timeout=None)
                )
            return
        if player is not None:
            self._inactivity.update(player)

    def handle_voice_server_update(self, data: Mapping[str, Any]) -> None:
        """A VOICE_SERVER_UPDATE's ``d``: token and endpoint for a guild's voice server."""
        guild = _guild_of(data)
        if guild is None or self._closed:
            return
        player = self._players.get(guild)
        if player is None:
            return
        player._voice_machine().on_server_update(data)

    def handle_voice_state_update(self, data: Mapping[str, Any]) -> None:
        """A VOICE_STATE_UPDATE's ``d``; only the bot's own user is used."""
        guild = _guild_of(data)
        if guild is None or self._closed:
            return
        user = data.get("user_id")
        if user is None and isinstance(data.get("member"), Mapping):
            user = data["member"].get("user", {}).get("id")
        self._presence.update(guild, data)
        try:
            ours = user is not None and int(user) == self.user_id
        except (TypeError, ValueError):
            return
        player = self._players.get(guild)
        if player is None:
            return
        if ours:
            player._voice_machine().on_state_update(data)
        self._inactivity.update(player)  # its channel or its listeners changed

    def _send_op4(
        self, guild_id: int, channel_id: Optional[int], self_deaf: bool, self_mute: bool
    ) -> None:
        hook = self.send_gateway
        if threading.current_thread().name.startswith(READER_PREFIX):
            raise RuntimeError("the send_gateway hook is never called on a node's reader thread")
        if hook is None:
            raise LavasyncError(
                "no send_gateway hook: pass Client(send_gateway=...) to join voice channels"
            )
        payload = {
            "op": 4,
            "d": {
                "guild_id": str(guild_id),
                "channel_id": None if channel_id is None else str(channel_id),
                "self_mute": bool(self_mute),
                "self_deaf": bool(self_deaf),
            },
        }
        hook(guild_id, payload)

    def _place_by_region(self, player: Player) -> None:
        """Before a player's first PATCH, put it on a node of its voice server's region."""
        voice = player.voice
        if player._sent_any or voice is None or voice.region is None:
            return
        if not any(n.regions for n in self.nodes):
            return
        try:
            target = self.best_node(voice.endpoint)
        except NodeUnavailableError:
            return
        if target is not player._node:
            self._placement.place_by_region(player, target)

    def _call_soon(self, fn: Callable[[], Any]) -> None:
        """Run an internal follow-up on a worker thread (never a reader, never the caller)."""
        self._workers.submit(fn)

    def _on_voice_left(self, player: Player) -> None:
        """The bot left (or was kicked from) the guild's voice channel without asking."""
        if not self.destroy_on_kick:
            return

        def run() -> None:
            self._destroy_player(player, "kicked", timeout=None)

        self._call_soon(run)

    # ------------------------------------------------------------------ events

    def on(self, event_class: type[E]) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator: ``@client.on(TrackEndEvent)`` registers a listener (subclasses included)."""

        def register(fn: Callable[[E], Any]) -> Callable[[E], Any]:
            self.add_listener(event_class, fn)
            return fn

        return register

    def add_listener(self, event_class: type[E], fn: Callable[[E], Any]) -> None:
        """Run ``fn(event)`` on the dispatcher thread for every event of ``event_class``."""
        self._listeners.add(event_class, fn)

    def remove_listener(self, event_class: type[E], fn: Callable[[E], Any]) -> bool:
        """Unregister; False if it was not registered."""
        return self._listeners.remove(event_class, fn)

    @property
    def dropped_events(self) -> int:
        """How many unread events the full poll buffer dropped (oldest first); 0 when polling
        is off. Listeners never lose events; see the README's memory policy."""
        buffer = self._poll
        return buffer.dropped if buffer is not None else 0

    def poll(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None after ``timeout`` seconds or once the client is closed."""
        buffer = self._poll
        if buffer is None:
            raise LavasyncError("polling is off: Client(poll_events=False)")
        event: Optional[Event] = buffer.get(timeout)
        return event

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over events until ``timeout`` seconds pass with none, or the client closes."""
        while True:
            event = self.poll(timeout)
            if event is None:
                return
            yield event

    def _emit(self, event: Event) -> None:
        buffer = self._poll
        if buffer is not None:
            buffer.put(event)
        dispatcher = self._dispatcher  # Dispatcher.submit inline: this runs for every frame
        if dispatcher.listeners.for_event(event):
            dispatcher.buffer.put(event)
        if self._metrics is not None and type(event) is not PlayerUpdateEvent:
            self._observe_event(event)

    #: the guarded metrics hook (None: no ``metrics=``)
    _metrics: Optional[_SafeMetrics] = None

    def _observe_event(self, event: Event) -> None:
        """Count the events the metrics hook wants (any thread, reader included: cheap)."""
        metrics = self._metrics
        if metrics is None:
            return
        if isinstance(event, _events.TrackExceptionEvent):
            metrics.track_exception(getattr(event.node, "name", ""))
        elif isinstance(event, _events.TrackStuckEvent):
            metrics.track_stuck(getattr(event.node, "name", ""))
        elif isinstance(event, _events.PlayerMovedEvent):
            metrics.move(str(event.reason))

    # ------------------------------------------------------------------ node callbacks
    # Called on reader threads: state changes only; anything slow goes to the workers.

    def _on_player_event(self, node: Node, event: PlayerEvent) -> None:
        """Apply a player event to its player's state (the node queues the event itself)."""
        player = self._players.get(event.guild_id)
        if type(event) is PlayerUpdateEvent:
            # Position and ping only (every player, every few seconds): stored only when the
            # connection flag flips. No _maybe_save here: a pending save was scheduled when
            # the change was marked, and the store thread retries a failed one by itself.
            if player is not None and player._node is node:
                connected = player._connected
                player._on_event(event)
                if player._connected != connected:  # whether the position moves: stored
                    self._state_changed(event.guild_id)
            return
        if player is not None and player._node is node:
            player._on_event(event)
            self._state_changed(event.guild_id)  # a track started or ended
            self._inactivity.update(player)  # idle or not any more (cheap, no I/O)
            return
        if self._dirty:
            self._maybe_save()

    def _on_node_ready(
        self,
        node: Node,
        session_id: str,
        resumed: bool,
        old_session: Optional[str],
        generation: int,
    ) -> None:
        """``ready`` (reader thread): mark the players a fresh session must rebuild, and hand
        the session set-up and the REST follow-ups to a worker."""
        marked = [] if resumed else self._placement.mark_fresh_session(node, session_id)
        self._node_tasks.submit(
            partial(
                self._after_ready,
                node,
                session_id,
                resumed,
                old_session,
                generation=generation,
                marked=marked,
            )
        )

    def _after_ready(
        self,
        node: Node,
        session_id: str,
        resumed: bool,
        old_session: Optional[str],
        *,
        generation: int,
        marked: list[Player],
    ) -> None:
        """Worker: enable resuming and make the node READY (usable from then on), then re-sync
        (resumed) or rebuild its players in parallel (fresh), and adopt parked players."""
        if self._closed or node.session_id != session_id:
            return
        node._enable_resuming(session_id)
        node._fetch_server_info()  # never raises: what the server is, known once it is ready
        stale: list[int] = []
        infos: Optional[list[PlayerInfo]] = None
        if resumed:
            # Re-synced before READY: a call made once the node is ready must not be
            # overwritten by an older read of the same player.
            try:
                infos = node.rest.get_players(session_id, timeout=self.call_timeout)
            except LavasyncError as exc:
                log.warning("node %s: re-sync after resume failed: %s", node.name, exc)
                infos = None
            if infos is not None:
                stale = self._resync_players(node, session_id, infos)
                if not infos:
                    node._replaying = False
        if not node._become_ready(session_id, generation, resumed):
            return
        with self._lock:
            self._lost.pop(node.name, None)
        self._notify_ready()
        if resumed and infos:
            # A move off this node may have finished after the re-sync but before READY (its
            # clean-up saw the node unavailable): recount what the server holds that no local
            # player on this node wants, now that every later move deletes by itself.
            stale = [info.guild_id for info in infos if not self._lives_on(info.guild_id, node)]
        for guild in stale:
            # Moved elsewhere (or destroyed) while this node was away: stop it here so nothing
            # plays twice.
            self._placement._delete(node, session_id, guild, timeout=self.call_timeout)
        if not resumed:
            if old_session and old_session != session_id:
                self._clear_old_session(node, old_session)
            for player in marked:
                self._movers.submit(partial(self._placement.rebuild, player, node, session_id))
        self._state_changed()
        self._adopt_lost_players(node)

    def _lives_on(self, guild_id: int, node: Node) -> bool:
        """True if the guild's player exists, is not destroyed and is on ``node``."""
        with self._lock:
            player = self._players.get(guild_id)
        return player is not None and player._node is node and not player.destroyed

    def _resync_players(
        self, node: Node, session_id: str, infos: Sequence[PlayerInfo]
    ) -> list[int]:
        """After a resume (worker, before READY): make local players match what the server
        has; returns the guilds the server holds that no local player on this node wants."""
        by_guild = {info.guild_id: info for info in infos}
        for player in self._players_on(node):
            info = by_guild.pop(player.guild_id, None)
            if info is not None:
                player._apply_info(info)
            elif player._sent_any and not player.destroyed:
                # The server lost it while we were away (e.g. destroyed by a cleanup): rebuild.
                with player._lock:
                    player._rebuild_for = session_id
                self._movers.submit(partial(self._placement.rebuild, player, node, session_id))
        return list(by_guild)

    def _clear_old_session(self, node: Node, old_session: str) -> None:
        """A fresh session replaced ``old_session``, which may still be open on the server (a
        half-open socket the server has not noticed): delete what it holds, best effort."""
        try:
            infos = node.rest.get_players(old_session, timeout=2.0)
        except LavasyncError:
            return  # gone (404) or unreachable: nothing there plays
        for info in infos:
            log.info(
                "guild %s: deleting it from %s's previous session %s",
                info.guild_id,
                node.name,
                old_session,
            )
            self._placement._delete(node, old_session, info.guild_id)

    def _on_node_disconnected(self, node: Node) -> None:
        self._notify_ready()

    def _on_node_failed(self, node: Node) -> None:
        """The node gave up for good (e.g. wrong password): its players move or leave now."""
        self._notify_ready()
        if self._closed:
            return
        with self._lock:
            # nothing will bring this node back: parked players leave at once
            self._lost[node.name] = time.monotonic() - self.lost_player_timeout
        self._node_tasks.submit(lambda: self._handle_session_lost(node))

    def _on_node_session_lost(self, node: Node) -> None:
        """The node's session cannot resume any more (any thread): move its players elsewhere,
        or park them until a node is ready (after ``lost_player_timeout`` they leave voice and
        are destroyed)."""
        if self._closed:
            return
        with self._lock:
            self._lost.setdefault(node.name, time.monotonic())
        self._node_tasks.submit(lambda: self._handle_session_lost(node))

    def _handle_session_lost(self, node: Node) -> None:
        """Worker: move a lost node's players, or park them and schedule their expiry."""
        if self._closed or node.available:
            return
        players = self._players_on(node)
        if not players:
            return
        others = [n for n in self.nodes if n is not node and n.available]
        if others:
            self._submit_moves(players, None, node, reason="node lost", only_if_lost=True)
        else:
            log.warning(
                "node %s lost with %d players and no other node ready; they wait up to %s s",
                node.name,
                len(players),
                self.lost_player_timeout,
            )
        with self._lock:
            since = self._lost.get(node.name)
        if since is not None:
            delay = since + self.lost_player_timeout - time.monotonic()
            self._workers.call_later(max(0.0, delay), self._expire_lost_players)

    def _adopt_lost_players(self, ready: Node) -> None:
        """A node became ready (worker): take the players parked on lost nodes."""
        with self._lock:
            lost_names = list(self._lost)
        for name in lost_names:
            lost = self._nodes.get(name)
            if lost is None or lost is ready or lost.available:
                continue
            players = self._players_on(lost)
            if players:
                self._submit_moves(players, None, lost, reason="node lost", only_if_lost=True)

    def _expire_lost_players(self) -> None:
        """Worker: players parked too long with no node leave voice (OP 4 null), destroyed."""
        now = time.monotonic()
        with self._lock:
            expired = [
                name
                for name, since in self._lost.items()
                if now - since >= self.lost_player_timeout
            ]
            for name in expired:
                del self._lost[name]
        for name in expired:
            node = self._nodes.get(name)
            if node is None or node.available:
                continue
            if any(n.available for n in self.nodes if n is not node):
                # a node came back at the last moment: move there instead of leaving
                self._submit_moves(
                    self._players_on(node), None, node, reason="node lost", only_if_lost=True
                )
                continue
            for player in self._players_on(node):
                if self._closed:
                    return
                if player._node is not node or player.destroyed or node.available:
                    continue  # adopted, destroyed, or its node is back meanwhile
                try:
                    self._send_op4(player.guild_id, None, False, False)
                except Exception:
                    log.exception("guild %s: the gateway hook raised", player.guild_id)
                self._placement.destroy(player, "node lost", timeout=1.0)

    def _submit_moves(
        self,
        players: Sequence[Player],
        to_node: Optional[Node],
        from_node: Node,
        *,
        reason: str,
        only_if_lost: bool = False,
        timeout: Optional[float] = None,
    ) -> list[Future[Any]]:
        """Move players in parallel on the mover threads; returns their futures."""

        def move(player: Player) -> bool:
            try:
                return self._placement.move(
                    player,
                    to_node,
                    expect=from_node,
                    reason=reason,
                    only_if_lost=only_if_lost,
                    timeout=timeout,
                )
            except LavasyncError as exc:
                log.warning(
                    "guild %s: moving off %s failed: %s", player.guild_id, from_node.name, exc
                )
                return False

        return [self._movers.submit(partial(move, p)) for p in players]

    # ------------------------------------------------------------------ state store
    # Per-guild writes: callers mark a guild (or, with no guild, "check membership and node
    # sessions") dirty; the lavasync-store thread writes only those, renews the guild leases
    # and takes over guilds whose lease another process gave up. The store is never called on
    # a reader thread or under the client lock.

    def _owns(self, guild_id: int) -> bool:
        """Does this process run ``guild_id``'s shard (True without ``shard_ids``)?"""
        owned = self.shard_ids
        return owned is None or self.shard_of(guild_id) in owned

    def _init_store(self) -> None:
        """Load what earlier processes left for this one: its node sessions, and the players
        of its shards whose lease it gets (the others wait for their owner to let go)."""
        # attached queues (restored ones too) by guild, behind two client listeners
        self._queue_router = _QueueRouter(self)
        store = self.state_store
        identity = store.identity
        if not identity:
            identity = socket.gethostname()
            if self.shard_ids is not None:
                identity += "/shards-" + ",".join(str(s) for s in sorted(self.shard_ids))
        #: the owner name of this process in the store (session ids, leases)
        self.store_identity: str = identity
        lease_ttl = getattr(store, "lease_ttl", None)
        self._lease_every: Optional[float] = (
            float(lease_ttl) / 3 if isinstance(lease_ttl, (int, float)) and lease_ttl > 0 else None
        )
        self._dirty = False
        self._dirty_guilds: set[int] = set()
        self._check_all = True  # the first write checks every node and player
        self._saved_guilds: set[int] = set()  # guilds this process has in the store
        self._saved_nodes: dict[str, Optional[str]] = {}
        self._leased: set[int] = set()  # guilds whose lease this process holds
        self._waiting: set[int] = set()  # stored guilds of our shards leased by another process
        self._store_down: Optional[float] = None  # monotonic start of an outage
        self._retry = 0.0
        self._next_renew = 0.0
        self._stored: dict[str, Any] = {"nodes": {}, "players": []}
        self._load_pending = False
        self._rewrite = False  # after an outage: write everything (Redis may have lost it)
        try:
            with _GcPaused():  # a restart's bulk of new objects (see _GcPaused)
                self._load_stored(late=False)
        except Exception as exc:
            self._store_failed(exc, "loading")
            self._load_pending = True  # the store thread loads again once the store answers

    def _load_stored(self, *, late: bool) -> None:
        """``late``: the store was down when the client started; nodes may be ready by now, so
        leased guilds are taken over (loaded and rebuilt) like a rolling deploy's."""
        stored = _readable_state(self.state_store.load_state(self.store_identity, self._owns))
        players = []
        guilds: list[int] = []
        for data in stored["players"]:
            guild = _guild_of(data) if isinstance(data, dict) else None
            if guild is not None and self._owns(guild):
                players.append(data)
                guilds.append(guild)
        held = self.state_store.claim(self.store_identity, guilds)
        stored["players"] = [p for p, g in zip(players, guilds) if g in held]
        with self._lock:
            self._stored = stored
            self._saved_guilds.update(held)
            if self._lease_every is not None:
                self._waiting.update(set(guilds) - held)
                if late:
                    stored["players"] = []
                    self._waiting.update(held)
                    self._saved_guilds.difference_update(held)
                else:
                    self._leased.update(held)
            if late:
                for node in list(self._nodes.values()):
                    self._restore_players(node)
        if self._waiting:
            log.info(
                "%d stored guilds are leased by another process: taking them over when it lets go",
                len(self._waiting),
            )

    def _state_changed(self, guild_id: Optional[int] = None) -> None:
        """What a restarted process needs changed (``guild_id``'s player or queue; with no
        guild: a node session, a player gone or moved): the store thread writes it within
        ``save_interval`` (cheap and non-blocking: callable from a reader thread)."""
        if guild_id is None:
            self._check_all = True
        else:
            self._dirty_guilds.add(guild_id)
        self._dirty = True
        self._saver.changed()

    def _maybe_save(self) -> None:
        """Make sure a pending change gets saved (the store thread decides when)."""
        if self._dirty:
            self._saver.changed()

    def save_state(self) -> None:
        """Write what changed (session ids, players, queues) to the state store now.

        Saves also happen by themselves (see ``save_interval``); after :meth:`close`, which
        writes the last state, this does nothing."""
        self._write_state(final=False)

    def _save_in_background(self) -> Optional[float]:
        """The ``lavasync-store`` thread: write what changed, renew leases, take over guilds.
        Returns when to run again unprompted (None: only on the next change)."""
        again = self._write_state(final=False)
        if self._closed or self._store_final:
            return None
        if again is None and self._lease_every is not None:
            again = self._tend_leases()  # also the probe while the store is down
        return again

    def _write_state(self, *, final: bool) -> Optional[float]:
        with self._save_lock:
            if self._store_final:
                # close() saved the last state; a later snapshot would lack the players that
                # close() released, and would make the next process forget them.
                return None
            self._store_final = final
            if self._load_pending:
                try:
                    self._load_stored(late=True)
                except Exception as exc:
                    return self._store_failed(exc, "loading")
                self._load_pending = False
            self._dirty = False
            guilds, self._dirty_guilds = self._dirty_guilds, set()
            check_all, self._check_all = self._check_all, False
            with self._lock:
                live = {g: p for g, p in self._players.items() if not p.destroyed}
                sessions = {n.name: n.session_id for n in self._nodes.values()}
            # after an outage, everything: a restarted Redis may have lost it all
            rewrite = self._rewrite or self._store_down is not None
            self._rewrite = False
            nodes: dict[str, Optional[str]] = {}
            if final or check_all or rewrite:
                guilds.update(self._saved_guilds - live.keys())
                guilds.update(live.keys() - self._saved_guilds)
                if final or rewrite:
                    guilds.update(live)  # positions as of now; or the store lost them
                nodes = {
                    name: sid
                    for name, sid in sessions.items()
                    if sid and (final or rewrite or self._saved_nodes.get(name) != sid)
                }
            players: dict[int, Optional[dict[str, Any]]] = {}
            for guild in guilds:
                player = live.get(guild)
                if player is not None:
                    players[guild] = player._snapshot()
                elif guild in self._saved_guilds:
                    players[guild] = None  # destroyed: gone from the store
            if not players and not nodes and not final:
                return None
            try:
                refused = self.state_store.write(self.store_identity, players, nodes)
            except Exception as exc:
                self._dirty_guilds.update(players)  # written on the next try, as they are then
                self._check_all |= check_all or bool(nodes)
                self._rewrite |= rewrite
                if final:
                    return None
                self._dirty = True
                return self._store_failed(exc, "saving to")
            self._store_back()
            for guild, data in players.items():
                if guild in refused:
                    continue
                if data is None:
                    self._saved_guilds.discard(guild)
                    self._leased.discard(guild)
                else:
                    self._saved_guilds.add(guild)
                    if self._lease_every is not None:
                        self._leased.add(guild)
            self._saved_nodes.update(nodes)
            if refused:
                self._lost_leases(refused, live)
            return None

    def _store_failed(self, exc: BaseException, doing: str) -> float:
        """The store did not answer: one WARNING per outage; retry with backoff (seconds)."""
        if self._store_down is None:
            self._store_down = time.monotonic()
            self._retry = 0.1
            log.warning(
                "%s the state store failed (%s: %s): retrying in the background; players go on",
                doing.capitalize(),
                type(exc).__name__,
                exc,
            )
        else:
            log.debug("the state store is still unreachable: %s", exc)
            self._retry = min(self._retry * 2, 2.0)
        return self._retry

    def _store_back(self, *, rewrite: bool = False) -> None:
        if self._store_down is not None:
            log.warning(
                "the state store answers again after %.1f s: the state is caught up",
                time.monotonic() - self._store_down,
            )
            self._store_down = None
            self._next_renew = 0.0  # leases may be due
            if rewrite:
                self._rewrite = True  # back through a lease renewal: rewrite everything
                self._dirty = True
                self._saver.changed()

    def _tend_leases(self) -> Optional[float]:
        """Store thread: renew the leases of live players when due, and try to take the guilds
        another process holds. Returns seconds until the next renewal."""
        every = self._lease_every
        if every is None:
            return None
        now = time.monotonic()
        if now < self._next_renew:
            return self._next_renew - now
        with self._lock:
            live = {g: p for g, p in self._players.items() if not p.destroyed}
        mine = self._leased & live.keys()
        waiting = set(self._waiting)
        try:
            held = self.state_store.claim(self.store_identity, mine) if mine else set()
            taken = self.state_store.claim(self.store_identity, waiting) if waiting else set()
        except Exception as exc:
            return self._store_failed(exc, "renewing leases in")
        self._store_back(rewrite=True)
        self._next_renew = now + every
        lost = mine - held
        if lost:
            self._lost_leases(lost, live)
        if taken:
            self._waiting -= taken
            self._take_over(taken)
        return every

    def _lost_leases(self, guilds: set[int], live: Mapping[int, Player]) -> None:
        """Another process holds these guilds' leases now: players this process had leased
        are dropped here (deleted from this process's session, not from the store), so a
        guild never plays from two processes."""
        for guild in guilds:
            held = guild in self._leased
            self._leased.discard(guild)
            self._saved_guilds.discard(guild)
            player = live.get(guild)
            if player is None:
                continue
            if held:
                log.warning("guild %s: another process took its lease: dropping it here", guild)
                self._call_soon(partial(self._placement.destroy, player, "lease lost", timeout=2.0))
            else:
                log.warning("guild %s: another process holds its lease: not stored", guild)

    def _take_over(self, guilds: set[int]) -> None:
        """Store thread: the lease of these stored guilds is ours now (their owner let go or
        died): rebuild each from its stored state on this process's session."""
        for guild in sorted(guilds):
            try:
                data = self.state_store.load_guild(guild)
            except Exception as exc:
                self._waiting.add(guild)  # try again on the next round
                self._store_failed(exc, "loading a guild from")
                continue
            if not isinstance(data, dict):
                self._release_leases([guild])
                continue
            with self._lock:
                if self._closed or guild in self._players:
                    continue  # closing, or this process made a player for it meanwhile
                node = self._nodes.get(str(data.get("node")))
                if node is None:
                    self._stored["players"].append(data)  # for add_node() of that node
                    self._leased.add(guild)
                    self._saved_guilds.add(guild)
                    continue
                player = self._restore_one(node, data)
                if player is None:
                    continue
                self._leased.add(guild)
                self._saved_guilds.add(guild)
                sid = node.session_id if node.available else None
                if sid is not None:
                    with player._lock:
                        player._rebuild_for = sid
            log.info("guild %s: taken over from the state store", guild)
            if sid is not None:
                old = data.get("session_id")
                self._movers.submit(partial(self._rebuild_taken, player, node, sid, old))

    def _rebuild_taken(self, player: Player, node: Node, session_id: str, old_session: Any) -> None:
        """Mover: rebuild a taken-over player, then delete it from the session of the process
        that had it (still open until its resume timeout)."""
        self._placement.rebuild(player, node, session_id)
        if isinstance(old_session, str) and old_session and old_session != session_id:
            self._placement._delete(node, old_session, player.guild_id)

    def _release_leases(self, guilds: Optional[Sequence[int]] = None) -> None:
        """Give up leases (all of this process's by default: on close)."""
        if self._lease_every is None:
            return
        if guilds is None:
            guilds, self._leased = list(self._leased), set()
        if not guilds:
            return
        try:
            self.state_store.release(self.store_identity, guilds)
        except Exception as exc:
            log.warning("could not release %d guild leases: %s (they expire)", len(guilds), exc)

    def hand_off(self, timeout: float = 5.0) -> bool:
        """Close for a rolling deploy: write the last state, delete this process's players from
        its own Lavalink sessions (not from the store), release their leases, then
        :meth:`close`. The next process holding the guilds' shards rebuilds them within a third
        of the store's ``lease_ttl``; nothing plays twice. (A plain :meth:`close` leaves the
        players playing on a session only this process's identity can resume: Lavalink answers
        404 to other clients while a session is disconnected.) Returns what close() returns."""
        if self._closed:
            return True
        self._saver.stop(timeout)
        self._write_state(final=True)
        for player in self.players:
            node, sid = player._node, player._node.session_id
            if player._sent_any and sid and node.available:
                self._placement._delete(node, sid, player.guild_id, timeout=min(timeout, 2.0))
        self._release_leases()
        return self.close(timeout)

    def snapshot(self) -> dict[str, Any]:
        """The JSON-ready state a restarted client needs (every node session and player)."""
        with self._lock:
            nodes = {
                n.name: {"session_id": n.session_id} for n in self._nodes.values() if n.session_id
            }
            players = [p._snapshot() for p in self._players.values() if not p.destroyed]
        return {
            "version": FORMAT_VERSION,
            "saved_at": int(time.time() * 1000),
            "nodes": nodes,
            "players": players,
        }

    def _restore_players(self, node: Node) -> None:
        """Players an earlier client stored for this node (caller holds the client lock)."""
        with _GcPaused():
            for data in self._stored.get("players", ()):
                if isinstance(data, dict) and data.get("node") == node.name:
                    self._restore_one(node, data)

    def _restore_one(self, node: Node, data: Mapping[str, Any]) -> Optional[Player]:
        """One stored player (and its queue) on ``node`` (caller holds the client lock)."""
        try:
            player = Player._from_snapshot(self, node, data)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping a stored player that cannot be read: %s", exc)
            return None
        if self._players.setdefault(player.guild_id, player) is not player:
            return None
        Queue._restore(player, self, data.get("queue"))
        return player

    def move_players(
        self,
        from_node: Node,
        to_node: Optional[Node] = None,
        *,
        reason: str = "moved",
        timeout: Optional[float] = None,
    ) -> int:
        """Move every player off ``from_node`` (to ``to_node``, or the best other node each).

        Each player is rebuilt on the target from local state (track, position as of now,
        paused, volume, filters, end time, user data, voice) and then deleted on the old node if
        it still answers. Moves run in parallel (``move_concurrency``). Returns how many moved.
        """
        players = self._players_on(from_node)
        if not players:
            return 0
        futures = self._submit_moves(players, to_node, from_node, reason=reason, timeout=timeout)
        moved = 0
        for future in futures:
            try:
                if future.result():
                    moved += 1
            except Exception:  # cancelled by close()
                continue
        return moved

    def move_player(
        self,
        player: Player,
        to_node: Optional[Node] = None,
        *,
        reason: str = "moved",
        timeout: Optional[float] = None,
    ) -> bool:
        """Move one player to ``to_node`` (or the best other ready node). True if it moved."""
        return self._placement.move(
            player, to_node, expect=player._node, reason=reason, timeout=timeout
        )

    def health(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready snapshot of every node, by name, for health endpoints and logs.

        Per node: ``state`` (a :class:`~lavasync.node.NodeState` value), ``available``,
        ``last_error`` (the last connection error as ``"Type: message"``, or None),
        ``penalty`` (the load penalty, None while it is unknown), ``players`` (players the
        client has on it), ``ping`` (WebSocket round trip in ms, None while unknown),
        ``uptime`` (seconds since it last became ready, None when not ready), ``session_id``
        and ``uri``. Cheap: no network call, no lock held while the penalty is computed.
        """
        import math

        with self._lock:
            nodes = list(self._nodes.values())
        now = time.monotonic()
        report: dict[str, dict[str, Any]] = {}
        for node in nodes:
            error = getattr(node, "last_error", None) or node.error
            try:
                penalty: Optional[float] = float(self.penalty(node))
            except Exception:  # a user's penalty function must not break a health check
                log.exception("the penalty function raised for node %s", node.name)
                penalty = None
            if penalty is not None and not math.isfinite(penalty):
                penalty = None  # not ready or no stats yet; inf is not valid JSON
            ping = getattr(node, "ping", None)
            if isinstance(ping, bool) or not isinstance(ping, (int, float)):
                ping = None
            ready_at = getattr(node, "_ready_at", None)
            available = node.available
            report[node.name] = {
                "state": node.state.value,
                "available": available,
                "last_error": None if error is None else f"{type(error).__name__}: {error}",
                "penalty": penalty,
                "players": len(self._players_on(node)),
                "ping": None if ping is None else float(ping),
                "uptime": (
                    max(0.0, now - ready_at) if available and ready_at is not None else None
                ),
                "session_id": node.session_id,
                "uri": node.uri,
            }
        return report

    def metrics_snapshot(self) -> dict[str, Any]:
        """The gauges a metrics backend reads when it is scraped (cheap, no network, no user
        code; callable from any thread).

        ``buffers``: for ``"poll"`` (absent with ``poll_events=False``) and ``"listener"``,
        ``depth`` (events waiting), ``capacity``, ``coalesced`` and ``dropped`` (running totals).
        ``nodes``: per node name, ``state`` (a :class:`~lavasync.node.NodeState` value),
        ``available``, ``players`` and ``ping`` (ms or None). ``players``: the total.
        """
        buffers: dict[str, dict[str, int]] = {}
        poll = self._poll
        if poll is not None:
            buffers["poll"] = _buffer_gauges(poll)
        buffers["listener"] = _buffer_gauges(self._dispatcher.buffer)
        with self._lock:
            nodes = list(self._nodes.values())
            on_node: dict[str, int] = {}
            for player in self._players.values():
                name = player._node.name
                on_node[name] = on_node.get(name, 0) + 1
            total = len(self._players)
        return {
            "buffers": buffers,
            "nodes": {
                node.name: {
                    "state": node.state.value,
                    "available": node.available,
                    "players": on_node.get(node.name, 0),
                    "ping": node.ping,
                }
                for node in nodes
            },
            "players": total,
        }


def _buffer_gauges(buffer: EventBuffer) -> dict[str, int]:
    return {
        "depth": len(buffer),
        "capacity": buffer.maxsize,
        "coalesced": buffer.coalesced,
        "dropped": buffer.dropped,
    }


class _GcPaused:
    """Pause Python's cyclic garbage collector while stored state becomes objects.

    A restore makes hundreds of thousands of long-lived objects and no garbage, and the
    collector starts a pass every few hundred new objects, now and then one over the whole heap:
    at 10,000 players those passes took about half of the restore's time, for nothing. Reference
    counting goes on; the collector runs again as soon as the block ends, even on an error.
    Nested or concurrent pauses are harmless: only the one that turned it off turns it on.
    """

    __slots__ = ("_paused",)

    def __enter__(self) -> None:
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._paused:
            gc.enable()


def _readable_state(data: Any) -> dict[str, Any]:
    """What a store loaded, with the parts lavasync reads made safe (a bad store never raises)."""
    if not isinstance(data, dict):
        log.warning("the state store loaded %s, not a dict: starting empty", type(data).__name__)
        return {}
    state = dict(data)
    if not isinstance(state.get("nodes"), dict):
        state["nodes"] = {}
    if not isinstance(state.get("players"), list):
        state["players"] = []
    return state


def _guild_of(data: Mapping[str, Any]) -> Optional[int]:
    try:
        return int(data["guild_id"])
    except (KeyError, TypeError, ValueError):
        return None


def _sooner(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
