"""Faults under load, for the HA topology (tests/chaos, `make chaos`).

`Load`: agents that each hold a valid access token (client credentials) and call a tool in a
loop, recording every call. Notes agents: alice, calling the notes tools, which the MCP server
serves by exchanging her token at Keycloak (RFC 8693) and calling the notes API; her access token
is renewed before every round, so every round misses the MCP server's exchange cache and reaches
Keycloak — through whichever node is up. `Probe`: once a second, a new client-credentials token and a new
user login (authorization code), recording whether each succeeded. `Faults`: kill and restart a
Keycloak node or an MCP replica, restart PostgreSQL, rotate the realm's signing key. The report
gives each phase's latency percentiles and errors, and how long new logins failed per fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import time
from dataclasses import dataclass, field

import httpx2
from testcontainers.compose import DockerCompose

from tests.support.downstream import PASSWORDS
from tests.support.keycloak import kcadm, kcadm_json
from tests.support.login import BEARER_CLIENT, authorize, exchange
from tests.support.secrets import remember
from tests.support.stack import Stack
from tests.support.tokens import request_token

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_time", "arguments": {}}}
HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}


@dataclass
class Sample:
    at: float
    phase: str
    latency: float
    ok: bool
    detail: str = ""
    tool: str = "get_time"


PROBES = ("client credentials", "login")  # what the probe tries, once a second each


@dataclass
class Timeline:
    """What happened when: the phases, the tool calls and the probes."""

    phase: str = "baseline"
    phases: list[tuple[str, float]] = field(default_factory=list)
    calls: list[Sample] = field(default_factory=list)
    probes: list[tuple[float, str, str, bool]] = field(default_factory=list)  # at, phase, kind, ok
    probe_errors: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (phase, kind): why

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.phases.append((phase, time.monotonic()))

    async def recovered(self, within: float) -> None:
        """Wait, at most `within` seconds, until the latest probes of this phase — of every kind —
        worked: a fault's phase lasts until the stack has recovered from it, not a fixed time, so
        the next phase does not inherit its tail (Keycloak takes a while to use its database again
        after PostgreSQL restarts, longer on a busy machine)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            latest = {kind: ok for _, phase, kind, ok in self.probes if phase == self.phase}
            if set(latest) == set(PROBES) and all(latest.values()):
                return
            await asyncio.sleep(0.5)


def _token_and_expiry(stack: Stack) -> tuple[str, float]:
    response = request_token(stack)
    response.raise_for_status()
    return response.json()["access_token"], time.time() + float(response.json()["expires_in"])


async def agent(stack: Stack, timeline: Timeline, stop: asyncio.Event) -> None:
    """One agent: a valid token (renewed a minute before it expires), tool calls back to back."""
    token, expires = await asyncio.to_thread(_token_and_expiry, stack)
    async with stack.async_client() as http:
        while not stop.is_set():
            if expires - time.time() < 60:
                # A failed renewal is the probe's business: the old token is still valid.
                with contextlib.suppress(httpx2.HTTPError):
                    token, expires = await asyncio.to_thread(_token_and_expiry, stack)
            started = time.monotonic()
            try:
                response = await http.post(stack.resource_url, json=CALL, headers={**HEADERS, "authorization": f"Bearer {token}"})
                ok = response.status_code == 200 and not response.json()["result"].get("isError")
                detail = "" if ok else f"{response.status_code} {response.text[:120]}"
            except httpx2.HTTPError as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            timeline.calls.append(Sample(time.time(), timeline.phase, time.monotonic() - started, ok, detail))


def _alice_login(stack: Stack) -> dict[str, str]:
    with stack.client(follow_redirects=False) as http:
        tokens = exchange(http, stack, authorize(http, stack, "alice", stack.secret(PASSWORDS["alice"])))
    return {k: str(v) for k, v in tokens.items() if k in ("access_token", "refresh_token")}


