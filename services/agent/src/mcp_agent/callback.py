"""The loopback redirect listener (RFC 8252 §7.3): receives the authorization response.

Binds 127.0.0.1 only and waits for the one request on /callback that carries the `state` this
login sent (C26). Anything else that reaches the port — a request without `state`, with another
`state`, an error response included — is answered 400 and ignored: the login goes on. An error
response cannot be told apart from a forgery by its `iss` (RFC 9207 §2.4: the issuer identifier
is public), only by the unguessable `state`, so a page that merely knows the port cannot end a
login. The matching response goes to the SDK, which checks `state` and `iss` again (C23-C26); a
matching error response is reported only if its `iss` is the expected issuer (mix-up defence).
"""

from __future__ import annotations

import secrets
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


def state_of(authorization_url: str) -> str:
    """The `state` the SDK put into the authorization request (RFC 6749 §4.1.1)."""
    states = parse_qs(urlsplit(authorization_url).query).get("state")
    if not states or not states[0]:
        raise OAuthFlowError("the authorization request carries no state; refusing to wait for its answer")
    return states[0]


class CallbackListener:
    def __init__(self, port: int, bind: str = "127.0.0.1", *, state: str) -> None:
        self.port = port
        self._state = state
        self._params: dict[str, str] | None = None
        self._received = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/callback" or listener._received.is_set():
                    self.send_error(404)
                    return
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if not secrets.compare_digest(params.get("state", "").encode(), listener._state.encode()):
                    # Not the answer to this login (C26): ignored, whatever it says.
                    self._page(400, "Not this sign-in", "This response does not belong to the agent's sign-in; ignored.")
                    return
                listener._params = params
                listener._received.set()
                ok = "code" in params
                self._page(200, "Signed in" if ok else "Not signed in",
                           "You can close this tab and return to the agent." if ok else "The agent reports why.")

            def _page(self, status: int, title: str, text: str) -> None:
                body = PAGE.format(title=title, text=text).encode()
                self.send_response(status)
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
        # serve_forever notices shutdown() at its next poll: a short interval keeps stop() quick.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def start(self) -> CallbackListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._received.set()  # releases a wait() still blocked on the event
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def wait(self, seconds: float, metadata: OAuthMetadata | None) -> AuthorizationCodeResult:
        """The response that carries this login's state; TimeoutError after `seconds`."""
        with anyio.fail_after(seconds):
            # Blocks a worker thread on the event the HTTP thread sets; on timeout the thread is
            # abandoned and released by stop().
            await anyio.to_thread.run_sync(self._received.wait, abandon_on_cancel=True)
        if self._params is None:
            raise OAuthFlowError("the login redirect listener was closed before the browser came back")
        params = self._params
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
