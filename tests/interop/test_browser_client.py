"""A client that runs in a browser page (tests/interop/browser/client.html), served from a
loopback origin in headless Chromium: discovery, the token request and MCP calls are all
cross-origin fetch() calls, so each step proves a CORS answer of the stack — the MCP server's
preflight (answered before the bearer check) and its exposed WWW-Authenticate, Keycloak's
metadata and token endpoints with the MCP-Protocol-Version header allowed (Caddy's policy) —
and a page from an origin not on the allow-list (CORS_ALLOWED_ORIGINS) is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from testcontainers.compose import DockerCompose

from tests.support.browser import User, chromium
from tests.support.dcr import registered
from tests.support.mcp import TOOL_NAMES
from tests.support.net import free_port
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio

PAGE = Path(__file__).parent / "browser" / "client.html"


class PageHandler(SimpleHTTPRequestHandler):
    """Serves the one page for every path (the start and the OAuth callback)."""

    def do_GET(self) -> None:
        body = PAGE.read_bytes()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # the callback's query holds the code: never logged
        pass


@contextmanager
def serving(host: str) -> Iterator[int]:
    port = free_port()
    server = ThreadingHTTPServer((host, port), partial(PageHandler, directory=str(PAGE.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


async def outcome(page, step: str) -> dict:
    await page.wait_for_function(f"window.outcome && ['{step}', 'error'].includes(window.outcome.step)", timeout=30_000)
    return json.loads(await page.evaluate("JSON.stringify(window.outcome)"))


@pytest.mark.matrix("Browser page (`fetch`, CORS)", "pre-registered")
async def test_a_page_on_a_loopback_origin_signs_in_and_calls_a_tool_with_fetch(stack: Stack, compose: DockerCompose):
    with serving("127.0.0.1") as port:
        origin = f"http://localhost:{port}"
        # Registered ahead of time, as a web app's client is (anonymous DCR refuses browser origins).
        body = {"redirect_uris": [f"{origin}/callback"], "token_endpoint_auth_method": "none", "client_name": "browser page",
                "grant_types": ["authorization_code"], "response_types": ["code"], "scope": "mcp:tools"}
        with registered(stack, body) as registration:
            assert registration.status_code == 201, registration.text
            client_id = registration.json()["client_id"]
            async with chromium(stack.ca_file, User("alice", stack.secret("demo-user-password"))) as browser:
                page = await browser.visit(f"{origin}/?{urlencode({'mcp': stack.resource_url, 'client_id': client_id})}")
                discovered = await outcome(page, "discovered")
                assert discovered["step"] == "discovered", discovered
                await browser.open(discovered["authorize"])
                called = await outcome(page, "called")
    # The 401 and its challenge were readable by the page (WWW-Authenticate exposed).
    assert discovered["status"] == 401
    assert "resource_metadata=" in discovered["wwwAuthenticate"]
    assert discovered["resource"] == stack.resource_url
    assert discovered["issuer"] == stack.issuer
    assert called == {"step": "called", "tokenStatus": 200, "gotToken": True,
                      "tools": TOOL_NAMES, "callIsError": False}


async def test_a_page_on_an_origin_not_on_the_allow_list_cannot_read_anything(stack: Stack):
    """127.0.0.2 is loopback, but `http://127.0.0.2:<port>` is not on the default allow-list:
    the very first cross-origin read (the MCP server's 401) fails in the browser."""
    with serving("127.0.0.2") as port:
        async with chromium(stack.ca_file, User("alice", "unused")) as browser:
            console: list[str] = []
            (await browser.tab()).on("console", lambda message: console.append(message.text))
            page = await browser.visit(f"http://127.0.0.2:{port}/?{urlencode({'mcp': stack.resource_url, 'client_id': 'x'})}")
            refused = await outcome(page, "discovered")
    assert refused == {"step": "error", "error": "TypeError: Failed to fetch"}
    # Refused for CORS (the server answered, without Access-Control-Allow-Origin), not a network error.
    assert any("blocked by CORS policy" in line and "Access-Control-Allow-Origin" in line for line in console), console
