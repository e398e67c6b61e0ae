"""mcp-agent: the demo MCP agent on the command line.

    mcp-agent login                  sign in (browser) and list the tools
    mcp-agent tools                  list the tools
    mcp-agent call NAME [k=v ...]    call a tool (values parsed as JSON when they are)
    mcp-agent whoami                 what the MCP server sees of this agent's token
    mcp-agent chat ["question"]      a model (AGENT_LLM_*) calls the tools for you (chat.py)
    mcp-agent logout                 forget this agent's tokens and registration

Options: --json, --trace (every HTTP exchange of the OAuth dance, secrets masked), --machine
(client credentials with a private_key_jwt assertion instead of a user login), --registration
auto|cimd|preregistered|dcr. Settings come from AGENT_* variables (see config.py).

Arguments are checked before anything touches the network or a browser. Exit status: 0 done,
1 failed (or the tool reported an error, or logout could not revoke the refresh token), 2 usage
or configuration error. With --json, stdout carries exactly one JSON object, failures included:
`{"error": {"kind": ..., "message": ...}}` (kinds in errors.py and usage/configuration/revocation
here); an object with "error" always comes with a non-zero status.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import typing
from pathlib import Path
from typing import Any

import anyio
from mcp.shared.tool_name_validation import validate_tool_name
from pydantic import ValidationError

from . import chat
from .agent import connect
from .chat_completions import ModelError
from .config import AgentSettings
from .errors import Failure, describe
from .revocation import revoke_refresh_token
from .storage import FileTokenStorage
from .trace import Tracer

USAGE, FAILED = 2, 1
COMMANDS = ("login", "tools", "call", "whoami", "logout", "chat")


class UsageError(Exception):
    """A bad command line: reported before any login."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


def parse_arguments(pairs: list[str]) -> dict[str, Any]:
    """key=value pairs; a value is JSON when it parses as JSON, else the string itself. A value
    that opens like a JSON object, array or string but does not parse is a mistake, not text."""
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"argument {pair!r} is not key=value")
        if key in arguments:
            raise UsageError(f"argument {key!r} is given twice")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            if value.lstrip()[:1] in ('{', '[', '"'):
                raise UsageError(f"argument {key!r} is not valid JSON ({exc.msg} at column {exc.colno})") from None
            arguments[key] = value
    return arguments


def check_tool_name(name: str) -> None:
    # The MCP tool-name rule (SDK's SEP-986 check): 1-128 of A-Z a-z 0-9 _ - .
    if not validate_tool_name(name).is_valid:
        raise UsageError(f"{name!r} is not a tool name (1-128 characters of A-Z a-z 0-9 _ - .)")


def _result(result: Any) -> Any:
    content = result.structured_content
    if content is not None:
        # The SDK wraps a tool's plain return value as {"result": value}.
        return content["result"] if isinstance(content, dict) and list(content) == ["result"] else content
    return "\n".join(getattr(c, "text", str(c)) for c in result.content)


async def run(args: argparse.Namespace, settings: AgentSettings) -> dict[str, Any]:
    tracer = Tracer() if args.trace else None
    if args.command == "logout":
        return await logout(settings, tracer)
    mode = "legacy" if args.legacy else "auto"
    async with connect(settings, machine=args.machine, tracer=tracer, mode=mode) as (client, login):
        out: dict[str, Any] = {"registration": login.registration, "client_id": login.client_id}
        if args.command in ("login", "tools"):
            tools = await client.list_tools()
            out["tools"] = [{"name": t.name, "description": t.description} for t in tools.tools]
        if args.command in ("login", "whoami"):
            out["whoami"] = _result(await client.call_tool("whoami", {}))
        if args.command == "call":
            result = await client.call_tool(args.name, args.tool_arguments)
            out["tool"] = args.name
            out["is_error"] = bool(result.is_error)
            out["result"] = _result(result)
        out["signed_in_now"] = login.signed_in_now
        return out


