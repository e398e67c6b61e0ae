"""Roles decide scopes, for every way a client can exist (docs/authorization.md).

Each cell: an identity (a user, or a machine client's service account) × a kind of client ×
what it asks for → what Keycloak grants (the token's `scope`, checked in the token response and
in the token) → what the MCP server decides (200, or 403 `insufficient_scope` naming every scope
the call needs, RS15-RS17). Every client asks for every MCP scope: the grant is the roles'
decision, not the client's and not the consent's.

The demo agent's own clients (`mcp-agent`, `mcp-machine-agent`, its CIMD document) require DPoP
(docs/decisions.md, "Which clients must use DPoP"): their cells ask with a proof and call with the
DPoP scheme, as the demo agent does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from testcontainers.compose import DockerCompose

from cimd_host.keys import current_key
from mcp_agent.assertion import client_assertion, form_fields
from mcp_agent.dpop import DPoPKey
from tests.support.dcr import INSPECTOR, registered
from tests.support.keycloak import kcadm, kcadm_json
from tests.support.login import authorize, exchange
from tests.support.mcp import rpc
from tests.support.stack import STATE, Stack

EVERY_MCP_SCOPE = "mcp:connect mcp:tools mcp:audit mcp:admin"
MCP_SCOPES = frozenset(EVERY_MCP_SCOPE.split())
# What each tool needs besides the audience scope (the server's declarations, tools.py).
TOOLS = {"get_time": {"mcp:tools"}, "recent_calls": {"mcp:tools", "mcp:audit"}, "server_stats": {"mcp:tools", "mcp:admin"}}


@dataclass(frozen=True)
class Identity:
    name: str
    secret: str  # the password's file in .local/secrets (users); unused for machine clients
    granted: frozenset[str]  # the MCP scopes its roles allow


ALICE = Identity("alice", "demo-user-password", frozenset({"mcp:connect", "mcp:tools"}))
ADA = Identity("ada", "admin-user-password", MCP_SCOPES)
NORA = Identity("nora", "norole-user-password", frozenset({"mcp:connect"}))
USERS = [ALICE, ADA, NORA]


def challenge_scope(header: str) -> str:
    match = re.search(r'scope="([^"]*)"', header)
    assert match, header
    return match.group(1)


def mcp_scopes(scope: str) -> set[str]:
    return set(scope.split()) & MCP_SCOPES


def assert_server_decides_by_scope(stack: Stack, access_token: str, granted: frozenset[str],
                                   dpop: DPoPKey | None = None) -> None:
    for tool, needs in TOOLS.items():
        if dpop is None:
            response = rpc(stack, f"Bearer {access_token}", method="tools/call", params={"name": tool, "arguments": {}})
        else:  # a DPoP-bound token: the DPoP scheme and a fresh proof for each call (RFC 9449 §7.1)
            response = rpc(stack, f"DPoP {access_token}", method="tools/call", params={"name": tool, "arguments": {}},
                           DPoP=dpop.proof("POST", stack.resource_url, access_token=access_token))
        if needs <= granted:
            assert response.status_code == 200, (tool, response.status_code, response.text)
            assert "error" not in response.json(), response.text
        else:
            assert response.status_code == 403, (tool, response.status_code, response.text)
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer error="insufficient_scope"'), challenge
            # RS16: every scope the call needs, the audience scope included, in one challenge.
            assert set(challenge_scope(challenge).split()) == needs | {"mcp:connect"}, challenge


def new_dpop_key() -> DPoPKey:
    return DPoPKey(ec.generate_private_key(ec.SECP256R1()))


def check_grant(stack: Stack, tokens: dict, identity: Identity, dpop: DPoPKey | None = None) -> None:
    # Keycloak's decision, in the token response and in the token itself (RFC 6749 §5.1).
    assert mcp_scopes(tokens["scope"]) == identity.granted, tokens["scope"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    if dpop is not None:  # RFC 9449 §5, §6.1: bound to the key of the proof that asked for it
        assert tokens["token_type"] == "DPoP", tokens["token_type"]
        assert claims["cnf"]["jkt"] == dpop.thumbprint
    else:
        assert tokens["token_type"] == "Bearer", tokens["token_type"]
    assert mcp_scopes(claims["scope"]) == identity.granted
    # The audience comes with mcp:connect, which needs no role: even nora's token is for this
    # server, so she is told 403 (which permission), not 401 (who are you) in a loop.
    assert stack.resource_url in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert_server_decides_by_scope(stack, tokens["access_token"], identity.granted, dpop)


@contextmanager
def consents_revoked(compose: DockerCompose, stack: Stack, username: str, client_id: str) -> Iterator[None]:
    """The consent a cell gives is withdrawn afterwards, so later tests meet the consent page as
    a new user would."""
    try:
        yield
    finally:
        (user,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", f"username={username}", "-q", "exact=true")
        consents = kcadm_json(compose, stack, "get", f"users/{user['id']}/consents", "-r", "mcp")
        if any(c["clientId"] == client_id for c in consents):
            kcadm(compose, stack, "delete", f"users/{user['id']}/consents/{quote(client_id, safe='')}", "-r", "mcp")


@pytest.mark.parametrize("identity", USERS, ids=lambda i: i.name)
def test_preregistered_public_client(stack: Stack, compose: DockerCompose, identity: Identity):
    """The demo agent's pre-registered client, which requires DPoP: the code exchange carries a proof."""
    dpop = new_dpop_key()
    with stack.client() as http, consents_revoked(compose, stack, identity.name, "mcp-agent"):
        grant = authorize(http, stack, identity.name, stack.secret(identity.secret), client_id="mcp-agent",
                          scope=f"openid {EVERY_MCP_SCOPE}")
        tokens = exchange(http, stack, grant, headers={"DPoP": dpop.proof("POST", stack.token_endpoint())})
        check_grant(stack, tokens, identity, dpop)


