"""The tools this server offers; `register` declares the scopes each needs (scopes.ToolTable).

| tool           | scopes needed (default names) |
|----------------|-------------------------------|
| get_time       | mcp:tools                     |
| whoami         | mcp:tools                     |
| server_stats   | mcp:tools + mcp:admin         |
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.exceptions import ToolError

from . import scopes

STARTED = time.time()
CALLS: Counter[str] = Counter()


def get_time(timezone: str = "UTC") -> str:
    """Current time as ISO 8601 in the given IANA timezone (default UTC)."""
    CALLS["get_time"] += 1
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone {timezone!r}") from None
    return datetime.now(zone).isoformat(timespec="seconds")


def whoami() -> dict[str, Any]:
    """Who this server thinks is calling: the validated token's subject, client, scopes, audience."""
    CALLS["whoami"] += 1
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
    """Privileged: uptime and tool-call counts of this replica. Needs mcp:admin."""
    CALLS["server_stats"] += 1
    return {"uptime_seconds": round(time.time() - STARTED, 1), "tool_calls": dict(CALLS)}


def register(server: MCPServer) -> scopes.ToolTable:
    table = scopes.ToolTable(server)
    table.add(get_time, name="get_time")
    table.add(whoami, name="whoami")
    table.add(server_stats, name="server_stats", roles=[scopes.ADMIN])
    return table
