"""The notes API behind the MCP server, from the tests' side: users' tokens for the MCP server,
RFC 8693 token exchange as a given client (the MCP server's own, with its key, or another), and
tool calls over the real stack. Every token is remembered (tests/support/secrets.py), so the log
audit proves none of them was logged — the API's log included."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import jwt

from mcp_server.client_auth import PrivateKeyJWT
from tests.support.login import authorize, exchange
from tests.support.mcp import rpc
from tests.support.secrets import remember
from tests.support.stack import Stack

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
PASSWORDS = {"alice": "demo-user-password", "ada": "admin-user-password", "nora": "norole-user-password"}


def user_token(stack: Stack, user: str, scope: str = "openid mcp:tools") -> str:
    """An access token for the MCP server, as the pre-registered agent client gets it for `user`."""
    with stack.client() as http:
        tokens = exchange(http, stack, authorize(http, stack, user, stack.secret(PASSWORDS[user]), scope=scope))
    return str(tokens["access_token"])


def mcp_server_client(stack: Stack) -> dict[str, str]:
    """The MCP server's own client authentication (private_key_jwt with its key, as the server does)."""
    client = PrivateKeyJWT(client_id=stack.resource_url, key_dir=stack.key_dir("mcp-server"), audience=stack.issuer)
    fields = client.form_fields()
    remember(fields["client_assertion"])
    return fields


def token_exchange(stack: Stack, subject_token: str, client_auth: dict[str, str], *, scope: str | None,
                   audience: str | None = None, headers: dict[str, str] | None = None) -> httpx2.Response:
    form = {"grant_type": GRANT_TYPE, "subject_token": subject_token, "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE, "audience": audience or stack.api_url,
            **({"scope": scope} if scope else {}), **client_auth}
    with stack.client() as http:
        response = http.post(stack.token_endpoint(), data=form, headers=headers)
    if response.status_code == 200:
        remember(response.json().get("access_token"), response.json().get("refresh_token"))
    return response


def claims(token: str) -> dict[str, Any]:
    """A token's claims, for assertions only (the signature is the resource servers' business)."""
    return dict(jwt.decode(token, options={"verify_signature": False}))


def audiences(token_claims: dict[str, Any]) -> list[str]:
    aud = token_claims["aud"]
    return list(aud) if isinstance(aud, list) else [aud]


def call_tool(stack: Stack, token: str, tool: str, **arguments: Any) -> dict[str, Any]:
    """tools/call over the real stack; the JSON-RPC `result` (a tool error has isError)."""
    response = rpc(stack, f"Bearer {token}", method="tools/call", params={"name": tool, "arguments": arguments})
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


def tool_payload(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("isError"), result
    return dict(json.loads(result["content"][0]["text"]))


def tool_error(result: dict[str, Any]) -> str:
    assert result.get("isError") is True, result
    return str(result["content"][0]["text"])
