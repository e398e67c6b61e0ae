"""mcp-agent: the demo MCP agent on the command line.

    mcp-agent login                  sign in (browser) and list the tools
    mcp-agent tools                  list the tools
    mcp-agent call NAME [k=v ...]    call a tool (values parsed as JSON when they are)
    mcp-agent whoami                 what the MCP server sees of this agent's token
    mcp-agent logout                 forget this agent's tokens and registration

Options: --json, --trace (every HTTP exchange of the OAuth dance, secrets masked), --machine
(client credentials with a private_key_jwt assertion instead of a user login), --registration
auto|cimd|preregistered|dcr. Settings come from AGENT_* variables (see config.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from .agent import connect
from .config import AgentSettings
from .errors import explain
from .storage import FileTokenStorage
from .trace import Tracer


def parse_arguments(pairs: list[str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"mcp-agent: argument {pair!r} is not key=value")
        try:
            arguments[key] = json.loads(value)
        except ValueError:
            arguments[key] = value
    return arguments


def _result(result: Any) -> Any:
    content = result.structured_content
    if content is not None:
        # The SDK wraps a tool's plain return value as {"result": value}.
        return content["result"] if isinstance(content, dict) and list(content) == ["result"] else content
    return "\n".join(getattr(c, "text", str(c)) for c in result.content)


async def run(args: argparse.Namespace, settings: AgentSettings) -> dict[str, Any]:
    if args.command == "logout":
        removed = [
            FileTokenStorage(settings.state_dir, settings.server_url + suffix).clear() for suffix in ("", "#machine")
        ]
        return {"logged_out": any(removed)}
    tracer = Tracer() if args.trace else None
    mode = "legacy" if args.legacy else "auto"
    async with connect(settings, machine=args.machine, tracer=tracer, mode=mode) as (client, login):
        out: dict[str, Any] = {"registration": login.registration, "client_id": login.client_id}
        if args.command in ("login", "tools"):
            tools = await client.list_tools()
            out["tools"] = [{"name": t.name, "description": t.description} for t in tools.tools]
        if args.command in ("login", "whoami"):
            out["whoami"] = _result(await client.call_tool("whoami", {}))
        if args.command == "call":
            result = await client.call_tool(args.name, parse_arguments(args.arguments))
            out["tool"] = args.name
            out["is_error"] = bool(result.is_error)
            out["result"] = _result(result)
        out["signed_in_now"] = login.signed_in_now
        return out


def user_name(who: dict[str, Any]) -> str:
    """Who the token speaks for: its preferred_username, else its subject said as such. A token
    without the `profile` scope has no name in it (the demo agent's CIMD client asks only for the
    MCP scopes), and a bare UUID would read like an error."""
    if who.get("username"):
        return str(who["username"])
    if who.get("subject"):
        return f"user {who['subject']} (the token's subject; it carries no user name)"
    return "nobody (the server saw no token)"


def render(out: dict[str, Any]) -> str:
    lines = []
    if "logged_out" in out:
        if out["logged_out"]:
            return "Logged out: the stored tokens and registration are deleted; the next command signs in through the browser."
        return "Nothing to log out."
    lines.append(f"client: {out['client_id']} ({out['registration']})")
    who = out.get("whoami")
    if who:
        lines.append(f"signed in as: {user_name(who)}  scopes: {' '.join(who.get('granted_scopes', []))}")
        lines.append(f"token audience: {', '.join(who.get('audience') or [])}")
    if out.get("signed_in_now") is False and out.get("registration") != "client_credentials":
        # With --trace this is why no discovery or authorization shows: none was needed.
        lines.append("session: the stored tokens were used, no new sign-in (`logout` forgets them)")
    for tool in out.get("tools", []):
        lines.append(f"  {tool['name']:<14} {tool['description'] or ''}")
    if "tool" in out:
        result = out["result"]
        text = result if isinstance(result, str) else json.dumps(result, indent=2)
        lines.append(("error from " if out["is_error"] else "") + f"{out['tool']}: {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-agent", description="Demo MCP agent (OAuth: CIMD, PKCE, step-up)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--trace", action="store_true", help="print each HTTP exchange (secrets masked) to stderr")
    parser.add_argument("--machine", action="store_true", help="client credentials (private_key_jwt), no user")
    parser.add_argument("--registration", choices=["auto", "cimd", "preregistered", "dcr"])
    parser.add_argument("--legacy", action="store_true", help="use the 2025-11-25 initialize handshake")
    parser.add_argument("--server", help="MCP server URL (default AGENT_SERVER_URL)")
    parser.add_argument("--ca-bundle", type=Path, help="CA file to trust (default AGENT_CA_BUNDLE)")
    parser.add_argument("--no-browser", action="store_true", help="only print the sign-in URL")
    parser.add_argument("--verbose", action="store_true", help="show the SDK's own log messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("login", "tools", "whoami", "logout"):
        sub.add_parser(name)
    call = sub.add_parser("call")
    call.add_argument("name")
    call.add_argument("arguments", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    # Failures are reported as one line below; the SDK's tracebacks only with --verbose.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL, format="%(name)s: %(message)s")

    overrides = {
        k: v
        for k, v in {
            "registration": args.registration,
            "server_url": args.server,
            "ca_bundle": args.ca_bundle,
            "open_browser": False if args.no_browser else None,
        }.items()
        if v is not None
    }
    try:
        settings = AgentSettings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "AGENT_" + "_".join(str(part) for part in error["loc"]).upper()
        print(f"mcp-agent: invalid configuration: {name}: {error['msg']} (make sets it from compose/.env)",
              file=sys.stderr)
        return 2
    try:
        out = anyio.run(run, args, settings)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        print(f"mcp-agent: {explain(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2) if args.json else render(out))
    return 1 if out.get("is_error") else 0


if __name__ == "__main__":
    sys.exit(main())
