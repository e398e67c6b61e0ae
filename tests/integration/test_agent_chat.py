"""`mcp-agent chat` against the real stack: a deterministic model drives the agent's tool-use loop
(chat.py), and the calls it decides on go through connect() — discovery, CIMD + private_key_jwt,
a real browser login, DPoP — to the OAuth-protected MCP server.

The model is scripted (the loop, the MCP session and OAuth are what is under test); the last test
puts a local chat-completions server in front of the CLI, standing in for an external LLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cimd_host.keys import signing_jwk_path
from mcp_agent.agent import connect
from mcp_agent.chat import chat
from mcp_agent.chat_completions import Message, Reply, ToolCall
from tests.integration.test_agent_flows import settings_for, user
from tests.support.browser import chromium
from tests.support.chat import Recorder, serving
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.anyio


class ScriptedModel:
    """The model's decisions, one per step, each a function of the conversation so far."""

    def __init__(self, *steps: Callable[[list[Message]], Reply]) -> None:
        self.steps = list(steps)
        self.seen: list[list[Message]] = []

    async def complete(self, messages: Sequence[Message], tools: Sequence[Message]) -> Reply:
        self.seen.append(list(messages))
        self.tool_names = [t["function"]["name"] for t in tools]
        return self.steps.pop(0)(list(messages))


def calls(*names: str) -> Callable[[list[Message]], Reply]:
    return lambda _: Reply(tool_calls=[ToolCall(f"call-{name}", name, "{}") for name in names])


def tool_results(messages: list[Message]) -> dict[str, str]:
    return {m["tool_call_id"].removeprefix("call-"): m["content"] for m in messages if m["role"] == "tool"}


def summary(messages: list[Message]) -> Reply:
    return Reply(text=json.dumps(tool_results(messages)))


async def one(prompt: str) -> AsyncIterator[str]:
    yield prompt


def counting(connections: list[int]):
    @asynccontextmanager
    async def counted(*args: Any, **kwargs: Any):
        connections.append(1)
        async with connect(*args, **kwargs) as session:
            yield session

    return counted


async def test_the_model_calls_whoami_and_get_time_through_the_oauth_protected_server(stack: Stack, tmp_path: Path):
    """Ask -> the model calls whoami and get_time -> the agent signs alice in (CIMD, PKCE,
    private_key_jwt, DPoP) and runs both -> the results go back to the model -> it answers."""
    settings = settings_for(stack, tmp_path)
    model = ScriptedModel(calls("whoami", "get_time"), summary)
    console = Recorder()
    async with chromium(stack.ca_file, user(stack)) as browser:
        status = await chat(settings, model, one("who am I, and what time is it?"), console, redirect=browser.open)
    assert status == 0, console.notes
    assert browser.logins == 1
    # Every MCP tool was offered to the model as a function.
    assert {"whoami", "get_time", "server_stats", "list_notes"} <= set(model.tool_names)
    (answer,) = console.answers
    results = json.loads(answer)
    who = json.loads(results["whoami"])
    assert who["client_id"] == settings.client_metadata_url
    assert who["audience"] == [stack.resource_url]
    assert "mcp:tools" in who["granted_scopes"]
    assert results["get_time"][:2] == "20"  # an ISO 8601 timestamp, this century
    assert console.notes == ["→ whoami {}", "→ get_time {}"]


async def test_a_tools_own_error_reaches_the_user_and_the_model_as_the_calls_result(stack: Stack, tmp_path: Path):
    """The notes tools cannot act for a DPoP-bound session (the agent's default; docs/decisions.md,
    "DPoP and token exchange") and say so in a sentence (is_error): alice reads it, the model gets
    it as list_notes' result, and the session goes on (whoami after it, on the same connection)."""
    settings = settings_for(stack, tmp_path)
    model = ScriptedModel(calls("list_notes"), calls("whoami"), summary)
    console = Recorder()
    connections: list[int] = []
    async with chromium(stack.ca_file, user(stack)) as browser:
        status = await chat(settings, model, one("what are my notes?"), console, redirect=browser.open,
                            connect_to=counting(connections))
    assert status == 0, console.notes
    results = json.loads(console.answers[0])
    assert results["list_notes"].startswith("error: ")
    assert "cannot act for a DPoP-bound session" in results["list_notes"]
    assert f"list_notes answered with an error: {results['list_notes'].removeprefix('error: ')}" in console.notes
    assert json.loads(results["whoami"])["audience"] == [stack.resource_url]
    assert len(connections) == 1


