"""`mcp-agent chat`: a model decides which protected tool to call.

    connect (OAuth, agent.py) -> list the tools -> offer them to the model as functions ->
    run the calls it asks for through the MCP session -> give it the results -> ... -> its answer

The loop (`respond`) knows a model only by `complete(messages, tools) -> Reply` (chat_completions.py
speaks it over HTTP; tests script it) and the session only by `list_tools` / `call_tool`, so the
same loop runs against the real OAuth-protected server in tests with a deterministic model.

What the user is told, in sentences, never a traceback:
- a tool's own error (`is_error`, e.g. the notes tools explaining why they cannot act) is shown
  and goes back to the model as that call's result;
- step-up (MCP C30): when a call needs a scope this sign-in lacks, the SDK re-authorizes once;
  the agent says why it asks the user to sign in again;
- a permission the authorization server will not grant even then (refusal.py): `connect` ends
  the session with PermissionRefused; its sentence is shown, becomes the call's result, and the
  conversation goes on over a new connection with the stored tokens (no new sign-in).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx2
from mcp.types import CallToolResult, ListToolsResult

from .agent import connect
from .chat_completions import ChatCompletions, Message, ModelError, Reply, ToolCall, read_api_key, trust
from .config import AgentSettings
from .errors import describe, leaves
from .login import RedirectHandler, print_and_open
from .trace import Tracer

SYSTEM_PROMPT = (
    "You are the demo agent of an MCP sandbox whose tools are protected by OAuth. Answer the user "
    "briefly; call a tool when it helps. When a tool reports an error or a refused permission, tell "
    "the user what it said in one sentence, and do not call it again for the same request."
)
# Failed tool calls (each ending a connection) tolerated in one user turn before giving up.
MAX_FAILED_CALLS = 3
NO_MODEL = ("chat needs a model: set AGENT_LLM_BASE_URL to an OpenAI-compatible endpoint (e.g. "
            "http://localhost:11434/v1) and AGENT_LLM_MODEL to its model name, plus AGENT_LLM_API_KEY_FILE "
            "if it needs a key (services/agent/README.md, \"chat\")")


class Model(Protocol):
    async def complete(self, messages: Sequence[Message], tools: Sequence[Message]) -> Reply: ...


class ToolSession(Protocol):
    """What the loop uses of an MCP session (mcp.client.Client)."""

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult: ...

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult: ...


class Console(Protocol):
    def answer(self, text: str) -> None:
        """The model's answer to the user."""

    def note(self, text: str) -> None:
        """What the agent does and what went wrong, one sentence each."""


class Terminal:
    """Answers on stdout (a one-shot `chat` pipes cleanly), the rest on stderr."""

    def answer(self, text: str) -> None:
        print(text, flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)


class StepLimit(Exception):
    """The model kept calling tools without answering."""


