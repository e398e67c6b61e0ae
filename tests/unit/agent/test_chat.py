"""The chat loop (chat.py) with a scripted model and a tool session standing in for the MCP server:
tools offered as functions, calls run, results (errors included) fed back, refusals said and
answered, the conversation carried over a new connection. The same loop runs against the real
server in tests/integration/test_agent_chat.py."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.types import CallToolResult, ListToolsResult, TextContent, Tool

from mcp_agent import cli
from mcp_agent.chat import (
    MAX_FAILED_CALLS,
    NO_MODEL,
    Activity,
    Conversation,
    StepLimit,
    chat,
    offered_tools,
    respond,
    stdin_prompts,
    step_up_said,
)
from mcp_agent.chat_completions import Message, ModelError, Reply, ToolCall
from mcp_agent.config import AgentSettings
from mcp_agent.refusal import PermissionRefused
from tests.support.chat import Recorder

pytestmark = pytest.mark.anyio
ISSUER = "https://auth.localhost/realms/mcp"


class ScriptedModel:
    """Each step a function of the conversation so far: what the model 'decides'."""

    def __init__(self, *steps: Callable[[list[Message]], Reply]) -> None:
        self.steps = list(steps)
        self.seen: list[list[Message]] = []
        self.tools: list[Sequence[Message]] = []

    async def complete(self, messages: Sequence[Message], tools: Sequence[Message]) -> Reply:
        self.seen.append([dict(m) for m in messages])
        self.tools.append(tools)
        return self.steps.pop(0)(list(messages))


def call(name: str, arguments: Any = None, id: str | None = None) -> Callable[[list[Message]], Reply]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return lambda _: Reply(tool_calls=[ToolCall(id or f"call-{name}", name, text)])


def answer_with_last_result(prefix: str = "") -> Callable[[list[Message]], Reply]:
    return lambda messages: Reply(text=prefix + [m for m in messages if m["role"] == "tool"][-1]["content"])


def text(value: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=value)])


class Tools:
    """A tool session: each tool a function of its arguments (returning a result or raising)."""

    def __init__(self, **tools: Callable[[dict[str, Any]], CallToolResult]) -> None:
        self.tools = tools
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.redirect: Callable[[str], Any] | None = None

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult:
        # Two pages, as tools/list may answer.
        names = sorted(self.tools)
        page, rest = (names[1:], None) if cursor else (names[:1], "page-2" if len(names) > 1 else None)
        return ListToolsResult(tools=[Tool(name=n, description=f"the {n} tool", input_schema={"type": "object"})
                                      for n in page], next_cursor=rest)

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        self.calls.append((name, arguments or {}))
        return self.tools[name](arguments or {})


def connector(session: Tools, fail_to_connect: BaseException | None = None):
    connections: list[dict[str, Any]] = []

    @asynccontextmanager
    async def connect(settings: AgentSettings, **kwargs: Any):
        connections.append(kwargs)
        session.redirect = kwargs["redirect"]
        if fail_to_connect is not None:
            raise fail_to_connect
        yield session, None

    return connect, connections


async def prompts(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def settings(tmp_path: Path, **overrides: Any) -> AgentSettings:
    return AgentSettings(callback_port=8976, state_dir=tmp_path, open_browser=False, **overrides)


def refused() -> PermissionRefused:
    return PermissionRefused(["mcp:admin"], ["mcp:tools", "mcp:admin"], ISSUER)


async def test_the_tools_are_offered_as_functions_and_a_result_goes_back_to_the_model():
    session = Tools(get_time=lambda _: text("2026-12-03T06:00:00Z"), whoami=lambda _: text("{}"))
    model = ScriptedModel(call("get_time"), answer_with_last_result("It is "))
    console = Recorder()
    conversation = Conversation()
    conversation.ask("what time is it?")
    tools = await offered_tools(session)
    answer = await respond(model, session, conversation, tools, console)
    assert answer == "It is 2026-12-03T06:00:00Z"
    assert session.calls == [("get_time", {})]
    # Both pages of tools/list, each tool an OpenAI-style function with the MCP input schema.
    assert model.tools[0] == [
        {"type": "function", "function": {"name": n, "description": f"the {n} tool", "parameters": {"type": "object"}}}
        for n in ("get_time", "whoami")]
    (tool_message,) = [m for m in model.seen[1] if m["role"] == "tool"]
    assert tool_message == {"role": "tool", "tool_call_id": "call-get_time", "content": "2026-12-03T06:00:00Z"}
    assert console.notes == ["→ get_time {}"]
    assert not conversation.open_turn


async def test_structured_content_goes_to_the_model_as_json():
    session = Tools(whoami=lambda _: CallToolResult(content=[], structured_content={"username": "alice"}))
    model = ScriptedModel(call("whoami"), answer_with_last_result())
    conversation = Conversation()
    conversation.ask("who am I?")
    assert json.loads(await respond(model, session, conversation, [], Recorder())) == {"username": "alice"}


async def test_a_tools_own_error_is_told_to_the_user_and_given_to_the_model():
    """The notes tools answer is_error with a sentence (e.g. why they cannot act for this session)."""
    sentence = "the notes tools cannot act for a DPoP-bound session"
    session = Tools(list_notes=lambda _: CallToolResult(content=[TextContent(type="text", text=sentence)], is_error=True))
    model = ScriptedModel(call("list_notes"), answer_with_last_result("The tool said: "))
    console = Recorder()
    conversation = Conversation()
    conversation.ask("list my notes")
    answer = await respond(model, session, conversation, [], console)
    assert answer == f"The tool said: error: {sentence}"
    assert f"list_notes answered with an error: {sentence}" in console.notes


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
async def test_arguments_that_are_not_a_json_object_are_not_sent_to_the_server(arguments: str):
    session = Tools(add_note=lambda _: text("added"))
    model = ScriptedModel(call("add_note", arguments), answer_with_last_result())
    console = Recorder()
    conversation = Conversation()
    conversation.ask("add a note")
    answer = await respond(model, session, conversation, [], console)
    assert session.calls == []
    assert answer == "error: the arguments were not a JSON object; call again with a JSON object"
    assert console.notes == ["add_note: not called, the model's arguments are not a JSON object"]


async def test_a_model_that_never_answers_is_stopped_and_every_call_has_a_result():
    session = Tools(get_time=lambda _: text("now"))
    model = ScriptedModel(*[call("get_time", id=f"c{i}") for i in range(3)])
    conversation = Conversation()
    conversation.ask("loop forever")
    with pytest.raises(StepLimit, match="3 times without answering"):
        await respond(model, session, conversation, [], Recorder(), max_steps=3)
    assert len(session.calls) == 2  # the third step's call is answered, not run
    assert conversation.messages[-1] == {"role": "tool", "tool_call_id": "c2",
                                         "content": "error: not called, the agent stopped this turn"}
    assert conversation.pending() == []
    assert not conversation.open_turn


async def test_one_question_is_answered_over_one_connection(tmp_path: Path):
    session = Tools(get_time=lambda _: text("06:00"))
    connect, connections = connector(session)
    console = Recorder()
    status = await chat(settings(tmp_path), ScriptedModel(call("get_time"), answer_with_last_result()),
                        prompts("what time is it?"), console, connect_to=connect)
    assert status == 0
    assert console.answers == ["06:00"]
    assert len(connections) == 1


async def test_the_conversation_keeps_its_history_and_blank_lines_are_skipped(tmp_path: Path):
    session = Tools(get_time=lambda _: text("06:00"))
    connect, _ = connector(session)
    model = ScriptedModel(lambda _: Reply(text="hello"), lambda m: Reply(text=f"{len(m)} messages so far"))
    console = Recorder()
    assert await chat(settings(tmp_path), model, prompts("hi", "  ", "again"), console, connect_to=connect) == 0
    # system, hi, hello, again
    assert console.answers == ["hello", "4 messages so far"]


async def test_a_refused_permission_is_a_sentence_for_the_user_and_the_models_tool_result(tmp_path: Path):
    """connect ends the session with PermissionRefused (refusal.py); the call gets the sentence as
    its result, and the turn goes on over a new connection, where the next call works."""

    def server_stats(_: dict[str, Any]) -> CallToolResult:
        raise refused()

    session = Tools(server_stats=server_stats, get_time=lambda _: text("06:00"))
    connect, connections = connector(session)
    model = ScriptedModel(call("server_stats"), call("get_time"),
                          lambda m: Reply(text=" / ".join(x["content"] for x in m if x["role"] == "tool")))
    console = Recorder()
    assert await chat(settings(tmp_path), model, prompts("show the server's stats"), console, connect_to=connect) == 0
    sentence = str(refused())
    assert sentence.startswith("permission refused: this call needs mcp:admin")
    assert f"server_stats: {sentence}" in console.notes
    assert console.answers == [f"error: {sentence} / 06:00"]
    assert len(connections) == 2
    assert not any("Traceback" in line for line in console.notes)


async def test_a_failed_call_without_a_refusal_says_the_server_did_not_run_it(tmp_path: Path):
    def broken(_: dict[str, Any]) -> CallToolResult:
        raise RuntimeError("Server returned an error response")

    session = Tools(get_time=broken)
    connect, _ = connector(session)
    console = Recorder()
    model = ScriptedModel(call("get_time"), answer_with_last_result())
    assert await chat(settings(tmp_path), model, prompts("time?"), console, connect_to=connect) == 0
    assert console.answers == ["error: the MCP server did not run it (RuntimeError: Server returned an error response)"]


async def test_calls_that_keep_failing_end_the_chat(tmp_path: Path):
    def server_stats(_: dict[str, Any]) -> CallToolResult:
        raise refused()

    session = Tools(server_stats=server_stats)
    connect, connections = connector(session)
    model = ScriptedModel(*[call("server_stats", id=f"c{i}") for i in range(MAX_FAILED_CALLS + 1)])
    console = Recorder()
    assert await chat(settings(tmp_path), model, prompts("stats!"), console, connect_to=connect) == 1
    assert console.notes[-1] == f"{MAX_FAILED_CALLS + 1} tool calls failed for this question; stopping"
    assert len(connections) == MAX_FAILED_CALLS + 1


async def test_a_failure_outside_a_call_ends_the_chat_with_one_line(tmp_path: Path):
    request = httpx2.Request("POST", "https://mcp.localhost/mcp")
    connect, _ = connector(Tools(), fail_to_connect=httpx2.ConnectError("connection refused", request=request))
    console = Recorder()
    assert await chat(settings(tmp_path), ScriptedModel(), prompts("hi"), console, connect_to=connect) == 1
    assert console.notes == ["cannot connect (connection refused): is the sandbox up? run `make up`"]


async def test_a_model_error_ends_the_chat_with_its_line(tmp_path: Path):
    connect, _ = connector(Tools(get_time=lambda _: text("06:00")))

    def unreachable(_: list[Message]) -> Reply:
        raise ModelError("the model endpoint http://llm/v1/chat/completions answered 401: bad key")

    console = Recorder()
    assert await chat(settings(tmp_path), ScriptedModel(unreachable), prompts("hi"), console, connect_to=connect) == 1
    assert console.notes == ["the model endpoint http://llm/v1/chat/completions answered 401: bad key"]


async def test_a_sign_in_during_a_call_says_it_is_a_step_up():
    shown: list[str] = []

    async def show(url: str) -> None:
        shown.append(url)

    console, activity = Recorder(), Activity()
    redirect = step_up_said(show, activity, console)
    url = f"{ISSUER}/protocol/openid-connect/auth?client_id=x&scope=mcp%3Atools+mcp%3Aadmin"
    await redirect(url)  # the first sign-in: nothing to explain
    assert console.notes == []
    activity.calling = ToolCall("c1", "server_stats", "{}")
    await redirect(url)
    assert console.notes == ["server_stats needs a permission this sign-in does not carry: sign in again to grant it "
                             "(step-up, asking for: mcp:tools mcp:admin)."]
    assert shown == [url, url]


def test_chat_without_a_model_says_how_to_set_one(monkeypatch, capsys, tmp_path: Path):
    for name in ("AGENT_LLM_BASE_URL", "AGENT_LLM_MODEL", "AGENT_LLM_API_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENT_CALLBACK_PORT", "8976")
    monkeypatch.setenv("AGENT_STATE_DIR", str(tmp_path))
    assert cli.main(["chat", "what time is it?"]) == cli.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"mcp-agent: {NO_MODEL}\n"
    assert "AGENT_LLM_BASE_URL" in err
    assert list(tmp_path.iterdir()) == []  # nothing was signed in


def test_an_unreadable_key_file_is_one_line(monkeypatch, capsys, tmp_path: Path):
    monkeypatch.setenv("AGENT_LLM_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("AGENT_LLM_MODEL", "m")
    monkeypatch.setenv("AGENT_LLM_API_KEY_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("AGENT_CALLBACK_PORT", "8976")
    assert cli.main(["chat"]) == cli.USAGE
    assert capsys.readouterr().err == (f"mcp-agent: AGENT_LLM_API_KEY_FILE: cannot read {tmp_path / 'missing'} "
                                       "(No such file or directory)\n")


def test_chat_is_not_for_json(capsys):
    assert cli.main(["--json", "chat"]) == cli.USAGE
    assert json.loads(capsys.readouterr().out)["error"]["kind"] == "usage"


async def test_interactive_questions_are_the_lines_of_stdin_until_its_end(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("what time is it?\nwho am I?\n"))
    assert [line async for line in stdin_prompts()] == ["what time is it?", "who am I?"]
