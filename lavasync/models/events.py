"""Typed events: what the node's WebSocket says, plus client-side node and player events.

Every event carries ``node`` (the :class:`lavasync.Node` it came from, or ``None``), ``replayed``
(``True`` for events the server replays after a session resume) and ``raw`` (the wire dict, or
``None`` for client-side events). Events for a guild have ``guild_id`` (an ``int``).

Events are plain data with ``__slots__`` (they are built on the reader thread's hot path):
immutable by convention, safe to hand between threads.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Optional, Union

from ._base import snowflake
from ._enums import WireEnum
from .load import ExceptionInfo
from .player import PlayerState
from .stats import Stats
from .track import Track

__all__ = [
    "Event",
    "NodeConnectedEvent",
    "NodeDisconnectedEvent",
    "NodeEvent",
    "NodeReconnectingEvent",
    "NodeResumedEvent",
    "PlayerDestroyedEvent",
    "PlayerEvent",
    "PlayerInactiveEvent",
    "PlayerMovedEvent",
    "PlayerUpdateEvent",
    "ReadyEvent",
    "StatsEvent",
    "TrackEndEvent",
    "TrackEndReason",
    "TrackEvent",
    "TrackExceptionEvent",
    "TrackStartEvent",
    "TrackStuckEvent",
    "UnknownEvent",
    "VoiceErrorEvent",
    "VoiceLostEvent",
    "VoiceRejoinFailedEvent",
    "VoiceRejoinedEvent",
    "WebSocketClosedEvent",
    "parse_event",
]

log = logging.getLogger("lavasync.events")

WireDict = Mapping[str, Any]


class TrackEndReason(WireEnum):
    """The ``reason`` of a TrackEndEvent: a ``str`` enum, equal to the wire strings.

    ``TrackEndEvent.reason`` holds a member for these and the raw string for any other value,
    so ``end.reason == "finished"`` and ``== TrackEndReason.FINISHED`` both work.
    """

    FINISHED = "finished"
    LOAD_FAILED = "loadFailed"
    STOPPED = "stopped"
    REPLACED = "replaced"
    CLEANUP = "cleanup"

    #: Reasons after which a queue may start the next track (the others cause double skips).
    MAY_START_NEXT: ClassVar[frozenset[str]]


TrackEndReason.MAY_START_NEXT = frozenset({TrackEndReason.FINISHED, TrackEndReason.LOAD_FAILED})


class Event:
    """Base of every event: ``node``, ``replayed``, and ``raw`` (the wire dict; None if local)."""

    __slots__ = ("node", "raw", "replayed")
    #: The fields shown by repr and compared by ==, in order (node and raw are left out).
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, *, node: Any = None, replayed: bool = False, raw: Optional[WireDict] = None
    ) -> None:
        self.node = node
        self.replayed = replayed
        self.raw = raw

    def _values(self) -> tuple[Any, ...]:
        return (*(getattr(self, name) for name in self._fields), self.replayed)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Event)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{name}={getattr(self, name)!r}" for name in self._fields]
        if self.replayed:
            parts.append("replayed=True")
        node_name = getattr(self.node, "name", None)
        if node_name is not None:
            parts.append(f"node={node_name!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class NodeEvent(Event):
    """Base of events about a node's connection (client-side, or the ``ready``/``stats`` ops)."""

    __slots__ = ()