def _alice_renewed(stack: Stack, tokens: dict[str, str]) -> dict[str, str] | None:
    """A new access token for alice: by her refresh token, else by a new login; None if Keycloak
    cannot give one now (the probe's business: her current token is still valid)."""
    try:
        with stack.client() as http:
            response = http.post(stack.token_endpoint(), data={
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": BEARER_CLIENT})
        if response.status_code == 200:
            renewed = response.json()
            remember(renewed.get("access_token"), renewed.get("refresh_token"))
            return {"access_token": renewed["access_token"], "refresh_token": renewed["refresh_token"]}
        return _alice_login(stack)
    except (AssertionError, httpx2.HTTPError, KeyError, ValueError):
        return None


async def _call(http: httpx2.AsyncClient, stack: Stack, token: str, tool: str, arguments: dict) -> tuple[bool, str, dict]:
    call = {**CALL, "params": {"name": tool, "arguments": arguments}}
    try:
        response = await http.post(stack.resource_url, json=call, headers={**HEADERS, "authorization": f"Bearer {token}"})
    except httpx2.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}", {}
    if response.status_code != 200:
        return False, f"{response.status_code} {response.text[:120]}", {}
    try:
        result = response.json()["result"]
    except (KeyError, ValueError):
        return False, f"no JSON-RPC result: {response.text[:160]}", {}
    if result.get("isError"):
        return False, f"tool error: {result['content'][0]['text'][:200]}", {}
    return True, "", result.get("structuredContent") or {}


async def notes_agent(stack: Stack, timeline: Timeline, stop: asyncio.Event) -> None:
    """alice, round after round: a new access token, then add_note, delete_note (the note just
    added: the count stays bounded) and list_notes — each round's first write and read exchange
    her new token at Keycloak; the delete reuses the write exchange from the cache."""
    tokens: dict[str, str] | None = None
    while tokens is None and not stop.is_set():
        # The first login may meet a fault too; that is the probe's business, not a failed call.
        try:
            tokens = await asyncio.to_thread(_alice_login, stack)
        except (AssertionError, httpx2.HTTPError, KeyError, ValueError) as exc:
            timeline.probe_errors.setdefault((timeline.phase, "notes agent login"), []).append(
                f"{type(exc).__name__}: {str(exc)[:160]}")
            await asyncio.sleep(1)
    if tokens is None:
        return
    async with stack.async_client() as http:

        async def timed(tool: str, arguments: dict) -> dict:
            started = time.monotonic()
            ok, detail, content = await _call(http, stack, tokens["access_token"], tool, arguments)
            timeline.calls.append(Sample(time.time(), timeline.phase, time.monotonic() - started, ok, detail, tool))
            return content

        while not stop.is_set():
            tokens = await asyncio.to_thread(_alice_renewed, stack, tokens) or tokens
            note = (await timed("add_note", {"text": "chaos"})).get("note") or {}
            if "id" in note:
                await timed("delete_note", {"note_id": note["id"]})
            await timed("list_notes", {})


def _probe_once(stack: Stack, kind: str) -> str:
    """'' when it worked, else why not (status and the start of the answer, never a token)."""
    try:
        if kind == "client credentials":
            response = request_token(stack)
            if response.status_code != 200:
                return f"token {response.status_code} {response.text[:120]}"
            with stack.client() as http:
                call = http.post(stack.resource_url, json=CALL, headers={
                    **HEADERS, "authorization": f"Bearer {response.json()['access_token']}"})
            return "" if call.status_code == 200 else f"tool call {call.status_code}"
        with stack.client(follow_redirects=False) as http:
            tokens = exchange(http, stack, authorize(http, stack, "alice", stack.secret("demo-user-password")))
        return "" if tokens.get("access_token") else "no access token"
    except (AssertionError, httpx2.HTTPError, KeyError, ValueError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:160]}"


