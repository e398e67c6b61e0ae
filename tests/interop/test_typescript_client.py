"""The MCP TypeScript client 2.x (npm @modelcontextprotocol/client, version pinned in
tests/interop/node/package-lock.json) against the sandbox, run by Node 22 from the same lockfile:
client credentials with private_key_jwt, CIMD + private_key_jwt with a browser login, refresh, the
notes tools, and DPoP (RFC 9449) through the client's own option (a provider implementing
`dpop()`), which the MCP server verifies in its default mode (`MCP_DPOP=allowed`).

With its DPoP option the client signs in as the demo agent's own identities (`mcp-machine-agent`,
`agents/demo/metadata.json`), which require DPoP; without it, as their Bearer-allowed twins in the
sandbox realm (`mcp-machine-bearer`, `agents/demo-bearer/metadata.json`: same keys), as any
Bearer-only client of the demo agent's keys would have to (docs/decisions.md)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from cimd_host.keys import current_key, key_path
from tests.interop.test_typescript_sdk import NODE_DIR, node
from tests.support.interop import sign_in_and_run
from tests.support.mcp import TOOL_NAMES
from tests.support.notes import assert_a_notes_round_trip
from tests.support.stack import Stack
from tests.support.tokens import CLIENT_ID as MACHINE_BEARER_CLIENT
from tests.support.tokens import DEMO_MACHINE_CLIENT_ID

CLIENT = "TypeScript client 2.x"


def machine_client(*flags: str) -> str:
    return DEMO_MACHINE_CLIENT_ID if "--dpop" in flags else MACHINE_BEARER_CLIENT


def machine_flow(stack: Stack, *flags: str) -> dict[str, Any]:
    kid, _ = current_key(stack.key_dir("machine"))
    return node(stack, "ts2-machine.mjs", stack.resource_url, machine_client(*flags),
                str(key_path(stack.key_dir("machine"), kid)), stack.issuer, *flags)


async def cimd_flow(stack: Stack, *flags: str) -> dict[str, Any]:
    kid, _ = current_key(stack.key_dir("demo"))
    document = "demo" if "--dpop" in flags else "demo-bearer"
    client_id = f"{stack.cimd_origin}/agents/{document}/metadata.json"
    result, query = await sign_in_and_run(
        stack,
        [str(NODE_DIR / "node_modules" / ".bin" / "node"), "--require", "./localhost.cjs", "ts2-cimd.mjs",
         stack.resource_url, client_id, str(key_path(stack.key_dir("demo"), kid)), str(stack.callback_port),
         *flags],
        cwd=NODE_DIR, env={**os.environ, "NODE_EXTRA_CA_CERTS": str(stack.ca_file)})
    assert query["client_id"] == client_id  # CIMD, not DCR
    assert query["code_challenge_method"] == "S256"
    assert result["clientId"] == client_id
    assert result["tools"] == TOOL_NAMES
    assert result["whoami"]["client_id"] == client_id
    assert result["whoami"]["subject"]  # alice (the document's scopes leave out her profile claims)
    assert result["whoami"]["audience"] == [stack.resource_url]
    return result


def assert_bound(out: dict[str, Any]) -> None:
    """RFC 9449 §6.1: Keycloak bound the token to the client's DPoP key (its RFC 7638 thumbprint
    in cnf.jkt), and the MCP server, which accepted it with the client's proofs, refuses the same
    token sent as Bearer without one."""
    assert out["tokenType"].lower() == "dpop"
    assert out["cnfJkt"] is not None
    assert out["cnfJkt"] == out["thumbprint"]
    assert out["asBearer"]["status"] == 401
    assert out["asBearer"]["error"] == "invalid_token"
    assert "DPoP-bound" in out["asBearer"]["description"]


@pytest.mark.matrix(CLIENT, "client credentials")
def test_typescript_client_machine_flow_with_private_key_jwt(stack: Stack):
    out = machine_flow(stack)
    assert out["tools"] == TOOL_NAMES
    assert out["callIsError"] is False
    assert out["whoami"]["client_id"] == MACHINE_BEARER_CLIENT
    assert out["whoami"]["audience"] == [stack.resource_url]
    assert out["tokenType"].lower() == "bearer"
    assert out["cnfJkt"] is None
    assert out["asBearer"]["status"] == 200  # a bearer token is one


@pytest.mark.matrix(CLIENT, "client credentials")
@pytest.mark.matrix(CLIENT, "DPoP")
def test_typescript_client_machine_flow_with_dpop(stack: Stack):
    """The client's DPoP option on the demo agent's machine client, which requires it: the token
    request carries a proof, every MCP request `Authorization: DPoP` and a fresh proof the MCP
    server checks."""
    out = machine_flow(stack, "--dpop")
    assert out["tools"] == TOOL_NAMES
    assert out["callIsError"] is False
    assert out["whoami"]["client_id"] == DEMO_MACHINE_CLIENT_ID
    assert_bound(out)


@pytest.mark.anyio
@pytest.mark.matrix(CLIENT, "CIMD")
@pytest.mark.matrix(CLIENT, "refresh")
@pytest.mark.matrix(CLIENT, "notes API")
async def test_typescript_client_cimd_with_private_key_jwt_refresh_and_notes(stack: Stack):
    """clientMetadataUrl (CIMD) with the demo agent's key and its Bearer twin's document, which says private_key_jwt:
    createPrivateKeyJwtAuth signs every token request. A real browser plays alice (login and
    consent); the client checks `state` and `iss`. Then a refresh instead of a new login, and the
    notes tools, which the MCP server serves by calling the notes API with a token it exchanged for
    hers (a bearer one: Keycloak 26.7.3 does not exchange a DPoP-bound token, docs/decisions.md)."""
    result = await cimd_flow(stack)
    refresh = result["refresh"]
    assert refresh["hadRefreshToken"] is True
    assert refresh["result"] == "AUTHORIZED"
    assert refresh["newAccessToken"] is True
    assert refresh["isError"] is False
    assert refresh["whoami"]["subject"] == result["whoami"]["subject"]
    assert_a_notes_round_trip(stack, result["whoami"]["subject"], result["notes"])


@pytest.mark.anyio
@pytest.mark.matrix(CLIENT, "CIMD")
@pytest.mark.matrix(CLIENT, "refresh")
@pytest.mark.matrix(CLIENT, "DPoP")
async def test_typescript_client_cimd_login_and_refresh_with_dpop(stack: Stack):
    """The same login with the client's DPoP option, as the demo agent's own document (which
    requires DPoP): the code exchange and the refresh each carry a
    proof, so both access tokens are bound to the client's key, and the MCP server takes them only
    with its proofs."""
    result = await cimd_flow(stack, "--dpop")
    assert_bound(result)
    refresh = result["refresh"]
    assert refresh["result"] == "AUTHORIZED"
    assert refresh["newAccessToken"] is True
    assert refresh["isError"] is False
    assert refresh["whoami"]["subject"] == result["whoami"]["subject"]
    assert refresh["tokenType"].lower() == "dpop"
    assert refresh["cnfJkt"] == result["thumbprint"]
