"""An optional track queue for one player: add, skip, loop, shuffle, history.

The queue advances only when a track ends with a reason that allows it (``finished``,
``loadFailed``: ``TrackEndEvent.may_start_next``), and only once per track it started: each play
leaves a token that the first matching end consumes, so an end event delivered again (a resume
replay, a duplicate) or an end for another track (``replaced``) never skips twice.

An attached queue lives as long as its player: when the player is destroyed (disconnect,
destroy, kick, node lost) the queue removes its listeners from the client by itself.

A player's queue (the last one made for it: :attr:`Player.queue <lavasync.Player.queue>`) is part
of the guild's stored state: upcoming tracks (encoded), history, loop mode, the current track and
whether its end is still to be acted on. A restarted or taking-over process gets it back with
the player, attached, so the next track starts when the current one ends, once.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

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
        self._upcoming: deque[Track] = deque()
        self._history: deque[Track] = deque(maxlen=history_size or None)
        self._history_size = history_size
        self._current: Optional[Track] = None
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
            return iter(list(self._upcoming))

    @property
    def upcoming(self) -> list[Track]:
        """A snapshot of the tracks waiting, next first."""
        with self._lock:
            return list(self._upcoming)

    @property
    def history(self) -> list[Track]:
        """Tracks already played, oldest first (at most ``history_size``)."""
        with self._lock:
            return list(self._history)

    @property
    def current(self) -> Optional[Track]:
        """The track the queue started last (None before :meth:`start`)."""
        return self._current

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
                "upcoming": [_track_out(t) for t in self._upcoming],
                "history": [_track_out(t) for t in self._history],
                "current": None if self._current is None else _track_out(self._current),
                "token": self._token,
                "loop": self._loop.value,
                "history_size": self._history_size,
            }

    @classmethod
    def _restore(cls, player: Player, client: Client, data: Any) -> Optional[Queue]:
        """The queue stored with ``player`` (attached to ``client``), None if there is none.
        Tracks that cannot be decoded are left out with a warning; odd fields get defaults."""
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
        queue._upcoming.extend(_tracks_in(data.get("upcoming"), guild))
        queue._history.extend(_tracks_in(data.get("history"), guild))
        current = _tracks_in([data.get("current")], guild)
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
            if not -len(self._upcoming) <= index < len(self._upcoming):
                raise ValueError(f"index {index} is outside the queue")
            track = self._upcoming[index]
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
        current = self._current
        if current is not None:
            if finished and self._loop is LoopMode.TRACK:
                return current
            if self._loop is LoopMode.QUEUE:
                self._upcoming.append(current)
        if current is not None and self._history_size:
            self._history.append(current)
        self._current = self._upcoming.popleft() if self._upcoming else None
        return self._current

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
            if self._current is not None and self.player.track is not None:
                return self._current
        return self.play_next()

    # ------------------------------------------------------------------ automatic advance

    def attach(self, client: Client) -> None:
        """Advance automatically on this player's track ends (listener on the dispatcher).

        Does nothing if the player is already destroyed; detaches itself when it is destroyed.
        """
        with self._lock:
            if self._client is not None or self.player.destroyed:
                return
            self._client = client
        client.add_listener(TrackEndEvent, self._on_track_end)
        client.add_listener(PlayerDestroyedEvent, self._on_destroyed)
        if self.player.destroyed:  # destroyed while registering: its event may have gone by
            self.detach()

    def detach(self) -> None:
        """Stop listening to the client: the queue no longer advances by itself (idempotent,
        any thread)."""
        with self._lock:
            client = self._client
            self._client = None
        if client is not None:
            client.remove_listener(TrackEndEvent, self._on_track_end)
            client.remove_listener(PlayerDestroyedEvent, self._on_destroyed)

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


def _track_out(track: Track) -> Any:
    """A track as stored: its encoded string, or a dict when it carries user or plugin data."""
    if track.user_data or track.plugin_info:
        out: dict[str, Any] = {"encoded": track.encoded}
        if track.user_data:
            out["userData"] = track.user_data
        if track.plugin_info:
            out["pluginInfo"] = track.plugin_info
        return out
    return track.encoded


def _tracks_in(items: Any, guild: int) -> list[Track]:
    """Stored tracks back as Track objects (decoded locally; unreadable ones skipped)."""
    from .codec import decode_track

    tracks: list[Track] = []
    if not isinstance(items, list):
        return tracks
    for item in items:
        if item is None:
            continue
        extra: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
        encoded = extra.get("encoded") if extra else item
        if not isinstance(encoded, str):
            log.warning("guild %s: skipping a stored queue track that is not a string", guild)
            continue
        try:
            track = decode_track(encoded)
        except (LavasyncError, ValueError) as exc:
            log.warning("guild %s: skipping a stored queue track: %s", guild, exc)
            continue
        user_data, plugin_info = extra.get("userData"), extra.get("pluginInfo")
        if isinstance(user_data, Mapping):
            track.user_data = dict(user_data)
        if isinstance(plugin_info, Mapping):
            track.plugin_info = dict(plugin_info)
        tracks.append(track)
    return tracks
