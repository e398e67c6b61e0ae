"""The resource server behind Caddy, with real Keycloak tokens (RS1-RS17)."""

from __future__ import annotations

import subprocess

import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from testcontainers.compose import DockerCompose

from tests.support.keycloak import services
from tests.support.login import bearer_client
from tests.support.mcp import TOOL_NAMES, rpc
from tests.support.stack import Stack
from tests.support.tokens import ADMIN_CLIENT_ID, CLIENT_ID, token

pytestmark = pytest.mark.blackbox


def prm_url(stack: Stack) -> str:
    return f"{stack.mcp_origin}/.well-known/oauth-protected-resource/mcp"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_calls_get_time_and_whoami_with_a_keycloak_token(stack: Stack, mode: str):
    """Both the 2025-11-25 handshake (legacy) and the stateless 2026-07-28 wire."""
    access_token = token(stack)
    async with stack.async_client(headers={"authorization": f"Bearer {access_token}"}) as http:
        async with Client(streamable_http_client(stack.resource_url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            assert {t.name for t in tools.tools} == set(TOOL_NAMES)
            now = await client.call_tool("get_time", {"timezone": "UTC"})
            assert not now.is_error
            who = await client.call_tool("whoami", {})
    info = who.structured_content
    # The client the token was issued to: the machine twin; remotely, the run's registered client.
    with stack.client() as http:
        assert info["client_id"] == (CLIENT_ID if stack.remote is None else bearer_client(http, stack))
    assert info["issuer"] == stack.issuer
    assert stack.resource_url in info["audience"]


def test_privileged_tool_without_its_scope_gets_the_403_step_up_challenge(stack: Stack):
    """RS15-RS17."""
    response = rpc(stack, f"Bearer {token(stack)}", method="tools/call", params={"name": "server_stats", "arguments": {}})
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope"')
    # RS16: every scope the call needs, the audience scope (mcp:connect) first.
    assert 'scope="mcp:connect mcp:tools mcp:admin"' in challenge
    assert f'resource_metadata="{prm_url(stack)}"' in challenge


def test_privileged_tool_with_its_scope_succeeds(stack: Stack):
    """The admin machine client: its service account holds mcp-admin (docs/authorization.md)."""
    response = rpc(stack, f"Bearer {token(stack, scope='mcp:tools mcp:admin', client_id=ADMIN_CLIENT_ID)}",
                   method="tools/call", params={"name": "server_stats", "arguments": {}})
    assert response.status_code == 200
    assert "tool_calls" in response.json()["result"]["structuredContent"]


def test_unauthenticated_request_gets_401_pointing_at_the_metadata(stack: Stack):
    """RS3, RS4."""
    response = rpc(stack, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer scope="mcp:connect mcp:tools", resource_metadata="{prm_url(stack)}"'


def test_protected_resource_metadata_as_specified(stack: Stack):
    """RS1, RS2, RS3a, RS7 — at the path-suffixed and the root well-known URL."""
    with stack.client() as client:
        for url in (prm_url(stack), f"{stack.mcp_origin}/.well-known/oauth-protected-resource"):
            metadata = client.get(url).json()
            assert metadata["resource"] == stack.resource_url
            assert metadata["authorization_servers"] == [stack.issuer]
            assert metadata["scopes_supported"] == ["mcp:connect", "mcp:tools", "mcp:admin", "mcp:audit"]
            assert metadata["resource_name"]


def test_rejections_are_logged_with_a_reason_and_without_the_token(stack: Stack, compose: DockerCompose):
    access_token = token(stack, scope=None, client_id="mcp-machine-agent-no-audience")
    assert rpc(stack, f"Bearer {access_token}").status_code == 401
    # Whichever replica answered (two in TOPOLOGY=ha) logged it.
    replicas = [s for s in services(compose) if s.startswith("mcp-server")]
    logs = subprocess.run(
        [*compose.docker_compose_command(), "logs", "--no-log-prefix", "--tail=200", *replicas],
        cwd=compose.context, capture_output=True, text=True, check=True,
    ).stdout
    assert "token rejected: missing claim 'aud'" in logs
    assert access_token not in logs
    assert access_token.split(".")[2] not in logs
