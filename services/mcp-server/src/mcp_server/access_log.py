"""One structured log line per request: request id, who called, what was decided, how long."""

from __future__ import annotations

import logging
import time
import uuid

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import request

log = logging.getLogger("mcp_server.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 else uuid.uuid4().hex
        status = 500
        request.begin()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            user = scope.get("user")
            token = user.access_token if isinstance(user, AuthenticatedUser) else None
            decision = "allow" if status < 400 else {401: "unauthenticated", 403: "forbidden"}.get(status, "error")
            log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "request_id": request_id,
                    "status": status,
                    "decision": decision,
                    "reason": request.rejection(),
                    "subject": token.subject if token else None,
                    "client_id": token.client_id if token else None,
                    "scopes": token.scopes if token else None,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
