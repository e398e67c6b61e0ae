"""DPoP end to end against the real Keycloak and the MCP server behind Caddy (RFC 9449).

The machine client asks for a token with a DPoP proof at the token endpoint; Keycloak binds the
token to the proof's key (`token_type: DPoP`, `cnf.jkt`). The MCP server (MCP_DPOP=allowed, the
sandbox's mode) then takes it only with a fresh proof from that key: not as Bearer, not with
someone else's proof, not twice with the same proof.

Which clients must use DPoP is the realm's decision (docs/decisions.md): the demo agent's own
identities (`mcp-agent`, `mcp-machine-agent`, its CIMD document) require it, their Bearer-allowed
twins in the sandbox realm (`mcp-bearer-client`, `mcp-machine-bearer`, `agents/demo-bearer`) do not."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cimd_host.keys import current_key
from mcp_agent.assertion import client_assertion, form_fields
from mcp_server.dpop import access_token_hash, thumbprint
from tests.support.downstream import PASSWORDS, mcp_server_client, token_exchange
from tests.support.login import BEARER_CLIENT, Authorization, authorize, exchange
from tests.support.secrets import remember
from tests.support.stack import Stack
from tests.support.tokens import CLIENT_ID as MACHINE_BEARER_CLIENT
from tests.support.tokens import DEMO_MACHINE_CLIENT_ID, request_token

GET_TIME = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_time", "arguments": {}}}


def jwk_of(key: Any) -> dict[str, Any]:
    return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))


def proof(key: Any, method: str, url: str, token: str | None = None) -> str:
    claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time()),
              **({"ath": access_token_hash(token)} if token else {})}
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": jwk_of(key)})


def call(stack: Stack, authorization: str, *proofs: str, body: dict[str, Any] = GET_TIME) -> httpx2.Response:
    headers = [("authorization", authorization), ("accept", "application/json, text/event-stream"),
               ("mcp-protocol-version", "2025-11-25"), *(("dpop", p) for p in proofs)]
    with stack.client() as http:
        return http.post(stack.resource_url, json=body, headers=headers)


def alice_bound_to(stack: Stack, key: Any) -> str:
    """alice's access token for the MCP server, bound to `key` (a DPoP proof with the code exchange)."""
    with stack.client() as http:
        grant = authorize(http, stack, "alice", stack.secret(PASSWORDS["alice"]), client_id="mcp-agent",
                          scope="openid mcp:tools")
        tokens = exchange(http, stack, grant, headers={"DPoP": proof(key, "POST", stack.token_endpoint())})
    remember(tokens["access_token"], tokens.get("refresh_token"))
    assert tokens["token_type"] == "DPoP"
    return str(tokens["access_token"])


@pytest.mark.blackbox  # the machine client's key and the public URLs: make test-remote runs it too
def test_keycloak_binds_the_token_and_the_mcp_server_checks_the_binding(stack: Stack):
    key = ec.generate_private_key(ec.SECP256R1())
    issued = request_token(stack, client_id=DEMO_MACHINE_CLIENT_ID,
                           headers={"DPoP": proof(key, "POST", stack.token_endpoint())})
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    token = issued.json()["access_token"]
    remember(token)
    # Keycloak adds its own member beside jkt (`kc-jkt-type`); jkt is what binds.
    assert jwt.decode(token, options={"verify_signature": False})["cnf"]["jkt"] == thumbprint(jwk_of(key))

    # With a fresh proof from the key: the tool runs.
    once = proof(key, "POST", stack.resource_url, token)
    answered = call(stack, f"DPoP {token}", once)
    assert answered.status_code == 200, answered.text
    assert answered.json()["result"]["isError"] is False

    # The same proof again, more times than there are replicas: a replay. Each replica remembers
    # the proofs it accepted (docs/resource-server.md, the per-replica guarantee): a replay may be
    # accepted once by each replica that has not seen it — at most once in TOPOLOGY=ha (two
    # replicas behind Caddy), never with one replica — and never twice by the same one.
    replays = [call(stack, f"DPoP {token}", once) for _ in range(stack.mcp_replicas + 2)]
    refused = [r for r in replays if r.status_code == 401]
    assert all(r.status_code in (200, 401) for r in replays), [r.status_code for r in replays]
    assert len(replays) - len(refused) <= stack.mcp_replicas - 1, \
        f"{[r.status_code for r in replays]} with {stack.mcp_replicas} MCP replica(s)"
    for replayed in refused:
        assert replayed.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
        assert "replayed" in replayed.json()["error_description"]

    # Stolen: the token without its key, as Bearer or with the thief's own proof.
    as_bearer = call(stack, f"Bearer {token}")
    assert as_bearer.status_code == 401
    assert "token is DPoP-bound" in as_bearer.json()["error_description"]
    thief = ec.generate_private_key(ec.SECP256R1())
    stolen = call(stack, f"DPoP {token}", proof(thief, "POST", stack.resource_url, token))
    assert stolen.status_code == 401
    assert "not the key the token is bound to" in stolen.json()["error_description"]

    # A proof made for the token endpoint is not one for the MCP server.
    elsewhere = call(stack, f"DPoP {token}", proof(key, "POST", stack.token_endpoint(), token))
    assert elsewhere.status_code == 401
    assert "htu is not this request's URI" in elsewhere.json()["error_description"]