@pytest.mark.parametrize("identity", USERS, ids=lambda i: i.name)
def test_preregistered_confidential_client(stack: Stack, compose: DockerCompose, identity: Identity):
    client_id = "mcp-agent-confidential"
    with stack.client() as http, consents_revoked(compose, stack, identity.name, client_id):
        grant = authorize(http, stack, identity.name, stack.secret(identity.secret), client_id=client_id,
                          scope=f"openid {EVERY_MCP_SCOPE}")
        tokens = exchange(http, stack, grant, auth=(client_id, stack.secret("agent-confidential-client-secret")))
        check_grant(stack, tokens, identity)


@pytest.mark.parametrize("identity", USERS, ids=lambda i: i.name)
def test_client_registered_anonymously_by_dcr(stack: Stack, identity: Identity):
    body = {**INSPECTOR, "client_name": f"roles-decide-{identity.name}", "redirect_uris": [stack.callback_url],
            "scope": f"{EVERY_MCP_SCOPE} offline_access"}
    with registered(stack, body) as response, stack.client() as http:
        assert response.status_code == 201, response.text
        client_id = response.json()["client_id"]
        grant = authorize(http, stack, identity.name, stack.secret(identity.secret), client_id=client_id,
                          scope=EVERY_MCP_SCOPE)
        check_grant(stack, exchange(http, stack, grant), identity)


@pytest.mark.parametrize("identity", USERS, ids=lambda i: i.name)
def test_our_agents_cimd_document(stack: Stack, compose: DockerCompose, identity: Identity):
    """The demo agent's document: a confidential client (private_key_jwt) made by Keycloak at
    /authorize, which requires DPoP (the document's `dpop_bound_access_tokens`)."""
    client_id = f"{stack.cimd_origin}/agents/demo/metadata.json"
    kid, pem = current_key(stack.key_dir("demo"))
    dpop = new_dpop_key()
    with stack.client() as http, consents_revoked(compose, stack, identity.name, client_id):
        grant = authorize(http, stack, identity.name, stack.secret(identity.secret), client_id=client_id,
                          scope=EVERY_MCP_SCOPE)
        assertion = client_assertion(client_id=client_id, audience=stack.issuer, key_id=kid, private_key=pem)
        tokens = exchange(http, stack, grant, client_auth=form_fields(assertion),
                          headers={"DPoP": dpop.proof("POST", stack.token_endpoint())})
        check_grant(stack, tokens, identity, dpop)


@pytest.mark.parametrize("identity", USERS, ids=lambda i: i.name)
def test_third_party_cimd_document(stack: Stack, compose: DockerCompose, identity: Identity):
    """The document the CIMD host publishes for the MCP Inspector: a public client."""
    client_id = f"{stack.cimd_origin}/clients/mcp-inspector/metadata.json"
    document = json.loads((STATE / "cimd-public" / "clients" / "mcp-inspector" / "metadata.json").read_text())
    with stack.client() as http, consents_revoked(compose, stack, identity.name, client_id):
        grant = authorize(http, stack, identity.name, stack.secret(identity.secret), client_id=client_id,
                          scope=EVERY_MCP_SCOPE, redirect_uri=document["redirect_uris"][0])
        check_grant(stack, exchange(http, stack, grant), identity)


MACHINES = {
    # client id -> (key directory or secret file, the MCP scopes its service account's roles allow)
    "mcp-machine-agent": ("machine", ALICE.granted),
    "mcp-machine-agent-secret": ("machine-client-secret", ALICE.granted),
    "mcp-machine-admin": ("machine-admin", ADA.granted),
}
# Require DPoP-bound tokens (realm: dpop.bound.access.tokens), as the demo agent uses them.
MACHINES_REQUIRING_DPOP = {"mcp-machine-agent", "mcp-machine-agent-secret"}


@pytest.mark.parametrize("client_id", MACHINES)
def test_client_credentials(stack: Stack, client_id: str):
    """No user: the service account's roles decide, whatever the client asks for."""
    credential, granted = MACHINES[client_id]
    data = {"grant_type": "client_credentials", "scope": EVERY_MCP_SCOPE}
    dpop = new_dpop_key() if client_id in MACHINES_REQUIRING_DPOP else None
    proof = {"DPoP": dpop.proof("POST", stack.token_endpoint())} if dpop else {}
    with stack.client() as http:
        if client_id.endswith("-secret"):
            response = http.post(stack.token_endpoint(), data=data, auth=(client_id, stack.secret(credential)),
                                 headers=proof)
        else:
            kid, pem = current_key(stack.key_dir(credential))
            assertion = client_assertion(client_id=client_id, audience=stack.token_endpoint(), key_id=kid,
                                         private_key=pem)
            response = http.post(stack.token_endpoint(), data={**data, **form_fields(assertion)}, headers=proof)
    assert response.status_code == 200, response.text
    check_grant(stack, response.json(), Identity(client_id, credential, granted), dpop)
