"""The chat model over HTTP (chat_completions.py), against a small local server that speaks the
chat-completions format — a stand-in for an external LLM endpoint: what is sent (path, key,
model, messages, tools), how an answer is read, and every failure as one line without the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mcp_agent.chat_completions import ChatCompletions, ModelError, Reply, ToolCall, read_api_key
from tests.support.chat import serving

pytestmark = pytest.mark.anyio
KEY = "sk-test-0123456789abcdef"
TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "Current time",
                                           "parameters": {"type": "object", "properties": {}}}}]


@dataclass
class Endpoint:
    """What the server answers next, and what it was sent."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, status: int, payload: Any) -> None:
        self.status = status
        self.body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            state.requests.append({"path": self.path, "headers": dict(self.headers),
                                   "body": json.loads(self.rfile.read(length))})
            self.send_response(state.status)
            self.send_header("content-type", state.content_type)
            self.send_header("content-length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as base_url:
        yield state, base_url


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "demo",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}]}


async def complete(base_url: str, key: str | None = KEY, tools: list[dict[str, Any]] | None = None) -> Reply:
    async with httpx2.AsyncClient() as http:
        model = ChatCompletions(http, base_url + "/", "demo-model", key)
        return await model.complete([{"role": "user", "content": "what time is it?"}], TOOLS if tools is None else tools)


async def test_the_request_carries_the_model_the_conversation_the_tools_and_the_key(endpoint):
    state, base_url = endpoint
    state.answer(200, completion({"content": "It is noon."}))
    reply = await complete(base_url)
    (request,) = state.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["body"] == {"model": "demo-model", "messages": [{"role": "user", "content": "what time is it?"}],
                               "tools": TOOLS}
    assert reply == Reply(text="It is noon.")


async def test_without_a_key_or_tools_neither_is_sent(endpoint):
    state, base_url = endpoint
    state.answer(200, completion({"content": "hi"}))
    await complete(base_url, key=None, tools=[])
    (request,) = state.requests
    assert "authorization" not in {k.lower() for k in request["headers"]}
    assert "tools" not in request["body"]


async def test_tool_calls_are_read_with_their_ids_and_arguments(endpoint):
    state, base_url = endpoint
    state.answer(200, completion({"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        # Some servers send the arguments as an object: kept as its JSON text.
        {"id": "call_2", "type": "function", "function": {"name": "add_note", "arguments": {"text": "hi"}}},
    ]}))
    reply = await complete(base_url)
    assert reply == Reply(text=None, tool_calls=[ToolCall("call_1", "get_time", "{}"),
                                                 ToolCall("call_2", "add_note", '{"text": "hi"}')])
    # Back into the conversation in the same wire format.
    assert reply.as_message()["tool_calls"][0] == {"id": "call_1", "type": "function",
                                                   "function": {"name": "get_time", "arguments": "{}"}}


async def test_an_http_error_is_one_line_with_the_status_and_the_endpoints_reason_and_no_key(endpoint):
    state, base_url = endpoint
    state.answer(401, {"error": {"message": f"Incorrect API key provided: {KEY}.\nSee the docs.",
                                 "type": "invalid_request_error"}})
    with pytest.raises(ModelError) as failed:
        await complete(base_url)
    message = str(failed.value)
    assert message == f"the model endpoint {base_url}/chat/completions answered 401: Incorrect API key provided: …."
    assert KEY not in message
    assert "\n" not in message


async def test_an_error_without_a_json_body_still_gives_the_status(endpoint):
    state, base_url = endpoint
    state.content_type = "text/plain"
    state.answer(503, b"")
    with pytest.raises(ModelError, match=r"answered 503: Service Unavailable$"):
        await complete(base_url)


async def test_an_answer_that_is_not_a_chat_completion_is_one_line(endpoint):
    state, base_url = endpoint
    state.answer(200, {"object": "list", "data": []})
    with pytest.raises(ModelError, match="did not answer with a chat completion"):
        await complete(base_url)


async def test_an_unreachable_endpoint_says_which_setting_to_check():
    closed = "http://127.0.0.1:1/v1"
    with pytest.raises(ModelError, match=r"^cannot reach the model at http://127\.0\.0\.1:1/v1/chat/completions .*"
                                         r"check AGENT_LLM_BASE_URL$"):
        await complete(closed)


def test_the_key_comes_from_its_file(tmp_path: Path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    assert read_api_key(key_file) == KEY
    assert read_api_key(None) is None
    key_file.write_text("  \n")
    with pytest.raises(ModelError, match="is empty"):
        read_api_key(key_file)
