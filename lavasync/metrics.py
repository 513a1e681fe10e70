"""The metrics hook: what lavasync reports, and the protocol a metrics backend implements.

Pass an object to ``Client(metrics=...)``; lavasync calls its methods as things happen:

* ``rest(route, method, status, seconds)``: one REST call answered (``status`` is the HTTP
  status; 0 when no answer came: refused, reset, timed out). ``route`` is the route template,
  e.g. ``/v4/sessions/{sessionId}/players/{guildId}``, never raw ids, so a label made of it
  stays bounded;
* ``ws_rtt(node, seconds)``: a WebSocket ping answered (also in ``node.ping``, in ms);
* ``reconnect(node)``: a node's WebSocket connected again after it had dropped;
* ``resume(node)``: a node's session resumed after a reconnect;
* ``move(reason)``: a player moved to another node (``"node lost"``, ``"drain"``, ...);
* ``load(load_type)``: :meth:`Client.load <lavasync.Client.load>` got an answer
  (``track``, ``playlist``, ``search``, ``empty``, ``error``; ``other`` for plugin types);
* ``track_exception(node)`` and ``track_stuck(node)``: those events arrived.

``node`` is the node's name. Gauges (buffer depth, coalesced and dropped events, players and
state per node) are not pushed: read them when scraped, with
:meth:`Client.metrics_snapshot <lavasync.Client.metrics_snapshot>`. A hook with a
``bind(client)`` method is given the client once, when it is created.

Rules for a hook: it is dependency-free from lavasync's side (any object will do, missing
methods are skipped: subclass :class:`NullMetrics` to implement only some). Its methods run on
lavasync's own threads, node reader threads included, so they **must be fast and must not
block** (no I/O, no locks held for long: increment counters). A method that raises is logged
once (with its traceback) and then ignored: metrics never break a call or a reader.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional, Protocol, runtime_checkable

__all__ = ["HOOK_METHODS", "LOAD_TYPES", "MetricsHook", "NullMetrics", "route_template"]

log = logging.getLogger("lavasync.metrics")

#: The methods lavasync calls on a metrics hook.
HOOK_METHODS = (
    "rest",
    "ws_rtt",
    "reconnect",
    "resume",
    "move",
    "load",
    "track_exception",
    "track_stuck",
)

#: The load types reported as themselves; anything else (plugins) is reported as ``other``.
LOAD_TYPES = frozenset({"track", "playlist", "search", "empty", "error"})


@runtime_checkable
class MetricsHook(Protocol):
    """What ``Client(metrics=...)`` calls (see the module docstring). Methods must not block."""

    def rest(self, route: str, method: str, status: int, seconds: float) -> None: ...

    def ws_rtt(self, node: str, seconds: float) -> None: ...

    def reconnect(self, node: str) -> None: ...

    def resume(self, node: str) -> None: ...

    def move(self, reason: str) -> None: ...

    def load(self, load_type: str) -> None: ...

    def track_exception(self, node: str) -> None: ...

    def track_stuck(self, node: str) -> None: ...


class NullMetrics:
    """A hook that records nothing: subclass it and override the methods you want.

    Thread-safe (it does nothing); a subclass must be, as every method may run on any
    lavasync thread."""

    def rest(self, route: str, method: str, status: int, seconds: float) -> None:
        """One REST call answered ``status`` (0: no answer) after ``seconds``."""

    def ws_rtt(self, node: str, seconds: float) -> None:
        """A WebSocket ping to ``node`` was answered after ``seconds``."""

    def reconnect(self, node: str) -> None:
        """``node``'s WebSocket connected again after a drop."""

    def resume(self, node: str) -> None:
        """``node``'s session resumed."""

    def move(self, reason: str) -> None:
        """A player moved to another node, for ``reason``."""

    def load(self, load_type: str) -> None:
        """A load answered with ``load_type``."""

    def track_exception(self, node: str) -> None:
        """A ``TrackExceptionEvent`` came from ``node``."""

    def track_stuck(self, node: str) -> None:
        """A ``TrackStuckEvent`` came from ``node``."""


def _noop(*args: Any) -> None:
    return None


class _SafeMetrics(NullMetrics):
    """The client's view of a user's hook: each method present is called under a guard that
    logs its first failure and swallows every failure; missing methods cost nothing.

    The typed entry points come from :class:`NullMetrics`; ``__init__`` replaces each one per
    instance."""

    def __init__(self, hook: Any) -> None:
        found = [name for name in HOOK_METHODS if getattr(hook, name, None) is not None]
        if not found:
            raise ValueError(
                f"metrics must be an object with some of the methods {', '.join(HOOK_METHODS)} "
                f"(see lavasync.metrics), not {hook!r}"
            )
        for name in found:
            if not callable(getattr(hook, name)):
                raise ValueError(f"metrics.{name} must be a method, not {getattr(hook, name)!r}")
        self.hook = hook
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        for name in HOOK_METHODS:
            method = getattr(hook, name, None)
            setattr(self, name, _noop if method is None else self._guarded(name, method))

    def _guarded(self, name: str, method: Any) -> Any:
        def call(*args: Any) -> None:
            try:
                method(*args)
            except Exception:
                self._failure(name)

        call.__name__ = name
        return call

    def _failure(self, name: str) -> None:
        with self._lock:
            first = name not in self._failed
            self._failed.add(name)
        if first:
            log.exception("the metrics hook's %s() raised; later failures are not logged", name)

    def timed_rest(self, method: str, path: str, status: int, seconds: float) -> None:
        """``rest()`` with the path turned into its route template."""
        self.rest(route_template(path), method, status, seconds)


_KNOWN_ROUTES = frozenset(
    {
        "/version",
        "/v4/info",
        "/v4/stats",
        "/v4/loadtracks",
        "/v4/decodetrack",
        "/v4/decodetracks",
        "/v4/websocket",
        "/v4/routeplanner/status",
        "/v4/routeplanner/free/address",
        "/v4/routeplanner/free/all",
    }
)


def _plain(segment: str) -> bool:
    """A segment that names a route (``players``, ``lyrics``, ``v4``), not an id or a value."""
    if segment in ("v3", "v4", "v5"):
        return True
    return 0 < len(segment) <= 32 and segment.replace("-", "").replace("_", "").isalpha()


def route_template(path: str) -> str:
    """The route template of a request path: ids replaced by placeholders.

    ``/v4/sessions/abc/players/123`` → ``/v4/sessions/{sessionId}/players/{guildId}``. Plugin
    routes keep their word segments; any other segment (digits, long or odd text) becomes
    ``{id}``, so the number of templates stays small whatever the ids are.
    """
    if path in _KNOWN_ROUTES:
        return path
    parts = path.split("/")
    # parts[0] is "" (paths start with "/")
    if len(parts) > 3 and parts[1] == "v4" and parts[2] == "sessions":
        parts[3] = "{sessionId}"
        if len(parts) > 5 and parts[4] == "players":
            parts[5] = "{guildId}"
        start = 6 if len(parts) > 5 and parts[4] == "players" else 4
    else:
        start = 1
    for i in range(start, len(parts)):
        if not _plain(parts[i]):
            parts[i] = "{id}"
    return "/".join(parts)


def _load_label(load_type: Any) -> str:
    value = getattr(load_type, "value", load_type)
    return value if isinstance(value, str) and value in LOAD_TYPES else "other"


def _wrap(hook: Optional[Any]) -> Optional[_SafeMetrics]:
    """The guarded view of ``Client(metrics=...)`` (None: no hook)."""
    return None if hook is None else _SafeMetrics(hook)
