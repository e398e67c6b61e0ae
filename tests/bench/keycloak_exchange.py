"""Keycloak's own token-exchange rate, measured against the running sandbox (`make bench
BENCH_ARGS=--keycloak`): what the MCP server's exchange cache spares Keycloak, per node.

The requests are the MCP server's own (tests/support/downstream.py): alice's access token for the
MCP server as `subject_token`, the notes API as `audience`, scope `notes:read`, authenticated with
the MCP server's client key (private_key_jwt, a fresh assertion each time, as the server sends
them). Keycloak does all of its work for each: the assertion's signature and replay check, the
subject token, the exchange permission, the user's role, a signed token. TLS through Caddy to the
sandbox CA (.local/ca), as every test does; nothing is skipped.

Run it with the sandbox up, and take it down afterwards:
`make up && make bench BENCH_ARGS=--keycloak; make down`.
"""

from __future__ import annotations

import statistics
import time

import anyio
import httpx2

from tests.support.downstream import ACCESS_TOKEN_TYPE, GRANT_TYPE, mcp_server_client, user_token
from tests.support.stack import COMPOSE_DIR, Stack, read_env

# Keycloak nodes behind Caddy per topology (docs/topology.md).
NODES = {"single": 1, "ha": 2}


class NoSandbox(Exception):
    """No sandbox to measure (the message says what to do)."""


def sandbox() -> Stack:
    env_file = COMPOSE_DIR / ".env"
    if not env_file.exists():
        raise NoSandbox("no sandbox in this checkout (compose/.env is missing): run `make up` first")
    stack = Stack(read_env(env_file))
    try:
        with stack.client() as http:
            http.get(f"{stack.issuer}/.well-known/openid-configuration").raise_for_status()
    except httpx2.HTTPError as exc:
        raise NoSandbox(f"Keycloak at {stack.issuer} does not answer ({type(exc).__name__}): run `make up` first") from None
    return stack


async def exchange_for(seconds: float, concurrency: int, stack: Stack, subject: str) -> tuple[int, list[float]]:
    """(exchanges completed, their latencies in seconds) in `seconds` of `concurrency` workers."""
    latencies: list[float] = []
    failures: list[str] = []  # the first stops every worker; raised after the task group
    deadline = time.perf_counter() + seconds

    async def worker(http: httpx2.AsyncClient) -> None:
        while time.perf_counter() < deadline and not failures:
            form = {"grant_type": GRANT_TYPE, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE,
                    "requested_token_type": ACCESS_TOKEN_TYPE, "audience": stack.api_url, "scope": "notes:read",
                    **mcp_server_client(stack)}
            started = time.perf_counter()
            try:
                response = await http.post(stack.token_endpoint(), data=form)
            except httpx2.HTTPError as exc:
                failures.append(f"no answer from Keycloak ({type(exc).__name__})")
                return
            if response.status_code != 200:
                try:
                    error = response.json().get("error", "")
                except ValueError:
                    error = ""
                failures.append(f"Keycloak refused the exchange: HTTP {response.status_code} {error}".rstrip())
                return
            latencies.append(time.perf_counter() - started)

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with stack.async_client(limits=limits) as http, anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, http)
    if failures:
        raise RuntimeError(failures[0])
    return len(latencies), latencies


def run(rounds: int, seconds: float, concurrency: int) -> int:
    try:
        stack = sandbox()
    except NoSandbox as exc:
        print(f"bench --keycloak: {exc}")
        return 2
    topology = stack.env.get("TOPOLOGY", "single")
    nodes = NODES.get(topology, 1)
    print(f"Keycloak token exchange (RFC 8693) at {stack.token_endpoint()}: {rounds} rounds x {seconds:g} s, "
          f"{concurrency} concurrent requests, topology {topology} ({nodes} Keycloak node{'s' * (nodes > 1)})")
    rates: list[float] = []
    every: list[float] = []
    for r in range(rounds):
        try:
            # A fresh login each round: alice's token stays well inside its lifetime while it is used.
            subject = user_token(stack, "alice")
        except Exception as exc:  # any failure of the scripted login: one line, no traceback
            print(f"bench --keycloak: could not sign in as alice ({type(exc).__name__}: {exc}); is the sandbox healthy?")
            return 1
        try:
            done, latencies = anyio.run(exchange_for, seconds, concurrency, stack, subject)
        except RuntimeError as exc:
            print(f"bench --keycloak: {exc}")
            return 1
        rates.append(done / seconds)
        every += latencies
        print(f"  round {r + 1}/{rounds}  {done / seconds:8.1f} exchanges/s   "
              f"median {1000 * statistics.median(latencies):6.1f} ms", flush=True)
    every.sort()
    rate = statistics.median(rates)
    print(f"\nmedian {rate:.1f} exchanges/s, {rate / nodes:.1f} per Keycloak node; latency median "
          f"{1000 * statistics.median(every):.1f} ms, p95 {1000 * every[int(0.95 * (len(every) - 1))]:.1f} ms")
    print("Keycloak, Caddy and this load generator share this machine's CPUs: a floor for a dedicated node.")
    return 0
