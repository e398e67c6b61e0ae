"""`mcp-remote` (npm, version in tests/interop/node/package-lock.json): the stdio-to-remote bridge
desktop MCP hosts launch. It discovers, registers by DCR (redirect
http://localhost:<port>/oauth/callback), prints a sign-in URL for the user, and then bridges
JSON-RPC on its stdin/stdout to the server — here a real browser signs in and the test speaks
MCP on its stdio."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile

import pytest
from testcontainers.compose import DockerCompose

from tests.support.browser import User, chromium
from tests.support.keycloak import delete_clients
from tests.support.mcp import TOOL_NAMES
from tests.support.net import free_port
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.anyio

NODE_DIR = ROOT / "tests" / "interop" / "node"
REQUESTS = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "interop", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
]


@pytest.mark.matrix("mcp-remote", "DCR")
async def test_mcp_remote_signs_in_and_bridges_tools_over_stdio(stack: Stack, compose: DockerCompose):
    node = NODE_DIR / "node_modules" / ".bin" / "node"
    assert node.exists(), "the interop clients are not installed; run the tests with `make test`"
    with tempfile.TemporaryDirectory() as config:
        # PATH empty: it cannot launch a desktop browser (the test's browser signs in instead).
        env = {"NODE_EXTRA_CA_CERTS": str(stack.ca_file), "MCP_REMOTE_CONFIG_DIR": config, "HOME": config,
               "PATH": "", "NODE_OPTIONS": f"--require {NODE_DIR / 'localhost.cjs'}"}
        bridge = subprocess.Popen(
            [str(node), str(NODE_DIR / "node_modules" / "mcp-remote" / "dist" / "proxy.js"), stack.resource_url,
             str(free_port())], cwd=NODE_DIR, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            authorize = None
            for line in bridge.stderr:  # its log, then the sign-in URL
                if match := re.search(r"(https://\S+/protocol/openid-connect/auth\?\S+)", line):
                    authorize = match.group(1)
                    break
            assert authorize, "mcp-remote printed no sign-in URL"
            async with chromium(stack.ca_file, User("alice", stack.secret("demo-user-password"))) as browser:
                await browser.open(authorize)
            for request in REQUESTS:
                bridge.stdin.write(json.dumps(request) + "\n")
                bridge.stdin.flush()
            answers: dict[int, dict] = {}
            while len(answers) < 3:
                line = bridge.stdout.readline()
                assert line, "mcp-remote closed its stdout"
                message = json.loads(line)
                if "id" in message:
                    answers[message["id"]] = message
        finally:
            bridge.kill()
    assert [t["name"] for t in answers[2]["result"]["tools"]] == TOOL_NAMES
    whoami = answers[3]["result"].get("structuredContent") or json.loads(answers[3]["result"]["content"][0]["text"])
    assert delete_clients(compose, stack, whoami["client_id"]) == 1  # its DCR registration, gone again
    assert whoami["audience"] == [stack.resource_url]
    assert "mcp:tools" in whoami["granted_scopes"]
