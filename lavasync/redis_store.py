"""RedisStore: the state of many bot processes in one Redis (``pip install lavasync[redis]``).

Keys, all under ``lavasync:{<namespace>}:`` (the braces make them one Redis Cluster hash slot, so
the scripts below may touch several):

* ``guild:<id>``: one guild's player state (JSON), with a TTL renewed on each write and by the
  lease renewals, so a guild nobody runs any more expires;
* ``guilds``: the set of stored guild ids (what a starting process reads first);
* ``lease:<id>``: the owner (process identity) allowed to rebuild and write the guild, set with
  ``SET NX PX`` semantics and renewed while its player lives;
* ``session:<owner>:<node>``: a node's Lavalink session id for one process identity (a session
  belongs to one WebSocket: two processes never share one), with the state TTL.

redis-py is imported when a RedisStore is made, never by ``import lavasync``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from .store import StateStore, _everything

__all__ = ["RedisStore"]

# A guild write: only by the lease owner (or when nobody holds the lease, which it then takes).
# KEYS: lease, state, index. ARGV: owner, lease ms, JSON ('' deletes), state ttl ms, guild id.
_WRITE = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[5])
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  redis.call('SADD', KEYS[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""

# Take or renew the leases of a batch of guilds (and keep their state alive): one call per
# batch, not per guild (a restart claims thousands). KEYS: lease, state of each guild in turn.
# ARGV: owner, lease ms, state ttl ms. Returns 1 (held) or 0 per guild.
_CLAIM = """
local held = {}
for i = 1, #KEYS, 2 do
  local cur = redis.call('GET', KEYS[i])
  if cur and cur ~= ARGV[1] then
    held[#held + 1] = 0
  else
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    redis.call('PEXPIRE', KEYS[i + 1], ARGV[3])
    held[#held + 1] = 1
  end
end
return held
"""

# Give up the leases of a batch of guilds, each only if it is still ours. KEYS: the leases.
# ARGV: owner.
_RELEASE = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 0
"""

_BATCH = 1000


class RedisStore(StateStore):
    """Player state, session ids and guild leases in Redis, shared by many processes.

    ``url`` (``redis://host:port/db``) or ``client`` (a ready ``redis.Redis``). ``namespace``
    separates bots or clusters sharing one Redis. ``identity`` names this process for its
    session ids and leases; it must stay the same across restarts of one process (so a restart
    resumes its sessions and keeps its leases) and differ between processes that run at the
    same time (the old and new process of a rolling deploy). None: the Client uses the host name
    and its shard ids. ``lease_ttl``: seconds a lease lasts unless renewed (renewed every third
    of it); ``state_ttl``: seconds stored state lasts without a write or renewal.

    Thread-safe: redis-py's connection pool hands each thread its own connection. Calls fail
    fast (``socket_timeout``) when Redis is unreachable; the Client logs, retries and catches
    up.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        client: Any = None,
        namespace: str = "default",
        identity: Optional[str] = None,
        lease_ttl: float = 15.0,
        state_ttl: float = 7 * 24 * 3600.0,
        socket_timeout: float = 2.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give RedisStore a url or a redis client (one of them)")
        if not isinstance(namespace, str) or not namespace or "}" in namespace:
            raise ValueError(f"namespace must be a non-empty string without '}}': {namespace!r}")
        if identity is not None and (not isinstance(identity, str) or not identity):
            raise ValueError("identity must be a non-empty string or None")
        for name, value in (("lease_ttl", lease_ttl), ("state_ttl", state_ttl)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if client is None:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ImportError(
                    "RedisStore needs redis-py: pip install 'lavasync[redis]'"
                ) from exc
            client = redis.Redis.from_url(
                str(url),
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                health_check_interval=0,
            )
        self.redis = client
        self.namespace = namespace
        self.identity = identity
        self.lease_ttl = float(lease_ttl)
        self.state_ttl = float(state_ttl)
        self._prefix = f"lavasync:{{{namespace}}}:"
        self._write = client.register_script(_WRITE)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    # ------------------------------------------------------------------ keys

    def key(self, *parts: Any) -> str:
        """The full key of ``parts`` in this namespace (``key("guild", 1)``)."""
        return self._prefix + ":".join(str(p) for p in parts)

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_ttl * 1000))

    @property
    def _state_ms(self) -> int:
        return max(1, int(self.state_ttl * 1000))

    # ------------------------------------------------------------------ StateStore

    def load(self) -> dict[str, Any]:
        """Every stored guild and the session ids of :attr:`identity` (or the host name)."""
        return self.load_state(self.identity or socket.gethostname())

    def save(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("RedisStore writes per guild: use write()")

    def load_state(self, owner: str, owns: Callable[[int], bool] = _everything) -> dict[str, Any]:
        guilds: list[int] = []
        for raw in self.redis.smembers(self.key("guilds")):
            try:
                guild = int(raw)
            except (TypeError, ValueError):
                continue
            if owns(guild):
                guilds.append(guild)
        players: list[dict[str, Any]] = []
        gone: list[int] = []
        for start in range(0, len(guilds), _BATCH):
            batch = guilds[start : start + _BATCH]
            values = self.redis.mget([self.key("guild", g) for g in batch])
            for guild, value in zip(batch, values):
                data = _parse(value)
                if data is None:
                    gone.append(guild)  # expired (or unreadable): drop it from the index
                else:
                    players.append(data)
        if gone:
            self.redis.srem(self.key("guilds"), *gone)
        nodes: dict[str, dict[str, str]] = {}
        pattern = self.key("session", owner, "*")
        cut = len(self.key("session", owner, ""))
        keys = [_text(k) for k in self.redis.scan_iter(pattern)]
        if keys:
            for key, value in zip(keys, self.redis.mget(keys)):
                if value is not None:
                    nodes[key[cut:]] = {"session_id": _text(value)}
        return {"nodes": nodes, "players": players}

    def load_guild(self, guild_id: int) -> Optional[dict[str, Any]]:
        return _parse(self.redis.get(self.key("guild", guild_id)))

    def write(
        self,
        owner: str,
        players: Mapping[int, Optional[dict[str, Any]]],
        nodes: Mapping[str, Optional[str]],
    ) -> set[int]:
        guilds = list(players)
        results: list[Any] = []
        index = self.key("guilds")
        lease_ms, state_ms = str(self._lease_ms), str(self._state_ms)
        for start in range(0, max(len(guilds), 1), _BATCH):
            batch = guilds[start : start + _BATCH]
            pipe = self.redis.pipeline(transaction=False)
            for guild in batch:
                data = players[guild]
                text = "" if data is None else json.dumps(data, separators=(",", ":"))
                self._write(
                    keys=[self.key("lease", guild), self.key("guild", guild), index],
                    args=[owner, lease_ms, text, state_ms, str(guild)],
                    client=pipe,
                )
            if start == 0:
                for name, sid in nodes.items():
                    key = self.key("session", owner, name)
                    if sid is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, sid, px=self._state_ms)
            results.extend(pipe.execute()[: len(batch)])
        return {g for g, ok in zip(guilds, results) if not ok}

    def claim(self, owner: str, guild_ids: Iterable[int]) -> set[int]:
        guilds = list(guild_ids)
        held: set[int] = set()
        lease_ms, state_ms = str(self._lease_ms), str(self._state_ms)
        lease, state = self._prefix + "lease:", self._prefix + "guild:"
        for start in range(0, len(guilds), _BATCH):
            batch = guilds[start : start + _BATCH]
            keys: list[str] = []
            for guild in batch:
                keys += (f"{lease}{guild}", f"{state}{guild}")
            results = self._claim(keys=keys, args=[owner, lease_ms, state_ms])
            held.update(g for g, ok in zip(batch, results) if ok)
        return held

    def release(self, owner: str, guild_ids: Iterable[int]) -> None:
        guilds = list(guild_ids)
        lease = self._prefix + "lease:"
        for start in range(0, len(guilds), _BATCH):
            keys = [f"{lease}{guild}" for guild in guilds[start : start + _BATCH]]
            self._release(keys=keys, args=[owner])

    def lease_owner(self, guild_id: int) -> Optional[str]:
        """Who holds the guild's lease now (None: nobody)."""
        value = self.redis.get(self.key("lease", guild_id))
        return None if value is None else _text(value)

    def close(self) -> None:
        """Disconnect the connection pool."""
        self.redis.close()


def _parse(value: Any) -> Optional[dict[str, Any]]:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
