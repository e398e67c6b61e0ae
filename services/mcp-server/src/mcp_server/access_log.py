"""One structured log line per request: request id, who called, what was decided, how long."""

from __future__ import annotations

import logging
import random
import time

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import request

log = logging.getLogger("mcp_server.access")

REQUEST_ID = b"x-request-id"
# A request id correlates log lines; it is no secret (a caller may send its own). A PRNG seeded
# from the OS is unique enough and, unlike uuid4, costs no system call per request.
_ids = random.Random()  # noqa: S311  (an identifier, not a secret)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(REQUEST_ID, b"")
        request_id = incoming if 0 < len(incoming) <= 64 else b"%032x" % _ids.getrandbits(128)
        status = 500
        request.begin()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                self._log(scope, request_id.decode("latin-1"), status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, request_id: str, status: int, seconds: float) -> None:
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
                "latency_ms": round(seconds * 1000, 2),
            },
        )