@pytest.mark.blackbox
def test_prm_advertises_dpop_and_bearer_clients_keep_working(stack: Stack):
    with stack.client() as http:
        document = http.get(f"{stack.mcp_origin}/.well-known/oauth-protected-resource/mcp").json()
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    issued = request_token(stack)  # the Bearer-allowed twin: no proof, a Bearer token
    assert issued.json()["token_type"] == "Bearer"
    as_bearer = call(stack, f"Bearer {issued.json()['access_token']}")
    if stack.remote is not None and document.get("dpop_bound_access_tokens_required") is True:
        # A deployment with MCP_DPOP=required (the AWS template's `dpop` setting) says so in PRM
        # and keeps its word: an unbound bearer token is refused, naming DPoP.
        assert as_bearer.status_code == 401, as_bearer.text
        assert as_bearer.headers["www-authenticate"].startswith("DPoP ")
        return
    # The sandbox's mode, and the default: DPoP allowed, not required.
    assert "dpop_bound_access_tokens_required" not in document
    assert as_bearer.status_code == 200, as_bearer.text


def test_keycloak_refuses_to_exchange_a_dpop_bound_token_for_any_client_but_its_own(stack: Stack):
    """What Keycloak 26.7.3 does with a DPoP-bound subject token in standard token exchange: the
    MCP server's client is refused before audience and permissions are looked at, with or without a
    proof from the very key the token is bound to (keycloak#51205). docs/decisions.md, "DPoP and
    token exchange", builds on this; an upgrade that changes it fails here."""
    key = ec.generate_private_key(ec.SECP256R1())
    bound = alice_bound_to(stack, key)
    for headers in ({}, {"DPoP": proof(key, "POST", stack.token_endpoint())}):
        refused = token_exchange(stack, bound, mcp_server_client(stack), scope="notes:read", headers=headers)
        assert refused.status_code == 400, refused.text
        assert "not issued for the requesting client" in refused.json()["error_description"]


def test_an_api_backed_tool_tells_a_dpop_bound_caller_why_it_cannot_act_for_them(stack: Stack):
    key = ec.generate_private_key(ec.SECP256R1())
    bound = alice_bound_to(stack, key)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_notes", "arguments": {}}}
    answered = call(stack, f"DPoP {bound}", proof(key, "POST", stack.resource_url, bound), body=body)
    assert answered.status_code == 200, answered.text
    result = answered.json()["result"]
    assert result["isError"] is True
    assert "cannot act for a DPoP-bound session" in result["content"][0]["text"]


# --- which clients must use DPoP: the realm's decision (issue 20.1) --------------------------


DEMO_CIMD = "/agents/demo/metadata.json"
BEARER_CIMD = "/agents/demo-bearer/metadata.json"


def assert_refused_without_a_proof(response: httpx2.Response) -> None:
    """Keycloak 26.7.3's answer to a token request without a proof from a client that requires
    DPoP (`dpop.bound.access.tokens`): no token, `invalid_request` naming the missing proof (RFC
    9449 §5 keeps `invalid_dpop_proof` for a proof that is there but wrong)."""
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_request", "error_description": "DPoP proof is missing"}


def assert_bound(response: httpx2.Response, key: Any) -> None:
    assert response.status_code == 200, response.text
    remember(response.json()["access_token"], response.json().get("refresh_token"))
    assert response.json()["token_type"] == "DPoP"
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == thumbprint(jwk_of(key))


