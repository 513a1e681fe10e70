"""FakeGateway: the host bot's Discord gateway, as far as voice is concerned.

Pass :meth:`FakeGateway.hook` as a client's ``send_gateway``; it records the OP 4 payloads and
answers them the way Discord does, with ``VOICE_STATE_UPDATE`` / ``VOICE_SERVER_UPDATE``
dispatches handed to ``deliver`` (usually ``client.handle_gateway``) from the gateway's own
thread (``fakenode-gateway``), never from the caller's.

Sharded bots: ``shard_count`` spreads guilds over shards as Discord does
(``(guild_id >> 22) % shard_count``). :meth:`FakeGateway.drop_shard` closes a shard's socket (its
voice connections die: with a ``node``, Lavalink reports 4014; OP 4s for its guilds go nowhere
until it is back), :meth:`FakeGateway.ready` / :meth:`FakeGateway.resumed` bring it back with a
READY (``shard: [id, count]``) or RESUMED dispatch. Guild dispatches (GUILD_CREATE with
``voice_states`` and ``members``, GUILD_DELETE, CHANNEL_DELETE) and other users'
VOICE_STATE_UPDATEs follow Discord's gateway documentation. ``deliver_sharded(dispatch,
shard_id)``, when set, is called instead of ``deliver`` (``client.handle_gateway`` fits both).

Thread-safe: every method may be called from any thread.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._scheduler import Scheduler

if TYPE_CHECKING:
    from .node import FakeNode

__all__ = ["FakeGateway"]


def _voice_flags(*, self_deaf: bool = False) -> dict[str, Any]:
    """The flags of a voice state as Discord sends them (nobody muted; the bot deafens itself)."""
    return {
        "deaf": False,
        "mute": False,
        "self_deaf": self_deaf,
        "self_mute": False,
        "self_video": False,
        "suppress": False,
        "request_to_speak_timestamp": None,
    }


class _VoiceState:
    __slots__ = ("channel_id", "endpoint", "session_id", "token")

    def __init__(self, session_id: str, endpoint: str) -> None:
        self.channel_id: Optional[str] = None
        self.session_id = session_id
        self.token = ""
        self.endpoint = endpoint


class FakeGateway:
    """Answers OP 4 voice state updates with Discord's voice dispatches.

    ``missing`` holds dispatch names never to send (e.g. ``{"VOICE_SERVER_UPDATE"}``) to test
    connect timeouts; ``delay`` (seconds) postpones every answer. ``delivered`` lists what
    was handed to ``deliver``; ``sent`` the ``(guild_id, payload)`` pairs the hook received.
    """

    def __init__(
        self,
        user_id: int,
        *,
        deliver: Optional[Callable[[dict[str, Any]], None]] = None,
        endpoint: str = "rotterdam1234.discord.media:443",
        delay: float = 0.0,
        node: Optional[FakeNode] = None,
        shard_count: int = 1,
        deliver_sharded: Optional[Callable[[dict[str, Any], int], None]] = None,
    ) -> None:
        if isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1:
            raise ValueError(f"shard_count must be an integer >= 1, not {shard_count!r}")
        self.user_id = int(user_id)
        self.shard_count = shard_count
        self.deliver_sharded = deliver_sharded
        self._down: set[int] = set()
        self.deliver = deliver
        self.endpoint = endpoint
        self.delay = float(delay)
        self.node = node
        self.missing: set[str] = set()
        self._lock = threading.Condition(threading.RLock())
        self._sent: list[tuple[int, dict[str, Any]]] = []
        self._delivered: list[dict[str, Any]] = []
        self._states: dict[int, _VoiceState] = {}
        self._seq = 0
        self._scheduler: Optional[Scheduler] = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the dispatch thread; pending dispatches are dropped. Idempotent."""
        with self._lock:
            self._closed = True
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.stop(timeout)

    # ------------------------------------------------------------------ records

    @property
    def sent(self) -> list[tuple[int, dict[str, Any]]]:
        """``(guild_id, payload)`` for every OP 4 the hook received; a copy."""
        with self._lock:
            return copy.deepcopy(self._sent)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Every dispatch handed to ``deliver`` (or dropped because it was None); a copy."""
        with self._lock:
            return copy.deepcopy(self._delivered)

    def wait_sent(self, count: int = 1, timeout: float = 5.0) -> list[tuple[int, dict[str, Any]]]:
        """Block until the hook received ``count`` payloads; returns them all. TimeoutError."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._sent) >= count, timeout):
                raise TimeoutError(f"{len(self._sent)} OP 4 payloads sent, wanted {count}")
            return copy.deepcopy(self._sent)

    def wait_delivered(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until ``count`` dispatches were delivered; returns them all. TimeoutError."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._delivered) >= count, timeout):
                raise TimeoutError(f"{len(self._delivered)} dispatches delivered, wanted {count}")
            return copy.deepcopy(self._delivered)

    def voice_state(self, guild_id: int) -> Optional[dict[str, Any]]:
        """What Discord holds for the bot in a guild: channel_id, session_id, token, endpoint."""
        with self._lock:
            st = self._states.get(int(guild_id))
            if st is None:
                return None
            return {
                "channel_id": st.channel_id,
                "session_id": st.session_id,
                "token": st.token,
                "endpoint": st.endpoint,
            }

    # ------------------------------------------------------------------ the hook

    def hook(self, guild_id: int, payload: dict[str, Any]) -> None:
        """``send_gateway`` callable: record an OP 4 and schedule Discord's answers."""
        with self._lock:
            self._sent.append((int(guild_id), copy.deepcopy(payload)))
            self._lock.notify_all()
            if not isinstance(payload, dict) or payload.get("op") != 4:
                return
            d = payload.get("d") or {}
            gid = int(d.get("guild_id", guild_id))
            channel = d.get("channel_id")
            if self.shard_of(gid) in self._down:
                return  # written to a closed socket: Discord never sees it
            st = self._state(gid)
            if channel is None:
                if st.channel_id is None:
                    return
                st.channel_id = None
                self._queue(gid, [self._state_update(gid, st)])
                return
            # every join (first, re-join, or channel change) gets both dispatches, with a
            # fresh voice token: Discord starts a new voice session for it
            st.channel_id = str(channel)
            st.token = secrets.token_hex(8)
            st.endpoint = self.endpoint
            self._queue(gid, [self._state_update(gid, st), self._server_update(gid, st)])

    # ------------------------------------------------------------------ Discord's side

    def region_move(
        self, guild_id: int, endpoint: Optional[str], *, token: Optional[str] = None
    ) -> None:
        """Discord moved the voice server: VOICE_SERVER_UPDATE with a new token and endpoint
        (``endpoint=None`` sends the "reallocating" update with a null endpoint)."""
        with self._lock:
            st = self._state(int(guild_id))
            st.token = token or secrets.token_hex(8)
            if endpoint is not None:
                st.endpoint = endpoint
            msg = self._server_update(int(guild_id), st)
            msg["d"]["endpoint"] = endpoint
            self._queue(int(guild_id), [msg])

    def move_channel(self, guild_id: int, channel_id: int) -> None:
        """Someone moved the bot: VOICE_STATE_UPDATE with the new channel."""
        with self._lock:
            st = self._state(int(guild_id))
            st.channel_id = str(channel_id)
            self._queue(int(guild_id), [self._state_update(int(guild_id), st)])

    def kick(self, guild_id: int) -> None:
        """The bot was disconnected: VOICE_STATE_UPDATE with ``channel_id: null``; with a
        ``node``, its players in that guild also get WebSocketClosedEvent 4014."""
        with self._lock:
            st = self._state(int(guild_id))
            st.channel_id = None
            self._queue(int(guild_id), [self._state_update(int(guild_id), st)])
        node = self.node
        if node is not None:
            for sid in node.session_ids():
                if node.player(sid, int(guild_id)) is not None:
                    try:
                        node.close_voice(int(guild_id), 4014, "Disconnected.", session_id=sid)
                    except KeyError:
                        pass

    def dispatch(self, payload: dict[str, Any], *, shard_id: int = 0) -> None:
        """Deliver an arbitrary dispatch through the gateway thread (after ``delay``)."""
        with self._lock:
            self._queue(None, [copy.deepcopy(payload)], shard=shard_id)

    # ------------------------------------------------------------------ shards and guilds

    def shard_of(self, guild_id: int) -> int:
        """Discord's shard formula: ``(guild_id >> 22) % shard_count``."""
        return (int(guild_id) >> 22) % self.shard_count

    def shard_down(self, shard_id: int) -> bool:
        with self._lock:
            return shard_id in self._down

    def drop_shard(self, shard_id: int, *, voice_code: int = 4014) -> list[int]:
        """The shard's socket closes: the bot's voice connections in its guilds die (with a
        ``node``, Lavalink reports ``voice_code`` for each, as after a dropped main session);
        nothing is delivered for its guilds and their OP 4s go nowhere until :meth:`ready` or
        :meth:`resumed`. Returns the guilds whose voice died."""
        with self._lock:
            self._down.add(shard_id)
            guilds = [
                gid
                for gid, st in self._states.items()
                if st.channel_id is not None and self.shard_of(gid) == shard_id
            ]
            for gid in guilds:
                self._states[gid].token = ""  # that voice session is gone
        self._close_voice(guilds, voice_code, "Disconnected.")
        return guilds

    def ready(self, shard_id: int = 0, *, guild_ids: tuple[int, ...] = ()) -> None:
        """A fresh session for the shard: READY with ``shard: [id, count]`` (guilds as
        unavailable stubs, filled by GUILD_CREATE, as Discord does)."""
        with self._lock:
            self._down.discard(shard_id)
            msg = {
                "t": "READY",
                "op": 0,
                "d": {
                    "v": 10,
                    "user": {"id": str(self.user_id), "username": "bot", "bot": True},
                    "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
                    "session_id": secrets.token_hex(16),
                    "resume_gateway_url": "wss://gateway.invalid",
                    "shard": [shard_id, self.shard_count],
                    "application": {"id": str(self.user_id), "flags": 0},
                },
            }
            self._queue(None, [msg], shard=shard_id)

    def resumed(self, shard_id: int = 0) -> None:
        """The shard resumed its session: a RESUMED dispatch (no payload)."""
        with self._lock:
            self._down.discard(shard_id)
            self._queue(None, [{"t": "RESUMED", "op": 0, "d": None}], shard=shard_id)

    def guild_create(
        self,
        guild_id: int,
        *,
        voice_states: tuple[tuple[int, int], ...] = (),
        bots: tuple[int, ...] = (),
    ) -> None:
        """GUILD_CREATE: ``voice_states`` as ``(user_id, channel_id)`` pairs (partial states
        without ``guild_id``, as Discord sends them), ``members`` with ``user.bot`` for each
        user (true for ``bots``)."""
        users = {u for u, _ in voice_states} | set(bots)
        msg = {
            "t": "GUILD_CREATE",
            "op": 0,
            "d": {
                "id": str(guild_id),
                "name": "guild",
                "unavailable": False,
                "voice_states": [
                    {
                        "user_id": str(user),
                        "channel_id": str(channel),
                        "session_id": secrets.token_hex(16),
                        **_voice_flags(),
                    }
                    for user, channel in voice_states
                ],
                "members": [
                    {"user": {"id": str(u), "username": f"u{u}", "bot": u in bots}, "roles": []}
                    for u in sorted(users)
                ],
            },
        }
        with self._lock:
            self._queue(int(guild_id), [msg])

    def guild_delete(self, guild_id: int, *, unavailable: bool = False) -> None:
        """GUILD_DELETE: ``unavailable`` True is an outage (a GUILD_CREATE follows when it
        ends); without it the bot was removed from the guild (the key is absent)."""
        d: dict[str, Any] = {"id": str(guild_id)}
        if unavailable:
            d["unavailable"] = True
        with self._lock:
            if not unavailable:
                st = self._states.get(int(guild_id))
                if st is not None:
                    st.channel_id = None
            self._queue(int(guild_id), [{"t": "GUILD_DELETE", "op": 0, "d": d}])

    def channel_delete(self, guild_id: int, channel_id: int) -> None:
        """CHANNEL_DELETE; if the bot was in that channel its voice connection ends (with a
        ``node``, Lavalink reports 4022 first)."""
        with self._lock:
            st = self._states.get(int(guild_id))
            inside = st is not None and st.channel_id == str(channel_id)
            if inside and st is not None:
                st.channel_id = None
        if inside:
            self._close_voice([int(guild_id)], 4022, "Call terminated.")
        msg = {
            "t": "CHANNEL_DELETE",
            "op": 0,
            "d": {"id": str(channel_id), "guild_id": str(guild_id), "type": 2, "name": "voice"},
        }
        with self._lock:
            self._queue(int(guild_id), [msg])

    def user_voice(
        self, guild_id: int, user_id: int, channel_id: Optional[int], *, bot: bool = False
    ) -> None:
        """Another user's VOICE_STATE_UPDATE (joined, moved, or left with ``None``), with the
        ``member`` object Discord includes (``user.bot``)."""
        msg = {
            "t": "VOICE_STATE_UPDATE",
            "op": 0,
            "d": {
                "guild_id": str(guild_id),
                "channel_id": None if channel_id is None else str(channel_id),
                "user_id": str(user_id),
                "member": {"user": {"id": str(user_id), "username": "u", "bot": bot}, "roles": []},
                "session_id": secrets.token_hex(16),
                **_voice_flags(),
            },
        }
        with self._lock:
            self._queue(int(guild_id), [msg])

    def _close_voice(self, guilds: list[int], code: int, reason: str) -> None:
        node = self.node
        if node is None:
            return
        for gid in guilds:
            for sid in node.session_ids():
                player = node.player(sid, gid)
                if player is not None and player["state"]["connected"]:
                    try:
                        node.close_voice(gid, code, reason, session_id=sid)
                    except KeyError:
                        pass

    # ------------------------------------------------------------------ internals

    def _state(self, guild_id: int) -> _VoiceState:
        st = self._states.get(guild_id)
        if st is None:
            st = _VoiceState(secrets.token_hex(16), self.endpoint)
            self._states[guild_id] = st
        return st

    def _state_update(self, guild_id: int, st: _VoiceState) -> dict[str, Any]:
        return {
            "t": "VOICE_STATE_UPDATE",
            "d": {
                "guild_id": str(guild_id),
                "channel_id": st.channel_id,
                "user_id": str(self.user_id),
                "session_id": st.session_id,
                **_voice_flags(self_deaf=True),
            },
            "op": 0,
        }

    def _server_update(self, guild_id: int, st: _VoiceState) -> dict[str, Any]:
        return {
            "t": "VOICE_SERVER_UPDATE",
            "d": {"token": st.token, "guild_id": str(guild_id), "endpoint": st.endpoint},
            "op": 0,
        }

    def _queue(
        self, guild_id: Optional[int], dispatches: list[dict[str, Any]], *, shard: int = 0
    ) -> None:
        if self._closed:
            return
        if guild_id is not None:
            shard = self.shard_of(guild_id)
        if self._scheduler is None:
            self._scheduler = Scheduler("fakenode-gateway")
            self._scheduler.start()
        when = time.monotonic() + self.delay
        for msg in dispatches:
            if msg.get("t") in self.missing:
                continue
            self._scheduler.call_at(when, self._deliver, msg, shard)

    def _deliver(self, msg: dict[str, Any], shard: int = 0) -> None:
        with self._lock:
            if self._closed or shard in self._down:
                return  # a closed socket delivers nothing
            self._seq += 1
            msg["s"] = self._seq
            self._delivered.append(copy.deepcopy(msg))
            self._lock.notify_all()
            deliver, sharded = self.deliver, self.deliver_sharded
        if sharded is not None:
            sharded(msg, shard)
        elif deliver is not None:
            deliver(msg)
