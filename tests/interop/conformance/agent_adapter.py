"""The demo agent as a client under test for the official conformance suite's `client` mode.

The suite starts a mock MCP server and authorization server per scenario, then runs this with
the server URL as the last argument, the scenario in MCP_CONFORMANCE_SCENARIO, scenario data
(pre-registered credentials, a machine key) in MCP_CONFORMANCE_CONTEXT and the protocol
version in MCP_CONFORMANCE_PROTOCOL_VERSION. Everything OAuth is the agent's own code
(`mcp_agent.agent.connect`); this file only maps the scenario onto the agent's settings and
plays the user: the mock authorization server approves at once, so "the browser" is one GET
that follows its redirect to the agent's loopback callback.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import httpx2
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm

from mcp_agent.agent import connect
from mcp_agent.config import AgentSettings
from mcp_agent.errors import explain
from mcp_agent.registration import authorization_server_metadata

# The URL the suite expects a CIMD-capable client to use as its client_id (auth/basic-cimd);
# its mock authorization server does not fetch it.
HARNESS_CIMD_URL = "https://conformance-test.local/client-metadata.json"
MACHINE_SCENARIOS = {"auth/client-credentials-jwt", "auth/client-credentials-basic"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_secret(directory: Path, name: str, value: str) -> Path:
    path = directory / name
    path.write_text(value)
    path.chmod(0o600)
    return path


def write_private_jwk(directory: Path, private_key_pem: str, *, kid: str) -> Path:
    """The harness's key as the agent reads a signing key: a private JWK with its kid (ES256, as
    the agent has always signed with it)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    jwk = ECAlgorithm.to_jwk(key, as_dict=True)  # type: ignore[arg-type]
    return write_secret(directory, "machine-key.jwk", json.dumps({**jwk, "kid": kid, "alg": "ES256"}))


async def approve(url: str) -> None:
    """The user: the mock AS redirects to the callback at once; deliver that redirect."""
    async with httpx2.AsyncClient(timeout=30.0) as http:
        response = await http.get(url)
        if response.status_code in (301, 302, 303, 307, 308):
            await http.get(response.headers["location"])


async def settings_for(scenario: str, context: dict[str, Any], server_url: str, work: Path) -> tuple[AgentSettings, bool]:
    common: dict[str, Any] = {"server_url": server_url, "state_dir": work / "state", "callback_port": free_port(),
                              "open_browser": False, "login_timeout_seconds": 30.0}
    if scenario in MACHINE_SCENARIOS:
        async with httpx2.AsyncClient(timeout=30.0) as http:
            metadata = await authorization_server_metadata(http, server_url)
        issuer = str(metadata.issuer) if metadata else None
        machine: dict[str, Any] = {"machine_client_id": context["client_id"], "machine_issuer": issuer, "machine_scope": None}
        if "client_secret" in context:
            machine["machine_client_secret_file"] = write_secret(work, "machine-secret", context["client_secret"])
        else:
            machine["machine_key_file"] = write_private_jwk(work, context["private_key_pem"], kid="conformance")
        return AgentSettings(**common, **machine), True
    if "client_id" in context:  # pre-registered (auth/pre-registration): a confidential client
        secret = write_secret(work, "client-secret", context["client_secret"])
        return AgentSettings(**common, registration="preregistered", preregistered_client_id=context["client_id"],
                             preregistered_client_secret_file=secret), False
    # CIMD when the AS advertises it, else dynamic registration: the agent's own choice.
    return AgentSettings(**common, registration="cimd", client_metadata_url=HARNESS_CIMD_URL), False


async def run(server_url: str) -> None:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION")
    mode = "legacy" if version and version <= "2025-11-25" else (version or "auto")
    with tempfile.TemporaryDirectory() as tmp:
        settings, machine = await settings_for(scenario, context, server_url, Path(tmp))
        async with connect(settings, machine=machine, redirect=approve, mode=mode) as (client, _):
            tools = await client.list_tools()
            if tools.tools:
                await client.call_tool(tools.tools[0].name, {})


def main() -> int:
    try:
        anyio.run(run, sys.argv[-1])
    except BaseException as exc:  # the suite reads the exit code and stderr
        print(f"agent: {explain(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
