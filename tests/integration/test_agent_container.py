"""`make agent`: the agent in its container, the user's browser on the host.

The sign-in URL is printed by the container; the browser (host) logs in; Keycloak redirects to
http://127.0.0.1:<AGENT_CALLBACK_PORT>/callback on the host, which compose publishes into the container.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from testcontainers.compose import DockerCompose

from tests.support.browser import User, chromium, network_settled
from tests.support.mcp import TOOL_NAMES
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.anyio


async def test_make_agent_logs_in_with_the_browser_on_the_host(stack: Stack, compose: DockerCompose):
    base = [*compose.docker_compose_command(), "--profile", "agent"]
    # What `make agent` does, with the build done first so stdout carries only the agent's JSON.
    subprocess.run([*base, "build", "agent"], cwd=compose.context, check=True, capture_output=True, timeout=900)
    name = f"{stack.env['COMPOSE_PROJECT_NAME']}-agent-test"
    command = [*base, "run", "--rm", "--service-ports", "--name", name, "agent"]
    # A clean start. A token left by an earlier stack (another Keycloak's) cannot be revoked: the
    # agent then says so and exits 1, but forgets it all the same.
    fresh = subprocess.run([*command, "logout"], cwd=compose.context, capture_output=True, text=True, timeout=120)
    assert fresh.returncode in (0, 1), fresh.stdout + fresh.stderr
    assert "Traceback" not in fresh.stderr, fresh.stderr
    agent = subprocess.Popen([*command, "--json", "login"], cwd=compose.context, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in agent.stderr:  # build output, then the sign-in URL
            match = re.match(r"\s+(https://\S+/protocol/openid-connect/auth\?\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "the agent printed no sign-in URL"
        await network_settled()  # the agent's container just joined the network
        async with chromium(stack.ca_file, User("alice", stack.secret("demo-user-password"))) as browser:
            await browser.open(url)
        out, err = agent.communicate(timeout=120)
    finally:
        agent.kill()
        # Killing the compose CLI leaves its container (and the published port) behind.
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert agent.returncode == 0, err
    result = json.loads(out)
    assert result["registration"] == "cimd"
    assert result["whoami"]["client_id"] == f"{stack.cimd_origin}/agents/demo/metadata.json"
    assert {t["name"] for t in result["tools"]} == set(TOOL_NAMES)
    # The tokens live on the host, in the checkout, readable only by their owner.
    state = list((ROOT / ".local" / "agent-state").glob("*.json"))
    assert state
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in state)
