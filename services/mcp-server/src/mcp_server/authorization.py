"""ASGI gate in front of the MCP endpoint: who may call, and which tool needs which scope.

Between CORS and the transport. It authenticates the request (bearer.py: the SDK's bearer
decision, one call instead of the SDK's layers) and then hands it to the SDK's
`AuthContextMiddleware`, which gives the tools the caller's token. It answers with proper RFC 6750
challenges the SDK does not produce:

- 400 `invalid_request` for a request with more than one `Authorization` header, on every path,
  before any token is verified (RFC 6750 §2.1/§3.1, RFC 9110 §5.3: one method, one token).
- 401 with `scope` and `resource_metadata` (RS3, RS4, RS10); no error code without credentials.
- 403 `insufficient_scope` with every scope the call needs, in one challenge (RS15-RS17),
  per tool: a `tools/call` of a tool needing more scopes is refused at the HTTP layer, so clients
  see a real step-up challenge rather than a tool error. Every challenge's `scope` also names the
  audience scope, so the token a client gets next still names this server (scopes.py).
- 403 for a tool with no scope declaration (deny by default; scopes.ToolTable).
- For a privileged tool, after the scope check: the token must still be active at the
  authorization server (RFC 7662 introspection, introspection.py). Revoked -> 401 invalid_token;
  no answer -> 503, fail closed. Other requests never wait on the network here.
- 400 JSON-RPC parse error for a body it cannot parse (malformed, or nested too deeply to parse);
  413 for a body larger than MCP_MAX_BODY_BYTES. A body the gate did not read never reaches a tool.

Expiry: a request authorized when it arrived runs to completion, whenever its token expires — a
`tools/call` cut off at `exp` (after its side effects) and answered 401 would be re-authorized and
sent again by the client, running the tool twice. Only the GET event stream, which carries no
request of its own and would otherwise stay open indefinitely, ends at the token's `exp` (where the
bearer check, and the verifier, stop accepting it); the client reopens it with a fresh token.

Paths other than the MCP endpoint (PRM, health) are served without authentication.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import anyio
import pydantic_core
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import TokenVerifier
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import challenge, request
from .bearer import MoreThanOneCredential, authenticate, credential
from .dpop import DPoPRejected, ProofOfPossession, proof_headers
from .introspection import Inactive, Introspection, Unavailable
from .scopes import ScopePolicy, UndeclaredTool

# RFC 6750 §3.1: "uses more than one method for including an access token, or is otherwise malformed".
TWO_CREDENTIALS = "more than one Authorization header: send exactly one credential"
# JSON-RPC 2.0 §5.1: the response to a request that could not be parsed.
PARSE_ERROR = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}).encode()


def _unavailable_body(tools: list[str], *, generic: bool) -> bytes:
    return challenge.error_body(
        "temporarily_unavailable",
        f"{', '.join(tools)} could not be authorized: the authorization server did not answer the token "
        "introspection. Try again later.",
        generic=generic,
    )


def _tool_names(payload: Any) -> Iterable[str]:
    messages = payload if isinstance(payload, list) else [payload]
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            if isinstance(params, dict) and isinstance(params.get("name"), str):
                yield params["name"]


class ScopeGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        mcp_path: str,
        resource_metadata_url: str,
        policy: ScopePolicy,
        max_body_bytes: int,
        introspection: Introspection | None,
        generic_errors: bool = False,
        pop: ProofOfPossession | None = None,
    ) -> None:
        self.app = app
        # DPoP (RFC 9449): None only where no DPoP setting exists (a bare gate in unit tests).
        self.pop = pop
        # What the SDK runs after its bearer authentication: the token for `get_access_token()`.
        self.authorized = AuthContextMiddleware(app)
        self.verifier = verifier
        self.policy = policy
        # MCP_GENERIC_ERRORS: answers say generic words, the access log the reason (challenge.py).
        self.generic_errors = generic_errors
        # None: privileged tools trust the token alone (MCP_INTROSPECT_PRIVILEGED=false).
        self.introspection = introspection
        self.mcp_path = mcp_path.rstrip("/")
        self.resource_metadata_url = resource_metadata_url
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            authorization = credential(scope["headers"])
        except MoreThanOneCredential:
            request.record_rejection("more than one Authorization header")
            await self._challenge(send, 400, scope=self.policy.challenge(self.policy.base), error="invalid_request",
                                  description=TWO_CREDENTIALS)
            return
        if scope["path"].rstrip("/") != self.mcp_path:
            await self.app(scope, receive, send)
            return

        user: AuthenticatedUser | None
        try:
            if self.pop is not None and authorization is not None and self.pop.accepts(authorization):
                user = await self.pop.authenticate(self.verifier, authorization, proof_headers(scope["headers"]),
                                                   scope["method"])
            else:
                user = await authenticate(self.verifier, authorization)
                if user is not None and self.pop is not None:
                    self.pop.check_bearer(user.access_token)
        except DPoPRejected as exc:
            await self._challenge(send, 401, scope=self.policy.challenge(self.policy.base), error=exc.error,
                                  description=exc.reason, nonce=exc.nonce, **self._scheme(exc.scheme))
            return
        if user is None:
            presented = authorization is not None
            reason = request.rejection() or "not a bearer token"
            await self._challenge(
                send,
                401,
                scope=self.policy.challenge(self.policy.base),
                # RFC 6750 §3.1: a request without credentials gets no error information.
                error="invalid_token" if presented else None,
                description=f"Token rejected: {reason}" if presented else None,
                # MCP_DPOP=required: the challenge names the one scheme this server takes.
                **self._scheme("DPoP" if self.pop is not None and self.pop.mode == "required" else "Bearer"),
            )
            return
        # As the SDK's AuthenticationMiddleware leaves them: for the access log, and the layers below.
        scope["user"], scope["auth"] = user, AuthCredentials(user.scopes)

        needed = set(self.policy.base)
        privileged: list[str] = []
        if scope["method"] == "POST":
            body, receive = await _buffer(receive, self.max_body_bytes)
            if body is None:
                await self._send(send, 413, b'{"error": "request body too large"}')
                return
            try:
                # The parser the SDK's transport reads the body with: the message checked is the
                # message run (duplicate keys included: the last one counts for both).
                payload = pydantic_core.from_json(body)
            except ValueError:  # RS14: malformed (or nested too deeply) -> 400, never a 500
                await self._send(send, 400, PARSE_ERROR)
                return
            try:
                for name in _tool_names(payload):
                    needed |= self.policy.for_tool(name)
                    if self.policy.is_privileged(name):
                        privileged.append(name)
            except UndeclaredTool as exc:
                request.record_rejection(f"no scope policy for tool {exc}")
                detail = challenge.error_body("access_denied", f"no scope policy for tool {exc}",
                                              generic=self.generic_errors)
                await self._send(send, 403, detail)
                return

        missing = self.policy.missing(needed, user.scopes)
        if missing:
            await self._challenge(
                send,
                403,
                # RS16: all scopes the operation needs, not only the missing ones.
                scope=self.policy.challenge(needed),
                error="insufficient_scope",
                description="This call needs scope " + self.policy.ordered(needed),
            )
            return
        # RFC 7662: a privileged tool runs only while the AS still holds the token active (a local
        # signature check cannot see a sign-out or a revocation). After the scope check, so a
        # token that could never call the tool costs the AS nothing.
        if privileged and self.introspection is not None:
            try:
                await self.introspection.check(user.access_token)
            except Inactive as exc:
                request.record_rejection(str(exc))
                await self._challenge(send, 401, scope=self.policy.challenge(self.policy.base), error="invalid_token",
                                      description=f"Token rejected: {exc}")
                return
            except Unavailable as exc:
                request.record_rejection(f"introspection failed: {exc}")
                await self._send(send, 503, _unavailable_body(sorted(set(privileged)), generic=self.generic_errors))
                return
        if scope["method"] == "GET" and user.access_token.expires_at is not None:
            await self._stream_until_expiry(user.access_token.expires_at, scope, receive, send)
        else:
            # A request (POST) runs to completion: authorized when it arrived, it is answered even
            # if the token expires meanwhile. No cancel scope, no timer: nothing on the hot path.
            await self.authorized(scope, receive, send)

    async def _stream_until_expiry(self, expires_at: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the GET event stream, but end it when the token that opened it expires."""
        started = finished = False

        async def tracked(message: Message) -> None:
            nonlocal started, finished
            started = started or message["type"] == "http.response.start"
            finished = finished or (message["type"] == "http.response.body" and not message.get("more_body", False))
            await send(message)

        with anyio.move_on_after(expires_at - time.time()) as deadline:
            await self.authorized(scope, receive, tracked)
        if not deadline.cancelled_caught or finished:
            return
        if started:
            # End the stream cleanly; the client reconnects with a fresh token.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await self._challenge(send, 401, scope=self.policy.challenge(self.policy.base), error="invalid_token",
                                  description="Token rejected: expired")

    def _scheme(self, scheme: str) -> dict[str, Any]:
        """The challenge's scheme; a DPoP challenge names the algorithms (RFC 9449 §7.1 `algs`)."""
        return {"scheme": scheme, "algs": self.pop.algs if scheme == "DPoP" and self.pop is not None else None}

    async def _challenge(self, send: Send, status: int, **kwargs: Any) -> None:
        if kwargs.get("description") and request.rejection() is None:
            request.record_rejection(kwargs["description"])  # the access log keeps it (a 403's too)
        status, headers, body = challenge.response(status, resource_metadata=self.resource_metadata_url,
                                                   generic=self.generic_errors, **kwargs)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send(self, send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _buffer(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the request body (up to `limit` bytes) and return a receive that replays it."""
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        # The whole body in one message, as a server hands over a small request.
        body = message.get("body", b"")
        return (body if len(body) <= limit else None), _replay([message], receive)
    messages = [message]
    size = len(message.get("body", b"")) if message["type"] == "http.request" else 0
    complete = False
    while message["type"] == "http.request" and size <= limit:
        if not message.get("more_body", False):
            complete = True
            break
        message = await receive()
        messages.append(message)
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    return (body if complete and size <= limit else None), _replay(messages, receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that returns `messages` first, then whatever comes next."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
