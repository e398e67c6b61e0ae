"""The demo agent's MCP session: the MCP SDK's client over the library's auth (auth.py).

    async with connect(settings) as (client, login):
        await client.call_tool("whoami", {})

It is what any framework does with `agent_auth` (docs/agent-frameworks.md), plus one thing for
the command line: a refused permission is raised as `PermissionRefused`, one sentence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from .auth import agent_auth
from .config import AgentSettings
from .login import Login, RedirectHandler
from .trace import Tracer


@asynccontextmanager
async def connect(
    settings: AgentSettings,
    *,
    machine: bool = False,
    tracer: Tracer | None = None,
    redirect: RedirectHandler | None = None,
    mode: str = "auto",
) -> AsyncIterator[tuple[Client, Login]]:
    agent = await agent_auth(settings, machine=machine, redirect=redirect, tracer=tracer)
    async with agent.http_client(auth=agent.auth) as http:
        try:
            async with Client(streamable_http_client(settings.server_url, http_client=http), mode=mode) as client:
                agent.login.client_id = agent.client_id
                agent.login.registration = agent.registration
                yield client, agent.login
        except Exception as exc:
            # A second 403 after the SDK's one step-up: say which permission is missing (refusal.py).
            refused = agent.permission_refused()
            if refused is None:
                raise
            raise refused from exc
