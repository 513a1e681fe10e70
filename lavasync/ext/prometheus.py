"""lavasync metrics for Prometheus via prometheus_client (``pip install lavasync[prometheus]``).

::

    from prometheus_client import start_http_server
    from lavasync.ext.prometheus import PrometheusMetrics

    client = lavasync.Client(user_id, send_op4, metrics=PrometheusMetrics())
    start_http_server(9100)

Pushed as they happen (histograms and counters): REST latency by route template, method and
status; WebSocket round-trip time, reconnects, resumes, track exceptions and stuck tracks by
node; player moves by reason; loads by type. Read at scrape time from
:meth:`lavasync.Client.metrics_snapshot` (a custom collector): event buffer depth and capacity,
coalesced and dropped events by buffer, players, state and ping by node.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Optional

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..node import NodeState

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["REST_BUCKETS", "RTT_BUCKETS", "PrometheusMetrics"]

#: Histogram buckets (seconds) of REST latency: a local node answers in about a millisecond.
REST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Histogram buckets (seconds) of WebSocket round trips.
RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class PrometheusMetrics:
    """A :mod:`lavasync.metrics` hook that keeps prometheus_client metrics, for one client.

    ``registry`` defaults to prometheus_client's global ``REGISTRY`` (so one instance per
    process there; pass your own ``CollectorRegistry`` for more). ``namespace`` prefixes every
    metric name. Thread-safe: prometheus_client's metrics are, and every method only updates
    one of them (it never blocks on I/O), so it may run on lavasync's reader threads.
    """

    def __init__(
        self, registry: Optional[CollectorRegistry] = None, namespace: str = "lavasync"
    ) -> None:
        if not isinstance(namespace, str) or not namespace.replace("_", "").isalnum():
            raise ValueError(f"namespace must be letters, digits and '_', not {namespace!r}")
        self.registry = REGISTRY if registry is None else registry
        self.namespace = namespace
        self._client: Optional[weakref.ReferenceType[Client]] = None
        self._lock = threading.Lock()
        reg = self.registry
        ns = namespace
        self.rest_seconds = Histogram(
            "rest_request_duration_seconds",
            "REST call latency (request sent to answer read), by route template and status; "
            "status 0: no answer",
            ("route", "method", "status"),
            namespace=ns,
            registry=reg,
            buckets=REST_BUCKETS,
        )
        self.ws_rtt_seconds = Histogram(
            "websocket_rtt_seconds",
            "WebSocket ping round-trip time, by node",
            ("node",),
            namespace=ns,
            registry=reg,
            buckets=RTT_BUCKETS,
        )
        self.reconnects = Counter(
            "reconnects",
            "WebSocket reconnections after a drop",
            ("node",),
            namespace=ns,
            registry=reg,
        )
        self.resumes = Counter(
            "resumes", "sessions resumed after a reconnect", ("node",), namespace=ns, registry=reg
        )
        self.moves = Counter(
            "player_moves",
            "players moved to another node",
            ("reason",),
            namespace=ns,
            registry=reg,
        )
        self.loads = Counter(
            "loads", "load results by load type", ("load_type",), namespace=ns, registry=reg
        )
        self.track_exceptions = Counter(
            "track_exceptions", "TrackExceptionEvents", ("node",), namespace=ns, registry=reg
        )
        self.stuck_tracks = Counter(
            "track_stuck", "TrackStuckEvents", ("node",), namespace=ns, registry=reg
        )
        reg.register(_SnapshotCollector(self))

    # ------------------------------------------------------------------ the hook

    def bind(self, client: Client) -> None:
        """Called by the client it is given to; one live client per instance (ValueError)."""
        with self._lock:
            current = self._client() if self._client is not None else None
            if current is not None and current is not client and not current.closed:
                raise ValueError(
                    "this PrometheusMetrics already serves another open client: "
                    "make one per client, each with its own registry or namespace"
                )
            self._client = weakref.ref(client)

    def rest(self, route: str, method: str, status: int, seconds: float) -> None:
        """Observe one REST call."""
        self.rest_seconds.labels(route, method, str(status)).observe(seconds)

    def ws_rtt(self, node: str, seconds: float) -> None:
        """Observe one ping round trip."""
        self.ws_rtt_seconds.labels(node).observe(seconds)

    def reconnect(self, node: str) -> None:
        """Count a reconnection."""
        self.reconnects.labels(node).inc()

    def resume(self, node: str) -> None:
        """Count a resumed session."""
        self.resumes.labels(node).inc()

    def move(self, reason: str) -> None:
        """Count a player move."""
        self.moves.labels(reason).inc()

    def load(self, load_type: str) -> None:
        """Count a load result."""
        self.loads.labels(load_type).inc()

    def track_exception(self, node: str) -> None:
        """Count a TrackExceptionEvent."""
        self.track_exceptions.labels(node).inc()

    def track_stuck(self, node: str) -> None:
        """Count a TrackStuckEvent."""
        self.stuck_tracks.labels(node).inc()

    # ------------------------------------------------------------------ gauges

    def _snapshot(self) -> Optional[dict[str, Any]]:
        ref = self._client
        client = ref() if ref is not None else None
        if client is None:
            return None
        return client.metrics_snapshot()


_STATES = tuple(state.value for state in NodeState)


class _SnapshotCollector:
    """Reads :meth:`Client.metrics_snapshot` at each scrape (a prometheus_client collector)."""

    def __init__(self, owner: PrometheusMetrics) -> None:
        self._owner = owner
        self._prefix = owner.namespace + "_"

    def _families(self) -> dict[str, Any]:
        p = self._prefix
        return {
            "depth": GaugeMetricFamily(
                p + "event_buffer_depth", "events waiting in an event buffer", labels=["buffer"]
            ),
            "capacity": GaugeMetricFamily(
                p + "event_buffer_capacity", "an event buffer's bound", labels=["buffer"]
            ),
            "coalesced": CounterMetricFamily(
                p + "events_coalesced",
                "playerUpdate/stats events replaced by a newer one under pressure",
                labels=["buffer"],
            ),
            "dropped": CounterMetricFamily(
                p + "events_dropped",
                "unread events a full poll buffer dropped",
                labels=["buffer"],
            ),
            "players": GaugeMetricFamily(p + "players", "players by node", labels=["node"]),
            "state": GaugeMetricFamily(
                p + "node_state", "1 for the node's current state", labels=["node", "state"]
            ),
            "ping": GaugeMetricFamily(
                p + "node_ping_seconds",
                "the node's last WebSocket round trip (absent while unknown)",
                labels=["node"],
            ),
        }

    def describe(self) -> Iterator[Any]:
        """The families without samples (registration does not need a scrape)."""
        return iter(self._families().values())

    def collect(self) -> Iterator[Any]:
        """The gauges as of now."""
        families = self._families()
        snapshot = self._owner._snapshot()
        if snapshot is not None:
            for name, buffer in snapshot["buffers"].items():
                for key in ("depth", "capacity", "coalesced", "dropped"):
                    families[key].add_metric([name], float(buffer[key]))
            for node, info in snapshot["nodes"].items():
                families["players"].add_metric([node], float(info["players"]))
                for state in _STATES:
                    families["state"].add_metric(
                        [node, state], 1.0 if info["state"] == state else 0.0
                    )
                if info["ping"] is not None:
                    families["ping"].add_metric([node], info["ping"] / 1000.0)
        return iter(families.values())
