"""The loopback redirect listener (RFC 8252 §7.3): receives the authorization response.

Binds 127.0.0.1 only, answers one request on /callback, and hands `code`, `state` and `iss` to
the SDK, which checks `state` (C26) and `iss` (RFC 9207, C23-C25). An error response is reported
only after its `iss` matched, so a mix-up attacker cannot make the agent act on forged errors.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import anyio
from mcp.client.auth import AuthorizationCodeResult, OAuthFlowError
from mcp.shared.auth import OAuthMetadata

PAGE = """<!doctype html><meta charset="utf-8"><title>MCP agent</title>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body>"""


class AuthorizationDenied(OAuthFlowError):
    """The user or the authorization server refused (e.g. consent denied)."""


class CallbackListener:
    def __init__(self, port: int, bind: str = "127.0.0.1") -> None:
        self.port = port
        self._params: dict[str, str] | None = None
        self._received = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/callback" or listener._received.is_set():
                    self.send_error(404)
                    return
                listener._params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                listener._received.set()
                ok = "code" in listener._params
                body = PAGE.format(
                    title="Signed in" if ok else "Not signed in",
                    text="You can close this tab and return to the agent." if ok else "The agent reports why.",
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass  # the query string carries the code: never log it

        try:
            # 127.0.0.1 normally; 0.0.0.0 only inside the agent container, whose port is
            # published on the host's 127.0.0.1 (see compose.yaml).
            self._server = HTTPServer((bind, port), Handler)
        except OSError as exc:
            raise OAuthFlowError(f"cannot listen on {bind}:{port} for the login redirect ({exc.strerror})") from None
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def start(self) -> CallbackListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def wait(self, seconds: float, metadata: OAuthMetadata | None) -> AuthorizationCodeResult:
        with anyio.fail_after(seconds):
            while not self._received.is_set():
                await anyio.to_thread.run_sync(self._received.wait, 0.5)
        params = self._params or {}
        if "error" in params:
            issuer = str(metadata.issuer) if metadata else None
            if issuer and params.get("iss") != issuer:
                raise OAuthFlowError(
                    f"authorization response came from issuer {params.get('iss')!r}, expected {issuer!r}; ignoring it"
                )
            reason = params.get("error_description") or params["error"]
            if params["error"] == "access_denied":
                raise AuthorizationDenied(f"consent denied at the authorization server ({reason})")
            raise AuthorizationDenied(f"the authorization server refused: {reason}")
        return AuthorizationCodeResult(code=params.get("code", ""), state=params.get("state"), iss=params.get("iss"))