async def test_a_tool_the_user_may_not_use_is_a_sentence_and_the_model_is_told(stack: Stack, tmp_path: Path):
    """alice (mcp-user, no mcp-admin) through a model that calls server_stats: 403 -> the agent says
    why it asks her to sign in again -> one step-up -> Keycloak leaves mcp:admin out -> 403 again ->
    she reads one sentence naming the permission, the model gets it as the call's result, and the
    conversation goes on over a new connection on the stored tokens (no third sign-in)."""
    settings = settings_for(stack, tmp_path)
    model = ScriptedModel(calls("server_stats"), calls("get_time"), summary)
    console = Recorder()
    connections: list[int] = []
    async with chromium(stack.ca_file, user(stack)) as browser:
        status = await chat(settings, model, one("how busy is the server?"), console, redirect=browser.open,
                            connect_to=counting(connections))
    assert status == 0, console.notes
    step_up = next(n for n in console.notes if n.startswith("server_stats needs a permission"))
    assert "sign in again to grant it (step-up, asking for:" in step_up
    assert "mcp:admin" in step_up.split("asking for:")[1]
    refusal = next(n for n in console.notes if n.startswith("server_stats: "))
    assert refusal.startswith("server_stats: permission refused: this call needs mcp:admin")
    assert stack.issuer in refusal
    assert not any("Traceback" in n for n in console.notes)
    results = json.loads(console.answers[0])
    assert results["server_stats"] == "error: " + refusal.removeprefix("server_stats: ")
    assert results["get_time"][:2] == "20"
    assert len(connections) == 2
    # The first login, exactly one step-up, and none after: the stored tokens served the new connection.
    assert len(browser.authorization_urls) == 2
    assert "mcp:admin" in dict(parse_qsl(urlsplit(browser.authorization_urls[1]).query))["scope"].split()


@pytest.fixture
def llm() -> Iterator[tuple[list[dict[str, Any]], str]]:
    """A chat-completions endpoint that calls get_time, then answers with what the tool returned."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seen.append({"authorization": self.headers.get("authorization"), **body})
            results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
            message = ({"role": "assistant", "content": f"The server's clock says {results[-1]}."} if results else
                       {"role": "assistant", "content": None, "tool_calls": [
                           {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]})
            payload = json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as base_url:
        yield seen, base_url


@pytest.mark.parametrize("asked", ["argument", "stdin"])
def test_the_cli_chats_through_an_openai_compatible_endpoint_as_the_machine_client(stack: Stack, tmp_path: Path, llm,
                                                                                   asked: str):
    """`mcp-agent --machine chat "…"` (or the question on stdin) end to end: the model's requests
    go to the configured endpoint with the key from its file, the tool call to the real server
    (client credentials, private_key_jwt), the answer to stdout; the key appears in no output."""
    seen, base_url = llm
    key_file = tmp_path / "llm-key"
    key_file.write_text("sk-chat-test-key-0123456789\n")
    settings = settings_for(stack, tmp_path / "state")
    env = {**os.environ, "AGENT_SERVER_URL": settings.server_url, "AGENT_CA_BUNDLE": str(settings.ca_bundle),
           "AGENT_STATE_DIR": str(settings.state_dir), "AGENT_CALLBACK_PORT": str(settings.callback_port),
           "AGENT_MACHINE_KEY_FILE": str(signing_jwk_path(stack.key_dir("machine"))),
           "AGENT_MACHINE_ISSUER": stack.issuer, "AGENT_LLM_BASE_URL": base_url, "AGENT_LLM_MODEL": "scripted",
           "AGENT_LLM_API_KEY_FILE": str(key_file), "NO_PROXY": "127.0.0.1,localhost"}
    command = [sys.executable, "-m", "mcp_agent", "--machine", "--trace", "chat"]
    if asked == "argument":
        result = subprocess.run([*command, "what", "time is it?"], env=env, cwd=ROOT, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120)
    else:  # one question per line until the end of input; a blank line is no question
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                                input="what time is it?\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The server's clock says 20"), result.stdout
    assert len(result.stdout.splitlines()) == 1
    assert seen[0]["messages"][1] == {"role": "user", "content": "what time is it?"}
    assert "→ get_time {}" in result.stderr
    assert [r["authorization"] for r in seen] == ["Bearer sk-chat-test-key-0123456789"] * 2
    assert seen[0]["model"] == "scripted"
    assert "get_time" in [t["function"]["name"] for t in seen[0]["tools"]]
    assert "sk-chat-test-key" not in result.stdout + result.stderr
