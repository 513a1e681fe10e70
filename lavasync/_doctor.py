"""``python -m lavasync doctor``: check a node the way lavasync will use it, step by step.

Each check prints one line, ``OK``, ``WARN``, ``FAIL`` (or ``SKIP`` when an earlier failure makes
it pointless) with the reason; a progress line goes to stderr while a check runs. ``--json``
prints one JSON document instead. Exit status: 0 all OK, 1 a WARN, 2 a FAIL.

The checks, in order: reachability and TLS, auth, server kind and version, plugins, sources and
filters, a search per source that has a search prefix, REST latency, the WebSocket handshake and
time to ``ready``, a resume probe (enable resuming, drop the socket, reconnect with
``Session-Id``), the route planner, and a stats summary. Everything goes through lavasync's own
:class:`~lavasync.transport.rest.RestTransport` and
:class:`~lavasync.transport.websocket.WebSocketConnection`, except the first check, which opens a
plain TCP (and TLS) connection to see what is there.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import math
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO
from urllib.parse import urlsplit

from . import __version__
from ._cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_node_arguments,
    node_uri,
    positive,
    rest_client,
    uptime_text,
)
from .errors import (
    AuthenticationError,
    ConnectionFailedError,
    LavasyncError,
    LavasyncTimeoutError,
    RestError,
)
from .rest import RestClient
from .transport.websocket import SocketClosed, SocketTimeout, WebSocketConnection, websocket_url

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
_SEVERITY = {OK: 0, SKIP: 0, WARN: 1, FAIL: 2}

#: Search prefixes of source managers (PROTOCOL.md §3.4); sources not listed are skipped.
SEARCH_PREFIXES: dict[str, str] = {
    "youtube": "ytsearch:",
    "soundcloud": "scsearch:",
    "bandcamp": "bcsearch:",
    "spotify": "spsearch:",
    "applemusic": "amsearch:",
    "deezer": "dzsearch:",
    "yandexmusic": "ymsearch:",
}

#: The user id the doctor's WebSocket sessions announce unless ``--user-id`` says otherwise.
DOCTOR_USER_ID = 170939974227591168
#: REST latency p95 above this (ms) is a WARN.
SLOW_REST_MS = 250.0
#: Time from opening the socket to ``ready`` above this (ms) is a WARN.
SLOW_READY_MS = 2000.0
#: A TLS certificate expiring within this many days is a WARN.
CERT_WARN_DAYS = 14
#: Resume window (seconds) the probe asks for; the probe's session is gone after it.
PROBE_RESUME_TIMEOUT = 10


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "details": self.details,
        }


class _Stop(Exception):
    """A check failed in a way that makes the ones after it pointless."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m lavasync doctor``."""
    add_node_arguments(parser)
    parser.add_argument(
        "--samples", type=int, default=10, help="REST calls timed for the latency check"
    )
    parser.add_argument(
        "--query",
        default="never gonna give you up",
        help="the search run once per source that has a search prefix",
    )
    parser.add_argument(
        "--user-id", type=int, default=DOCTOR_USER_ID, help="User-Id sent in the handshake"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def run(args: argparse.Namespace) -> int:
    """Run every check against ``args.uri``; returns 0 (all OK), 1 (a WARN) or 2 (a FAIL)."""
    uri = node_uri(args.uri)
    positive(args.timeout, "--timeout")
    if args.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {args.samples}")
    if args.user_id <= 0:
        raise UsageError("--user-id must be a positive Discord user id")
    if not args.query.strip():
        raise UsageError("--query is empty")
    progress = None if args.quiet else _Progress(sys.stderr)
    out = sys.stdout
    doctor = Doctor(
        uri,
        args.password,
        user_id=args.user_id,
        samples=args.samples,
        timeout=args.timeout,
        query=args.query.strip(),
    )
    checks: list[Check] = []
    for check in doctor.checks(progress):
        checks.append(check)
        if not args.json:
            if progress is not None:
                progress.clear()
            out.write(f"{check.status:<4}  {check.name:<16} {check.reason}\n")
            out.flush()
    if progress is not None:
        progress.clear()
    status = exit_status(checks)
    overall = {EXIT_OK: OK, EXIT_FAILED: WARN}.get(status, FAIL)
    if args.json:
        document = {
            "uri": uri,
            "lavasync": __version__,
            "result": overall,
            "exit_code": status,
            "checks": [c.json() for c in checks],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL, SKIP)}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        out.write(f"result: {overall} ({summary})\n")
    out.flush()
    return status


