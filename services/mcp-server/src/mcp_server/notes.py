"""The notes tools: this server calling a downstream API (services/api) as the calling user.

Each tool exchanges the token it was called with for one whose audience is the notes API and
whose scope is only what that tool needs (exchange.py, RFC 8693), and calls the API with that
token — never with the one it received (RS13: no token passthrough). Whether the user may is
decided by the authorization server at the exchange (roles decide scopes: notes-user grants
notes:read and notes:write), so the tools need only mcp:tools at this server's gate.

| tool         | scope at the notes API |
|--------------|------------------------|
| list_notes   | notes:read             |
| add_note     | notes:write            |
| delete_note  | notes:write            |

Every failure is a tool error with one sentence (`isError`, never a 500): the user lacks the
permission, the authorization server or the API is down or slow (bounded by timeouts), the API
refused. Client-credentials callers take the same path: their service account's roles decide
(docs/decisions.md, "The downstream API").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.exceptions import ToolError

from . import audit
from .exchange import Refused, SenderConstrained, TokenExchange, Unavailable

log = logging.getLogger(__name__)

READ = "notes:read"
WRITE = "notes:write"


@dataclass(frozen=True)
class NotesTool:
    fn: Callable[..., Any]
    name: str
    scope: str  # at the notes API, asked for in the exchange


class NotesAPI:
    def __init__(self, http: httpx2.AsyncClient, exchange: TokenExchange, *, url: str, audience: str,
                 timeout: float) -> None:
        self._http = http
        self._exchange = exchange
        self._url = url.rstrip("/")
        self._audience = audience
        self._timeout = timeout

    async def call(self, method: str, path: str, scope: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The API's JSON answer, called as the current MCP caller with a token for `scope`; ToolError otherwise."""
        subject = get_access_token()
        if subject is None:
            raise ToolError("The notes tools need an authenticated caller.")
        try:
            token = await self._exchange.token_for(subject, audience=self._audience, scope=scope)
        except Refused as exc:
            raise ToolError(f"Not permitted: the authorization server would not let this server call the notes API "
                            f"as you with {scope} ({exc}). The notes tools need a role that grants {scope}.") from None
        except SenderConstrained:
            # docs/decisions.md, "DPoP and token exchange": no sound way on Keycloak 26.7.3.
            raise ToolError("The notes tools cannot act for a DPoP-bound session: the authorization server's token "
                            "exchange accepts a DPoP-bound token only from the client it was issued to. Connect with a "
                            "bearer token (without DPoP) to use them.") from None
        except Unavailable:
            raise ToolError("The notes API cannot be called right now: the authorization server did not complete the "
                            "token exchange (down or slow). Try again later.") from None
        try:
            response = await self._http.request(method, f"{self._url}{path}", json=body, timeout=self._timeout,
                                                headers={"authorization": f"Bearer {token}", "accept": "application/json"})
        except httpx2.HTTPError as exc:
            log.warning("notes API call failed: %s", type(exc).__name__)
            raise ToolError("The notes API could not be reached (down or slow). Try again later.") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ToolError(f"The notes API answered HTTP {response.status_code} without a JSON object.")
        if response.status_code >= 400:
            detail = answer.get("error_description") or answer.get("error") or f"HTTP {response.status_code}"
            raise ToolError(f"The notes API refused: {detail}")
        return answer


def tools(api: NotesAPI) -> list[NotesTool]:
    async def list_notes() -> dict[str, Any]:
        """Your notes in the notes API (called as you, by token exchange), and what the API saw of the token."""
        audit.record("list_notes")
        answer = await api.call("GET", "/notes", READ)
        return {"notes": answer.get("notes", []), "api_saw": answer.get("caller")}

    async def add_note(text: str) -> dict[str, Any]:
        """Add a note to your notes in the notes API."""
        audit.record("add_note")
        answer = await api.call("POST", "/notes", WRITE, {"text": text})
        return {"note": answer.get("note"), "api_saw": answer.get("caller")}

    async def delete_note(note_id: int) -> dict[str, Any]:
        """Delete one of your notes from the notes API, by its id."""
        audit.record("delete_note")
        answer = await api.call("DELETE", f"/notes/{int(note_id)}", WRITE)
        return {"deleted": answer.get("deleted"), "api_saw": answer.get("caller")}

    return [NotesTool(list_notes, "list_notes", READ), NotesTool(add_note, "add_note", WRITE),
            NotesTool(delete_note, "delete_note", WRITE)]
