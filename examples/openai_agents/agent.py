"""The OpenAI Agents SDK's MCP client (`MCPServerStreamableHttp`) on the sandbox's protected
tools, signed in through the demo agent's auth library (`mcp_agent.agent_auth`): CIMD +
private_key_jwt + PKCE in the browser, or client credentials with --machine; DPoP unless
AGENT_DPOP=false.

    python examples/openai_agents/agent.py [--machine] [--prompt TEXT]

Without --prompt it lists the tools and calls `whoami` through the server object (no LLM; what
`make test` runs). With --prompt an Agent answers with those tools, on the model the SDK is
configured for (OPENAI_API_KEY, or OPENAI_BASE_URL for any OpenAI-compatible server). Settings
are the AGENT_* variables (services/agent/README.md). --json: JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from agents import Agent, Runner
from agents.mcp import MCPServerStreamableHttp

from mcp_agent import agent_auth


async def main(args: argparse.Namespace) -> None:
    async def show_json(url: str) -> None:
        print(json.dumps({"authorize": url}), flush=True)

    oauth = await agent_auth(machine=args.machine, redirect=show_json if args.json else None)
    # The library's client factory trusts the sandbox CA itself: no SSL_CERT_FILE needed.
    server = MCPServerStreamableHttp(
        params={"url": oauth.server_url, "auth": oauth.auth, "httpx_client_factory": oauth.http_client},
        name="mcp-sandbox",
        # The first request waits for the sign-in: the SDK's 5 s session timeout would cut a person off.
        client_session_timeout_seconds=oauth.settings.login_timeout_seconds,
    )
    try:
        async with server:
            if args.prompt:
                agent = Agent(name="sandbox", instructions="Answer with the MCP tools.", mcp_servers=[server])
                print((await Runner.run(agent, args.prompt)).final_output)
                return
            tools = [tool.name for tool in await server.list_tools()]
            whoami = await server.call_tool("whoami", {})
    except Exception:
        refused = oauth.permission_refused()  # 403 after one step-up: which permission, in one line
        if refused is None:
            raise
        raise SystemExit(f"agent: {refused}") from None
    out = {"client_id": oauth.client_id, "registration": oauth.registration,
           "signed_in_now": oauth.login.signed_in_now, "tools": tools,
           "whoami": whoami.structured_content}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", action="store_true", help="client credentials, no user")
    parser.add_argument("--prompt", help="let an Agent answer this with the tools (needs a model)")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (scripts, tests)")
    asyncio.run(main(parser.parse_args()))
