"""Python MCP clients other than our agent, each in its own virtualenv (.local/interop/<name>,
from tests/interop/python/<name>.txt), each against the sandbox as its users run it: dynamic
client registration with a loopback redirect, PKCE, a real browser login and consent, a tool call.

- `mcp` 1.30 (the 1.x line's OAuthClientProvider, still the most deployed Python client);
- FastMCP 4.0 (`fastmcp.client.auth.OAuth`), whose redirect is `http://localhost:<port>/callback`.
"""

from __future__ import annotations

import pytest
from testcontainers.compose import DockerCompose

from tests.support.interop import sign_in_and_run
from tests.support.keycloak import delete_clients
from tests.support.mcp import TOOL_NAMES
from tests.support.net import free_port
from tests.support.stack import ROOT, STATE, Stack

pytestmark = pytest.mark.anyio

CLIENTS = {"mcp1": "mcp1_client.py", "fastmcp": "fastmcp_client.py"}


@pytest.mark.parametrize("client", [
    pytest.param("mcp1", marks=pytest.mark.matrix("`mcp` Python SDK 1.x", "DCR")),
    pytest.param("fastmcp", marks=pytest.mark.matrix("FastMCP client", "DCR")),
])
async def test_python_client_registers_logs_in_and_calls_a_tool(client: str, stack: Stack, compose: DockerCompose):
    python = STATE / "interop" / client / "bin" / "python"
    assert python.exists(), "the interop clients are not installed; run the tests with `make test`"
    result, _ = await sign_in_and_run(
        stack, [str(python), str(ROOT / "tests" / "interop" / "python" / CLIENTS[client]), stack.resource_url,
                str(free_port()), str(stack.ca_file)])
    registered = result["whoami"]["client_id"]
    assert delete_clients(compose, stack, registered) == 1  # its DCR registration, gone again
    assert registered not in ("mcp-agent", f"{stack.cimd_origin}/agents/demo/metadata.json")
    assert result["tools"] == TOOL_NAMES
    assert result["whoami"]["audience"] == [stack.resource_url]
    assert "mcp:tools" in result["whoami"]["granted_scopes"]
