"""One JSON-RPC request to the sandbox's MCP endpoint, as a client would send it over HTTPS."""

from __future__ import annotations

import os

import httpx2

from tests.support.stack import Stack, remote


def rpc(stack: Stack, authorization: str | None, *, url: str | None = None, method: str = "tools/list",
        params: dict | None = None, **headers: str) -> httpx2.Response:
    hdrs = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25", **headers}
    if authorization is not None:
        hdrs["authorization"] = authorization
    with stack.client() as http:
        return http.post(url or stack.resource_url, headers=hdrs,
                         json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})


# The sandbox MCP server's tools, in the order it lists them (services/mcp-server: tools.py). The
# notes tools exist where the MCP server is given the notes API (MCP_NOTES_API_URL: the sandbox
# sets it; a deployment under `make test-remote` has them if MCP_TEST_API_URL names its API).
NOTES_TOOL_NAMES = ["list_notes", "add_note", "delete_note"]
TOOL_NAMES = ["get_time", "whoami", "server_stats", "recent_calls",
              *([] if remote() and not os.environ.get("MCP_TEST_API_URL") else NOTES_TOOL_NAMES)]
