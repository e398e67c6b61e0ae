"""The registration rate limiter (services/registration-guard): sliding windows per (zone, source) on a
clock the tests move by hand, bounded memory, and the HTTP answers Caddy's forward_auth relays."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import rate_limiter
from rate_limiter import (
    ADDRESS_HEADER,
    ConfigError,
    LimiterServer,
    SlidingWindowLimiter,
    Zone,
    parse_zones,
    refusal,
    settings,
    source_key,
)

from tests.support.clock import Clock

REGISTRATION = Zone("registration", 3, 60)


def limiter(clock: Clock, *zones: Zone, max_sources: int = 100) -> SlidingWindowLimiter:
    chosen = zones or (REGISTRATION,)
    return SlidingWindowLimiter({z.name: z for z in chosen}, max_sources=max_sources, clock=clock)


# --- configuration -----------------------------------------------------------------------------


def test_zones_are_read_from_one_setting():
    assert parse_zones("registration=20/60") == {"registration": Zone("registration", 20, 60)}
    assert parse_zones(" registration=20/60, token=100/10 ") == {
        "registration": Zone("registration", 20, 60), "token": Zone("token", 100, 10)}


@pytest.mark.parametrize("spec", ["", "registration", "registration=20", "registration=0/60", "registration=5/0",
                                  "registration=-1/60", "registration=1.5/60", "Registration=1/60",
                                  "registration=1/60,registration=2/60"])
def test_a_bad_zone_setting_is_refused_with_the_reason(spec: str):
    with pytest.raises(ConfigError, match="RATELIMIT_ZONES"):
        parse_zones(spec)


def test_settings_have_safe_defaults_and_refuse_nonsense():
    config = settings({"RATELIMIT_ZONES": "registration=30/60"})
    assert (config.port, config.max_sources) == (8080, 10_000)
    assert {str(p) for p in config.trusted_peers} == {"127.0.0.1", "::1"}
    config = settings({"RATELIMIT_ZONES": "registration=30/60", "RATELIMIT_TRUSTED_PEERS": "172.31.240.10"})
    assert {str(p) for p in config.trusted_peers} == {"172.31.240.10"}
    for bad in ({"RATELIMIT_PORT": "http"}, {"RATELIMIT_PORT": "70000"}, {"RATELIMIT_MAX_SOURCES": "0"},
                {"RATELIMIT_TRUSTED_PEERS": "caddy"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            settings({"RATELIMIT_ZONES": "registration=30/60", **bad})


def test_main_refuses_to_start_without_zones(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.ERROR, logger="ratelimit"):
        assert rate_limiter.main({}) == 2
    assert "RATELIMIT_ZONES" in caplog.records[-1].fields["reason"]


# --- the sliding window ------------------------------------------------------------------------


def test_exactly_the_limit_is_admitted_then_refused_until_the_oldest_leaves_the_window():
    clock = Clock()
    limits = limiter(clock)
    for offset in (0, 20, 40):  # three admitted, spread over the window
        clock.now = 1000 + offset
        assert limits.check("registration", "10.0.0.1").allowed
    clock.now = 1059.5
    refused = limits.check("registration", "10.0.0.1")
    assert not refused.allowed
    assert refused.retry_after == 1  # the first one leaves at 1060: rounded up, never 0
    clock.now = 1060
    assert limits.check("registration", "10.0.0.1").allowed  # sliding: one slot freed, not a new window
    clock.now = 1061
    assert limits.check("registration", "10.0.0.1").retry_after == 19  # next to leave: the one at 1020


def test_a_burst_gets_the_limit_and_a_retry_after_of_the_whole_window():
    clock = Clock()
    limits = limiter(clock)
    decisions = [limits.check("registration", "10.0.0.1") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.retry_after for d in decisions[3:]] == [60, 60]


def test_refused_requests_do_not_prolong_the_wait():
    clock = Clock()
    limits = limiter(clock)
    for _ in range(3):
        limits.check("registration", "10.0.0.1")
    for second in range(59):  # hammering every second of the window
        clock.now = 1000 + second
        assert not limits.check("registration", "10.0.0.1").allowed
    clock.now = 1060
    assert limits.check("registration", "10.0.0.1").allowed


def test_sources_and_zones_have_separate_budgets():
    clock = Clock()
    limits = limiter(clock, REGISTRATION, Zone("token", 1, 10))
    for _ in range(3):
        assert limits.check("registration", "10.0.0.1").allowed
    assert not limits.check("registration", "10.0.0.1").allowed
    assert limits.check("registration", "10.0.0.2").allowed  # another address
    assert limits.check("token", "10.0.0.1").allowed  # another zone
    assert not limits.check("token", "10.0.0.1").allowed


def test_an_unknown_zone_is_an_error_not_a_pass():
    with pytest.raises(KeyError):
        limiter(Clock()).check("unknown", "10.0.0.1")


def test_idle_sources_are_forgotten():
    clock = Clock()
    limits = limiter(clock)
    for n in range(50):
        limits.check("registration", f"10.0.0.{n}")
    assert limits.tracked("registration") == 50
    clock.now += 60  # every one of them has left the window
    limits.check("registration", "10.0.1.1")
    assert limits.tracked() == 1


def test_memory_is_capped_and_the_source_closest_to_expiry_makes_room():
    clock = Clock()
    limits = limiter(clock, max_sources=3)
    for n, address in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.3"]):
        clock.now = 1000 + n
        for _ in range(3):
            limits.check("registration", address)
    clock.now = 1010
    assert limits.check("registration", "10.0.0.4").allowed
    assert limits.tracked() == 3
    assert limits.evicted == 1
    # 10.0.0.1 (oldest) was dropped and starts afresh; the others are still held to their limit.
    assert limits.check("registration", "10.0.0.1").allowed
    assert not limits.check("registration", "10.0.0.3").allowed
    for n in range(1000):
        limits.check("registration", f"10.1.{n // 250}.{n % 250}")
    assert limits.tracked() == 3


def test_many_threads_never_admit_more_than_the_limit():
    limits = limiter(Clock(), Zone("registration", 50, 60))
    admitted: list[bool] = []

    def burst() -> None:
        for _ in range(40):
            admitted.append(limits.check("registration", "10.0.0.1").allowed)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 50


# --- who is counted ----------------------------------------------------------------------------


def test_the_key_is_the_address_or_its_ipv6_slash_64():
    assert source_key("172.31.240.5") == "172.31.240.5"
    assert source_key("::ffff:172.31.240.5") == "172.31.240.5"  # the same host, written as IPv6
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    for bad in ("", "evil", "1.2.3.4, 5.6.7.8", "300.1.1.1"):
        with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
            source_key(bad)


def test_the_refusal_says_what_and_when_in_the_oauth_error_shape():
    assert refusal(Zone("registration", 20, 60), 37) == {
        "error": "too_many_requests",
        "error_description": "too many client registrations from this address: at most 20 per 60 s; retry in 37 s",
    }
    assert refusal(Zone("token", 5, 10), 3)["error_description"].startswith("too many requests from this address")


# --- over HTTP, as Caddy asks ------------------------------------------------------------------


@dataclass
class Running:
    port: int
    clock: Clock
    server: LimiterServer

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def check(self, address: str | None, **headers: str) -> tuple[int, dict[str, str], bytes]:
        if address is not None:
            headers[ADDRESS_HEADER] = address
        return self.get("/check/registration", headers)


@contextmanager
def serve(trusted: str = "127.0.0.1") -> Iterator[Running]:
    clock = Clock()
    server = LimiterServer(("127.0.0.1", 0), limiter(clock), settings(
        {"RATELIMIT_ZONES": "x=1/1", "RATELIMIT_TRUSTED_PEERS": trusted}).trusted_peers)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield Running(server.server_address[1], clock, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def running() -> Iterator[Running]:
    with serve() as server:
        yield server


def test_allowed_is_an_empty_200_and_refused_a_429_with_retry_after_and_the_reason(running: Running):
    for _ in range(3):
        status, _, body = running.check("172.31.240.5")
        assert (status, body) == (200, b"")
    running.clock.now += 15
    status, headers, body = running.check("172.31.240.5")
    assert status == 429
    assert headers["Retry-After"] == "45"
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {
        "error": "too_many_requests",
        "error_description": "too many client registrations from this address: at most 3 per 60 s; retry in 45 s",
    }


def test_forwarded_headers_the_client_could_send_do_not_change_the_key(running: Running):
    statuses = [running.check("172.31.240.5", **{"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}",
                                                "Forwarded": f"for=192.0.2.{n}"})[0] for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_a_request_without_exactly_one_valid_address_fails_closed(running: Running):
    assert running.check(None)[0] == 500
    assert running.check("not-an-address")[0] == 500
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    connection.putrequest("GET", "/check/registration")
    connection.putheader(ADDRESS_HEADER, "10.0.0.1")
    connection.putheader(ADDRESS_HEADER, "10.0.0.2")
    connection.endheaders()
    assert connection.getresponse().status == 500
    connection.close()
    assert running.server.limiter.tracked() == 0


def test_unknown_zones_and_paths_are_refused_and_health_answers(running: Running):
    assert running.get("/check/unknown", {ADDRESS_HEADER: "10.0.0.1"})[0] == 500
    assert running.get("/other")[0] == 404
    assert running.get("/healthz")[:1] == (200,)


def test_only_the_trusted_front_may_ask():
    with serve(trusted="192.0.2.10") as untrusted:
        status, _, body = untrusted.check("10.0.0.1")
        assert status == 403
        assert json.loads(body)["error"] == "access_denied"
        assert untrusted.server.limiter.tracked() == 0
        assert untrusted.get("/healthz")[0] == 200  # the container's health check is not a check


def test_one_log_line_per_refusal_with_zone_and_address_and_nothing_the_client_sent(
        running: Running, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="ratelimit"):
        for _ in range(5):
            running.check("172.31.240.5", Authorization="Bearer secret-token-value", Cookie="session=abc123456789")
    refusals = [r for r in caplog.records if r.getMessage() == "refused"]
    assert len(refusals) == 2
    assert refusals[0].fields == {"zone": "registration", "address": "172.31.240.5", "limit": 3, "window_seconds": 60,
                                  "retry_after": 60}
    assert all(r.getMessage() == "refused" for r in caplog.records)  # no access log
    assert "secret-token-value" not in caplog.text
    assert "abc123456789" not in caplog.text


def test_the_service_logs_json_lines_and_stops_at_once_on_sigterm():
    """The module as the container runs it: JSON on stderr, /healthz, and SIGTERM honoured (PID 1
    ignores it without a handler, and docker stop would wait 10 s)."""
    env = {"PATH": os.environ.get("PATH", ""), "RATELIMIT_ZONES": "registration=2/60", "RATELIMIT_PORT": "0"}
    process = subprocess.Popen([sys.executable, rate_limiter.__file__], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        started = json.loads(process.stderr.readline())
        assert started["msg"] == "listening"
        assert started["zones"] == ["registration=2/60"]
        connection = http.client.HTTPConnection("127.0.0.1", started["port"], timeout=5)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()
