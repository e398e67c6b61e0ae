"""A pydantic-ai agent whose tools are the sandbox's protected MCP tools, signed in through the
demo agent's auth library (`mcp_agent.agent_auth`): CIMD + private_key_jwt + PKCE in the browser,
or client credentials with --machine; DPoP unless AGENT_DPOP=false.

    python examples/pydantic_ai/agent.py [--machine] [--model MODEL] [PROMPT]

MODEL is any pydantic-ai model name (`openai:gpt-5-mini`, `anthropic:...`, an OpenAI-compatible
local server through `OPENAI_BASE_URL`); `test` is pydantic-ai's deterministic TestModel, which
calls `whoami` and needs no LLM (what `make test` runs). Settings are the AGENT_* variables
(services/agent/README.md). With --json the sign-in URL and the result are JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ToolReturnPart
from pydantic_ai.models.test import TestModel

from mcp_agent import agent_auth


async def main(args: argparse.Namespace) -> None:
    async def show_json(url: str) -> None:
        print(json.dumps({"authorize": url}), flush=True)

    # The library: an httpx2.Auth for every flow, and an httpx2 client that trusts the sandbox CA.
    oauth = await agent_auth(machine=args.machine, redirect=show_json if args.json else None)
    # The first request waits for the sign-in: pydantic-ai's 5 s `init_timeout` would cut a person off.
    toolset = MCPToolset(oauth.server_url, auth=oauth.auth, http_client=oauth.http_client(),
                         init_timeout=oauth.settings.login_timeout_seconds)
    model = TestModel(call_tools=["whoami"]) if args.model == "test" else args.model
    agent = Agent(model, toolsets=[toolset], instructions="Answer with the sandbox's MCP tools.")
    try:
        async with agent:
            result = await agent.run(args.prompt)
    except Exception:
        refused = oauth.permission_refused()  # 403 after one step-up: which permission, in one line
        if refused is None:
            raise
        raise SystemExit(f"agent: {refused}") from None
    calls = {part.tool_name: part.content for message in result.all_messages() for part in message.parts
             if isinstance(part, ToolReturnPart)}
    if args.json:
        print(json.dumps({"client_id": oauth.client_id, "registration": oauth.registration,
                          "signed_in_now": oauth.login.signed_in_now, "tool_results": calls,
                          "output": str(result.output)}, default=str), flush=True)
    else:
        print(result.output)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="Who am I signed in as?")
    parser.add_argument("--machine", action="store_true", help="client credentials, no user")
    parser.add_argument("--model", default="test", help="a pydantic-ai model name; `test`: no LLM")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (scripts, tests)")
    asyncio.run(main(parser.parse_args()))
