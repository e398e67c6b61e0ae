"""Privileged tools see revocation within seconds; ordinary tools until the token's `exp`.

Local JWT validation cannot know that a session ended: a token stays valid until it expires
(300 s in realm `mcp`). For tools declared privileged (server_stats), the MCP server also asks
Keycloak whether the token is still active (RFC 7662 introspection as its own private_key_jwt
client), caching an answer for MCP_INTROSPECTION_CACHE_SECONDS (5 s). So once an admin's session
is revoked or logged out, the admin tool refuses within that bound (docs/authorization.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx2
import pytest
from testcontainers.compose import DockerCompose

from tests.support.keycloak import kcadm, kcadm_json
from tests.support.login import BEARER_CLIENT, authorize, exchange
from tests.support.mcp import rpc
from tests.support.stack import Stack

# MCP_INTROSPECTION_CACHE_SECONDS (the server's default), plus the time a few requests take.
BOUND_SECONDS = 5 + 3


def call(stack: Stack, access_token: str, tool: str) -> httpx2.Response:
    return rpc(stack, f"Bearer {access_token}", method="tools/call", params={"name": tool, "arguments": {}})


def admin_tokens(stack: Stack, http: httpx2.Client) -> dict:
    grant = authorize(http, stack, "ada", stack.secret("admin-user-password"),
                      scope="openid mcp:connect mcp:tools mcp:admin offline_access")
    return exchange(http, stack, grant)


def refused_within(stack: Stack, access_token: str, bound: float) -> float:
    """Seconds until server_stats answers 401 "no longer active" (polled, not slept)."""
    started = time.monotonic()
    while True:
        response = call(stack, access_token, "server_stats")
        if response.status_code == 401:
            assert "no longer active at the authorization server" in response.headers["www-authenticate"]
            return time.monotonic() - started
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < bound, f"server_stats still answered after {bound} s"
        time.sleep(0.25)


def revoke_refresh_token(stack: Stack, http: httpx2.Client, tokens: dict) -> None:
    """RFC 7009: the agent signs out; Keycloak removes the session behind the refresh token."""
    response = http.post(f"{stack.issuer}/protocol/openid-connect/revoke",
                         data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": BEARER_CLIENT})
    assert response.status_code == 200, response.text


def log_out(stack: Stack, http: httpx2.Client, tokens: dict) -> None:
    """OpenID Connect RP-initiated logout, as a client sends it without a browser."""
    response = http.post(f"{stack.issuer}/protocol/openid-connect/logout",
                         data={"client_id": BEARER_CLIENT, "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204, response.text


def make_admin_log_out(compose: DockerCompose, stack: Stack) -> Callable[[Stack, httpx2.Client, dict], None]:
    def admin_log_out(_: Stack, __: httpx2.Client, ___: dict) -> None:
        """An operator ends every session of the user (admin console, "Sign out")."""
        (ada,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", "username=ada", "-q", "exact=true")
        kcadm(compose, stack, "create", f"users/{ada['id']}/logout", "-r", "mcp")
    return admin_log_out


@pytest.mark.parametrize("ending", ["revoked refresh token", "logout", "operator signs the user out"])
def test_the_admin_tool_refuses_an_ended_session_within_seconds_ordinary_tools_until_exp(
        stack: Stack, compose: DockerCompose, ending: str):
    end = {"revoked refresh token": revoke_refresh_token, "logout": log_out,
           "operator signs the user out": make_admin_log_out(compose, stack)}[ending]
    with stack.client() as http:
        tokens = admin_tokens(stack, http)
        access_token = tokens["access_token"]
        assert call(stack, access_token, "server_stats").status_code == 200  # active: cached for a few seconds
        end(stack, http, tokens)
        took = refused_within(stack, access_token, BOUND_SECONDS)
    # Ordinary tools rely on the signature and `exp` alone: the same token still works there.
    response = call(stack, access_token, "get_time")
    assert response.status_code == 200, response.text
    assert took < BOUND_SECONDS


def test_the_admin_tool_works_for_an_active_session_across_the_cache_window(stack: Stack):
    """Introspection answers 'active' for a live session: the admin tool keeps working after the
    cached answer expires (a second introspection)."""
    with stack.client() as http:
        access_token = admin_tokens(stack, http)["access_token"]
    first = call(stack, access_token, "server_stats")
    assert first.status_code == 200, first.text
    # Not a synchronisation: the cached answer has to age past its 5 s, which only time does.
    time.sleep(BOUND_SECONDS)
    assert call(stack, access_token, "server_stats").status_code == 200
