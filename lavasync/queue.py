"""An optional track queue for one player: add, skip, loop, shuffle, history.

The queue advances only when a track ends with a reason that allows it (``finished``,
``loadFailed``: ``TrackEndEvent.may_start_next``), and only once per track it started: each play
leaves a token that the first matching end consumes, so an end event delivered again (a resume
replay, a duplicate) or an end for another track (``replaced``) never skips twice.

An attached queue lives as long as its player: when the player is destroyed (disconnect,
destroy, kick, node lost) the queue detaches from the client by itself. Attached queues do not
each register listeners: the client's :class:`_QueueRouter` holds one ``TrackEndEvent`` and
one ``PlayerDestroyedEvent`` listener (only while some queue is attached) and hands each event
to the queues of its guild, so attaching is O(1) and an event costs the same with 10 queues
or 10,000.

A player's queue (the last one made for it: :attr:`Player.queue <lavasync.Player.queue>`) is part
of the guild's stored state: upcoming tracks (encoded), history, loop mode, the current track and
whether its end is still to be acted on. A restarted or taking-over process gets it back with
the player, attached, so the next track starts when the current one ends, once. Restored
tracks stay encoded until first used (restoring thousands of queues decodes nothing); one that
cannot be decoded is then left out with a warning.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .errors import LavasyncError
from .models import Track
from .models.events import PlayerDestroyedEvent, TrackEndEvent

if TYPE_CHECKING:
    from .client import Client
    from .player import Player

__all__ = ["LoopMode", "Queue"]

log = logging.getLogger("lavasync.queue")


class LoopMode(str, enum.Enum):
    """What happens when a track finishes."""

    NONE = "none"  #: play the next track; stop at the end
    TRACK = "track"  #: play the same track again
    QUEUE = "queue"  #: play the next; a finished track goes to the back


class Queue:
    """A thread-safe queue of tracks feeding one :class:`~lavasync.Player`.

    ``Queue(player)`` alone is a plain container you drive with :meth:`play_next`;
    ``Queue(player, client=client)`` (or :meth:`attach`) also listens for the player's track ends
    and starts the next track itself (on the dispatcher thread), until the player is destroyed:
    then it detaches itself (a new player for the guild needs a new queue).
    """

    def __init__(
        self,
        player: Player,
        *,
        client: Optional[Client] = None,
        loop: Union[LoopMode, str] = LoopMode.NONE,
        history_size: int = 50,
    ) -> None:
        if history_size < 0:
            raise ValueError("history_size must be >= 0")
        self.player = player
        self._lock = threading.RLock()
        # tracks, or restored ones still as stored (a str, or _Stored with user/plugin data):
        # decoded on first use, under the lock
        self._upcoming: deque[_Item] = deque()
        self._history: deque[_Item] = deque(maxlen=history_size or None)
        self._history_size = history_size
        self._current: Optional[_Item] = None
        self._token: Optional[str] = None  # identifier of the track this queue last started
        self._loop = LoopMode(loop)
        self._client: Optional[Client] = None
        player._queue = self  # the player's queue: stored with it
        if client is not None:
            self.attach(client)

    # ------------------------------------------------------------------ container

    def __len__(self) -> int:
        return len(self._upcoming)

    def __iter__(self) -> Iterator[Track]:
        with self._lock:
            return iter(self._decoded(self._upcoming))

    @property
    def upcoming(self) -> list[Track]:
        """A snapshot of the tracks waiting, next first."""
        with self._lock:
            return self._decoded(self._upcoming)

    @property
    def history(self) -> list[Track]:
        """Tracks already played, oldest first (at most ``history_size``)."""
        with self._lock:
            return self._decoded(self._history)

    @property
    def current(self) -> Optional[Track]:
        """The track the queue started last (None before :meth:`start`)."""
        current = self._current
        if not isinstance(current, _RESTORED):
            return current
        with self._lock:
            return self._current_track()

    def _current_track(self) -> Optional[Track]:
        """The current track, decoded if it was restored (caller holds the lock)."""
        current = self._current
        if not isinstance(current, _RESTORED):
            return current
        track = self._current = _decode(current, self.player.guild_id)
        return track

    def _decoded(self, items: deque[_Item]) -> list[Track]:
        """``items`` as tracks: restored ones are decoded in place, once (unreadable ones are
        left out with a warning); caller holds the lock."""
        if not any(isinstance(item, _RESTORED) for item in items):
            return list(items)  # type: ignore[arg-type]
        guild = self.player.guild_id
        tracks: list[Track] = []
        for item in items:
            track = _decode(item, guild)
            if track is not None:
                tracks.append(track)
        items.clear()
        items.extend(tracks)
        return tracks

    @property
    def loop(self) -> LoopMode:
        """The loop mode: ``none``, ``track`` or ``queue`` (settable, also as a string)."""
        return self._loop

    @loop.setter
    def loop(self, mode: Union[LoopMode, str]) -> None:
        self._loop = LoopMode(mode)
        self._changed()

    @classmethod
    def of(cls, player: Player, *, client: Optional[Client] = None, **options: Any) -> Queue:
        """The player's queue (one restored with it, for example), or a new one made with
        ``client`` and ``options`` if it has none; attached to ``client`` when given."""
        existing = player._queue
        if isinstance(existing, Queue):
            if client is not None:
                existing.attach(client)
            return existing
        return cls(player, client=client, **options)

    # ------------------------------------------------------------------ persistence

    def _changed(self) -> None:
        """The stored state of the guild changed (cheap; the store thread writes it)."""
        player = self.player
        if player._queue is self:
            player._client._state_changed(player.guild_id)

    def _state(self) -> dict[str, Any]:
        """The JSON-ready state stored with the player."""
        with self._lock:
            return {
                "upcoming": [_item_out(t) for t in self._upcoming],
                "history": [_item_out(t) for t in self._history],
                "current": None if self._current is None else _item_out(self._current),
                "token": self._token,
                "loop": self._loop.value,
                "history_size": self._history_size,
            }

    @classmethod
    def _restore(cls, player: Player, client: Client, data: Any) -> Optional[Queue]:
        """The queue stored with ``player`` (attached to ``client``), None if there is none.
        Tracks stay encoded until first used (then unreadable ones are left out with a
        warning); odd fields get defaults."""
        if not isinstance(data, Mapping):
            return None
        size = data.get("history_size", 50)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            size = 50
        loop = data.get("loop")
        try:
            mode = LoopMode(loop)
        except ValueError:
            mode = LoopMode.NONE
        queue = cls(player, loop=mode, history_size=size)
        guild = player.guild_id
        queue._upcoming.extend(_stored_in(data.get("upcoming"), guild))
        queue._history.extend(_stored_in(data.get("history"), guild))
        current = _stored_in([data.get("current")], guild)
        queue._current = current[0] if current else None
        token = data.get("token")
        queue._token = token if isinstance(token, str) else None
        queue.attach(client)
        return queue

    def add(self, tracks: Union[Track, Iterable[Track]], *, index: Optional[int] = None) -> int:
        """Append a track or several (or insert at ``index``); returns the new length."""
        items = [tracks] if isinstance(tracks, Track) else list(tracks)
        for item in items:
            if not isinstance(item, Track):
                raise ValueError(f"the queue holds Track objects, not {item!r}")
        with self._lock:
            if index is None:
                self._upcoming.extend(items)
            else:
                self._decoded(self._upcoming)  # positions count readable tracks only
                if not -len(self._upcoming) - 1 <= index <= len(self._upcoming):
                    raise ValueError(f"index {index} is outside the queue")
                for offset, item in enumerate(items):
                    self._upcoming.insert(index + offset, item)
            size = len(self._upcoming)
        self._changed()
        return size

    def remove(self, index: int) -> Track:
        """Remove and return the upcoming track at ``index``."""
        with self._lock:
            upcoming = self._decoded(self._upcoming)  # positions count readable tracks only
            if not -len(upcoming) <= index < len(upcoming):
                raise ValueError(f"index {index} is outside the queue")
            track = upcoming[index]
            del self._upcoming[index]
        self._changed()
        return track

    def clear(self) -> None:
        """Drop every upcoming track (the current one keeps playing)."""
        with self._lock:
            self._upcoming.clear()
        self._changed()

    def shuffle(self, rng: Optional[random.Random] = None) -> None:
        """Shuffle the upcoming tracks in place (``rng`` for a repeatable order)."""
        with self._lock:
            items = list(self._upcoming)
            (rng or random).shuffle(items)
            self._upcoming = deque(items)
        self._changed()

    def next(self) -> Optional[Track]:
        """Take the track that would play next (honouring the loop mode), or None."""
        with self._lock:
            track = self._take_next(finished=True)
        self._changed()
        return track

    def _take_next(self, *, finished: bool) -> Optional[Track]:
        current = self._current_track()
        if current is not None:
            if finished and self._loop is LoopMode.TRACK:
                return current
            if self._loop is LoopMode.QUEUE:
                self._upcoming.append(current)
        if current is not None and self._history_size:
            self._history.append(current)
        track: Optional[Track] = None
        guild = self.player.guild_id
        while track is None and self._upcoming:
            track = _decode(self._upcoming.popleft(), guild)
        self._current = track
        return track

    # ------------------------------------------------------------------ playback

    def play_next(self, *, finished: bool = False) -> Optional[Track]:
        """Start the next track on the player (stop it when the queue is empty)."""
        with self._lock:
            track = self._take_next(finished=finished)
            self._token = track.info.identifier if track is not None else None
        self._changed()
        if track is None:
            if self.player.track is not None:
                self.player.stop()
            return None
        self.player.play(track)
        return track

    def skip(self) -> Optional[Track]:
        """Skip the current track (loop ``track`` does not repeat it); returns the new one."""
        return self.play_next(finished=False)

    def start(self) -> Optional[Track]:
        """Play the first track if nothing is playing; returns what plays."""
        with self._lock:
            current = self._current_track()
            if current is not None and self.player.track is not None:
                return current
        return self.play_next()

    # ------------------------------------------------------------------ automatic advance

    def attach(self, client: Client) -> None:
        """Advance automatically on this player's track ends (on the dispatcher thread).

        Does nothing if the player is already destroyed; detaches itself when it is destroyed.
        """
        with self._lock:
            if self._client is not None or self.player.destroyed:
                return
            self._client = client
            client._queue_router.add(self)
        if self.player.destroyed:  # destroyed while registering: its event may have gone by
            self.detach()

    def detach(self) -> None:
        """Stop following the client's events: the queue no longer advances by itself
        (idempotent, any thread)."""
        with self._lock:
            client = self._client
            self._client = None
            if client is not None:
                client._queue_router.remove(self)

    def _on_destroyed(self, event: PlayerDestroyedEvent) -> None:
        if event.guild_id == self.player.guild_id and self.player.destroyed:
            self.detach()

    def should_advance(self, event: TrackEndEvent) -> bool:
        """Consume the play token if ``event`` ends the track this queue started."""
        if event.guild_id != self.player.guild_id or not event.may_start_next:
            return False
        with self._lock:
            if self._token is None or event.track.info.identifier != self._token:
                return False
            self._token = None  # any later end for the same play (a replay) is ignored
        self._changed()
        return True

    def _on_track_end(self, event: TrackEndEvent) -> None:
        if self.player.destroyed:
            self.detach()
            return
        if not self.should_advance(event):
            return
        try:
            self.play_next(finished=True)
        except LavasyncError as exc:
            log.warning(
                "guild %s: queue could not start the next track: %s", self.player.guild_id, exc
            )


class _QueueRouter:
    """The client's attached queues by guild, and the two listeners that feed them.

    One ``TrackEndEvent`` and one ``PlayerDestroyedEvent`` listener are registered while at
    least one queue is attached (none otherwise: a client without queues pays nothing per
    event); each event goes to the queues of its guild only, in the order they attached.
    Thread-safe: ``add``/``remove`` from any thread (O(1)); the listeners run on the dispatcher.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        # guild -> its queue, or its queues in attach order when there are several (rare: one
        # object per guild, not a container, keeps 10,000 restored queues cheap)
        self._by_guild: dict[int, Union[Queue, list[Queue]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, queue: Queue) -> None:
        guild = queue.player.guild_id
        with self._lock:
            found = self._by_guild.get(guild)
            if found is None:
                self._by_guild[guild] = queue
            elif found is queue or (isinstance(found, list) and _index(found, queue) >= 0):
                return
            elif isinstance(found, list):
                found.append(queue)
            else:
                self._by_guild[guild] = [found, queue]
            self._count += 1
            if self._count == 1:  # the registry calls only take its own short lock
                self._client.add_listener(TrackEndEvent, self._on_track_end)
                self._client.add_listener(PlayerDestroyedEvent, self._on_destroyed)

    def remove(self, queue: Queue) -> None:
        guild = queue.player.guild_id
        with self._lock:
            found = self._by_guild.get(guild)
            if found is queue:
                del self._by_guild[guild]
            elif isinstance(found, list) and _index(found, queue) >= 0:
                del found[_index(found, queue)]
                if len(found) == 1:
                    self._by_guild[guild] = found[0]
            else:
                return
            self._count -= 1
            if self._count == 0:
                self._client.remove_listener(TrackEndEvent, self._on_track_end)
                self._client.remove_listener(PlayerDestroyedEvent, self._on_destroyed)

    def _queues_of(self, guild_id: int) -> list[Queue]:
        with self._lock:
            found = self._by_guild.get(guild_id)
            if found is None:
                return []
            return list(found) if isinstance(found, list) else [found]

    def _on_track_end(self, event: TrackEndEvent) -> None:
        _each(self._queues_of(event.guild_id), lambda queue: queue._on_track_end(event))

    def _on_destroyed(self, event: PlayerDestroyedEvent) -> None:
        _each(self._queues_of(event.guild_id), lambda queue: queue._on_destroyed(event))


def _index(queues: list[Queue], queue: Queue) -> int:
    """Where ``queue`` itself is in ``queues`` (by identity), or -1."""
    for i, q in enumerate(queues):
        if q is queue:
            return i
    return -1


def _each(queues: list[Queue], call: Callable[[Queue], None]) -> None:
    """``call`` for every queue, even if one raises (the first error is raised after, for the
    dispatcher to log and hand to its error hook)."""
    error: Optional[BaseException] = None
    for queue in queues:
        try:
            call(queue)
        except BaseException as exc:
            if error is None:
                error = exc
    if error is not None:
        raise error


class _Stored:
    """A restored queue track with user or plugin data, kept as stored until first used (one
    without is kept as its bare encoded string): decoding every queued track of every restored
    player would dominate a restart (about 16 us each)."""

    __slots__ = ("encoded", "plugin_info", "user_data")

    def __init__(
        self,
        encoded: str,
        user_data: Optional[dict[str, Any]],
        plugin_info: Optional[dict[str, Any]],
    ) -> None:
        self.encoded = encoded
        self.user_data = user_data
        self.plugin_info = plugin_info


_Item = Union[Track, str, _Stored]
_RESTORED = (str, _Stored)  # queue items not decoded yet


def _decode(item: _Item, guild: int) -> Optional[Track]:
    """A queue item as a Track: restored ones are decoded (None, with a warning, if that fails)."""
    if not isinstance(item, _RESTORED):
        return item
    from .codec import decode_track

    stored = item if isinstance(item, _Stored) else None
    try:
        track = decode_track(item if stored is None else stored.encoded)  # type: ignore[arg-type]
    except (LavasyncError, ValueError) as exc:
        log.warning("guild %s: skipping a stored queue track: %s", guild, exc)
        return None
    if stored is not None:
        if stored.user_data:
            track.user_data = dict(stored.user_data)
        if stored.plugin_info:
            track.plugin_info = dict(stored.plugin_info)
    return track


def _item_out(item: _Item) -> Any:
    """A queue item as stored: a restored one as it came (not decoded for that)."""
    if isinstance(item, str):
        return item
    if isinstance(item, _Stored):
        return _stored_dict(item)
    return _track_out(item)


def _track_out(track: Track) -> Any:
    """A track as stored: its encoded string, or a dict when it carries user or plugin data."""
    if track.user_data or track.plugin_info:
        return _stored_dict(track)
    return track.encoded


def _stored_dict(item: Union[Track, _Stored]) -> dict[str, Any]:
    """``encoded`` with the user and plugin data, each only when not empty."""
    out: dict[str, Any] = {"encoded": item.encoded}
    if item.user_data:
        out["userData"] = item.user_data
    if item.plugin_info:
        out["pluginInfo"] = item.plugin_info
    return out


def _stored_in(items: Any, guild: int) -> list[_Item]:
    """Stored tracks, still encoded (decoded on first use); what is not even a string is
    skipped with a warning."""
    stored: list[_Item] = []
    if not isinstance(items, list):
        return stored
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            stored.append(str(item))
            continue
        encoded = item.get("encoded") if isinstance(item, Mapping) else None
        if not isinstance(encoded, str):
            log.warning("guild %s: skipping a stored queue track that is not a string", guild)
            continue
        user_data, plugin_info = _extra(item.get("userData")), _extra(item.get("pluginInfo"))
        if user_data is None and plugin_info is None:
            stored.append(str(encoded))
        else:
            stored.append(_Stored(str(encoded), user_data, plugin_info))
    return stored


def _extra(value: Any) -> Optional[dict[str, Any]]:
    """Stored user or plugin data: a non-empty mapping as a dict, anything else None."""
    return dict(value) if isinstance(value, Mapping) and value else None
