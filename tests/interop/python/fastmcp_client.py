"""The FastMCP client with its OAuth helper (`fastmcp.client.auth.OAuth`), run in its own
virtualenv (tests/interop/python/fastmcp.txt), against the sandbox: discovery, dynamic client
registration with its loopback redirect (http://localhost:<port>/callback), PKCE, a tool call.

FastMCP opens a desktop browser at the authorization URL; here the URL is printed as
{"authorize": url} for the test's browser instead, through its documented `redirect_handler`
hook. And it registers without `token_endpoint_auth_method`, which RFC 7591 §2 reads as
`client_secret_basic` — a confidential client with a secret, which anonymous registration here
refuses (docs/authorization.md): it is told to register a public client through its documented
`additional_client_metadata`. Prints the result as the last JSON line.
    python fastmcp_client.py <mcp url> <callback port> <ca file>
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any

import httpx2
import loopback  # beside this script
from fastmcp import Client
from fastmcp.client.auth import OAuth
from fastmcp.client.transports import StreamableHttpTransport

URL, PORT, CA = sys.argv[1], int(sys.argv[2]), sys.argv[3]
CONTEXT = ssl.create_default_context(cafile=CA)


def client_factory(headers: Any = None, timeout: Any = None, auth: Any = None, **_: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=loopback.transport(httpx2, CONTEXT), headers=headers, timeout=timeout or 30,
                              auth=auth)


class PrintedOAuth(OAuth):
    async def redirect_handler(self, authorization_url: str) -> None:
        print(json.dumps({"authorize": authorization_url}), flush=True)


async def main() -> None:
    oauth = PrintedOAuth(client_name="FastMCP interop test", callback_port=PORT, httpx_client_factory=client_factory,
                         additional_client_metadata={"token_endpoint_auth_method": "none"})
    transport = StreamableHttpTransport(URL, auth=oauth, httpx_client_factory=client_factory)
    async with Client(transport) as client:
        tools = await client.list_tools()
        call = await client.call_tool("whoami", {})
    print(json.dumps({"tools": [t.name for t in tools], "whoami": call.structured_content}), flush=True)


asyncio.run(main())
