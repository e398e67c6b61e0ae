"""Python MCP clients other than our agent, each in its own virtualenv (.local/interop/<name>,
from tests/interop/python/<name>.txt): the `mcp` 1.x line's OAuthClientProvider, still the most
deployed Python client. It registers dynamically (DCR with a loopback redirect), then PKCE and a
tool call; a real browser plays the user."""

from __future__ import annotations

import json
import subprocess

import pytest
from testcontainers.compose import DockerCompose

from tests.support.browser import User, chromium
from tests.support.keycloak import delete_clients
from tests.support.net import free_port
from tests.support.stack import ROOT, STATE, Stack

pytestmark = pytest.mark.anyio


async def test_mcp_1x_oauth_client_registers_logs_in_and_calls_a_tool(stack: Stack, compose: DockerCompose):
    python = STATE / "interop" / "mcp1" / "bin" / "python"
    assert python.exists(), "the interop clients are not installed; run the tests with `make test`"
    process = subprocess.Popen(
        [str(python), str(ROOT / "tests" / "interop" / "python" / "mcp1_client.py"), stack.resource_url,
         str(free_port()), str(stack.ca_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        authorize = json.loads(process.stdout.readline())["authorize"]
        async with chromium(stack.ca_file, User("alice", stack.secret("demo-user-password"))) as browser:
            await browser.open(authorize)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert delete_clients(compose, stack, result["client_id"]) == 1  # the DCR registration, gone again
    assert result["tools"] == ["get_time", "whoami", "server_stats"]
    assert result["whoami"]["client_id"] == result["client_id"]
    assert result["whoami"]["audience"] == [stack.resource_url]
