"""`*.localhost` names for HTTP clients on hosts whose resolver does not know them.

RFC 6761 §6.3 says `localhost` and every name under it is loopback; browsers and curl resolve
them so, plain glibc does not (getent hosts auth.localhost fails on Debian). This network
backend only changes where the TCP connection goes: the Host header, TLS SNI and certificate
verification still use the real name, so TLS is checked exactly as for any other host.
Inside the compose network the names resolve through Docker's DNS and this is not needed.
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

import httpcore2
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


class _AsyncLoopbackBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_tcp(loopback_for(host), port, *args, **kwargs)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _SyncLoopbackBackend(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return self._inner.connect_tcp(loopback_for(host), port, *args, **kwargs)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return self._inner.connect_unix_socket(*args, **kwargs)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def async_transport(verify: ssl.SSLContext) -> httpx2.AsyncHTTPTransport:
    transport = httpx2.AsyncHTTPTransport(verify=verify)
    # httpx2 takes no network backend argument; rebuild its pool with ours, same TLS context.
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=verify, network_backend=_AsyncLoopbackBackend())
    return transport


def sync_transport(verify: ssl.SSLContext) -> httpx2.HTTPTransport:
    transport = httpx2.HTTPTransport(verify=verify)
    transport._pool = httpcore2.ConnectionPool(ssl_context=verify, network_backend=_SyncLoopbackBackend())
    return transport