async def logout(settings: AgentSettings, tracer: Tracer | None) -> dict[str, Any]:
    """Revoke the refresh token at the AS (RFC 7009), then delete the files whatever came of it:
    the user asked to forget them. A revocation that failed is an error (exit 1): the refresh
    token stays valid at the AS until it expires."""
    storage = FileTokenStorage(settings.state_dir, settings.server_url)
    try:
        revocation = await revoke_refresh_token(settings, storage, tracer)
        reason = revocation.reason
    except Exception as exc:
        revocation, reason = None, describe(exc).message
    removed = [storage.clear(), FileTokenStorage(settings.state_dir, settings.server_url + "#machine").clear()]
    out: dict[str, Any] = {"logged_out": any(removed), "revoked": bool(revocation and revocation.revoked)}
    if reason is not None:
        out["error"] = Failure("revocation", f"the refresh token was not revoked: {reason}; it stays valid at the "
                                             "authorization server until it expires").as_json()["error"]
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
        if not out["logged_out"]:
            return "Nothing to log out."
        revoked = "the refresh token is revoked at the authorization server, " if out["revoked"] else ""
        return (f"Logged out: {revoked}the stored tokens and registration are deleted; "
                "the next command signs in through the browser.")
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


def build_parser() -> Parser:
    parser = Parser(prog="mcp-agent", description="Demo MCP agent (OAuth: CIMD, PKCE, step-up)")
    parser.add_argument("--json", action="store_true", help="machine-readable output, errors included (stdout)")
    parser.add_argument("--trace", action="store_true", help="print each HTTP exchange (secrets masked) to stderr")
    parser.add_argument("--machine", action="store_true", help="client credentials (private_key_jwt), no user")
    parser.add_argument("--registration", choices=["auto", "cimd", "preregistered", "dcr"])
    parser.add_argument("--legacy", action="store_true", help="use the 2025-11-25 initialize handshake")
    parser.add_argument("--server", help="MCP server URL (default AGENT_SERVER_URL)")
    parser.add_argument("--ca-bundle", type=Path, help="CA file to trust (default AGENT_CA_BUNDLE)")
    parser.add_argument("--no-browser", action="store_true", help="only print the sign-in URL")
    parser.add_argument("--verbose", action="store_true", help="show the SDK's own log messages")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        if name not in ("call", "chat"):
            sub.add_parser(name)
    call = sub.add_parser("call")
    call.add_argument("name")
    call.add_argument("arguments", nargs="*", metavar="key=value")
    talk = sub.add_parser("chat", help="a model calls the tools (AGENT_LLM_*); reads questions from stdin")
    talk.add_argument("prompt", nargs="*", help="one question, answered, then exit (default: read stdin)")
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, checked whole: nothing after this may fail for a reason it could see."""
    args = build_parser().parse_args(argv)
    if args.command == "call":
        check_tool_name(args.name)
        args.tool_arguments = parse_arguments(args.arguments)
    if args.command == "chat" and args.json:
        raise UsageError("chat answers in sentences: --json is not for chat")
    return args


def report(failure: Failure, as_json: bool) -> None:
    if as_json:
        print(json.dumps(failure.as_json()))
    else:
        print(f"mcp-agent: {failure.message}", file=sys.stderr)


def run_chat(args: argparse.Namespace, settings: AgentSettings) -> int:
    try:
        # Checked before any login: no model, no sign-in.
        endpoint = chat.configured_model(settings)
    except ModelError as exc:
        report(Failure("configuration", str(exc)), False)
        return USAGE
    prompt = " ".join(args.prompt) if args.prompt else None
    try:
        return anyio.run(functools.partial(chat.run, settings, prompt, machine=args.machine,
                                           tracer=Tracer() if args.trace else None, endpoint=endpoint))
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        report(describe(exc), False)
        return FAILED


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Known before parsing, so that a usage error is reported in the form asked for: --json is an
    # option of its own only before the command (after `call NAME` it would be a tool argument).
    command_at = next((i for i, word in enumerate(argv) if word in COMMANDS), len(argv))
    as_json = "--json" in argv[:command_at]
    try:
        args = parse(argv)
    except UsageError as exc:
        report(Failure("usage", f"{exc} (see mcp-agent --help)"), as_json)
        return USAGE
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
        report(Failure("configuration", f"invalid configuration: {name}: {error['msg']} (make sets it from compose/.env)"),
               args.json)
        return USAGE
    if args.command == "chat":
        return run_chat(args, settings)
    try:
        out = anyio.run(run, args, settings)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        report(describe(exc), args.json)
        return FAILED
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(render(out))
        if "error" in out:
            print(f"mcp-agent: {out['error']['message']}", file=sys.stderr)
    return FAILED if out.get("is_error") or "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