def exit_status(checks: Sequence[Check]) -> int:
    """2 if a check failed, else 1 if one warned, else 0."""
    worst = max((_SEVERITY[c.status] for c in checks), default=0)
    return {0: EXIT_OK, 1: EXIT_FAILED}.get(worst, EXIT_USAGE)


class _Progress:
    """``[n/N] doing x...`` on stderr: rewritten in place on a terminal, else one line each."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._shown = False

    def __call__(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r\033[K{text}")
            self._shown = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


class Doctor:
    """Runs the checks against one node; :meth:`checks` yields them as they finish.

    Not thread-safe: one doctor, one thread.
    """

    def __init__(
        self,
        uri: str,
        password: str,
        *,
        user_id: int = DOCTOR_USER_ID,
        samples: int = 10,
        timeout: float = 10.0,
        query: str = "never gonna give you up",
    ) -> None:
        self.uri = uri
        self.password = password
        self.user_id = user_id
        self.samples = samples
        self.timeout = timeout
        self.query = query
        self.version_text: Optional[str] = None
        self.info: Optional[dict[str, Any]] = None
        self.session_id: Optional[str] = None
        self.ws_stats: Optional[dict[str, Any]] = None
        self._conn: Optional[WebSocketConnection] = None
        self._rest: Optional[RestClient] = None
        self._wake = threading.Event()  # never set: a timed wait that is not a sleep call

    # ------------------------------------------------------------------ driver

    def checks(self, progress: Optional[Callable[[str], None]] = None) -> Iterator[Check]:
        """Run the checks in order, yielding each result; the connections are closed after."""
        steps: list[tuple[str, Callable[[], Iterator[Check]]]] = [
            ("reachability", self._one("reachability", self.check_reachability)),
            ("auth", self._one("auth", self.check_auth)),
            ("server", self._one("server", self.check_server)),
            ("plugins", self._one("plugins", self.check_plugins)),
            ("sources", self._one("sources", self.check_sources)),
            ("load", self.check_loads),
            ("rest latency", self._one("rest latency", self.check_latency)),
            ("websocket", self._one("websocket", self.check_websocket)),
            ("resume", self._one("resume", self.check_resume)),
            ("route planner", self._one("route planner", self.check_route_planner)),
            ("stats", self._one("stats", self.check_stats)),
        ]
        stopped: Optional[str] = None
        try:
            for index, (name, step) in enumerate(steps, 1):
                if stopped is not None:
                    yield Check(name, SKIP, stopped)
                    continue
                if progress is not None:
                    progress(f"[{index}/{len(steps)}] {name}...")
                try:
                    yield from step()
                except _Stop as stop:
                    yield stop.args[0]
                    stopped = f"skipped: {name} failed"
        finally:
            self.close()

    def _one(self, name: str, fn: Callable[[], Check]) -> Callable[[], Iterator[Check]]:
        def step() -> Iterator[Check]:
            yield self._timed(name, fn)

        return step

    def _timed(self, name: str, fn: Callable[[], Check]) -> Check:
        start = time.perf_counter()
        try:
            check = fn()
        except _Stop as stop:
            stop.args[0].elapsed_ms = (time.perf_counter() - start) * 1000
            raise
        except Exception as exc:  # one FAIL line, never a traceback
            check = Check(name, FAIL, _describe(exc))
        check.elapsed_ms = (time.perf_counter() - start) * 1000
        return check

    def close(self) -> None:
        """Close the WebSocket (ending the doctor's session) and the REST pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._end_session(conn)
        rest, self._rest = self._rest, None
        if rest is not None:
            rest.close()

    @property
    def rest(self) -> RestClient:
        if self._rest is None:
            args = argparse.Namespace(uri=self.uri, password=self.password, timeout=self.timeout)
            self._rest = rest_client(args, "doctor")
        return self._rest

    # ------------------------------------------------------------------ checks

    def check_reachability(self) -> Check:
        """TCP (and TLS for https) to the node's host and port."""
        parts = urlsplit(self.uri)
        secure = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        where = f"{host}:{port}"
        name = "reachability"
        start = time.perf_counter()
        try:
            sock = socket.create_connection((host, port), timeout=min(self.timeout, 5.0))
        except socket.gaierror as exc:
            why = f"cannot resolve {host!r}: {exc.strerror or exc}"
            raise _Stop(Check(name, FAIL, why)) from None
        except ConnectionRefusedError:
            raise _Stop(
                Check(name, FAIL, f"connection refused at {where}: is the node running there?")
            ) from None
        except (socket.timeout, TimeoutError):
            raise _Stop(
                Check(name, FAIL, f"no answer from {where} within {min(self.timeout, 5.0)} s")
            ) from None
        except OSError as exc:
            raise _Stop(Check(name, FAIL, f"cannot connect to {where}: {exc}")) from None
        tcp_ms = (time.perf_counter() - start) * 1000
        details: dict[str, Any] = {"host": host, "port": port, "tcp_ms": round(tcp_ms, 3)}
        try:
            peer = sock.getpeername()[0]
            details["address"] = peer
            if not secure:
                if _is_public(peer):
                    return Check(
                        name,
                        WARN,
                        f"TCP {where} in {tcp_ms:.1f} ms, but plain http to a public address: "
                        "the password travels in clear text (put TLS in front: https://)",
                        details,
                    )
                return Check(name, OK, f"TCP {where} in {tcp_ms:.1f} ms (plain http)", details)
            return self._check_tls(sock, host, where, tcp_ms, details)
        finally:
            sock.close()

    def _check_tls(
        self, sock: socket.socket, host: str, where: str, tcp_ms: float, details: dict[str, Any]
    ) -> Check:
        name = "reachability"
        context = ssl.create_default_context()
        try:
            tls = context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
            why = f"TLS certificate of {where} rejected: {reason}"
            raise _Stop(Check(name, FAIL, why)) from None
        except (ssl.SSLError, OSError) as exc:
            raise _Stop(
                Check(name, FAIL, f"TLS handshake with {where} failed: {exc} (is it https?)")
            ) from None
        try:
            details["tls"] = tls.version()
            cert = tls.getpeercert() or {}
            not_after = cert.get("notAfter")
            reason = f"TCP + {tls.version()} to {where} in {tcp_ms:.1f} ms, certificate valid"
            if isinstance(not_after, str):
                days = int((ssl.cert_time_to_seconds(not_after) - time.time()) // 86400)
                details["certificate_days_left"] = days
                reason += f" for {days} more days"
                if days < CERT_WARN_DAYS:
                    return Check(name, WARN, reason + ": renew it soon", details)
            return Check(name, OK, reason, details)
        finally:
            tls.close()

    def check_auth(self) -> Check:
        """``GET /version`` with the password (every route but /error needs it)."""
        name = "auth"
        try:
            self.version_text = self.rest.version()
        except AuthenticationError as exc:
            why = "no password sent" if exc.status == 401 else "wrong password"
            raise _Stop(
                Check(name, FAIL, f"the node refused the password (HTTP {exc.status}: {why})")
            ) from None
        except RestError as exc:
            return Check(
                name,
                WARN,
                f"GET /version answered {exc.status}: the password could not be checked there",
            )
        except LavasyncError as exc:
            raise _Stop(Check(name, FAIL, f"no HTTP answer: {_describe(exc)}")) from None
        return Check(name, OK, "password accepted (GET /version)")

    def check_server(self) -> Check:
        """``GET /v4/info``: what server this is; v3 and unknown majors fail."""
        name = "server"
        version = self.version_text or "?"
        try:
            data = self.rest.request("GET", "/v4/info")
        except RestError as exc:
            if exc.status == 404:
                if version.startswith("3."):
                    why = (
                        f"Lavalink {version} is a v3 server (GET /v4/info: 404); "
                        "lavasync needs Lavalink v4"
                    )
                else:
                    why = (
                        f"GET /v4/info answered 404 (/version says {version}): not a Lavalink "
                        "v4 server (v3 servers have no /v4 routes)"
                    )
                raise _Stop(Check(name, FAIL, why, {"version": version})) from None
            raise _Stop(Check(name, FAIL, f"GET /v4/info failed: {_describe(exc)}")) from None
        if not isinstance(data, dict):
            raise _Stop(Check(name, FAIL, "GET /v4/info did not answer a JSON object"))
        self.info = data
        ver = _obj(data, "version")
        semver = str(ver.get("semver") or version)
        major = _int(ver.get("major"))
        nodelink = data.get("isNodelink") is True
        details = {"kind": "lavalink", "version": semver, "major": major}
        if nodelink:
            details["kind"] = "nodelink"
            return Check(name, OK, f"NodeLink {semver} (a Lavalink v4 compatible server)", details)
        java = isinstance(data.get("jvm"), str) or isinstance(data.get("lavaplayer"), str)
        if major == 3:
            raise _Stop(
                Check(name, FAIL, f"Lavalink {semver} is a v3 server; lavasync needs v4", details)
            )
        if major not in (0, 4):
            status = WARN if major > 4 else FAIL
            why = f"server version {semver}: lavasync speaks the Lavalink v4 protocol" + (
                " (newer servers may differ)" if major > 4 else ""
            )
            check = Check(name, status, why, details)
            if status == FAIL:
                raise _Stop(check)
            return check
        if not java:
            details["kind"] = "other"
            return Check(
                name, OK, f"a v4-compatible server {semver} (not the Java Lavalink)", details
            )
        label = "snapshot build " + semver if major == 0 else semver
        extra = ", ".join(
            f"{key} {data[key]}" for key in ("lavaplayer", "jvm") if isinstance(data.get(key), str)
        )
        return Check(name, OK, f"Lavalink {label}" + (f" ({extra})" if extra else ""), details)

    def check_plugins(self) -> Check:
        plugins = []
        for item in _list(self.info, "plugins"):
            if isinstance(item, dict) and item.get("name"):
                plugins.append(f"{item.get('name')} {item.get('version') or '?'}".strip())
        if not plugins:
            return Check("plugins", OK, "no plugins", {"plugins": []})
        return Check("plugins", OK, ", ".join(plugins), {"plugins": plugins})

    def check_sources(self) -> Check:
        sources = [s for s in _list(self.info, "sourceManagers") if isinstance(s, str)]
        filters = [f for f in _list(self.info, "filters") if isinstance(f, str)]
        details = {"sources": sources, "filters": filters}
        shown = f"sources: {', '.join(sources) or 'none'}; filters: {', '.join(filters) or 'none'}"
        if not sources:
            return Check(
                "sources", WARN, "no source managers: nothing will load; " + shown, details
            )
        return Check("sources", OK, shown, details)

    def check_loads(self) -> Iterator[Check]:
        """A search per source with a known prefix; one SKIP line for the others."""
        sources = [s for s in _list(self.info, "sourceManagers") if isinstance(s, str)]
        others = [s for s in sources if s not in SEARCH_PREFIXES]
        for source in sources:
            prefix = SEARCH_PREFIXES.get(source)
            if prefix is not None:
                yield self._timed(
                    f"load {source}", functools.partial(self._load_one, source, prefix)
                )
        if others:
            reason = f"no search prefix to try: {', '.join(others)}"
            yield Check("load (others)", SKIP, reason, {"sources": others})
        elif not sources:
            yield Check("load", SKIP, "no sources to try")

    def _load_one(self, source: str, prefix: str) -> Check:
        name = f"load {source}"
        identifier = prefix + self.query
        details: dict[str, Any] = {"identifier": identifier}
        start = time.perf_counter()
        try:
            result = self.rest.load_tracks(identifier)
        except LavasyncError as exc:
            return Check(name, WARN, f"{identifier!r}: {_describe(exc)}", details)
        ms = (time.perf_counter() - start) * 1000
        details.update(load_type=result.load_type, tracks=len(result.tracks), ms=round(ms, 3))
        if result.is_error:
            exc_info = result.exception
            message = (exc_info.message if exc_info is not None else None) or "loading failed"
            return Check(name, WARN, f"{identifier!r}: load error: {message}", details)
        if not result.tracks:
            why = f"{identifier!r}: no results ({result.load_type}); is the source working?"
            return Check(name, WARN, why, details)
        count = len(result.tracks)
        tracks = f"{count} track{'' if count == 1 else 's'}"
        return Check(
            name, OK, f"{identifier!r}: {result.load_type}, {tracks} in {ms:.0f} ms", details
        )

    def check_latency(self) -> Check:
        """``GET /version`` N times: p50 and p95 (nearest rank)."""
        times: list[float] = []
        errors: list[str] = []
        for _ in range(self.samples):
            start = time.perf_counter()
            try:
                self.rest.version()
            except LavasyncError as exc:
                errors.append(_describe(exc))
                continue
            times.append((time.perf_counter() - start) * 1000)
        if not times:
            return Check("rest latency", FAIL, f"every call failed: {errors[0]}")
        p50, p95 = percentile(times, 50), percentile(times, 95)
        details = {
            "samples": len(times),
            "errors": len(errors),
            "p50_ms": round(p50, 3),
            "p95_ms": round(p95, 3),
            "max_ms": round(max(times), 3),
        }
        reason = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(times)} calls (GET /version)"
        if errors:
            return Check(
                "rest latency", WARN, f"{reason}; {len(errors)} failed: {errors[0]}", details
            )
        if p95 > SLOW_REST_MS:
            return Check(
                "rest latency", WARN, f"{reason}: slow (over {SLOW_REST_MS:.0f} ms)", details
            )
        return Check("rest latency", OK, reason, details)

    def check_websocket(self) -> Check:
        """Open ``/v4/websocket`` and wait for ``ready``."""
        name = "websocket"
        url = websocket_url(self.uri)
        try:
            conn, session_id, handshake_ms, ready_ms, _ = self._open(None)
        except LavasyncError as exc:
            return Check(name, FAIL, _describe(exc), {"url": url})
        self._conn = conn
        self.session_id = session_id
        details = {
            "url": url,
            "handshake_ms": round(handshake_ms, 3),
            "ready_ms": round(ready_ms, 3),
            "session_id": session_id,
        }
        reason = f"handshake {handshake_ms:.1f} ms, ready after {ready_ms:.1f} ms"
        if ready_ms > SLOW_READY_MS:
            return Check(name, WARN, f"{reason}: slow (over {SLOW_READY_MS:.0f} ms)", details)
        return Check(name, OK, f"{reason} (session {session_id})", details)

    def check_resume(self) -> Check:
        """Enable resuming, drop the socket, reconnect with ``Session-Id``: resumed?"""
        name = "resume"
        conn, sid = self._conn, self.session_id
        if conn is None or sid is None:
            return Check(name, SKIP, "no WebSocket session")
        try:
            self.rest.update_session(sid, resuming=True, timeout=PROBE_RESUME_TIMEOUT)
        except LavasyncError as exc:
            return Check(name, WARN, f"could not enable resuming: {_describe(exc)}")
        self._conn = None
        conn.abort()  # a drop: no close frame
        conn.close()
        start = time.perf_counter()
        if not self._wait_session_paused(sid):
            why = "the node did not notice the dropped socket in time; cannot probe resuming"
            return Check(name, WARN, why)
        try:
            conn2, sid2, _, _, resumed = self._open(sid)
        except LavasyncError as exc:
            return Check(name, WARN, f"reconnecting with Session-Id failed: {_describe(exc)}")
        self._conn = conn2
        self.session_id = sid2
        total_ms = (time.perf_counter() - start) * 1000
        details = {
            "session_id": sid,
            "resumed": resumed,
            "session_resumed_header": conn2.resumed_header,
            "new_session_id": sid2,
        }
        if resumed and sid2 == sid:
            return Check(
                name, OK, f"dropped and resumed session {sid} in {total_ms:.0f} ms", details
            )
        why = (
            f"sent Session-Id {sid} after a drop but got a new session {sid2}: "
            "players would be rebuilt after every reconnect"
        )
        return Check(name, WARN, why, details)

    def check_route_planner(self) -> Check:
        name = "route planner"
        try:
            data = self.rest.request("GET", "/v4/routeplanner/status")
        except RestError as exc:
            if exc.status == 404:
                return Check(name, SKIP, "this server has no route planner routes (404)")
            return Check(name, WARN, f"GET /v4/routeplanner/status failed: {_describe(exc)}")
        if data is None:
            return Check(name, OK, "none configured (no IP rotation)", {"class": None})
        if not isinstance(data, dict):
            return Check(name, WARN, "the route planner status is not a JSON object")
        details = _obj(data, "details")
        block = _obj(details, "ipBlock")
        failing = [
            f.get("failingAddress")
            for f in details.get("failingAddresses") or []
            if isinstance(f, dict)
        ]
        kind = data.get("class") or "?"
        reason = f"{kind}, {block.get('type', '?')} block of {block.get('size', '?')} addresses"
        info = {"class": kind, "ip_block": block, "failing_addresses": failing}
        if failing:
            shown = ", ".join(str(a) for a in failing[:3])
            more = f" and {len(failing) - 3} more" if len(failing) > 3 else ""
            return Check(name, WARN, f"{reason}; {len(failing)} failing: {shown}{more}", info)
        return Check(name, OK, f"{reason}, none failing", info)

    def check_stats(self) -> Check:
        name = "stats"
        data = self.rest.request("GET", "/v4/stats")
        if not isinstance(data, dict):
            return Check(name, WARN, "GET /v4/stats did not answer a JSON object")
        cpu = _obj(data, "cpu")
        memory = _obj(data, "memory")
        players, playing = _int(data.get("players")), _int(data.get("playingPlayers"))
        load = _float(cpu.get("systemLoad"))
        node_load = _float(cpu.get("lavalinkLoad", cpu.get("nodelinkLoad")))
        used, reservable = _int(memory.get("used")), _int(memory.get("reservable"))
        mib = 2**20
        parts = [
            f"{players} players ({playing} playing)",
            f"uptime {uptime_text(_int(data.get('uptime')))}",
            f"cpu {load:.0%} system, {node_load:.0%} node",
            f"memory {used // mib}/{reservable // mib} MiB",
        ]
        problems = []
        if load > 0.9:
            problems.append("system CPU over 90%")
        if reservable > 0 and used / reservable > 0.9:
            problems.append("memory over 90% of the maximum heap")
        frames = (self.ws_stats or {}).get("frameStats")
        details: dict[str, Any] = {
            "players": players,
            "playing_players": playing,
            "uptime_ms": _int(data.get("uptime")),
            "system_load": load,
            "node_load": node_load,
            "memory_used": used,
            "memory_reservable": reservable,
            "frame_stats": frames if isinstance(frames, dict) else None,
        }
        if isinstance(frames, dict):
            deficit, nulled = _int(frames.get("deficit")), _int(frames.get("nulled"))
            parts.append(f"frames: deficit {deficit}, nulled {nulled} per player-minute")
            if deficit + nulled > 300:
                problems.append("over 10% of audio frames missing: the node is overloaded")
        reason = ", ".join(parts)
        if problems:
            return Check(name, WARN, f"{reason}: {'; '.join(problems)}", details)
        return Check(name, OK, reason, details)

    # ------------------------------------------------------------------ WebSocket helpers

    def _open(
        self, session_id: Optional[str]
    ) -> tuple[WebSocketConnection, str, float, float, bool]:
        """Connect (resuming ``session_id`` if given) and read until ``ready``.

        Returns (connection, session id, handshake ms, ms until ready, resumed).
        """
        url = websocket_url(self.uri)
        conn = WebSocketConnection()
        start = time.perf_counter()
        conn.connect(
            url,
            password=self.password,
            user_id=self.user_id,
            client_name=f"lavasync-doctor/{__version__}",
            session_id=session_id,
            timeout=self.timeout,
        )
        handshake_ms = (time.perf_counter() - start) * 1000
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LavasyncTimeoutError(f"no ready message within {self.timeout} s")
                conn.set_timeout(remaining)
                try:
                    frame = conn.recv()
                except SocketTimeout:
                    continue
                except SocketClosed as exc:
                    raise ConnectionFailedError(
                        f"the node closed the socket before ready ({exc.code} {exc.reason})".strip()
                    ) from None
                message = _json_object(frame)
                if message is None:
                    continue
                if message.get("op") == "stats":
                    self.ws_stats = message
                if message.get("op") == "ready" and isinstance(message.get("sessionId"), str):
                    ready_ms = (time.perf_counter() - start) * 1000
                    resumed = message.get("resumed") is True
                    return conn, message["sessionId"], handshake_ms, ready_ms, resumed
        except BaseException:
            conn.close()
            raise

    def _wait_session_paused(self, session_id: str) -> bool:
        """After a drop: wait until the session answers 404 (paused sessions are not routable)."""
        deadline = time.monotonic() + min(self.timeout, 5.0)
        while time.monotonic() < deadline:
            try:
                self.rest.get_players(session_id)
            except RestError as exc:
                if exc.status == 404:
                    return True
            except LavasyncError:
                return False
            self._wake.wait(0.02)
        return False

    def _end_session(self, conn: WebSocketConnection) -> None:
        """Turn resuming off, then close: the node destroys the doctor's session at once."""
        sid = self.session_id
        if sid is not None and self._rest is not None:
            try:
                self._rest.update_session(sid, resuming=False)
            except LavasyncError:
                pass
        conn.close()


# ---------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    return bool(ip.is_global)


def _json_object(frame: Any) -> Optional[dict[str, Any]]:
    if not frame:
        return None
    try:
        value = json.loads(frame)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _obj(data: Optional[dict[str, Any]], key: str) -> dict[str, Any]:
    value = (data or {}).get(key)
    return value if isinstance(value, dict) else {}


def _list(data: Optional[dict[str, Any]], key: str) -> list[Any]:
    value = (data or {}).get(key)
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    return 0


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return float(value)
