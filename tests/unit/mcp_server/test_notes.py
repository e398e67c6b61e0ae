"""The notes tools, in process: the MCP server (its real app) calls the real notes API app as the
user, with a token exchanged at the fake authorization server (tests/support/token_exchange.py).
The API never sees the token the MCP client sent; a user without the permission, an AS that is
down and an API that is down each give a tool error with one sentence, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.server import MCPServer

from mcp_server import tools
from mcp_server.app import create_app
from mcp_server.config import ConfigurationError
from notes_api.app import create_app as create_api
from notes_api.config import Settings as ApiSettings
from tests.support.authorization_server import (
    ISSUER,
    JWKS_URL,
    FakeAuthorizationServer,
    claims_for,
    make_settings,
    make_verifier,
    mint,
)
from tests.support.token_exchange import ExchangingAuthorizationServer

BASE = "http://127.0.0.1:8000"
RESOURCE = f"{BASE}/mcp"  # the MCP server's resource URL, and so its client id
API = "https://api.test"


@dataclass
class Stack:
    mcp: httpx2.AsyncClient
    server: ExchangingAuthorizationServer

    def token(self, sub: str = "alice", **claims: Any) -> str:
        return mint(self.server.fake.key, claims_for(RESOURCE, sub=sub, **claims))

    async def call(self, tool: str, token: str, **arguments: Any) -> dict[str, Any]:
        response = await self.mcp.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                     "params": {"name": tool, "arguments": arguments}},
                                       headers={"authorization": f"Bearer {token}",
                                                "accept": "application/json, text/event-stream",
                                                "mcp-protocol-version": "2025-11-25"})
        assert response.status_code == 200, response.text
        return dict(response.json()["result"])


def payload(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("isError"), result
    return dict(json.loads(result["content"][0]["text"]))


def error(result: dict[str, Any], tool: str) -> str:
    """The tool error's sentence, after the SDK's prefix."""
    assert result.get("isError") is True, result
    text = str(result["content"][0]["text"])
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    return text.removeprefix(prefix)


class Unreachable(httpx2.AsyncBaseTransport):
    """A host that refuses connections (the API's container stopped)."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)


@asynccontextmanager
async def stack(tmp_path: Path, *, api_up: bool = True, api_address: str = API) -> AsyncIterator[Stack]:
    """`api_address`: where the MCP server calls the API; its audience stays API (the public URL)."""
    fake = FakeAuthorizationServer()
    server = ExchangingAuthorizationServer(fake, {API: {"notes:read", "notes:write"}}, permitted={"alice", "bob"})
    api = create_api(ApiSettings(issuer=ISSUER, url=API, jwks_url=JWKS_URL, database=tmp_path / "notes.sqlite3"),
                     http=fake.http())
    host = httpx2.URL(api_address).host
    hosts: dict[str, httpx2.AsyncBaseTransport] = {host: httpx2.ASGITransport(app=api) if api_up else Unreachable()}
    settings = make_settings(client_key_dir=fake.write_client_key(tmp_path / "key"), notes_api_url=api_address,
                             notes_api_audience=None if api_address == API else API)
    verifier, _ = make_verifier(fake, settings)
    app = create_app(settings, http=server.http(hosts), verifier=verifier)
    async with api.router.lifespan_context(api), app.router.lifespan_context(app), \
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as mcp:
        yield Stack(mcp, server)


@pytest.mark.anyio
async def test_add_list_delete_as_the_user_with_an_exchanged_token(tmp_path: Path):
    async with stack(tmp_path) as s:
        alice, bob = s.token(), s.token("bob")
        added = payload(await s.call("add_note", alice, text="buy milk"))
        listed = payload(await s.call("list_notes", alice))
        assert [n["text"] for n in listed["notes"]] == ["buy milk"]
        assert payload(await s.call("list_notes", bob))["notes"] == []  # per user
        deleted = payload(await s.call("delete_note", alice, note_id=added["note"]["id"]))
        assert deleted["deleted"] == added["note"]["id"]
        assert payload(await s.call("list_notes", alice))["notes"] == []
    # What the API saw: a token for it alone, from the MCP server, for alice, with the tool's scope only.
    assert listed["api_saw"] == {"sub": "alice", "preferred_username": None, "aud": [API], "azp": RESOURCE,
                                 "scope": ["notes:read"]}
    assert added["api_saw"]["scope"] == deleted["api_saw"]["scope"] == ["notes:write"]
    # The tokens the client sent went to the AS as subjects (and the API accepts only its own audience).
    assert {form["subject_token"] for form in s.server.forms} == {alice, bob}


@pytest.mark.anyio
async def test_an_internal_address_keeps_the_public_url_as_the_audience(tmp_path: Path):
    # AWS: the MCP server reaches the API through Cloud Map (MCP_NOTES_API_URL), while the token's
    # audience stays the API's public URL, its client id (MCP_NOTES_API_AUDIENCE; RFC 8693 §2.1).
    async with stack(tmp_path, api_address="http://api.mcp-auth-prod.internal:8000") as s:
        listed = payload(await s.call("list_notes", s.token()))
    assert listed["api_saw"]["aud"] == [API]
    assert [form["audience"] for form in s.server.forms] == [API]


@pytest.mark.anyio
async def test_exchanged_tokens_are_reused_across_calls(tmp_path: Path):
    async with stack(tmp_path) as s:
        alice = s.token()
        for _ in range(5):
            payload(await s.call("list_notes", alice))
        assert len(s.server.forms) == 1


@pytest.mark.anyio
async def test_a_user_without_the_permission_gets_a_clean_refusal(tmp_path: Path):
    async with stack(tmp_path) as s:
        message = error(await s.call("list_notes", s.token("ada")), "list_notes")
    assert message.startswith("Not permitted:")
    assert "notes:read" in message
    assert "Traceback" not in message


@pytest.mark.anyio
async def test_the_authorization_server_down_during_an_exchange_is_a_tool_error_not_a_500(tmp_path: Path):
    async with stack(tmp_path) as s:
        alice = s.token()
        s.server.status = 503
        message = error(await s.call("list_notes", alice), "list_notes")
    assert message == ("The notes API cannot be called right now: the authorization server did not complete the token "
                       "exchange (down or slow). Try again later.")


@pytest.mark.anyio
async def test_the_api_down_is_a_tool_error(tmp_path: Path):
    async with stack(tmp_path, api_up=False) as s:
        message = error(await s.call("list_notes", s.token()), "list_notes")
    assert message == "The notes API could not be reached (down or slow). Try again later."


@pytest.mark.anyio
async def test_the_api_refusing_is_a_tool_error_naming_its_reason(tmp_path: Path):
    async with stack(tmp_path) as s:
        message = error(await s.call("delete_note", s.token(), note_id=4242), "delete_note")
    assert message == "The notes API refused: you have no note 4242"


@pytest.mark.anyio
async def test_the_notes_tools_need_only_mcp_tools_at_the_gate_and_declare_their_api_scope(tmp_path: Path):
    async with stack(tmp_path) as s:
        prm = (await s.mcp.get("/.well-known/oauth-protected-resource/mcp")).json()
        listed = await s.mcp.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                  headers={"authorization": f"Bearer {s.token()}",
                                           "accept": "application/json, text/event-stream",
                                           "mcp-protocol-version": "2025-11-25"})
    names = {tool["name"] for tool in listed.json()["result"]["tools"]}
    assert {"list_notes", "add_note", "delete_note"} <= names
    # The API's scopes are the AS's business at the exchange: never advertised by the MCP server.
    assert not {"notes:read", "notes:write"} & set(prm["scopes_supported"])


def test_without_a_notes_api_there_are_no_notes_tools_and_with_one_a_client_key_is_needed():
    assert not {"list_notes", "add_note", "delete_note"} & set(tools.register(MCPServer(name="t")).declarations)
    fake = FakeAuthorizationServer()
    with pytest.raises(ConfigurationError, match=r"MCP_NOTES_API_URL.*MCP_CLIENT_KEY_DIR"):
        create_app(make_settings(introspect_privileged=False, notes_api_url=API), http=fake.http())
