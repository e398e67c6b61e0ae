"""The official MCP conformance suite (npm @modelcontextprotocol/conformance, pinned in
tests/interop/node/package-lock.json), in its two modes that concern authorization:

- `authorization`: the suite as an OAuth client of the real Keycloak (realm `mcp`) — metadata
  and the authorization-code grant with PKCE and `resource`, for each revision. The client it
  uses is registered for the run by anonymous DCR with the suite's loopback callback, and a real
  browser logs in at the URL it prints.
- `client`, every `auth/…` scenario a revision requires plus the client-credentials extensions:
  the demo agent (through conformance/agent_adapter.py) against the suite's mock servers.

Each run's per-scenario results go to .local/interop/conformance/ for docs/clients.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.browser import User, chromium
from tests.support.dcr import registered
from tests.support.matrix import CONFORMANCE
from tests.support.net import free_port
from tests.support.stack import ROOT, Stack

NODE_DIR = ROOT / "tests" / "interop" / "node"
NODE = NODE_DIR / "node_modules" / ".bin" / "node"
SUITE = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
ADAPTER = ROOT / "tests" / "interop" / "conformance" / "agent_adapter.py"
REVISIONS = ["2025-11-25", "2026-07-28"]
# Extensions the demo agent does not implement (each fails for that reason, listed in
# docs/clients.md): enterprise-managed authorization (ID-JAG token exchange), workload identity
# federation (JWT bearer grant). DPoP (`auth/dpop`, `auth/dpop-nonce`) it implements: they pass.
DPOP_SCENARIOS = {"auth/dpop", "auth/dpop-nonce"}
NOT_IMPLEMENTED = {
    "auth/enterprise-managed-authorization": "extension (ID-JAG token exchange): not implemented by the agent",
    "auth/wif-jwt-bearer": "extension (workload identity, JWT bearer grant): not implemented by the agent",
}


def suite(*args: str, stack: Stack, timeout: float = 600, **popen: object) -> subprocess.Popen[str]:
    assert NODE.exists(), "the interop clients are not installed; run the tests with `make test`"
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(stack.ca_file), "NODE_OPTIONS": f"--require {NODE_DIR / 'localhost.cjs'}"}
    return subprocess.Popen([str(NODE), str(SUITE), *args], cwd=NODE_DIR, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def checks(out: Path) -> dict[str, list[dict]]:
    """{scenario: its checks} from an output directory (one checks.json per scenario)."""
    found = {}
    for file in out.rglob("checks.json"):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", str(file.parent.relative_to(out)))
        found[scenario.removeprefix("authorization-server-")] = json.loads(file.read_text())
    return found


def record(name: str, title: str, command: str, results: dict[str, list[dict]], expected: dict[str, str]) -> None:
    CONFORMANCE.mkdir(parents=True, exist_ok=True)
    scenarios = {
        scenario: {"passed": sum(c["status"] == "SUCCESS" for c in found),
                   "failed": sum(c["status"] == "FAILURE" for c in found),
                   **({"expected": expected[scenario]} if scenario in expected else {})}
        for scenario, found in results.items()
    }
    (CONFORMANCE / f"{name}.json").write_text(json.dumps(
        {"title": title, "command": command, "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
         "scenarios": scenarios}, indent=2, sort_keys=True) + "\n")


def failures(found: list[dict]) -> list[str]:
    return [f"{c['id']}: {c.get('errorMessage') or c.get('description')}" for c in found if c["status"] == "FAILURE"]


@pytest.mark.anyio
@pytest.mark.parametrize("revision", REVISIONS)
async def test_keycloak_passes_the_authorization_server_scenarios(revision: str, stack: Stack, tmp_path: Path):
    port = free_port()
    client = {"redirect_uris": [f"http://127.0.0.1:{port}/callback"], "token_endpoint_auth_method": "none",
              "grant_types": ["authorization_code"], "response_types": ["code"], "client_name": "MCP conformance suite"}
    with registered(stack, client) as registration:
        assert registration.status_code == 201, registration.text
        args = ["authorization", "--url", stack.issuer, "--client-id", registration.json()["client_id"],
                "--resource", stack.resource_url, "--port", str(port), "--spec-version", revision,
                "-o", str(tmp_path)]
        run = suite(*args, stack=stack)
        try:
            assert run.stdout is not None
            log = []
            for line in run.stdout:  # the suite prints the URL a user must open, then waits
                log.append(line)
                if line.startswith(f"{stack.issuer}/protocol/openid-connect/auth?"):
                    break
            else:
                pytest.fail("the suite printed no authorization URL:\n" + "".join(log)[-3000:])
            async with chromium(stack.ca_file, User("alice", stack.secret("demo-user-password"))) as browser:
                await browser.open(line.strip())
            rest, _ = run.communicate(timeout=120)
        finally:
            run.kill()
    results = checks(tmp_path)
    record(f"authorization-{revision}", f"Keycloak as authorization server, revision {revision}",
           f"conformance authorization --url {stack.issuer} --spec-version {revision}", results, {})
    assert set(results) == {"authorization-server-metadata-endpoint", "authorization-code-grant"}, "".join(log) + rest
    assert {s: failures(c) for s, c in results.items() if failures(c)} == {}
    assert run.returncode == 0, rest[-3000:]


@pytest.mark.parametrize("revision", REVISIONS)
def test_agent_passes_every_auth_scenario_the_revision_requires(revision: str, stack: Stack, tmp_path: Path):
    """`--requirements <revision>` runs what the revision requires (its auth scenarios at its own
    wire version) plus the extensions, unscored; every auth scenario must pass except the
    extensions the agent does not implement, which must still fail for that reason."""
    command = f"{sys.executable} {ADAPTER}"
    run = suite("client", "--command", command, "--requirements", revision, "--timeout", "120000",
                "-o", str(tmp_path), stack=stack)
    out, _ = run.communicate(timeout=600)
    results = {s: c for s, c in checks(tmp_path).items() if s.startswith("auth/")}
    record(f"client-auth-{revision}", f"Demo agent, client `auth` scenarios of revision {revision}",
           f"conformance client --requirements {revision} --command 'python agent_adapter.py'", results, NOT_IMPLEMENTED)
    assert len(results) > 10, out[-3000:]
    assert {"auth/client-credentials-jwt", "auth/client-credentials-basic", "auth/pre-registration"} <= set(results)
    assert set(results) >= DPOP_SCENARIOS, "the suite no longer runs the DPoP scenarios"
    failing = {s: failures(c) for s, c in results.items() if failures(c)}
    assert {s: f for s, f in failing.items() if s not in NOT_IMPLEMENTED} == {}
    assert set(failing) == set(NOT_IMPLEMENTED) & set(results), "an unimplemented extension passes now: update the list"
    shutil.rmtree(tmp_path, ignore_errors=True)