class ReadyEvent(NodeEvent):
    """The ``ready`` op: the node opened (``resumed=False``) or resumed a session."""

    __slots__ = ("resumed", "session_id")
    _fields = ("session_id", "resumed")

    def __init__(self, session_id: str, resumed: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.session_id = session_id
        self.resumed = resumed


class StatsEvent(NodeEvent):
    """The ``stats`` op; ``stats`` is the decoded :class:`~lavasync.models.Stats`."""

    __slots__ = ("stats",)
    _fields = ("stats",)

    def __init__(self, stats: Stats, **kw: Any) -> None:
        super().__init__(**kw)
        self.stats = stats


class NodeConnectedEvent(NodeEvent):
    """A node's WebSocket is open and ready (fresh session or resumed one)."""

    __slots__ = ("resumed", "session_id")
    _fields = ("session_id", "resumed")

    def __init__(self, session_id: str, resumed: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.session_id = session_id
        self.resumed = resumed


class NodeResumedEvent(NodeEvent):
    """A node's dropped session came back (``ready.resumed``); its players kept playing."""

    __slots__ = ("session_id",)
    _fields = ("session_id",)

    def __init__(self, session_id: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.session_id = session_id


class NodeDisconnectedEvent(NodeEvent):
    """A node's WebSocket closed. ``will_reconnect`` is False when the node gave up for good."""

    __slots__ = ("code", "reason", "will_reconnect")
    _fields = ("code", "reason", "will_reconnect")

    def __init__(self, code: Optional[int], reason: str, will_reconnect: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.code = code
        self.reason = reason
        self.will_reconnect = will_reconnect


class NodeReconnectingEvent(NodeEvent):
    """A node will try to connect again after ``delay`` seconds (attempt number ``attempt``)."""

    __slots__ = ("attempt", "delay")
    _fields = ("attempt", "delay")

    def __init__(self, attempt: int, delay: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.attempt = attempt
        self.delay = delay


class PlayerEvent(Event):
    """Base of every event about one guild's player: has ``guild_id``."""

    __slots__ = ("guild_id",)

    def __init__(self, guild_id: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.guild_id = guild_id


class PlayerUpdateEvent(PlayerEvent):
    """The ``playerUpdate`` op: position, connection and ping as of ``state.time``."""

    __slots__ = ("state",)
    _fields = ("guild_id", "state")

    def __init__(
        self,
        guild_id: int,
        state: PlayerState,
        *,
        node: Any = None,
        replayed: bool = False,
        raw: Optional[WireDict] = None,
    ) -> None:
        # Flat on purpose: one of these per player every few seconds, 50,000 in a burst.
        self.node = node
        self.replayed = replayed
        self.raw = raw
        self.guild_id = guild_id
        self.state = state


class TrackEvent(PlayerEvent):
    """Base of the track events; ``track`` is the full Track the server sent."""

    __slots__ = ("track",)

    def __init__(self, guild_id: int, track: Track, **kw: Any) -> None:
        super().__init__(guild_id, **kw)
        self.track = track


class TrackStartEvent(TrackEvent):
    """A track was handed to the player (sent inside the play PATCH, before its response)."""

    __slots__ = ()
    _fields = ("guild_id", "track")


class TrackEndEvent(TrackEvent):
    """A track ended; advance a queue only when ``may_start_next`` (finished, loadFailed).

    ``reason`` is a :class:`TrackEndReason` member (it equals the wire string), or the raw
    string for a reason lavasync does not know.
    """

    __slots__ = ("reason",)
    _fields = ("guild_id", "track", "reason")

    def __init__(
        self, guild_id: int, track: Track, reason: Union[TrackEndReason, str], **kw: Any
    ) -> None:
        super().__init__(guild_id, track, **kw)
        self.reason = reason

    @property
    def may_start_next(self) -> bool:
        """True for ``finished`` and ``loadFailed``: the only reasons to start the next track."""
        return self.reason in TrackEndReason.MAY_START_NEXT


class TrackExceptionEvent(TrackEvent):
    """Playback failed; a TrackEndEvent follows. ``exception`` is the server's Exception object."""

    __slots__ = ("exception",)
    _fields = ("guild_id", "track", "exception")

    def __init__(self, guild_id: int, track: Track, exception: ExceptionInfo, **kw: Any) -> None:
        super().__init__(guild_id, track, **kw)
        self.exception = exception


class TrackStuckEvent(TrackEvent):
    """No audio for ``threshold_ms``; the server does not end the track, the client decides."""

    __slots__ = ("threshold_ms",)
    _fields = ("guild_id", "track", "threshold_ms")

    def __init__(self, guild_id: int, track: Track, threshold_ms: int, **kw: Any) -> None:
        super().__init__(guild_id, track, **kw)
        self.threshold_ms = threshold_ms


class WebSocketClosedEvent(PlayerEvent):
    """Lavalink's voice WebSocket to Discord closed (``code`` is Discord's or a generic one)."""

    __slots__ = ("by_remote", "code", "reason")
    _fields = ("guild_id", "code", "reason", "by_remote")

    def __init__(self, guild_id: int, code: int, reason: str, by_remote: bool, **kw: Any) -> None:
        super().__init__(guild_id, **kw)
        self.code = code
        self.reason = reason
        self.by_remote = by_remote


class PlayerMovedEvent(PlayerEvent):
    """A player moved to another node (failover, drain, or on request)."""

    __slots__ = ("new_node", "old_node", "reason")
    _fields = ("guild_id", "reason")

    def __init__(self, guild_id: int, old_node: Any, new_node: Any, reason: str, **kw: Any) -> None:
        super().__init__(guild_id, **kw)
        self.old_node = old_node
        self.new_node = new_node
        self.reason = reason

    def __repr__(self) -> str:
        old = getattr(self.old_node, "name", self.old_node)
        new = getattr(self.new_node, "name", self.new_node)
        return (
            f"PlayerMovedEvent(guild_id={self.guild_id!r}, old_node={old!r}, "
            f"new_node={new!r}, reason={self.reason!r})"
        )


class PlayerDestroyedEvent(PlayerEvent):
    """The client destroyed a player: on request, kicked from voice, or its node lost for good."""

    __slots__ = ("reason",)
    _fields = ("guild_id", "reason")

    def __init__(self, guild_id: int, reason: str, **kw: Any) -> None:
        super().__init__(guild_id, **kw)
        self.reason = reason


class VoiceLostEvent(PlayerEvent):
    """The guild's voice connection is gone and lavasync will rejoin ``channel_id`` by itself.

    ``reason`` says why: ``"shard lost"`` (the host called ``shard_lost``), ``"guild
    unavailable"`` (GUILD_DELETE with ``unavailable``), ``"voice closed"`` (a voice close code
    that needs a fresh join: ``code`` holds it) or ``"voice closed while the shard was away"``
    (a READY/RESUMED found Lavalink's voice connection closed). The player is kept on Lavalink;
    a :class:`VoiceRejoinedEvent` or a :class:`VoiceRejoinFailedEvent` follows.
    """

    __slots__ = ("channel_id", "code", "reason", "shard_id")
    _fields = ("guild_id", "channel_id", "reason", "code", "shard_id")

    def __init__(
        self,
        guild_id: int,
        channel_id: int,
        reason: str,
        *,
        code: Optional[int] = None,
        shard_id: int = 0,
        **kw: Any,
    ) -> None:
        super().__init__(guild_id, **kw)
        self.channel_id = channel_id
        self.reason = reason
        self.code = code
        self.shard_id = shard_id


class VoiceRejoinedEvent(PlayerEvent):
    """A lost voice connection is back: Lavalink accepted Discord's new voice state.

    ``track_replayed`` is True when Lavalink had dropped the track meanwhile and lavasync played
    it again at the position it had when the voice was lost; ``lost_for`` is how many seconds
    the guild was without voice.
    """

    __slots__ = ("channel_id", "lost_for", "track_replayed")
    _fields = ("guild_id", "channel_id", "track_replayed")

    def __init__(
        self, guild_id: int, channel_id: int, track_replayed: bool, lost_for: float, **kw: Any
    ) -> None:
        super().__init__(guild_id, **kw)
        self.channel_id = channel_id
        self.track_replayed = track_replayed
        self.lost_for = lost_for


class VoiceRejoinFailedEvent(PlayerEvent):
    """A rejoin did not complete in time: lavasync left the channel (OP 4 null) and destroyed
    the player (a :class:`PlayerDestroyedEvent` follows). ``reason`` names what was missing."""

    __slots__ = ("channel_id", "reason")
    _fields = ("guild_id", "channel_id", "reason")

    def __init__(self, guild_id: int, channel_id: int, reason: str, **kw: Any) -> None:
        super().__init__(guild_id, **kw)
        self.channel_id = channel_id
        self.reason = reason


class VoiceErrorEvent(PlayerEvent):
    """Lavalink's voice socket closed with a code lavasync cannot fix by rejoining.

    ``code`` is Discord's voice close code, ``meaning`` what it means and what to do (4017: the
    Lavalink server is too old for Discord's DAVE end-to-end encryption, it needs 4.2+),
    ``reason`` the text Discord sent. The player stays, disconnected, until the bot acts.
    """

    __slots__ = ("by_remote", "code", "meaning", "reason")
    _fields = ("guild_id", "code", "meaning", "reason", "by_remote")

    def __init__(
        self, guild_id: int, code: int, meaning: str, reason: str, by_remote: bool, **kw: Any
    ) -> None:
        super().__init__(guild_id, **kw)
        self.code = code
        self.meaning = meaning
        self.reason = reason
        self.by_remote = by_remote


class PlayerInactiveEvent(PlayerEvent):
    """Sent just before lavasync leaves and destroys an inactive player (``Client(
    leave_after_alone=..., leave_after_idle=...)``). ``reason`` is ``"alone"`` (no listener in
    the channel) or ``"idle"`` (no track), ``after`` the configured number of seconds."""

    __slots__ = ("after", "reason")
    _fields = ("guild_id", "reason", "after")

    def __init__(self, guild_id: int, reason: str, after: float, **kw: Any) -> None:
        super().__init__(guild_id, **kw)
        self.reason = reason
        self.after = after


class UnknownEvent(Event):
    """An op or event type lavasync does not know (plugins add them); ``data`` is the wire dict.

    ``op`` is the op, ``type`` the event type for ``op == "event"`` (else None), and
    ``guild_id`` the guild when the wire names one.
    """

    __slots__ = ("data", "guild_id", "op", "type")
    _fields = ("op", "type", "guild_id")

    def __init__(
        self, op: str, type: Optional[str], guild_id: Optional[int], data: WireDict, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.op = op
        self.type = type
        self.guild_id = guild_id
        self.data = data


# Events are read liberally (``from_server``): other servers add keys (kept), omit
# ``pluginInfo`` or null a field; only what the event is about (its track, the end reason, the
# close code) must be there.


def _track_start(d: WireDict, g: int, kw: dict[str, Any]) -> Event:
    return TrackStartEvent(g, Track.from_server(d["track"]), **kw)


def _track_end(d: WireDict, g: int, kw: dict[str, Any]) -> Event:
    reason = d["reason"]
    if not isinstance(reason, str):
        raise ValueError(f"TrackEndEvent reason is not a string: {reason!r}")
    return TrackEndEvent(g, Track.from_server(d["track"]), TrackEndReason.parse(reason), **kw)


def _track_exception(d: WireDict, g: int, kw: dict[str, Any]) -> Event:
    raw = d.get("exception")
    exc = ExceptionInfo.from_server(raw if isinstance(raw, dict) else {})
    return TrackExceptionEvent(g, Track.from_server(d["track"]), exc, **kw)


def _track_stuck(d: WireDict, g: int, kw: dict[str, Any]) -> Event:
    threshold = d.get("thresholdMs")
    threshold = threshold if type(threshold) is int else 0
    return TrackStuckEvent(g, Track.from_server(d["track"]), threshold, **kw)


def _ws_closed(d: WireDict, g: int, kw: dict[str, Any]) -> Event:
    reason = d.get("reason") or ""
    return WebSocketClosedEvent(g, _int(d["code"]), str(reason), bool(d.get("byRemote")), **kw)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return value


_EVENT_TYPES = {
    "TrackStartEvent": _track_start,
    "TrackEndEvent": _track_end,
    "TrackExceptionEvent": _track_exception,
    "TrackStuckEvent": _track_stuck,
    "WebSocketClosedEvent": _ws_closed,
}


_new = object.__new__


def parse_event(data: WireDict, *, node: Any = None, replayed: bool = False) -> Event:
    """Turn one decoded WebSocket frame into a typed event.

    Unknown ops and event types give an :class:`UnknownEvent`. A known op with missing or
    wrongly typed fields raises ``ValueError`` (or ``KeyError``/``TypeError``); the caller logs
    and skips the frame.
    """
    op = data["op"]
    if op == "playerUpdate":
        guild = data["guildId"]
        state = data["state"]
        # Lavalink's exact shape checked inline (as the compiled decoder checks it); any other
        # shape (a missing, extra or odd field) goes through from_server: strict, then liberal.
        if (
            type(state) is dict
            and len(state) == 4
            and type(state.get("time")) is int
            and type(state.get("position")) is int
            and type(state.get("connected")) is bool
            and type(state.get("ping")) is int
        ):
            player_state = _new(PlayerState)
            player_state.__dict__ = {
                "time": state["time"],
                "position": state["position"],
                "connected": state["connected"],
                "ping": state["ping"],
            }
        else:
            player_state = PlayerState.from_server(state)
        # Filled in directly (the slots __init__ fills; one of these per frame, 50,000 a burst)
        event = _new(PlayerUpdateEvent)
        # the usual guild id inline (a short decimal string); anything else gets the full check
        event.guild_id = (
            int(guild)
            if type(guild) is str and guild.isdigit() and len(guild) < 19 and guild.isascii()
            else snowflake(guild, "guildId")
        )
        event.state = player_state
        event.node = node
        event.replayed = replayed
        event.raw = data
        return event
    kw: dict[str, Any] = {"node": node, "replayed": replayed, "raw": data}
    if op == "event":
        kind = data.get("type")
        parser = _EVENT_TYPES.get(kind) if isinstance(kind, str) else None
        if parser is not None:
            return parser(data, snowflake(data["guildId"], "guildId"), kw)
        raw_guild = data.get("guildId")
        guild = _maybe_snowflake(raw_guild)
        return UnknownEvent(op, kind if isinstance(kind, str) else None, guild, data, **kw)
    if op == "stats":
        return StatsEvent(Stats.from_server(data), **kw)
    if op == "ready":
        session_id = data["sessionId"]
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"ready op without a session id: {session_id!r}")
        return ReadyEvent(session_id, bool(data.get("resumed", False)), **kw)
    if not isinstance(op, str):
        raise ValueError(f"frame op is not a string: {op!r}")
    return UnknownEvent(op, None, _maybe_snowflake(data.get("guildId")), data, **kw)


def _maybe_snowflake(value: Any) -> Optional[int]:
    if value is None:
        return None
    try:
        return snowflake(value, "guildId")
    except ValueError:
        return None
