"""LangChain's MCP adapter (`langchain.mcp.MCPAdapter`, over a FastMCP client) on the sandbox's
protected tools, signed in through the demo agent's auth library (`mcp_agent.agent_auth`): CIMD +
private_key_jwt + PKCE in the browser, or client credentials with --machine; DPoP unless
AGENT_DPOP=false.

    python examples/langchain/agent.py [--machine] [--model MODEL --prompt TEXT]

Without --prompt it turns the MCP tools into LangChain tools and invokes `whoami` (no LLM; what
`make test` runs). With --prompt, `create_agent` answers with them on MODEL (a LangChain model
name such as `openai:gpt-5-mini`; its provider package must be installed). Settings are the
AGENT_* variables (services/agent/README.md). --json: JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import warnings

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from langchain_core._api import LangChainBetaWarning

from mcp_agent import agent_auth

warnings.filterwarnings("ignore", category=LangChainBetaWarning)  # langchain.mcp is in beta
from langchain.agents import create_agent  # noqa: E402
from langchain.mcp import MCPAdapter  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    async def show_json(url: str) -> None:
        print(json.dumps({"authorize": url}), flush=True)

    oauth = await agent_auth(machine=args.machine, redirect=show_json if args.json else None)
    transport = StreamableHttpTransport(oauth.server_url, auth=oauth.auth, httpx_client_factory=oauth.http_client)
    try:
        async with MCPAdapter(Client(transport)) as adapter:
            tools = await adapter.list_tools()
            if args.prompt:
                agent = create_agent(args.model, tools)
                answer = await agent.ainvoke({"messages": [{"role": "user", "content": args.prompt}]})
                print(answer["messages"][-1].content)
                return
            whoami = await next(tool for tool in tools if tool.name == "whoami").ainvoke({})
    except Exception:
        refused = oauth.permission_refused()  # 403 after one step-up: which permission, in one line
        if refused is None:
            raise
        raise SystemExit(f"agent: {refused}") from None
    out = {"client_id": oauth.client_id, "registration": oauth.registration,
           "signed_in_now": oauth.login.signed_in_now, "tools": [t.name for t in tools],
           "whoami": whoami}
    print(json.dumps(out, default=str) if args.json else json.dumps(out, indent=2, default=str), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", action="store_true", help="client credentials, no user")
    parser.add_argument("--model", default="openai:gpt-5-mini", help="with --prompt: a LangChain model name")
    parser.add_argument("--prompt", help="let create_agent answer this with the tools (needs a model)")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (scripts, tests)")
    asyncio.run(main(parser.parse_args()))
