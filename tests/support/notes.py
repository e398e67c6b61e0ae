"""What every client's notes-API test checks of the answers: the notes round trip, and that the API
was called with a token exchanged for the user's (RFC 8693), never the user's own — audience the
API, authorized party the MCP server, the user's subject, only the tool's scope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.support.stack import Stack


def assert_the_api_saw_an_exchanged_token(stack: Stack, subject: str,
                                          answers: Iterable[tuple[dict[str, Any], list[str]]]) -> None:
    """`answers`: each tool's structured answer with the scope that tool needs."""
    for answer, scope in answers:
        seen = answer["api_saw"]
        assert (seen["aud"], seen["azp"], seen["scope"]) == ([stack.api_url], stack.resource_url, scope)
        assert seen["sub"] == subject


def assert_a_notes_round_trip(stack: Stack, subject: str, notes: dict[str, dict[str, Any]]) -> None:
    """A Node client's `notes` result: {"added"|"listed"|"deleted": {"isError", "content"}}."""
    assert not any(step["isError"] for step in notes.values()), notes
    note = notes["added"]["content"]["note"]
    assert note in notes["listed"]["content"]["notes"]
    assert notes["deleted"]["content"]["deleted"] == note["id"]
    assert_the_api_saw_an_exchanged_token(stack, subject, ((notes["added"]["content"], ["notes:write"]),
                                                           (notes["listed"]["content"], ["notes:read"])))
