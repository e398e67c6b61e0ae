"""The MCP server calls the notes API as its user (docs/flows.md, "The MCP server calls an API as
its user"): alice signs in, her agent calls the notes tools, the MCP server exchanges her token
at Keycloak (RFC 8693, standard token exchange) and calls https://api.localhost with the new
token. What the API saw is in its answer (non-secret claims only): the API's audience alone, the
MCP server as `azp`, alice's `sub`, only the tool's scope."""

from __future__ import annotations

import uuid

import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.downstream import call_tool, claims, tool_error, tool_payload, user_token
from tests.support.stack import Stack
from tests.support.tokens import CLIENT_ID as MACHINE_CLIENT
from tests.support.tokens import token


@pytest.mark.blackbox
def test_alice_adds_lists_and_deletes_notes_through_the_mcp_server(stack: Stack):
    alice = user_token(stack, "alice")
    text = f"integration note {uuid.uuid4().hex[:8]}"
    added = tool_payload(call_tool(stack, alice, "add_note", text=text))
    listed = tool_payload(call_tool(stack, alice, "list_notes"))
    assert added["note"] in listed["notes"]
    deleted = tool_payload(call_tool(stack, alice, "delete_note", note_id=added["note"]["id"]))
    assert deleted["deleted"] == added["note"]["id"]
    assert added["note"] not in tool_payload(call_tool(stack, alice, "list_notes"))["notes"]

    # What reached the API: not alice's token (its audience is the MCP server), but one issued for
    # the API alone, to the MCP server, for alice, with only what the tool needed.
    sub = claims(alice)["sub"]
    for result, scope in ((added, ["notes:write"]), (listed, ["notes:read"]), (deleted, ["notes:write"])):
        seen = result["api_saw"]
        assert seen["aud"] == [stack.api_url]
        assert seen["azp"] == stack.resource_url  # the MCP server's client id (no `act` on 26.7)
        assert seen["sub"] == sub
        assert seen["scope"] == scope


@pytest.mark.blackbox
@pytest.mark.anyio
async def test_the_mcp_sdk_client_adds_lists_and_deletes_a_note_as_alice(stack: Stack):
    """The same round trip as a real MCP client does it (the SDK's streamable HTTP client)."""
    alice = user_token(stack, "alice")
    text = f"sdk note {uuid.uuid4().hex[:8]}"
    async with stack.async_client(headers={"authorization": f"Bearer {alice}"}) as http:
        async with Client(streamable_http_client(stack.resource_url, http_client=http)) as client:
            added = await client.call_tool("add_note", {"text": text})
            assert not added.is_error, added
            note = added.structured_content["note"]
            listed = await client.call_tool("list_notes", {})
            assert note in listed.structured_content["notes"]
            deleted = await client.call_tool("delete_note", {"note_id": note["id"]})
            assert deleted.structured_content["deleted"] == note["id"]
            gone = await client.call_tool("delete_note", {"note_id": note["id"]})
    assert gone.is_error  # deleted once: the API's 404, as a tool error
    assert listed.structured_content["api_saw"]["aud"] == [stack.api_url]


def test_a_user_without_the_notes_permission_is_told_so_by_the_tool(stack: Stack):
    """ada holds every MCP role but not notes-user: Keycloak refuses the exchange, the tool says why."""
    message = tool_error(call_tool(stack, user_token(stack, "ada"), "list_notes"))
    assert "Not permitted" in message
    assert "notes:read" in message
    assert "Traceback" not in message


@pytest.mark.blackbox
def test_a_client_credentials_caller_takes_the_same_path_and_its_service_accounts_roles_decide(stack: Stack):
    """Decided (docs/decisions.md): no special case for machines. The machine client's service
    account holds mcp-user, not notes-user, so the exchange is refused and the tool says so."""
    message = tool_error(call_tool(stack, token(stack, client_id=MACHINE_CLIENT), "add_note", text="from a machine"))
    assert "Not permitted" in message
    assert "notes:write" in message
