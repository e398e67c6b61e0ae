"""The benchmark's peer: the same four tools on FastMCP, with FastMCP's own `JWTVerifier`.

Run by tool_call_throughput.py with the python of .local/bench/fastmcp (FastMCP's own
virtualenv, compose/scripts/ensure-bench-peer.sh), so it imports nothing of this project:

    python fastmcp_server.py (no-auth|auth) PORT JWKS_URL ISSUER

Like our server: stateless streamable HTTP with JSON responses, the Host/Origin check on, and
each tool recording its call with the caller (as audit.py does). `auth`: FastMCP's `JWTVerifier`
on the same JWKS, issuer and audience (this server's /mcp URL), needing `mcp:tools`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import uvicorn
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_access_token

STARTED = time.time()
_lock = threading.Lock()
_counts: Counter[str] = Counter()
_recent: deque[dict[str, Any]] = deque(maxlen=50)


def _record(tool: str) -> None:
    token = get_access_token()
    claims = (token.claims or {}) if token else {}
    with _lock:
        _counts[tool] += 1
        _recent.append({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "tool": tool,
                        "user": claims.get("preferred_username") or claims.get("sub"),
                        "client_id": token.client_id if token else None})


def build(mcp: FastMCP) -> None:
    @mcp.tool
    def get_time(timezone: str = "UTC") -> str:
        """Current time as ISO 8601 in the given IANA timezone (default UTC)."""
        _record("get_time")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"unknown timezone {timezone!r}") from None
        return datetime.now(zone).isoformat(timespec="seconds")

    @mcp.tool
    def whoami() -> dict[str, Any]:
        """Who this server thinks is calling."""
        _record("whoami")
        token = get_access_token()
        return {"authenticated": token is not None, "client_id": token.client_id if token else None}

    @mcp.tool
    def server_stats() -> dict[str, Any]:
        """Uptime and tool-call counts."""
        _record("server_stats")
        with _lock:
            return {"uptime_seconds": round(time.time() - STARTED, 1), "tool_calls": dict(_counts)}

    @mcp.tool
    def recent_calls() -> dict[str, Any]:
        """The last 50 tool calls, newest first."""
        _record("recent_calls")
        with _lock:
            return {"calls": list(reversed(_recent))}


def main(variant: str, port: int, jwks_url: str, issuer: str) -> None:
    logging.disable(logging.INFO)  # as for our server: no log line per request in the measurement
    auth = None
    if variant == "auth":
        auth = JWTVerifier(jwks_uri=jwks_url, issuer=issuer, audience=f"http://127.0.0.1:{port}/mcp",
                           algorithm="RS256", required_scopes=["mcp:tools"])
    mcp = FastMCP("mcp-auth-sandbox-peer", auth=auth)
    build(mcp)
    app = mcp.http_app(path="/mcp", json_response=True, stateless_http=True, host_origin_protection=True,
                       allowed_hosts=[f"127.0.0.1:{port}"], allowed_origins=[f"http://127.0.0.1:{port}"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
