"""The `mcp` 1.x line's OAuthClientProvider (still the most deployed Python MCP client), run in
its own virtualenv (tests/interop/python/mcp1.txt), against the sandbox: discovery, dynamic
client registration with a loopback redirect, PKCE, then a tool call over streamable HTTP.

Prints {"authorize": url} for the test's browser, waits for the redirect on the loopback port,
and prints the result as the last JSON line.
    python mcp1_client.py <mcp url> <callback port> <ca file>
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import loopback  # beside this script
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

URL, PORT, CA = sys.argv[1], int(sys.argv[2]), sys.argv[3]
REDIRECT = f"http://127.0.0.1:{PORT}/callback"


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def main() -> None:
    arrived: asyncio.Future[tuple[str, str | None]] = asyncio.get_running_loop().create_future()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = (await reader.readline()).split()[1].decode()
        query = parse_qs(urlsplit(target).query)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsigned in")
        await writer.drain()
        writer.close()
        if "code" in query and not arrived.done():
            arrived.set_result((query["code"][0], query.get("state", [None])[0]))

    server = await asyncio.start_server(on_connection, "127.0.0.1", PORT)

    async def redirect(url: str) -> None:
        print(json.dumps({"authorize": url}), flush=True)

    async def callback() -> tuple[str, str | None]:
        return await arrived

    storage = Memory()
    auth = OAuthClientProvider(
        URL,
        OAuthClientMetadata(client_name="mcp 1.x interop test", redirect_uris=[REDIRECT],
                            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                            token_endpoint_auth_method="none"),
        storage, redirect_handler=redirect, callback_handler=callback,
    )
    context = ssl.create_default_context(cafile=CA)

    def client_factory(headers=None, timeout=None, auth=None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=loopback.transport(httpx, context), headers=headers, timeout=timeout or 30,
                                 auth=auth)

    async with streamablehttp_client(URL, auth=auth, httpx_client_factory=client_factory) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            call = await session.call_tool("whoami", {})
    server.close()
    print(json.dumps({"tools": [t.name for t in tools.tools], "whoami": call.structuredContent,
                      "client_id": storage.client.client_id if storage.client else None}), flush=True)


asyncio.run(main())
