"""Tokens from the real Keycloak for tests: a pre-registered machine client, client credentials
with a private_key_jwt assertion (RFC 7523) signed with its current key.

By default as `mcp-machine-bearer`, the sandbox's Bearer-allowed twin of the demo agent's
`mcp-machine-agent` (same key, scopes and role; `mcp-machine-agent` requires DPoP: docs/decisions.md,
"Which clients must use DPoP"). A test about `mcp-machine-agent` itself passes its id and a proof
in `headers`."""

from __future__ import annotations

import httpx2

from cimd_host.keys import current_key
from mcp_agent.assertion import client_assertion, form_fields
from tests.support.secrets import remember
from tests.support.stack import Stack, skip_remote

# The sandbox realm's Bearer-allowed twin of mcp-machine-agent; the demo agent's own machine client.
CLIENT_ID = "mcp-machine-bearer"
DEMO_MACHINE_CLIENT_ID = "mcp-machine-agent"
# The only machine client whose service account holds mcp-admin; it has a key of its own.
ADMIN_CLIENT_ID = "mcp-machine-admin"
KEYS = {ADMIN_CLIENT_ID: "machine-admin"}


def request_token(stack: Stack, *, realm: str = "mcp", key_id: str | None = None, pem: bytes | None = None,
                  scope: str | None = "mcp:tools", client_id: str = CLIENT_ID,
                  headers: dict[str, str] | None = None) -> httpx2.Response:
    if client_id == CLIENT_ID:
        skip_remote(f"the sandbox's Bearer-allowed test client {CLIENT_ID} (a deployment's mcp-machine-agent requires DPoP)")
    current_kid, current_pem = current_key(stack.key_dir(KEYS.get(client_id, "machine")))
    assertion = client_assertion(
        client_id=client_id,
        audience=stack.token_endpoint(realm),
        key_id=key_id or current_kid,
        private_key=pem or current_pem,
    )
    with stack.client() as client:
        response = client.post(
            stack.token_endpoint(realm),
            data={"grant_type": "client_credentials", **({"scope": scope} if scope else {}), **form_fields(assertion)},
            headers=headers,
        )
    remember(assertion, response.json().get("access_token") if response.status_code == 200 else None)
    return response


def token(stack: Stack, **kwargs) -> str:
    """An access token for the MCP server with `mcp:tools`, to be sent as `Bearer`: the machine
    twin's. Against a deployment (make test-remote), which has no Bearer-allowed machine client
    (anonymous registration cannot make one: no client credentials), a test that asks for no
    particular client gets alice's, through the run's registered public client (login.py)."""
    if stack.remote is not None and not kwargs:
        from tests.support.login import authorize, exchange

        with stack.client(follow_redirects=False) as http:
            grant = authorize(http, stack, "alice", stack.secret("demo-user-password"), scope="mcp:tools")
            return str(exchange(http, stack, grant)["access_token"])
    response = request_token(stack, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
