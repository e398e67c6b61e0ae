"""The tools this server offers, and the permissions they need: declared here, as data.

| tool           | scopes needed (declared names) | revocation checked at the AS |
|----------------|--------------------------------|------------------------------|
| get_time       | mcp:tools                      | no                           |
| whoami         | mcp:tools                      | no                           |
| server_stats   | mcp:tools + mcp:admin          | yes (privileged)             |
| recent_calls   | mcp:tools + mcp:audit          | no                           |
| list_notes     | mcp:tools (notes:read at the notes API, by token exchange)  | no |
| add_note       | mcp:tools (notes:write at the notes API)                    | no |
| delete_note    | mcp:tools (notes:write at the notes API)                    | no |

The notes tools exist only when MCP_NOTES_API_URL is set (notes.py): they call the notes API as
the user, with a token exchanged for its audience and only the scope each needs (`downstream`).

`SCOPES` declares what belongs to no single tool: the audience scope clients request so their
token names this server (`mcp:connect`, which grants nothing), the base scope of every MCP
request, and the hierarchy (RS19: mcp:admin includes mcp:tools). `register` declares each tool's
scopes where it registers the tool. PRM and the challenges follow (scopes.py). A tool with a new
permission: one `table.add(..., scopes=[...])` line here, plus a client scope gated by a role at
the authorization server (services/keycloak/realm/mcp-realm.json).

Every tool records its call first (`audit.record`), for server_stats and recent_calls.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.exceptions import ToolError

from . import audit, scopes
from .notes import NotesAPI
from .notes import tools as notes_tools

SCOPES = scopes.Vocabulary(
    audience="mcp:connect",
    base="mcp:tools",
    implies={"mcp:admin": ["mcp:tools"]},
)

STARTED = time.time()


def get_time(timezone: str = "UTC") -> str:
    """Current time as ISO 8601 in the given IANA timezone (default UTC)."""
    audit.record("get_time")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone {timezone!r}") from None
    return datetime.now(zone).isoformat(timespec="seconds")


def whoami() -> dict[str, Any]:
    """Who this server thinks is calling: the validated token's subject, client, scopes, audience."""
    audit.record("whoami")
    token = get_access_token()
    if token is None:  # only in the benchmark's no-auth baseline
        return {"authenticated": False}
    claims = token.claims or {}
    audience = claims.get("aud")
    return {
        "authenticated": True,
        "subject": token.subject,
        "username": claims.get("preferred_username"),
        "client_id": token.client_id,
        "issuer": claims.get("iss"),
        "audience": audience if isinstance(audience, list) else [audience],
        "granted_scopes": str(claims.get("scope", "")).split(),
        "effective_scopes": token.scopes,
        "expires_at": token.expires_at,
    }


def server_stats() -> dict[str, Any]:
    """Privileged: uptime and tool-call counts of this replica. Needs mcp:admin, and a session
    still active at the authorization server (a revoked one is refused)."""
    audit.record("server_stats")
    return {"uptime_seconds": round(time.time() - STARTED, 1), "tool_calls": audit.counts()}


def recent_calls() -> dict[str, Any]:
    """The last 50 tool calls this replica served, newest first: UTC time, tool, caller
    (preferred_username, else sub) and client_id. Needs mcp:audit. Per replica and in memory, like
    server_stats' counts: behind a load balancer each replica lists only the calls it answered,
    and a restart forgets them."""
    audit.record("recent_calls")
    return {"calls": audit.recent()}


def register(server: MCPServer, notes: NotesAPI | None = None) -> scopes.ToolTable:
    table = scopes.ToolTable(server)
    table.add(get_time, name="get_time", scopes=["mcp:tools"])
    table.add(whoami, name="whoami", scopes=["mcp:tools"])
    table.add(server_stats, name="server_stats", scopes=["mcp:tools", "mcp:admin"], privileged=True)
    table.add(recent_calls, name="recent_calls", scopes=["mcp:tools", "mcp:audit"])
    for tool in notes_tools(notes) if notes is not None else []:
        table.add(tool.fn, name=tool.name, scopes=["mcp:tools"], downstream=[tool.scope])
    return table