@dataclass
class Conversation:
    """The messages in the chat-completions format, and whether a user turn awaits its answer."""

    messages: list[Message] = field(default_factory=lambda: [{"role": "system", "content": SYSTEM_PROMPT}])
    open_turn: bool = False

    def ask(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self.open_turn = True

    def add(self, reply: Reply) -> None:
        self.messages.append(reply.as_message())

    def answer(self, call: ToolCall, content: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

    def pending(self) -> list[ToolCall]:
        """The last assistant message's tool calls that have no result yet (every call needs one
        before the model is asked again)."""
        answered: set[str] = set()
        for message in reversed(self.messages):
            if message["role"] == "tool":
                answered.add(message["tool_call_id"])
            elif message["role"] == "assistant":
                return [ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
                        for c in message.get("tool_calls") or [] if c["id"] not in answered]
            else:
                break
        return []


@dataclass
class Activity:
    """The tool call in flight: what a sign-in prompt or a failure during it is about."""

    calling: ToolCall | None = None


async def offered_tools(session: ToolSession) -> list[Message]:
    """The MCP tools as chat-completions functions (every page of tools/list)."""
    tools: list[Message] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(cursor=cursor)
        tools += [{"type": "function", "function": {"name": t.name, "description": t.description or t.title or "",
                                                    "parameters": t.input_schema}} for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            return tools


def result_text(result: CallToolResult) -> str:
    """What the model reads of a tool's result: its structured content as JSON, else its text."""
    content = result.structured_content
    if content is not None:
        # The SDK wraps a tool's plain return value as {"result": value}.
        value = content["result"] if isinstance(content, dict) and list(content) == ["result"] else content
        return value if isinstance(value, str) else json.dumps(value)
    return "\n".join(getattr(part, "text", "") or str(part) for part in result.content)


async def run_call(session: ToolSession, call: ToolCall, activity: Activity, console: Console) -> str:
    """One tool call; its result (or the tool's own error) as the text the model gets back. An
    exception from the session (a refused permission, a broken connection) propagates: it ends
    the connection, and `chat` answers the call."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        arguments = exc
    if not isinstance(arguments, dict):
        console.note(f"{call.name}: not called, the model's arguments are not a JSON object")
        return "error: the arguments were not a JSON object; call again with a JSON object"
    console.note(f"→ {call.name} {json.dumps(arguments)}")
    activity.calling = call
    result = await session.call_tool(call.name, arguments)
    activity.calling = None
    text = result_text(result)
    if result.is_error:
        console.note(f"{call.name} answered with an error: {text}")
        return f"error: {text}"
    return text


async def respond(model: Model, session: ToolSession, conversation: Conversation, tools: Sequence[Message],
                  console: Console, *, activity: Activity | None = None, max_steps: int = 8) -> str:
    """Run the open turn until the model answers without calling a tool; its answer. Calls left
    without a result (the connection ended during them) run first."""
    activity = activity or Activity()
    for _ in range(max_steps):
        for call in conversation.pending():
            conversation.answer(call, await run_call(session, call, activity, console))
        reply = await model.complete(conversation.messages, tools)
        conversation.add(reply)
        if not reply.tool_calls:
            conversation.open_turn = False
            return reply.text or ""
    for call in conversation.pending():
        conversation.answer(call, "error: not called, the agent stopped this turn")
    conversation.open_turn = False
    raise StepLimit(f"the model called tools {max_steps} times without answering; this question is dropped "
                    "(AGENT_CHAT_MAX_STEPS)")


def step_up_said(show: RedirectHandler, activity: Activity, console: Console) -> RedirectHandler:
    """Before a sign-in asked for during a call: why (MCP C30, the SDK's one step-up)."""

    async def redirect(url: str) -> None:
        if activity.calling is not None:
            scopes = dict(parse_qsl(urlsplit(url).query)).get("scope", "")
            console.note(f"{activity.calling.name} needs a permission this sign-in does not carry: sign in again "
                         f"to grant it (step-up, asking for: {scopes}).")
        await show(url)

    return redirect


Connect = Callable[..., AbstractAsyncContextManager[tuple[Any, Any]]]


async def chat(settings: AgentSettings, model: Model, prompts: AsyncIterator[str], console: Console, *,
               machine: bool = False, tracer: Tracer | None = None, redirect: RedirectHandler | None = None,
               connect_to: Connect = connect) -> int:
    """The conversation: each prompt answered over one MCP connection, a new one after a call
    that ended it. Exit status: 0 when the prompts run out, 1 when the agent cannot go on."""
    conversation, activity, failures = Conversation(), Activity(), 0
    show = redirect or (lambda url: print_and_open(url, open_browser=settings.open_browser,
                                                   callback=settings.redirect_uri))
    while True:
        try:
            async with connect_to(settings, machine=machine, tracer=tracer,
                                  redirect=step_up_said(show, activity, console)) as (session, _):
                tools = await offered_tools(session)
                while True:
                    if not conversation.open_turn:
                        prompt = await anext(prompts, None)
                        if prompt is None:
                            return 0
                        if not prompt.strip():
                            continue
                        conversation.ask(prompt)
                        failures = 0
                    try:
                        console.answer(await respond(model, session, conversation, tools, console, activity=activity,
                                                     max_steps=settings.chat_max_steps))
                    except StepLimit as exc:
                        console.note(str(exc))
        except Exception as exc:
            model_error = next((e for e in leaves(exc) if isinstance(e, ModelError)), None)
            if model_error is not None:
                console.note(str(model_error))
                return 1
            call, activity.calling = activity.calling, None
            failure = describe(exc)
            if call is None:
                console.note(failure.message)
                return 1
            # The call's answer, for the user and for the model alike (a refusal's sentence, or why it failed).
            sentence = failure.message if failure.kind != "internal" else f"the MCP server did not run it ({failure.message})"
            console.note(f"{call.name}: {sentence}")
            conversation.answer(call, f"error: {sentence}")
            failures += 1
            if failures > MAX_FAILED_CALLS:
                console.note(f"{failures} tool calls failed for this question; stopping")
                return 1


async def stdin_prompts() -> AsyncIterator[str]:
    """The user's lines until end of input (Ctrl-D)."""
    while True:
        if sys.stdin.isatty():
            print("you> ", end="", file=sys.stderr, flush=True)
        line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        yield line.rstrip("\n")


async def one_prompt(text: str) -> AsyncIterator[str]:
    yield text


def configured_model(settings: AgentSettings) -> tuple[str, str, str | None]:
    """The endpoint, the model and its key, or ModelError with what to set (before any login)."""
    if not settings.llm_base_url or not settings.llm_model:
        raise ModelError(NO_MODEL)
    return settings.llm_base_url, settings.llm_model, read_api_key(settings.llm_api_key_file)


async def run(settings: AgentSettings, prompt: str | None, *, machine: bool = False, tracer: Tracer | None = None,
              endpoint: tuple[str, str, str | None]) -> int:
    base_url, name, key = endpoint
    timeout = httpx2.Timeout(10.0, read=settings.llm_timeout_seconds)
    # Not traced: the model's requests carry the API key and the user's words, not OAuth.
    async with httpx2.AsyncClient(verify=trust(settings.ca_bundle), trust_env=True, timeout=timeout) as http:
        model = ChatCompletions(http, base_url, name, key)
        prompts = one_prompt(prompt) if prompt is not None else stdin_prompts()
        return await chat(settings, model, prompts, Terminal(), machine=machine, tracer=tracer)
