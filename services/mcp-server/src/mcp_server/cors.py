"""CORS for MCP clients that run in a browser page: Starlette's CORSMiddleware, for requests that
carry an `Origin` header.

Agents, CLIs and server-side clients send no `Origin` (a browser always does on a cross-origin
request, and on every POST): for them CORS allows nothing, and Starlette's middleware would only
add `Vary: Origin` to the answer, after parsing the request's headers into objects. They take a
short path that adds the same `Vary: Origin` (the answer does vary by Origin: an allowed page gets
`Access-Control-Allow-Origin`, so a shared cache must not serve one to the other).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

ORIGIN = b"origin"  # ASGI header names are lowercase
VARY = b"vary"


class CORS(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or ORIGIN in dict(scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if VARY in dict(headers):
                    vary = MutableHeaders(scope=message)  # merged into one header, as Starlette does
                    vary["Vary"] = ", ".join([*vary.getlist("Vary"), "Origin"])
                else:
                    headers.append((VARY, b"Origin"))
            await send(message)

        await self.app(scope, receive, send_varying)
