"""The model behind `mcp-agent chat`: any endpoint that speaks OpenAI's chat-completions format.

One POST to `{base_url}/chat/completions` per step, with the conversation and the MCP tools
offered as functions; the answer is either text or tool calls. Local servers (Ollama, llama.cpp,
vLLM, LM Studio) and hosted providers speak it alike, so the agent needs no provider SDK: httpx2,
the agent's one HTTP client, is enough (docs/decisions.md, "The chat agent's model").

The API key is read from a file (AGENT_LLM_API_KEY_FILE) and only ever sent in the Authorization
header; it is never printed, and an error body that echoes it is masked before it is shown.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from .trace import redact_tokens

Message = dict[str, Any]


class ModelError(Exception):
    """The model endpoint failed or answered something that is not a chat completion: one line."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; `arguments` as the wire carries it (a JSON text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One step of the model: text, tool calls, or both."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)

    def as_message(self) -> Message:
        """The assistant message that goes back into the conversation, in the wire format."""
        message: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


def read_api_key(path: Path | None) -> str | None:
    """The key from its file (None: the endpoint needs none, as local servers usually do)."""
    if path is None:
        return None
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise ModelError(f"AGENT_LLM_API_KEY_FILE: cannot read {path} ({exc.strerror})") from None
    if not key:
        raise ModelError(f"AGENT_LLM_API_KEY_FILE: {path} is empty (expected the endpoint's API key)")
    return key


def trust(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system trust store, plus the sandbox CA when one is configured: a hosted provider's
    certificate chains to a public root, a model served behind the sandbox's Caddy to its CA."""
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class ChatCompletions:
    """The model interface of chat.py (`complete`), over HTTP."""

    def __init__(self, http: httpx2.AsyncClient, base_url: str, model: str, api_key: str | None = None) -> None:
        self.http, self.model, self._api_key = http, model, api_key
        self.url = base_url.rstrip("/") + "/chat/completions"

    async def complete(self, messages: Sequence[Message], tools: Sequence[Message]) -> Reply:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if tools:
            body["tools"] = list(tools)
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            response = await self.http.post(self.url, json=body, headers=headers)
        except httpx2.TimeoutException:
            raise ModelError(f"the model at {self.url} did not answer in time") from None
        except httpx2.HTTPError as exc:
            raise ModelError(f"cannot reach the model at {self.url} ({self._mask(str(exc)) or type(exc).__name__}): "
                             "check AGENT_LLM_BASE_URL") from None
        if response.status_code >= 400:
            raise ModelError(f"the model endpoint {self.url} answered {response.status_code}: {self._reason(response)}")
        try:
            return parse_reply(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"the model endpoint {self.url} did not answer with a chat completion ({exc})") from None

    def _reason(self, response: httpx2.Response) -> str:
        """The error's own message (`{"error": {"message": …}}` in this format), first line, masked."""
        try:
            error = response.json().get("error")
            text = error.get("message") if isinstance(error, dict) else error
        except (ValueError, AttributeError):
            text = None
        text = str(text or response.text or response.reason_phrase or "").strip()
        return self._mask(text.splitlines()[0] if text else "")[:200] or "no reason given"

    def _mask(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "…")
        return redact_tokens(text)


def parse_reply(data: Any) -> Reply:
    message = data["choices"][0]["message"]
    calls = [
        ToolCall(id=str(call["id"]), name=str(call["function"]["name"]),
                 # Some servers send the arguments as an object rather than a JSON text.
                 arguments=args if isinstance(args := call["function"].get("arguments") or "{}", str) else json.dumps(args))
        for call in message.get("tool_calls") or []
    ]
    return Reply(text=message.get("content"), tool_calls=calls)
