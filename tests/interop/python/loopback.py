"""*.localhost is loopback (RFC 6761); glibc on the host does not know it. The interop clients'
HTTP transport sends a copy of each request to 127.0.0.1 with the real name as Host and as TLS
server name (`sni_hostname`), so the certificate is still checked for the real name. Works with
httpx (the mcp 1.x line) and httpx2 (mcp 2.x, FastMCP 4), which share this API."""

from __future__ import annotations

import ssl
from types import ModuleType
from typing import Any


def transport(http: ModuleType, context: ssl.SSLContext) -> Any:
    class Loopback(http.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.inner = http.AsyncHTTPTransport(verify=context)

        async def handle_async_request(self, request: Any) -> Any:
            host = request.url.host
            if host.endswith(".localhost"):
                request = http.Request(request.method, request.url.copy_with(host="127.0.0.1"), headers=request.headers,
                                       stream=request.stream, extensions={**request.extensions, "sni_hostname": host})
            return await self.inner.handle_async_request(request)

    return Loopback()
