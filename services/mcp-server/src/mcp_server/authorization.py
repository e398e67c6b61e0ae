"""ASGI gate in front of the MCP endpoint: who may call, and which tool needs which scope.

Runs after the SDK's bearer authentication (so it sees the verified token) and before the
transport. It answers with proper RFC 6750 challenges the SDK does not produce:

- 401 with `scope` and `resource_metadata` (RS3, RS4, RS10); no error code without credentials.
- 403 `insufficient_scope` with every scope the call needs, in one challenge (RS15-RS17),
  per tool: a `tools/call` for a privileged tool is refused at the HTTP layer, so clients see a
  real step-up challenge rather than a tool error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import challenge
from .scopes import ScopePolicy
from .verifier import rejection

# The SDK's own body limit: anything larger is refused (413) rather than passed on uninspected —
# a body the gate could not read must never reach a tool.
MAX_INSPECTED_BODY = DEFAULT_MAX_REQUEST_BODY_SIZE


def _tool_names(payload: Any) -> Iterable[str]:
    messages = payload if isinstance(payload, list) else [payload]
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            if isinstance(params, dict) and isinstance(params.get("name"), str):
                yield params["name"]


class ScopeGate:
    def __init__(self, app: ASGIApp, *, mcp_path: str, resource_metadata_url: str, policy: ScopePolicy) -> None:
        self.app = app
        self.policy = policy
        self.mcp_path = mcp_path
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.mcp_path.rstrip("/"):
            await self.app(scope, receive, send)
            return

        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            presented = any(name == b"authorization" for name, _ in scope["headers"])
            reason = rejection.get() or "not a bearer token"
            await self._challenge(
                send,
                401,
                scope=self.policy.ordered(self.policy.base),
                # RFC 6750 §3.1: a request without credentials gets no error information.
                error="invalid_token" if presented else None,
                description=f"Token rejected: {reason}" if presented else None,
            )
            return

        needed = set(self.policy.base)
        if scope["method"] == "POST":
            body, receive = await _buffer(receive)
            if body is None:
                await self._send(send, 413, b'{"error": "request body too large"}')
                return
            try:
                for name in _tool_names(json.loads(body)):
                    needed |= self.policy.for_tool(name)
            except ValueError:
                pass  # malformed JSON: the transport answers 400 (RS14)

        missing = self.policy.missing(needed, user.scopes)
        if missing:
            await self._challenge(
                send,
                403,
                # RS16: all scopes the operation needs, not only the missing ones.
                scope=self.policy.ordered(needed),
                error="insufficient_scope",
                description="This call needs scope " + self.policy.ordered(needed),
            )
            return
        await self.app(scope, receive, send)

    async def _challenge(self, send: Send, status: int, **kwargs: Any) -> None:
        status, headers, body = challenge.response(status, resource_metadata=self.resource_metadata_url, **kwargs)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send(self, send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _buffer(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the request body (up to MAX_INSPECTED_BODY) and return a receive that replays it."""
    messages: list[Message] = []
    size = 0
    complete = False
    while not complete:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        complete = not message.get("more_body", False)
        if size > MAX_INSPECTED_BODY:
            break

    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    return (body if complete and size <= MAX_INSPECTED_BODY else None), replay