async def probe(stack: Stack, timeline: Timeline, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        for kind in PROBES:
            error = await asyncio.to_thread(_probe_once, stack, kind)
            timeline.probes.append((time.time(), timeline.phase, kind, not error))
            if error:
                timeline.probe_errors.setdefault((timeline.phase, kind), []).append(error)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


class Faults:
    def __init__(self, compose: DockerCompose, stack: Stack) -> None:
        self.compose, self.stack = compose, stack
        self.rotated_key: str | None = None

    def _compose(self, *args: str) -> None:
        subprocess.run([*self.compose.docker_compose_command(), *args], cwd=self.compose.context, check=True,
                       capture_output=True, timeout=300)

    async def healthy(self, service: str, within: float = 240) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            out = subprocess.run([*self.compose.docker_compose_command(), "ps", "--format", "json", service],
                                 cwd=self.compose.context, capture_output=True, text=True).stdout
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
            if rows and rows[0].get("Health") == "healthy":
                return
            await asyncio.sleep(1)
        raise TimeoutError(f"{service} did not become healthy in {within} s")

    async def kill(self, service: str, signal: str = "SIGTERM") -> None:
        """Stop a node the way ECS stops a task (SIGTERM: it may finish what it is doing and leave
        its cluster); SIGKILL for a crash."""
        await asyncio.to_thread(self._compose, "kill", "-s", signal, service)

    async def start(self, service: str) -> None:
        await asyncio.to_thread(self._compose, "start", service)
        await self.healthy(service)

    async def restart(self, service: str) -> None:
        await asyncio.to_thread(self._compose, "restart", service)
        await self.healthy(service)

    def _kcadm(self, *args: str) -> str:
        return kcadm(self.compose, self.stack, *args)

    async def rotate_signing_key(self) -> None:
        """A new RSA key, higher priority: it signs from now on; the old one stays for verification."""
        realm = (await asyncio.to_thread(kcadm_json, self.compose, self.stack, "get", "realms/mcp", "--fields", "id"))["id"]
        out = await asyncio.to_thread(
            self._kcadm, "create", "components", "-r", "mcp", "-s", "name=chaos-rotated-key", "-s", "providerId=rsa-generated",
            "-s", "providerType=org.keycloak.keys.KeyProvider", "-s", f"parentId={realm}", "-s", 'config.priority=["500"]',
            "-s", 'config.keySize=["2048"]', "-i")
        self.rotated_key = out.strip()

    async def undo_rotation(self) -> None:
        if self.rotated_key:
            await asyncio.to_thread(self._kcadm, "delete", f"components/{self.rotated_key}", "-r", "mcp")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def outage(timeline: Timeline, phase: str, kind: str) -> float:
    """Seconds from the phase's start to the first success after its last failure (0: none failed)."""
    start = dict(timeline.phases)[phase]
    wall_start = time.time() - (time.monotonic() - start)
    in_phase = [(at, ok) for at, p, k, ok in timeline.probes if p == phase and k == kind]
    failures = [at for at, ok in in_phase if not ok]
    if not failures:
        return 0.0
    recovered = [at for at, ok in in_phase if ok and at > failures[-1]]
    return (recovered[0] if recovered else failures[-1]) - wall_start


def report(timeline: Timeline) -> str:
    lines = [f"{'phase':<26}{'calls':>7}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'notes calls':>13}{'errors':>8}"
             f"{'p99 ms':>9}{'cc down s':>11}{'login down s':>14}"]
    for phase, _ in timeline.phases:
        calls = [c for c in timeline.calls if c.phase == phase and c.tool == "get_time"]
        notes = [c for c in timeline.calls if c.phase == phase and c.tool != "get_time"]
        latencies = [c.latency * 1000 for c in calls]
        errors = sum(not c.ok for c in calls)
        lines.append(f"{phase:<26}{len(calls):>7}{errors:>8}{percentile(latencies, 50):>9.1f}{percentile(latencies, 99):>9.1f}"
                     f"{len(notes):>13}{sum(not c.ok for c in notes):>8}{percentile([c.latency * 1000 for c in notes], 99):>9.1f}"
                     f"{outage(timeline, phase, 'client credentials'):>11.1f}{outage(timeline, phase, 'login'):>14.1f}")
    for (phase, kind), errors in timeline.probe_errors.items():
        lines.append(f"  {phase}, {kind}: {len(errors)} failed, first: {errors[0]}")
    for call in [c for c in timeline.calls if not c.ok][:5]:
        lines.append(f"  failed {call.tool} call in '{call.phase}' after {call.latency:.1f} s: {call.detail}")
    return "\n".join(lines)
