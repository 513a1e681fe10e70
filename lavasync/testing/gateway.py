"""FakeGateway: the host bot's Discord gateway, as far as voice is concerned.

Pass :meth:`FakeGateway.hook` as a client's ``send_gateway``; it records the OP 4 payloads and
answers them the way Discord does, with ``VOICE_STATE_UPDATE`` / ``VOICE_SERVER_UPDATE``
dispatches handed to ``deliver`` (usually ``client.handle_gateway``) from the gateway's own
thread (``fakenode-gateway``), never from the caller's.

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
    ) -> None:
        self.user_id = int(user_id)
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

    def dispatch(self, payload: dict[str, Any]) -> None:
        """Deliver an arbitrary dispatch through the gateway thread (after ``delay``)."""
        with self._lock:
            self._queue(None, [copy.deepcopy(payload)])

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
                "deaf": False,
                "mute": False,
                "self_deaf": True,
                "self_mute": False,
                "self_video": False,
                "suppress": False,
                "request_to_speak_timestamp": None,
            },
            "op": 0,
        }

    def _server_update(self, guild_id: int, st: _VoiceState) -> dict[str, Any]:
        return {
            "t": "VOICE_SERVER_UPDATE",
            "d": {"token": st.token, "guild_id": str(guild_id), "endpoint": st.endpoint},
            "op": 0,
        }

    def _queue(self, guild_id: Optional[int], dispatches: list[dict[str, Any]]) -> None:
        if self._closed:
            return
        if self._scheduler is None:
            self._scheduler = Scheduler("fakenode-gateway")
            self._scheduler.start()
        when = time.monotonic() + self.delay
        for msg in dispatches:
            if msg.get("t") in self.missing:
                continue
            self._scheduler.call_at(when, self._deliver, msg)

    def _deliver(self, msg: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                return
            self._seq += 1
            msg["s"] = self._seq
            self._delivered.append(copy.deepcopy(msg))
            self._lock.notify_all()
            deliver = self.deliver
        if deliver is not None:
            deliver(msg)
