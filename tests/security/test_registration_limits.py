"""Registration exhaustion: a network peer floods anonymous DCR to fill the realm's 200-client cap
and close registration for everyone. Caddy asks the registration guard (services/registration-guard)
before every registration POST (and RFC 7592 PUT); each source gets `REGISTRATION_RATE_LIMIT`
(default 30 per 60 s).

The bursts come from throwaway containers on the edge network, each with an address of its own,
never from the host: the host's budget belongs to the rest of the suite, which registers from
there. They stay bounded (the limit plus five registrations, sequential, no sleeps), and every
client they create is deleted again (RFC 7592, then a sweep by name through the admin API).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import INSPECTOR, registered
from tests.support.edge import Limit, Source, docker, edge_sources, guard_log, registration_limit
from tests.support.keycloak import kcadm, kcadm_json
from tests.support.secrets import remember
from tests.support.stack import Stack

EXTRA = 5  # refused registrations past the limit
ADDRESS_HEADER = "X-Ratelimit-Client-Address"

# Runs inside a burst container (the guard's image: Python, standard library): one registration
# per entry of `headers`, sequential, each on a new connection; prints every answer as JSON.
BURST = r"""
import http.client, json, ssl, sys
from urllib.parse import urlsplit
job = json.loads(sys.argv[1])
context = ssl.create_default_context(cadata=job["ca"])
url = urlsplit(job["url"])
results = []
for n, headers in enumerate(job["headers"]):
    body = json.dumps(dict(job["body"], client_name=f"{job['name']}-{n}"))
    connection = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context, timeout=30)
    try:
        connection.request("POST", url.path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        results.append({"status": response.status, "retry_after": response.getheader("Retry-After"),
                        "body": response.read().decode()})
    except Exception as exc:
        results.append({"status": None, "retry_after": None, "body": repr(exc)})
    finally:
        connection.close()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def limit(compose: DockerCompose) -> Limit:
    found = registration_limit(compose)
    if found.requests > 60 or found.window < 30:
        pytest.skip(f"REGISTRATION_RATE_LIMIT={found.requests}/{found.window}: a burst past it would either come "
                    "close to the realm's 200-client cap or outlast the window (the default is 30/60)")
    return found


@pytest.fixture(scope="module")
def sources(compose: DockerCompose, stack: Stack) -> Iterator[Callable[[], Source]]:
    """Throwaway sources on the edge network (tests/support/edge.py), up until the module ends."""
    with edge_sources(compose, stack) as start:
        yield start


def burst(stack: Stack, source: Source, tag: str, headers: list[dict[str, str]]) -> list[dict]:
    job = {"url": f"{stack.issuer}/clients-registrations/openid-connect", "ca": stack.ca_file.read_text(),
           "body": INSPECTOR, "name": tag, "headers": headers}
    results = json.loads(docker("exec", source.name, "python", "-c", BURST, json.dumps(job), timeout=180))
    for result in results:
        if result["status"] == 201:
            remember(json.loads(result["body"])["registration_access_token"])
    return results


def delete(stack: Stack, compose: DockerCompose, tag: str, results: list[dict]) -> None:
    """RFC 7592 first (what a client would do), then whatever is left, by name, as admin."""
    with stack.client() as http:
        for result in results:
            if result["status"] == 201:
                client = json.loads(result["body"])
                http.delete(client["registration_client_uri"],
                            headers={"authorization": f"Bearer {client['registration_access_token']}"})
    for client in kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "id,name"):
        if (client.get("name") or "").startswith(tag):
            kcadm(compose, stack, "delete", f"clients/{client['id']}", "-r", "mcp")


def assert_cut_at_the_limit(results: list[dict], limit: Limit, source: Source) -> None:
    statuses = [r["status"] for r in results]
    assert statuses[0] != 429, (f"{source.address} was refused before the burst began: a run less than "
                                f"{limit.window} s ago used this address; run again")
    odd = next((r for r in results if r["status"] not in (201, 429)), None)
    assert odd is None, f"neither created nor limited: {odd}"
    assert statuses == [201] * limit.requests + [429] * EXTRA
    for refused in results[limit.requests:]:
        assert 1 <= int(refused["retry_after"]) <= limit.window
        error = json.loads(refused["body"])
        assert error["error"] == "too_many_requests"
        assert error["error_description"] == (
            f"too many client registrations from this address: at most {limit.requests} per {limit.window} s; "
            f"retry in {refused['retry_after']} s")


def refusals(compose: DockerCompose, since: datetime) -> list[dict]:
    """The guard's rate-limit refusal lines (one per refused request) logged at or after `since`."""
    return guard_log(compose, "refused", since)


def test_a_registration_burst_from_one_source_stops_at_the_limit_and_others_still_register(
        stack: Stack, compose: DockerCompose, limit: Limit, sources: Callable[[], Source]):
    source = sources()
    tag = f"guard-burst-{secrets.token_hex(4)}"
    since = datetime.now(UTC)
    results: list[dict] = []
    try:
        results = burst(stack, source, tag, [{}] * (limit.requests + EXTRA))
        assert_cut_at_the_limit(results, limit, source)
        # The realm is still open to everyone else, at this very moment: a registration from the
        # host succeeds while the flooding source is still refused.
        with registered(stack, {**INSPECTOR, "client_name": f"{tag}-host"}) as response:
            assert response.status_code == 201, response.text
            remember(response.json()["registration_access_token"])
        (still,) = burst(stack, source, tag, [{}])
        assert still["status"] == 429, still
    finally:
        delete(stack, compose, tag, results)
    logged = [e for e in refusals(compose, since) if e["address"] == source.address]
    assert len(logged) == EXTRA + 1
    assert {(e["zone"], e["limit"], e["window_seconds"]) for e in logged} == {("registration", limit.requests, limit.window)}


def test_forged_forwarding_headers_do_not_change_the_limiters_key(
        stack: Stack, compose: DockerCompose, limit: Limit, sources: Callable[[], Source]):
    """Every request claims another origin — X-Forwarded-For, X-Real-IP, Forwarded, even the
    limiter's own header: Caddy replaces the latter with the TCP peer and the limiter reads
    nothing else, so they all count against the one real address."""
    source = sources()
    tag = f"guard-forged-{secrets.token_hex(4)}"
    forged = [{"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}", "Forwarded": f"for=192.0.2.{n}",
               ADDRESS_HEADER: f"192.0.2.{n}"} for n in range(1, limit.requests + EXTRA + 1)]
    since = datetime.now(UTC)
    results: list[dict] = []
    try:
        results = burst(stack, source, tag, forged)
        assert_cut_at_the_limit(results, limit, source)
    finally:
        delete(stack, compose, tag, results)
    assert {e["address"] for e in refusals(compose, since)} == {source.address}
