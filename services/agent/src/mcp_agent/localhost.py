"""`*.localhost` names for HTTP clients on hosts whose resolver does not know them.

RFC 6761 §6.3 says `localhost` and every name under it is loopback; browsers and curl resolve
them so, plain glibc does not (getent hosts auth.localhost fails on Debian). This only
changes where the TCP connection goes: the Host header, TLS SNI and certificate
verification still use the real name, so TLS is checked exactly as for any other host. Only
public httpx2 API: a transport that aims the request at 127.0.0.1 and passes the real name as
`sni_hostname`, over httpx2's standard transport.
Inside the compose network the names resolve through Docker's DNS and this is not needed.
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

import httpx2


def loopback_for(host: str) -> str:
    """127.0.0.1 for a *.localhost name the system cannot resolve; anything else unchanged.

    Names the system does resolve are left alone: inside the compose network Docker's DNS maps
    them to the TLS front, and 127.0.0.1 there would be the container itself."""
    name = host.rstrip(".").lower()
    if (name == "localhost" or name.endswith(".localhost")) and not resolves(name):
        return "127.0.0.1"
    return host


@functools.lru_cache(maxsize=64)
def resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


def _aimed_at_loopback(request: httpx2.Request) -> tuple[str | None, httpx2.Request]:
    """The request to send if its host needs loopback (with the real name), else the request.

    A copy goes to 127.0.0.1; the caller's request is untouched, so the response still belongs
    to the real URL (cookies, redirects). The Host header keeps the real name (httpx2 set it from
    the URL already) and so does TLS: `sni_hostname` is what the connection sends as SNI and
    verifies the certificate against."""
    host = request.url.host
    if loopback_for(host) == host:
        return None, request
    aimed = httpx2.Request(request.method, request.url.copy_with(host="127.0.0.1"), headers=request.headers,
                           stream=request.stream, extensions={**request.extensions, "sni_hostname": host})
    return host, aimed


class AsyncLoopbackTransport(httpx2.AsyncBaseTransport):
    """httpx2's own transport (its limits, retries and TLS), one per real name, so connections
    are pooled per name and never shared across SNI values."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._transports: dict[str | None, httpx2.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        name, aimed = _aimed_at_loopback(request)
        if name not in self._transports:
            self._transports[name] = httpx2.AsyncHTTPTransport(**self._options)
        return await self._transports[name].handle_async_request(aimed)

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()


class LoopbackTransport(httpx2.BaseTransport):
    """The synchronous twin of AsyncLoopbackTransport."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._transports: dict[str | None, httpx2.HTTPTransport] = {}

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        name, aimed = _aimed_at_loopback(request)
        if name not in self._transports:
            self._transports[name] = httpx2.HTTPTransport(**self._options)
        return self._transports[name].handle_request(aimed)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()


def async_transport(verify: ssl.SSLContext) -> AsyncLoopbackTransport:
    return AsyncLoopbackTransport(verify=verify)


def sync_transport(verify: ssl.SSLContext) -> LoopbackTransport:
    return LoopbackTransport(verify=verify)
