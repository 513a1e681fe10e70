"""Per-guild voice state: Discord's two voice updates in, Lavalink's voice PATCH out.

lavasync never talks to Discord. The host library sends OP 4 payloads through the client's
``send_gateway`` hook and feeds the dispatches back through ``client.handle_gateway``. This module
joins the pieces: ``session_id`` + ``channel_id`` from the bot's own VOICE_STATE_UPDATE, ``token`` +
``endpoint`` from VOICE_SERVER_UPDATE; once all four are known (and changed), they are PATCHed to
Lavalink (``channelId`` always sent: required since Lavalink 4.2).

Which thread does what: the hook is called on the thread that asked (``connect``/``leave``), or on
an internal lavasync thread (``client._call_soon``) for follow-ups (a 4006 rejoin). Gateway
dispatches only update fields and wake waiters; a PATCH that no ``connect`` call is waiting to send
(region move, a channel move made in Discord) runs on that internal thread, so the host's gateway
thread never blocks on Lavalink. No lock is held across the voice PATCH or the hook.

Convergence: one voice PATCH is in flight at a time. Whoever sends it (``connect`` or a follow-up)
compares the values with what it sent once the PATCH is done and sends again if Discord changed
them meanwhile, so after any interleaving Lavalink ends up with the latest dispatched voice state.
A join that fails (Discord never answers, or Lavalink refuses or never answers the voice PATCH)
sends OP 4 with ``channel_id: null``: the bot never stays silent in a channel.

Voice loss (a shard's gateway dropped, a guild outage, a voice close code that needs a fresh
join): the machine remembers the channel and holds every PATCH (dispatches that arrive while the
voice is lost are stale). :mod:`lavasync._shards` starts the rejoin (:meth:`begin_rejoin`: the
old values are dropped, a fresh OP 4 goes out) and the new VOICE_STATE/SERVER_UPDATE are PATCHed
as they come; the first PATCH Lavalink accepts ends the loss. Re-sending the old values would do
nothing: Lavalink only reconnects when token, endpoint, session or channel changed.

Voice close codes (Lavalink's WebSocketClosedEvent), see :data:`VOICE_CLOSE_CODES`: 4006, 4009
and 4015 → voice lost, fresh OP 4 rejoin; 4021 → the same after a backoff; 4014 and 4022 →
decided by the dispatches that follow (another channel: a move; a new VOICE_SERVER_UPDATE:
re-sent; ``channel_id: null``: kicked; CHANNEL_DELETE: destroyed; nothing: the shard's next
READY/RESUMED rejoins); 1000 sent by Lavalink itself → nothing; any other → a
:class:`~lavasync.VoiceErrorEvent` with the code's meaning (4017: the server lacks DAVE).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from .errors import (
    ClientClosedError,
    LavasyncError,
    LavasyncTimeoutError,
    PlayerDestroyedError,
    VoiceConnectTimeoutError,
)
from .models import PlayerInfo, UpdatePlayer, VoiceState

if TYPE_CHECKING:
    from .client import Client
    from .models.events import WebSocketClosedEvent
    from .player import Player

__all__ = ["VOICE_CLOSE_CODES", "VoiceConnection", "endpoint_region"]

log = logging.getLogger("lavasync.voice")

#: Discord's voice close codes (as Lavalink reports them in WebSocketClosedEvent): their meaning.
VOICE_CLOSE_CODES: dict[int, str] = {
    1000: "closed normally (Lavalink replaced or destroyed the connection)",
    1006: "abnormal closure: the link to Discord's voice server dropped and Lavalink's retries "
    "failed",
    4001: "unknown opcode: a bug in the Lavalink server's voice client",
    4002: "failed to decode payload: a bug in the Lavalink server's voice client",
    4003: "not authenticated: a bug in the Lavalink server's voice client",
    4004: "authentication failed: Discord refused the voice token",
    4005: "already authenticated: a bug in the Lavalink server's voice client",
    4006: "session no longer valid",
    4009: "session timeout",
    4011: "voice server not found",
    4012: "unknown protocol: the Lavalink server's voice client is too old",
    4014: "disconnected: kicked, moved, channel deleted or the main gateway session dropped",
    4015: "voice server crashed",
    4016: "unknown encryption mode: the Lavalink server's voice client is too old",
    4017: "end-to-end encryption (DAVE) required: the Lavalink server is too old for Discord's "
    "DAVE protocol; update it to Lavalink 4.2 or later",
    4020: "bad request: a bug in the Lavalink server's voice client",
    4021: "rate limited by Discord's voice server",
    4022: "call terminated: channel deleted, voice server changed, or the bot was kicked",
}
#: Close codes answered with a fresh OP 4 rejoin (resuming that voice session is impossible).
REJOIN_CODES = frozenset({4006, 4009, 4015})
#: Close codes whose outcome the dispatches that follow decide (move, kick, channel deleted...).
WAIT_CODES = frozenset({4014, 4022})
#: Rate limited: rejoin, but only after a backoff.
RATE_LIMITED = 4021


class _Loss:
    """A voice loss in progress: the channel to rejoin, why, and what was playing."""

    __slots__ = ("channel", "code", "gen", "reason", "rejoining", "replay", "since")

    def __init__(self, reason: str, code: Optional[int], channel: int, gen: int) -> None:
        self.reason = reason
        self.code = code
        self.channel = channel
        self.gen = gen
        self.rejoining = False
        self.replay: Optional[Any] = None  # the player's snapshot at the first loss
        self.since = time.monotonic()


_REGION_RE = re.compile(r"^(?:[a-z]+-)?([a-z]+?)(?:-?\d+)?(?:-[a-z0-9]+)*\.", re.IGNORECASE)


def endpoint_region(endpoint: Optional[str]) -> Optional[str]:
    """The voice server's location from its endpoint: ``rotterdam1234.discord.media:443`` →
    ``rotterdam``; None when it cannot tell."""
    if not endpoint:
        return None
    host = endpoint.split("://", 1)[-1]
    match = _REGION_RE.match(host)
    return match.group(1).lower() if match else None


class VoiceConnection:
    """One guild's voice state machine. Thread-safe; owned by its :class:`~lavasync.Player`."""

    def __init__(self, client: Client, player: Player) -> None:
        self._client = client
        self._player = player
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.session_id: Optional[str] = None
        self.channel_id: Optional[int] = None
        self.token: Optional[str] = None
        self.endpoint: Optional[str] = None
        self.self_deaf = False
        self.self_mute = False
        self._requested: Optional[int] = None  # the channel a connect() is waiting for
        self._joining = False  # a connect() is waiting (it will send the PATCH itself)
        self._sent: Optional[tuple[str, str, str, int]] = None  # what Lavalink accepted last
        self._patching = False  # a PATCH is in flight
        self._cancelled: Optional[str] = None
        self._loss: Optional[_Loss] = None  # voice lost: what to rejoin (see _shards)
        self._loss_gen = 0
        self._leaving = False  # we sent OP 4 with channel_id null: the null update is ours

    @property
    def complete(self) -> bool:
        """All four values are known."""
        return bool(self.session_id and self.channel_id and self.token and self.endpoint)

    @property
    def lost(self) -> bool:
        """The voice connection is lost and lavasync is about to rejoin (or rejoining)."""
        return self._loss is not None

    @property
    def region(self) -> Optional[str]:
        return endpoint_region(self.endpoint)

    def voice_state(self) -> VoiceState:
        """The four values as the PATCH body's ``voice`` object."""
        assert self.complete
        return VoiceState(
            token=self.token or "",
            endpoint=self.endpoint or "",
            session_id=self.session_id or "",
            channel_id=self.channel_id,
        )

    def _key(self) -> Optional[tuple[str, str, str, int]]:
        if not self.complete:
            return None
        assert self.token and self.endpoint and self.session_id and self.channel_id
        return (self.token, self.endpoint, self.session_id, self.channel_id)

    # ------------------------------------------------------------------ caller side

    def connect(
        self, channel_id: int, *, self_deaf: bool, self_mute: bool, timeout: Optional[float]
    ) -> None:
        """Send OP 4 and block until Lavalink accepted the voice state for ``channel_id``.

        ``timeout`` None waits without limit. Whatever happens, the machine's flags are restored
        on return; a join that failed (Discord never answered, or the voice PATCH failed) leaves
        the channel again and leaves no half state.
        """
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not timeout > 0  # NaN included
        ):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, not {timeout!r}"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._requested = channel_id
            self._joining = True
            self._leaving = False
            self._cancelled = None
            self._loss = None  # the caller's own join replaces any pending rejoin
            self.self_deaf = bool(self_deaf)
            self.self_mute = bool(self_mute)
            had_server = bool(self.token and self.endpoint)
            was_in = self.channel_id
        joined = False
        try:
            self._client._send_op4(self._player.guild_id, channel_id, self_deaf, self_mute)
            self._await_join(channel_id, deadline, timeout)
            joined = True
            self._client._place_by_region(self._player)
            self._pump(deadline=deadline, force=True)
        except VoiceConnectTimeoutError:
            self._undo_join(was_in, had_server)
            raise
        except (ClientClosedError, PlayerDestroyedError):
            raise
        except LavasyncError as exc:
            if joined and self._cancelled is None:
                log.warning(
                    "guild %s: Lavalink did not take the voice state (%s); leaving channel %s",
                    self._player.guild_id,
                    exc,
                    channel_id,
                )
                self._abandon()
            raise
        finally:
            with self._lock:
                self._joining = False
                self._requested = None
                follow_up = self._follow_up_due()
            if follow_up:  # an update came while the last PATCH was finishing
                self._send_voice_soon()

    def _await_join(
        self, channel_id: int, deadline: Optional[float], timeout: Optional[float]
    ) -> None:
        """Wait for Discord's two voice updates for ``channel_id``."""
        with self._lock:
            ok = self._cond.wait_for(
                lambda: (
                    self._cancelled is not None or (self.complete and self.channel_id == channel_id)
                ),
                _remaining(deadline),
            )
            if self._cancelled is not None:
                if self._cancelled == "closed":
                    raise ClientClosedError("the client was closed while connect() waited")
                raise PlayerDestroyedError(
                    f"guild {self._player.guild_id}: connect cancelled ({self._cancelled})"
                )
            if ok:
                return
            missing = []
            if self.channel_id != channel_id or not self.session_id:
                missing.append("VOICE_STATE_UPDATE")
            if not (self.token and self.endpoint):
                missing.append("VOICE_SERVER_UPDATE")
            if not missing:  # pragma: no cover - the predicate says otherwise
                missing.append("VOICE_STATE_UPDATE")
            names = " and ".join(missing)
            raise VoiceConnectTimeoutError(
                f"guild {self._player.guild_id}: no {names} from Discord within "
                f"{timeout} s after joining channel {channel_id}; is handle_gateway "
                "fed every dispatch?",
                missing=tuple(missing),
            )

    def _undo_join(self, was_in: Optional[int], had_server: bool) -> None:
        """A join that timed out leaves nothing behind: leave the channel we were asked for."""
        if was_in is None:
            with self._lock:
                self.session_id = self.channel_id = None
                self._leaving = True
                if not had_server:
                    self.token = self.endpoint = None
            try:
                self._client._send_op4(self._player.guild_id, None, self.self_deaf, self.self_mute)
            except Exception:
                log.exception("guild %s: the gateway hook raised", self._player.guild_id)

    def _abandon(self) -> None:
        """Lavalink refused (or never answered) the voice state: leave the Discord channel and
        forget the voice values, so the bot does not sit silent in a channel."""
        with self._lock:
            self.session_id = self.channel_id = None
            self.token = self.endpoint = None
            self._sent = None
            self._leaving = True
            deaf, mute = self.self_deaf, self.self_mute
        try:
            self._client._send_op4(self._player.guild_id, None, deaf, mute)
        except Exception:
            log.exception("guild %s: the gateway hook raised", self._player.guild_id)

    def leave(self) -> None:
        """Send OP 4 with ``channel_id: null`` and forget the voice state."""
        with self._lock:
            self._loss = None
            self._requested = None
            self.channel_id = None
            self.session_id = None
            self.token = self.endpoint = None
            self._sent = None
            self._leaving = True
            deaf, mute = self.self_deaf, self.self_mute
        self._client._send_op4(self._player.guild_id, None, deaf, mute)

    def cancel(self, reason: str) -> None:
        """The player is gone: wake any waiting connect."""
        with self._lock:
            self._cancelled = reason
            self._cond.notify_all()

    def _follow_up_due(self) -> bool:
        """(Lock held.) Lavalink lacks the latest voice state and nobody is about to send it."""
        return (
            not self._joining
            and not self._patching
            and self._cancelled is None
            and (self._loss is None or self._loss.rejoining)
            and self.complete
            and self._key() != self._sent
        )

    def _pump(self, *, deadline: Optional[float] = None, force: bool = False) -> None:
        """PATCH the voice state until Lavalink holds the latest one Discord gave.

        One sender at a time (``_patching``). Updates arriving while a PATCH is in flight are
        not sent on their own: after each PATCH the sender compares the current values with
        what it just sent and sends again if they differ, so any interleaving converges on
        the latest dispatch with one PATCH per burst. ``force`` sends the first PATCH even if
        the values did not change (``connect``). Once ``deadline`` has passed no further PATCH
        is started here (a follow-up takes over). A failed PATCH is retried only if newer
        values arrived meanwhile; otherwise its error is raised.
        """
        player = self._player
        with self._lock:
            if self._patching:
                if not force:
                    return  # the sender in flight sees the new values when its PATCH ends
                ok = self._cond.wait_for(
                    lambda: not self._patching or self._cancelled is not None, _remaining(deadline)
                )
                if self._cancelled is not None:
                    return
                if not ok:
                    raise LavasyncTimeoutError(
                        f"guild {player.guild_id}: another voice update did not finish in time"
                    )
            self._patching = True
        owned = True  # this thread is the sender until it clears _patching under the lock
        first = True
        failed: Optional[tuple[str, str, str, int]] = None
        try:
            while True:
                with self._lock:
                    key = self._key()
                    late = not first and deadline is not None and time.monotonic() >= deadline
                    if (
                        key is None
                        or self._cancelled is not None
                        or player.destroyed
                        or key == failed
                        or late
                        or (key == self._sent and not (first and force))
                    ):
                        owned = self._patching = False
                        self._cond.notify_all()
                        return
                    state = self.voice_state()
                first = False
                limit = self._client.call_timeout
                if deadline is not None:
                    limit = max(0.5, deadline - time.monotonic())
                try:
                    info = self._patch(state, limit)
                except LavasyncError:
                    with self._lock:
                        newer = self._key()
                        retry = (
                            newer is not None
                            and newer != key
                            and self._cancelled is None
                            and (deadline is None or time.monotonic() < deadline)
                        )
                        if not retry:
                            owned = self._patching = False
                            self._cond.notify_all()
                    if not retry:
                        raise
                    failed = key
                    continue
                player._apply_info(info)
                with self._lock:
                    self._sent = key
                    done = self._loss if self._loss is not None and self._loss.rejoining else None
                    if done is not None:
                        self._loss = None
                if done is not None:
                    self._client._shards.rejoined(
                        player, info, done.channel, done.since, done.replay
                    )
        except BaseException:
            if owned:
                with self._lock:
                    self._patching = False
                    self._cond.notify_all()
            raise

    def _patch(self, state: VoiceState, timeout: Optional[float]) -> PlayerInfo:
        """One voice PATCH on the player's node (no lock held: it waits for Discord's handshake)."""
        player = self._player
        node = player._node

        def send(sid: str) -> PlayerInfo:
            if player._rebuild_for == sid:
                # The node came back with a fresh session while this waited: a voice-only PATCH
                # would create the player there without its track. Rebuild it whole instead
                # (the rebuild carries the latest voice state).
                with player._call(timeout):
                    player._client._placement.ensure_placed(player, timeout)
            return node.rest.update_player(
                sid, player.guild_id, UpdatePlayer(voice=state), timeout=timeout
            )

        info: PlayerInfo = node.call(send, timeout=timeout)
        return info

    def _send_voice_soon(self) -> None:
        """Forward a voice update made in Discord (region move, channel move) off the
        gateway's thread."""

        def run() -> None:
            try:
                self._pump()
            except LavasyncError as exc:
                log.warning("guild %s: voice update failed: %s", self._player.guild_id, exc)

        self._client._call_soon(run)

    def restore(self, data: Mapping[str, Any]) -> None:
        """Voice values from the state store (Lavalink had accepted them)."""
        with self._lock:
            self.token = str(data["token"])
            self.endpoint = str(data["endpoint"])
            self.session_id = str(data["session_id"])
            self.channel_id = int(data["channel_id"])
            self.self_deaf = bool(data.get("self_deaf", False))
            self.self_mute = bool(data.get("self_mute", False))
            self._sent = self._key()

    # ------------------------------------------------------------------ gateway side

    def on_state_update(self, data: Mapping[str, Any]) -> None:
        """The bot's own VOICE_STATE_UPDATE for this guild."""
        raw_channel = data.get("channel_id")
        if raw_channel is None:
            with self._lock:
                # while the voice is lost the null update is stale (the session dropped): the
                # rejoin puts the bot back
                ours = self._requested is not None or self._leaving or self._loss is not None
                self._leaving = False
                self.channel_id = None
                self.session_id = None
                self.token = self.endpoint = None
                self._sent = None
                self._cond.notify_all()
            if not ours:
                self._client._on_voice_left(self._player)  # kicked, or the channel is gone
            return
        try:
            channel = int(raw_channel)
        except (TypeError, ValueError):
            log.warning("VOICE_STATE_UPDATE with a bad channel_id: %r", raw_channel)
            return
        session = data.get("session_id")
        with self._lock:
            self.channel_id = channel
            if isinstance(session, str) and session:
                self.session_id = session
            deaf, mute = data.get("self_deaf"), data.get("self_mute")
            if isinstance(deaf, bool):
                self.self_deaf = deaf
            if isinstance(mute, bool):
                self.self_mute = mute
            self._cond.notify_all()
            follow_up = self._follow_up_due()
        if follow_up:
            self._send_voice_soon()

    def on_server_update(self, data: Mapping[str, Any]) -> None:
        """VOICE_SERVER_UPDATE for this guild (a null endpoint: wait for the next one)."""
        token, endpoint = data.get("token"), data.get("endpoint")
        with self._lock:
            if not endpoint or not isinstance(endpoint, str):
                self.endpoint = None  # Discord is allocating a server; never forward this
                return
            if not isinstance(token, str) or not token:
                log.warning(
                    "VOICE_SERVER_UPDATE without a token for guild %s", data.get("guild_id")
                )
                return
            self.token = token
            self.endpoint = endpoint
            self._cond.notify_all()
            follow_up = self._follow_up_due()
        if follow_up:
            self._send_voice_soon()

    def on_closed(self, event: WebSocketClosedEvent) -> None:
        """Lavalink's voice socket closed (called on the reader thread: state only; the OP 4
        rejoin runs on a worker, paced per shard). See the module docstring for each code."""
        code = event.code
        with self._lock:
            if self._loss is not None or self._cancelled is not None:
                return  # a rejoin is already planned or running: this is the old connection
            if code in WAIT_CODES or code in REJOIN_CODES or code == RATE_LIMITED:
                self._sent = None
        shards = self._client._shards
        if code in REJOIN_CODES:
            shards.lose(self._player, "voice closed", code=code)
        elif code == RATE_LIMITED:
            shards.lose(self._player, "voice closed", code=code, backoff=True)
        elif code in WAIT_CODES or (code == 1000 and not event.by_remote):
            return
        else:
            meaning = VOICE_CLOSE_CODES.get(code, "unknown close code")
            log.warning(
                "guild %s: Lavalink's voice connection closed with %s (%s)",
                self._player.guild_id,
                code,
                meaning,
            )
            shards.voice_error(self._player, event, meaning)

    # ------------------------------------------------------------------ voice loss (_shards)

    def mark_lost(self, reason: str, code: Optional[int]) -> Optional[tuple[int, int, bool]]:
        """Voice is gone: remember the channel, hold every PATCH. Returns ``(channel, gen,
        first)`` (``first``: not already lost), or None when there is nothing to rejoin (not
        in a channel, joining or leaving on the caller's request, destroyed)."""
        with self._lock:
            if self._cancelled is not None or self._joining or self._leaving:
                return None
            loss = self._loss
            channel = loss.channel if loss is not None else self.channel_id
            if channel is None:
                return None
            self._loss_gen += 1
            new = _Loss(reason, code, channel, self._loss_gen)
            if loss is not None:  # a second loss while rejoining: keep the first snapshot
                new.replay, new.since = loss.replay, loss.since
            self._loss = new
            self._sent = None
            self._cond.notify_all()
            return channel, new.gen, loss is None

    def set_replay(self, gen: int, snapshot: Any) -> None:
        """What the player was playing when the voice was lost (replayed if Lavalink drops it)."""
        with self._lock:
            if self._loss is not None and self._loss.gen == gen and self._loss.replay is None:
                self._loss.replay = snapshot

    def wants_rejoin(self, gen: int) -> bool:
        """The loss ``gen`` still waits for its OP 4."""
        loss = self._loss
        return (
            loss is not None
            and loss.gen == gen
            and not loss.rejoining
            and self._cancelled is None
            and not self._player.destroyed
        )

    def begin_rejoin(self, gen: int) -> Optional[tuple[int, bool, bool]]:
        """Start the rejoin of loss ``gen``: drop the old voice values (the fresh dispatches
        will be PATCHed as they come). Returns ``(channel, self_deaf, self_mute)`` for the
        OP 4, or None if that loss is over."""
        with self._lock:
            if not self.wants_rejoin(gen):
                return None
            assert self._loss is not None
            self._loss.rejoining = True
            self.channel_id = self._loss.channel
            self.session_id = self.token = self.endpoint = None
            self._sent = None
            return self._loss.channel, self.self_deaf, self.self_mute

    def rejoin_expired(self, gen: int) -> Optional[tuple[int, str]]:
        """The rejoin of loss ``gen`` ran out of time: end it. Returns ``(channel, why)``, or
        None if it completed (or another loss replaced it)."""
        with self._lock:
            loss = self._loss
            if loss is None or loss.gen != gen or not loss.rejoining:
                return None
            if self._cancelled is not None:
                return None
            missing = []
            if not self.session_id:
                missing.append("VOICE_STATE_UPDATE")
            if not (self.token and self.endpoint):
                missing.append("VOICE_SERVER_UPDATE")
            if missing:
                why = "no " + " and no ".join(missing) + " from Discord"
            else:
                why = "Lavalink did not accept the new voice state"
            self._loss = None
            self._leaving = True
            return loss.channel, why

    def pending_rejoin(self) -> Optional[int]:
        """The generation of a loss that still waits for its OP 4, or None."""
        loss = self._loss
        if loss is None or loss.rejoining or self._cancelled is not None:
            return None
        return loss.gen

    def lost_channel(self) -> Optional[int]:
        """The channel a loss remembers (None when not lost)."""
        loss = self._loss
        return loss.channel if loss is not None else None


def _remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left until ``deadline`` (None: no limit)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
