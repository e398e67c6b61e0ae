"""No token passthrough, no confused deputy, no scope escalation at the notes API (docs/security.md).

MCP forbids the MCP server to pass the token it received on to another API (RS13). Here that is
not only a rule the server follows but one the stack enforces: the API refuses a token whose
audience is the MCP server; only the MCP server's own client may exchange a token for the API's
audience; and the exchange grants no scope the MCP server's client or the user lacks."""

from __future__ import annotations

import pytest

from cimd_host.keys import current_key
from mcp_agent.assertion import client_assertion, form_fields
from tests.support.downstream import (
    audiences,
    claims,
    mcp_server_client,
    token_exchange,
    user_token,
)
from tests.support.secrets import remember
from tests.support.stack import Stack
from tests.support.tokens import CLIENT_ID as MACHINE_CLIENT
from tests.support.tokens import token as machine_token

pytestmark = pytest.mark.security


def notes(stack: Stack, token: str):
    with stack.client() as http:
        return http.get(f"{stack.api_url}/notes", headers={"authorization": f"Bearer {token}"})


@pytest.mark.blackbox
def test_the_api_refuses_the_token_the_mcp_server_received(stack: Stack):
    """Passthrough cannot work: alice's token for the MCP server is refused by the API."""
    alice = user_token(stack, "alice")
    response = notes(stack, alice)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "audience" in response.json()["error_description"]


@pytest.mark.blackbox
def test_the_api_answers_an_rfc6750_challenge_without_a_token(stack: Stack):
    with stack.client() as http:
        response = http.get(f"{stack.api_url}/notes")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="notes:read", resource_metadata="{stack.api_url}/.well-known/oauth-protected-resource"')


def test_the_mcp_servers_exchange_yields_a_token_for_the_api_alone_with_only_the_asked_scope(stack: Stack):
    alice = user_token(stack, "alice")
    response = token_exchange(stack, alice, mcp_server_client(stack), scope="notes:read")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "refresh_token" not in answer  # never asked for, never issued
    exchanged = claims(answer["access_token"])
    assert audiences(exchanged) == [stack.api_url]
    assert exchanged["azp"] == stack.resource_url
    assert exchanged["sub"] == claims(alice)["sub"]
    assert "notes:read" in exchanged["scope"].split()
    assert "notes:write" not in exchanged["scope"].split()
    assert not {s for s in exchanged["scope"].split() if s.startswith("mcp:")}
    # And the API takes it (the write scope it lacks is a 403 naming it).
    assert notes(stack, answer["access_token"]).status_code == 200
    with stack.client() as http:
        write = http.post(f"{stack.api_url}/notes", json={"text": "x"},
                          headers={"authorization": f"Bearer {answer['access_token']}"})
    assert write.status_code == 403
    assert 'error="insufficient_scope"' in write.headers["www-authenticate"]
    assert 'scope="notes:write"' in write.headers["www-authenticate"]


@pytest.mark.blackbox
def test_an_agents_client_cannot_exchange_its_token_for_the_api(stack: Stack):
    """Confused deputy: the machine agent (a confidential client with its own key) holds a token
    for the MCP server; exchanging it for the API is not its to do — only the MCP server may."""
    token = machine_token(stack)
    kid, pem = current_key(stack.key_dir("machine"))
    assertion = client_assertion(client_id=MACHINE_CLIENT, audience=stack.token_endpoint(), key_id=kid, private_key=pem)
    remember(assertion)
    for scope in ("notes:read", None):
        response = token_exchange(stack, token, form_fields(assertion), scope=scope)
        assert response.status_code in (400, 401, 403), response.text
        assert "access_token" not in response.json()
        assertion = client_assertion(client_id=MACHINE_CLIENT, audience=stack.token_endpoint(), key_id=kid,
                                     private_key=pem)
        remember(assertion)


@pytest.mark.blackbox
def test_a_public_agent_client_cannot_exchange(stack: Stack):
    """The pre-registered public agent client: Keycloak never lets a public client exchange."""
    alice = user_token(stack, "alice")
    response = token_exchange(stack, alice, {"client_id": "mcp-agent"}, scope="notes:read")
    assert response.status_code in (400, 401, 403), response.text
    assert "access_token" not in response.json()


def test_a_scope_beyond_the_mcp_servers_client_is_refused(stack: Stack):
    """The exchange cannot upgrade alice's token: mcp:admin is neither her role's nor the MCP server's client's scope."""
    alice = user_token(stack, "alice")
    for scope in ("notes:read mcp:admin", "mcp:tools"):
        response = token_exchange(stack, alice, mcp_server_client(stack), scope=scope)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_scope"
        assert "access_token" not in response.json()


def test_a_scope_beyond_the_users_roles_is_refused(stack: Stack):
    """ada holds every MCP role but not notes-user: the MCP server cannot get her a notes token."""
    ada = user_token(stack, "ada")
    for scope in ("notes:read", "notes:write"):
        response = token_exchange(stack, ada, mcp_server_client(stack), scope=scope)
        assert response.status_code in (400, 403), response.text
        assert "access_token" not in response.json()


def test_the_exchanged_token_is_no_good_at_the_mcp_server(stack: Stack):
    """The other direction: a token for the API is refused by the MCP server (its audience is the API)."""
    from tests.support.mcp import rpc

    response = token_exchange(stack, user_token(stack, "alice"), mcp_server_client(stack), scope="notes:read")
    assert response.status_code == 200, response.text
    answer = rpc(stack, f"Bearer {response.json()['access_token']}")
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
