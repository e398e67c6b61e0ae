"""How the agent reaches servers over HTTPS: which CA it trusts, proxies, and `*.localhost`.

Every HTTP request of the agent — discovery, registration, token requests, MCP calls — goes
through an `httpx2.AsyncClient` built here, and so does every request a framework's MCP client
makes with the library's auth (auth.py hands frameworks `http_client` as their client factory).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx2

from .config import AgentSettings
from .localhost import async_transport
from .refusal import ScopeRefusals
from .trace import Tracer

# Names a proxy cannot reach (they mean this machine): always connected to directly, whatever
# HTTPS_PROXY and NO_PROXY say, through the transport that finds *.localhost (localhost.py).
LOOPBACK_MOUNTS = ("all://localhost", "all://*.localhost", "all://127.0.0.1", "all://[::1]")


def ssl_context(settings: AgentSettings) -> ssl.SSLContext:
    """The system trust store, plus `ca_bundle` (the sandbox's local CA) when one is configured."""
    if settings.ca_bundle:
        return ssl.create_default_context(cafile=str(settings.ca_bundle))
    return ssl.create_default_context()


def http_client(settings: AgentSettings, tracer: Tracer | None = None, *, refusals: ScopeRefusals | None = None,
                verify: ssl.SSLContext | None = None, **kwargs: Any) -> httpx2.AsyncClient:
    hooks: dict[str, list[Callable[..., Any]]] = tracer.hooks() if tracer else {"request": [], "response": []}
    if refusals is not None:
        hooks = {**hooks, "response": [*hooks.get("response", []), refusals.on_response]}
    verify = verify or ssl_context(settings)
    loopback = async_transport(verify)
    # Streams outlive httpx2's 5 s default; a caller (a framework's client factory) may set its own.
    if kwargs.get("timeout") is None:
        kwargs["timeout"] = httpx2.Timeout(30.0, read=300.0)
    return httpx2.AsyncClient(
        # HTTP(S)_PROXY, ALL_PROXY and NO_PROXY are honoured (trust_env): httpx2 builds the direct and
        # proxy transports itself, each verifying the server with `verify` — the sandbox CA when
        # one is configured, through a proxy's CONNECT tunnel too. Explicit mounts win over them.
        verify=verify,
        trust_env=True,
        mounts=dict.fromkeys(LOOPBACK_MOUNTS, loopback),
        event_hooks=hooks,
        **kwargs,
    )
