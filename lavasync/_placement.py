"""Where each player lives: the one owner of a player's node.

Rebuilding a player on its node's fresh session, moving it to another node (failover, adoption,
drain), placing it by voice region before its first call, and destroying it all go through
:class:`Placement`, and each runs under the player's call lock, re-checking the player's node
and its destroyed flag once the lock is held. Whatever the order in which nodes die and come
back, a guild is then on exactly one node, and a destroyed player stays destroyed.

How a guild could otherwise end up on two nodes, and what prevents it:

* a node comes back with a fresh session while another node adopts its players: the rebuild
  and the move both expect the player on the lost node; whichever takes the call lock second
  sees the player elsewhere (or already rebuilt) and does nothing;
* a destroy races a rebuild: the player is marked destroyed first, the DELETE waits for the
  call lock, and a rebuild that was already in flight deletes what it just created;
* a move leaves the player on the old session when the old node is unreachable: a resumed
  session drops players it holds that live elsewhere (``Client._resync_players``), and a fresh
  session deletes what the previous session still holds (``Client._after_ready``).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Optional

from .errors import ClientClosedError, LavasyncError, LavasyncTimeoutError, NodeUnavailableError
from .models.events import PlayerDestroyedEvent, PlayerMovedEvent

if TYPE_CHECKING:
    from .client import Client
    from .node import Node
    from .player import Player

__all__ = ["Placement"]

log = logging.getLogger("lavasync.placement")

#: How many times a fresh-session rebuild is tried before it is given up (with an ERROR log).
REBUILD_ATTEMPTS = 6


class Placement:
    """Serialised, re-checked changes of a player's node. Thread-safe (per-player call locks)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    # ------------------------------------------------------------------ fresh sessions

    def mark_fresh_session(self, node: Node, session_id: str) -> list[Player]:
        """``node`` has a fresh session: its players must be rebuilt there before any other
        call (reader thread: state only). Returns the players to rebuild."""
        marked = []
        for player in self._client._players_on(node):
            if player.destroyed or not player._sent_any:
                continue
            with player._lock:
                player._rebuild_for = session_id
            marked.append(player)
        return marked

    def ensure_placed(self, player: Player, timeout: Optional[float]) -> None:
        """Caller holds the call lock: if the player waits for a rebuild on its node's current
        session, do it now (a user call must never reach a session that lacks the player)."""
        sid = player._rebuild_for
        if sid is None:
            return
        node = player._node
        if node.session_id != sid or not node.available:
            return  # that session is gone too; the node's next ready marks it again
        self._rebuild_locked(player, node, sid, timeout)

    def rebuild(self, player: Player, node: Node, session_id: str, attempt: int = 1) -> bool:
        """Worker: rebuild ``player`` on ``node``'s fresh session unless something else already
        placed it. True if it was rebuilt here. A failed rebuild is tried again with backoff
        (the guild is silent meanwhile), up to :data:`REBUILD_ATTEMPTS` times."""
        client = self._client
        timeout = client.call_timeout
        try:
            with player._call(timeout):
                if not self._still_to_rebuild(player, node, session_id):
                    return False
                self._rebuild_locked(player, node, session_id, timeout)
                return True
        except ClientClosedError:
            return False
        except LavasyncError as exc:
            if attempt >= REBUILD_ATTEMPTS or not self._still_to_rebuild(player, node, session_id):
                log.error(
                    "guild %s: could not rebuild the player on %s (%d attempts): %s",
                    player.guild_id,
                    node.name,
                    attempt,
                    exc,
                )
                return False
            delay = min(5.0, 0.25 * 2 ** (attempt - 1))
            log.warning(
                "guild %s: rebuilding on %s failed (%s); again in %.2f s",
                player.guild_id,
                node.name,
                exc,
                delay,
            )
            client._movers.call_later(
                delay, partial(self.rebuild, player, node, session_id, attempt + 1)
            )
            return False

    @staticmethod
    def _still_to_rebuild(player: Player, node: Node, session_id: str) -> bool:
        return (
            not player.destroyed
            and player._node is node
            and player._rebuild_for == session_id
            and node.session_id == session_id
        )

    def _rebuild_locked(
        self, player: Player, node: Node, session_id: str, timeout: Optional[float]
    ) -> None:
        player._rebuild_on(node, session_id=session_id, timeout=timeout)
        if player.destroyed:  # destroyed while the PATCH was in flight: undo it
            self._delete(node, session_id, player.guild_id)

    # ------------------------------------------------------------------ moves

    def move(
        self,
        player: Player,
        to_node: Optional[Node],
        *,
        expect: Node,
        reason: str,
        only_if_lost: bool = False,
        timeout: Optional[float] = None,
    ) -> bool:
        """Move ``player`` off ``expect`` to ``to_node`` (or the best other ready node).

        ``only_if_lost``: a failover or adoption, skipped if the player's node came back and
        holds it again. True if the player moved.
        """
        client = self._client
        with player._call(timeout):
            if player.destroyed or player._node is not expect:
                return False
            if only_if_lost and expect.available and player._rebuild_for is None:
                return False  # its node is back and has it
            region = player.voice.region if player.voice is not None else None
            target = to_node or client.best_node(region, exclude=(expect,))
            if target is expect:
                return False
            # where the player still lives on the old node, if anywhere
            old_sid = expect.session_id if player._rebuild_for is None else None
            player._rebuild_on(target, timeout=timeout)
            if player.destroyed:  # destroyed while the PATCH was in flight: undo both
                self._delete(target, target.session_id, player.guild_id)
                if old_sid and expect.session_id == old_sid:
                    self._delete(expect, old_sid, player.guild_id)
                return False
        target.recent_players += 1
        client._state_changed()
        if old_sid and expect.available and expect.session_id == old_sid:
            self._delete(expect, old_sid, player.guild_id)
        client._emit(PlayerMovedEvent(player.guild_id, expect, target, reason, node=target))
        return True

    def place_by_region(self, player: Player, target: Node) -> None:
        """Before a player's first call: put it on ``target`` (no network)."""
        try:
            with player._call(None):
                if player._sent_any or player.destroyed or player._node is target:
                    return
                with player._lock:
                    player._node = target
        except LavasyncTimeoutError:
            return
        target.recent_players += 1

    # ------------------------------------------------------------------ destroy

    def destroy(self, player: Player, reason: str, *, timeout: Optional[float]) -> None:
        """Forget the player and delete it on its node, after any call in flight finished."""
        client = self._client
        with client._lock:
            if client._players.get(player.guild_id) is player:
                del client._players[player.guild_id]
        already = player.destroyed
        player._mark_destroyed(reason)
        if already:
            return
        limit = client.call_timeout if timeout is None else timeout
        locked = player._call_lock.acquire(timeout=-1 if limit is None else limit)
        try:
            node = player._node
            sid = node.session_id
            if player._sent_any and sid and node.available:
                self._delete(node, sid, player.guild_id, timeout=timeout)
        finally:
            if locked:
                player._call_lock.release()
        client._state_changed()
        client._emit(PlayerDestroyedEvent(player.guild_id, reason, node=player._node))

    # ------------------------------------------------------------------ helpers

    def _delete(
        self,
        node: Node,
        session_id: Optional[str],
        guild_id: int,
        *,
        timeout: Optional[float] = 2.0,
    ) -> None:
        if not session_id:
            return
        try:
            node.rest.destroy_player(session_id, guild_id, timeout=timeout)
        except NodeUnavailableError:
            pass
        except LavasyncError as exc:
            log.info("guild %s: DELETE on %s failed: %s", guild_id, node.name, exc)
