"""Per-source rate limits that Caddy consults with its `forward_auth` directive.

Caddy sends a GET to `/check/<zone>` carrying the client's address in `X-Ratelimit-Client-Address`
(set from `{remote_host}`, the TCP peer, replacing whatever the client sent). The answer is 200
with an empty body while that address has budget left in the zone, else 429 with `Retry-After`
and an OAuth-style JSON error, which Caddy copies back to the client unchanged.

Limits are sliding windows: at most `limit` requests admitted in any `window` seconds per
(zone, address); a refused request is not counted, so hammering does not prolong the wait.
Zones come from RATELIMIT_ZONES ("registration=30/60" — 30 per 60 s per address; several
separated by commas). Memory is bounded: an address whose last admitted request left the window
is forgotten, and each zone tracks at most RATELIMIT_MAX_SOURCES addresses (the one closest to
expiry makes room). Counts live in memory only: a restart forgets them.

Only the addresses in RATELIMIT_TRUSTED_PEERS (Caddy's) may ask: anything else on the network
could otherwise spend another address's budget by naming it. Standard library only.

A zone may also have a check that runs once the limiter has admitted (and so counted) a request:
the registration zone checks the client metadata (registration_metadata.py), and its refusal is
the answer instead of the empty 200.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.parse import urlsplit

import registration_metadata
from registration_metadata import Refusal

ADDRESS_HEADER = "X-Ratelimit-Client-Address"
DEFAULT_PORT = 8080
DEFAULT_MAX_SOURCES = 10_000
# Without RATELIMIT_TRUSTED_PEERS only a caller on the same host may ask (compose sets Caddy's address).
DEFAULT_TRUSTED_PEERS = "127.0.0.1 ::1"
# What a zone limits, in the refusal's words; other zones say "requests".
NOUNS = {"registration": "client registrations"}
# An IPv6 client usually holds a whole /64: counting single addresses would give it 2^64 budgets.
IPV6_PREFIX = 64

_ZONE = re.compile(r"^([a-z0-9][a-z0-9_-]*)=([0-9]+)/([0-9]+)$")

log = logging.getLogger("ratelimit")


# A zone's check after admission: None lets the request through, else the refusal to send.
Check = Callable[[Message], Refusal | None]
# The checks main() runs: anonymous registration's client metadata.
CHECKS: dict[str, Check] = {"registration": registration_metadata.check_headers}


class ConfigError(ValueError):
    """A setting the limiter cannot start with; the message says which and why."""


@dataclass(frozen=True)
class Zone:
    name: str
    limit: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.name}={self.limit}/{self.window}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # whole seconds until a request would be admitted; 0 when allowed


def parse_zones(spec: str) -> dict[str, Zone]:
    """`registration=30/60, token=100/60` -> zones by name."""
    zones: dict[str, Zone] = {}
    for item in re.split(r"[,\s]+", spec.strip()):
        if not item:
            continue
        match = _ZONE.match(item)
        if not match:
            raise ConfigError(f"RATELIMIT_ZONES: {item!r} is not <zone>=<requests>/<seconds> (e.g. registration=30/60)")
        name, limit, window = match.group(1), int(match.group(2)), int(match.group(3))
        if limit < 1 or window < 1:
            raise ConfigError(f"RATELIMIT_ZONES: {item!r}: requests and seconds must be at least 1")
        if name in zones:
            raise ConfigError(f"RATELIMIT_ZONES: zone {name!r} is given twice")
        zones[name] = Zone(name, limit, window)
    if not zones:
        raise ConfigError("RATELIMIT_ZONES is empty: name at least one zone, e.g. registration=30/60")
    return zones


def parse_addresses(spec: str, setting: str) -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return frozenset(_unmapped(ipaddress.ip_address(a)) for a in re.split(r"[,\s]+", spec.strip()) if a)
    except ValueError as exc:
        raise ConfigError(f"{setting}: {exc}") from None


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def source_key(address: str) -> str:
    """The key an address is counted under: the IPv4 address itself (also when written as
    IPv4-mapped IPv6), or the /64 an IPv6 address lies in. ValueError if it is no IP address."""
    ip = _unmapped(ipaddress.ip_address(address.strip()))
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class SlidingWindowLimiter:
    """Admits at most `zone.limit` requests per (zone, source) in any `zone.window` seconds.

    Per zone, sources are kept in the order of their last admitted request, so the first one is
    the first to expire: forgetting idle sources and making room at the cap are both O(1)."""

    def __init__(self, zones: Mapping[str, Zone], *, max_sources: int = DEFAULT_MAX_SOURCES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_sources < 1:
            raise ConfigError("RATELIMIT_MAX_SOURCES must be at least 1")
        self.zones = dict(zones)
        self.max_sources = max_sources
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: dict[str, OrderedDict[str, deque[float]]] = {name: OrderedDict() for name in self.zones}
        self.evicted = 0  # sources dropped at the cap before their window ended

    def check(self, zone_name: str, source: str) -> Decision:
        """Count one request from `source` in the zone if it has budget left. KeyError for an unknown zone."""
        zone = self.zones[zone_name]
        with self._lock:
            now = self._clock()
            sources = self._admitted[zone_name]
            self._forget_idle(sources, now - zone.window)
            times = sources.get(source)
            if times is None:
                if len(sources) >= self.max_sources:
                    sources.popitem(last=False)
                    self.evicted += 1
                times = sources[source] = deque()
            while times and times[0] <= now - zone.window:
                times.popleft()
            if len(times) >= zone.limit:
                return Decision(False, max(1, math.ceil(times[0] + zone.window - now)))
            times.append(now)
            sources.move_to_end(source)
            return Decision(True)

    def tracked(self, zone_name: str | None = None) -> int:
        """How many sources are remembered (in one zone, or in all)."""
        with self._lock:
            names = [zone_name] if zone_name else list(self._admitted)
            return sum(len(self._admitted[name]) for name in names)

    @staticmethod
    def _forget_idle(sources: OrderedDict[str, deque[float]], horizon: float) -> None:
        while sources:
            times = next(iter(sources.values()))
            if times and times[-1] > horizon:
                return
            sources.popitem(last=False)


def refusal(zone: Zone, retry_after: int) -> dict[str, str]:
    """The 429 body. RFC 7591 defines no error code for this (its codes say the metadata is
    wrong); `too_many_requests` names the HTTP status, so a client that does not know the code
    still reads 429 and Retry-After correctly."""
    noun = NOUNS.get(zone.name, "requests")
    return {
        "error": "too_many_requests",
        "error_description": f"too many {noun} from this address: at most {zone.limit} per {zone.window} s; "
                             f"retry in {retry_after} s",
    }


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                                 "level": record.levelname.lower(), "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


class LimiterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], limiter: SlidingWindowLimiter,
                 trusted_peers: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address],
                 checks: Mapping[str, Check] | None = None) -> None:
        self.limiter = limiter
        self.trusted_peers = frozenset(trusted_peers)
        self.checks = dict(checks or {})
        super().__init__(address, LimiterHandler)

    def trusts(self, peer: str) -> bool:
        try:
            return _unmapped(ipaddress.ip_address(peer)) in self.trusted_peers
        except ValueError:
            return False


class LimiterHandler(BaseHTTPRequestHandler):
    server: LimiterServer
    # Caddy keeps connections to its upstreams alive (2 min idle); close ours only after that.
    protocol_version = "HTTP/1.1"
    timeout = 300

    def version_string(self) -> str:
        return "registration-guard"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
            return
        if not path.startswith("/check/"):
            self._send(404, b"not found\n", "text/plain")
            return
        peer = self.client_address[0]
        if not self.server.trusts(peer):
            log.warning("untrusted peer", extra={"fields": {"peer": peer}})
            self._error(403, "access_denied", "only the TLS front may consult the rate limiter")
            return
        zone_name = path.removeprefix("/check/")
        zone = self.server.limiter.zones.get(zone_name)
        # Both below mean the front is misconfigured: fail closed, and say so in the log.
        if zone is None:
            log.error("unknown zone", extra={"fields": {"zone": zone_name[:64]}})
            self._error(500, "server_error", "rate limit zone not configured")
            return
        values = self.headers.get_all(ADDRESS_HEADER) or []
        try:
            if len(values) != 1:
                raise ValueError(f"{len(values)} values")
            source = source_key(values[0])
        except ValueError:
            log.error("no client address", extra={"fields": {"zone": zone.name, "header": ADDRESS_HEADER}})
            self._error(500, "server_error", "rate limiter got no client address")
            return
        decision = self.server.limiter.check(zone.name, source)
        if decision.allowed:
            check = self.server.checks.get(zone.name)
            refused = check(self.headers) if check else None
            if refused is None:
                self._send(200, b"", None)
                return
            log.warning("refused metadata", extra={"fields": {"zone": zone.name, "address": source,
                                                              "status": refused.status, "reason": refused.description}})
            self._error(refused.status, refused.error, refused.description)
            return
        log.warning("refused", extra={"fields": {"zone": zone.name, "address": source, "limit": zone.limit,
                                                 "window_seconds": zone.window, "retry_after": decision.retry_after}})
        body = refusal(zone, decision.retry_after)
        self._send(429, json.dumps(body).encode(), "application/json",
                   {"Retry-After": str(decision.retry_after), "Cache-Control": "no-store"})

    def _error(self, status: int, error: str, description: str) -> None:
        body = json.dumps({"error": error, "error_description": description}).encode()
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def _send(self, status: int, body: bytes, content_type: str | None, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # No access log (a line per refusal is enough, and the requests carry the client's
        # headers); connection errors at debug level.
        log.debug(format % args)


@dataclass(frozen=True)
class Settings:
    zones: dict[str, Zone]
    port: int
    max_sources: int
    trusted_peers: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]


def settings(environ: Mapping[str, str]) -> Settings:
    zones = parse_zones(environ.get("RATELIMIT_ZONES", ""))
    port = _whole_number(environ, "RATELIMIT_PORT", DEFAULT_PORT, 0, 65535)  # 0: any free port (tests)
    max_sources = _whole_number(environ, "RATELIMIT_MAX_SOURCES", DEFAULT_MAX_SOURCES, 1, 10_000_000)
    peers = parse_addresses(environ.get("RATELIMIT_TRUSTED_PEERS", "").strip() or DEFAULT_TRUSTED_PEERS,
                            "RATELIMIT_TRUSTED_PEERS")
    return Settings(zones, port, max_sources, peers)


def _whole_number(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _stop(signum: int, frame: object) -> NoReturn:
    # PID 1 in a container ignores SIGTERM without a handler: docker stop would wait 10 s.
    raise SystemExit(0)


def log_json_lines() -> None:
    """One JSON object per line on stderr, as the other services log (`make logs`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(environ: Mapping[str, str] = os.environ) -> int:
    try:
        config = settings(environ)
    except ConfigError as exc:
        log.error("bad configuration", extra={"fields": {"reason": str(exc)}})
        return 2
    limiter = SlidingWindowLimiter(config.zones, max_sources=config.max_sources)
    server = LimiterServer(("0.0.0.0", config.port), limiter, config.trusted_peers, CHECKS)  # noqa: S104 (the container's port)
    signal.signal(signal.SIGTERM, _stop)
    log.info("listening", extra={"fields": {"port": server.server_address[1], "zones": [str(z) for z in config.zones.values()],
                                            "max_sources_per_zone": config.max_sources, "checks": sorted(server.checks),
                                            "trusted_peers": sorted(str(p) for p in config.trusted_peers)}})
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    log_json_lines()
    sys.exit(main())