def assert_bearer(response: httpx2.Response) -> None:
    assert response.status_code == 200, response.text
    remember(response.json()["access_token"], response.json().get("refresh_token"))
    assert response.json()["token_type"] == "Bearer"
    assert "cnf" not in jwt.decode(response.json()["access_token"], options={"verify_signature": False})


def code_exchange(stack: Stack, grant: Authorization, headers: dict[str, str],
                  client_auth: dict[str, str] | None = None) -> httpx2.Response:
    with stack.client() as http:
        return http.post(stack.token_endpoint(), headers=headers, data={
            "grant_type": "authorization_code", "code": grant.code, "redirect_uri": grant.redirect_uri,
            "client_id": grant.client_id, "code_verifier": grant.verifier, **(client_auth or {})})


def alice_code(stack: Stack, client_id: str) -> Authorization:
    """A code for alice, from a login of its own (a new browser session each time)."""
    with stack.client() as http:
        return authorize(http, stack, "alice", stack.secret(PASSWORDS["alice"]), client_id=client_id,
                         scope="openid mcp:tools")


@pytest.mark.blackbox  # the shared realm's machine client and its key: a deployment has it too
def test_the_demo_agents_machine_client_requires_a_proof(stack: Stack):
    """mcp-machine-agent (client credentials, private_key_jwt): without a proof Keycloak refuses
    the token request; with one the token is bound to the proof's key."""
    assert_refused_without_a_proof(request_token(stack, client_id=DEMO_MACHINE_CLIENT_ID))
    key = ec.generate_private_key(ec.SECP256R1())
    assert_bound(request_token(stack, client_id=DEMO_MACHINE_CLIENT_ID,
                               headers={"DPoP": proof(key, "POST", stack.token_endpoint())}), key)


def test_the_demo_agents_preregistered_client_requires_a_proof(stack: Stack):
    """mcp-agent (public, code + PKCE): the code exchange without a proof is refused, with one the
    token is bound."""
    key = ec.generate_private_key(ec.SECP256R1())
    assert_refused_without_a_proof(code_exchange(stack, alice_code(stack, "mcp-agent"), {}))
    assert_bound(code_exchange(stack, alice_code(stack, "mcp-agent"), {"DPoP": proof(key, "POST", stack.token_endpoint())}),
                 key)


def test_the_demo_agents_cimd_document_requires_a_proof(stack: Stack):
    """The document says `dpop_bound_access_tokens: true` (RFC 9449 §5.2), and Keycloak holds the
    client it makes from it to that: a code exchange with a valid private_key_jwt assertion but no
    proof is refused."""
    with stack.client() as http:
        document = http.get(stack.cimd_origin + DEMO_CIMD).json()
    assert document["dpop_bound_access_tokens"] is True
    client_id = stack.cimd_origin + DEMO_CIMD
    grant = alice_code(stack, client_id)
    kid, pem = current_key(stack.key_dir("demo"))
    assertion = client_assertion(client_id=client_id, audience=stack.issuer, key_id=kid, private_key=pem)
    remember(assertion)
    assert_refused_without_a_proof(code_exchange(stack, grant, {}, client_auth=form_fields(assertion)))


def test_the_bearer_twins_issue_bearer_tokens_without_a_proof(stack: Stack):
    """The sandbox's twins for Bearer-only software (the tests' helpers, the TypeScript SDK 1.x):
    the same flows as the demo agent's identities, no proof, an unbound Bearer token."""
    assert_bearer(request_token(stack, client_id=MACHINE_BEARER_CLIENT))
    assert_bearer(code_exchange(stack, alice_code(stack, BEARER_CLIENT), {}))
    with stack.client() as http:
        document = http.get(stack.cimd_origin + BEARER_CIMD).json()
    assert "dpop_bound_access_tokens" not in document
    client_id = stack.cimd_origin + BEARER_CIMD
    grant = alice_code(stack, client_id)
    kid, pem = current_key(stack.key_dir("demo"))  # the demo agent's own key
    assertion = client_assertion(client_id=client_id, audience=stack.issuer, key_id=kid, private_key=pem)
    remember(assertion)
    assert_bearer(code_exchange(stack, grant, {}, client_auth=form_fields(assertion)))
