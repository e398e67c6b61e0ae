"""The MCP Inspector 2.x (npm @modelcontextprotocol/inspector, pinned in
tests/interop/node/package-lock.json), its web UI driven in Chromium as a developer uses it:
add https://mcp.localhost/mcp (streamable HTTP), connect, log in as the demo user and consent at
Keycloak, list the tools, call get_time — and, as alice in the default mode, list_notes, which
the MCP server serves by calling the notes API as her with a token it exchanged for hers.

- default mode: dynamic client registration (the Inspector's own body, with `client_uri` on
  GitHub; its redirect is http://localhost:6274/oauth/callback);
- CIMD mode: its "Use Client ID Metadata Document" setting with the document the CIMD host
  publishes for it (cimd-host/clients/mcp-inspector.json).

The Inspector does every OAuth request from its Node backend (so NODE_EXTRA_CA_CERTS and the
*.localhost preload apply there); the browser only visits its UI and Keycloak's login. Its own
API token stays on: the test opens the UI with the token it prints, as its README says to.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.async_api import Page
from testcontainers.compose import DockerCompose

from tests.support.browser import KeycloakBrowser, User, chromium
from tests.support.keycloak import delete_clients
from tests.support.mcp import TOOL_NAMES
from tests.support.net import port_is_free
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.anyio

NODE_DIR = ROOT / "tests" / "interop" / "node"
NODE = NODE_DIR / "node_modules" / ".bin" / "node"
LAUNCHER = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
# The Inspector's default UI port: its redirect URI (and so the CIMD document) names it.
PORT = 6274
READY = re.compile(r"MCP_INSPECTOR_API_TOKEN=([0-9a-f]+)")


@contextmanager
def inspector(stack: Stack) -> Iterator[str]:
    """The Inspector's web UI, fresh (no saved servers, tokens or registrations); its URL."""
    assert NODE.exists(), "the interop clients are not installed; run the tests with `make test`"
    assert port_is_free(PORT), f"port {PORT} is taken: the Inspector's redirect URI needs it (stop the other Inspector)"
    with tempfile.TemporaryDirectory() as home:
        env = {"HOME": home, "PATH": f"{NODE.parent}:/usr/bin:/bin", "MCP_AUTO_OPEN_ENABLED": "false",
               "MCP_INSPECTOR_SECRET_STORE": "memory", "NODE_EXTRA_CA_CERTS": str(stack.ca_file),
               "NODE_OPTIONS": f"--require {NODE_DIR / 'localhost.cjs'}", "LANG": os.environ.get("LANG", "C.UTF-8")}
        process = subprocess.Popen([str(NODE), str(LAUNCHER), "--web"], cwd=home, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert process.stdout is not None
            output = []
            deadline = time.monotonic() + 60
            for line in process.stdout:
                output.append(line)
                if match := READY.search(line):
                    break
                assert time.monotonic() < deadline, "".join(output)
            else:
                pytest.fail("the Inspector exited:\n" + "".join(output))
            # `localhost`, not 127.0.0.1: its redirect URI says localhost, and the page that
            # receives the callback must be the same origin as the one that started the login.
            yield f"http://localhost:{PORT}/?MCP_INSPECTOR_API_TOKEN={match.group(1)}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


async def use_cimd(page: Page, document_url: str) -> None:
    await page.get_by_role("button", name="Client settings").click()
    await page.get_by_role("button", name="OAuth Client ID Metadata Document").click()
    await page.get_by_label("Use Client ID Metadata Document").evaluate("input => input.click()")
    await page.get_by_label("Client ID metadata document URL").fill(document_url)
    await page.get_by_role("button", name="Close").click()


async def start_connecting(page: Page, stack: Stack) -> str:
    """Add the sandbox's MCP server and connect, up to Keycloak's login page; its URL."""
    await page.get_by_role("button", name="Add Servers").click()
    await page.get_by_text("Add manually").click()
    await page.get_by_label("Server ID").fill("sandbox")
    await page.get_by_role("textbox", name="Transport").click()
    await page.get_by_role("option", name="streamable-http").click()
    await page.get_by_label("URL").fill(stack.resource_url)
    await page.get_by_role("button", name="Add", exact=True).click()
    # The switch's input is visually hidden (Mantine), and connecting navigates away before the
    # switch shows its new state: a plain DOM click, as the label would give it.
    await page.get_by_role("switch", name='Connect or disconnect "sandbox"').evaluate("input => input.click()")
    await page.wait_for_url(f"{stack.issuer}/protocol/openid-connect/auth?*")
    return page.url


async def add_server_and_connect(page: Page, stack: Stack, browser: KeycloakBrowser) -> str:
    """Add the sandbox's MCP server, connect, sign in at Keycloak; the authorization URL used."""
    authorization_url = await start_connecting(page, stack)
    await browser.sign_in()
    await page.get_by_text("Connected", exact=True).wait_for()
    return authorization_url


async def list_tools_and_call_get_time(page: Page) -> str:
    await page.get_by_text("Tools", exact=True).first.click()
    for tool in TOOL_NAMES:
        await page.get_by_role("button", name=tool, exact=True).wait_for()
    await page.get_by_role("button", name="get_time", exact=True).click()
    await page.get_by_role("button", name="Execute Tool").click()
    result = page.get_by_text(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"))
    await result.first.wait_for()
    return await result.first.inner_text()


async def call_list_notes(page: Page) -> str:
    """list_notes: the MCP server calls the notes API as the signed-in user (token exchange); the
    result shows what the API saw of the exchanged token."""
    await page.get_by_role("button", name="list_notes", exact=True).click()
    await page.get_by_role("button", name="Execute Tool").click()
    await page.get_by_text('"api_saw"').first.wait_for()
    # The result is shown as a JSON tree, one element per key and value: the exchanged token's scope.
    scope = page.get_by_text(re.compile(r"notes:read"))
    await scope.first.wait_for()
    return await scope.first.inner_text()


def user(stack: Stack) -> User:
    return User("alice", stack.secret("demo-user-password"))


def admin_user(stack: Stack) -> User:
    """ada holds mcp-admin: the role that lets Keycloak grant mcp:admin at the step-up."""
    return User("ada", stack.secret("admin-user-password"))


@pytest.mark.matrix("MCP Inspector", "DCR")
@pytest.mark.matrix("MCP Inspector", "notes API")
async def test_inspector_connects_in_its_default_mode_by_dynamic_registration(stack: Stack, compose: DockerCompose):
    with inspector(stack) as url:
        async with chromium(stack.ca_file, user(stack)) as browser:
            page = await browser.visit(url)
            authorization_url = await add_server_and_connect(page, stack, browser)
            client_id = dict(parse_qsl(urlsplit(authorization_url).query))["client_id"]
            try:
                now = await list_tools_and_call_get_time(page)
                notes = await call_list_notes(page)
            finally:
                deleted = delete_clients(compose, stack, client_id)
    assert "notes:read" in notes  # the exchanged token's scope, as the API saw it
    assert deleted == 1  # the Inspector's own registration (a UUID client id), gone again
    assert not client_id.startswith("https://")
    query = dict(parse_qsl(urlsplit(authorization_url).query))
    assert query["redirect_uri"] == f"http://localhost:{PORT}/oauth/callback"
    assert query["code_challenge_method"] == "S256"
    assert query["resource"] == stack.resource_url
    assert browser.logins == 1
    assert browser.consents == 1
    assert re.match(r"^\d{4}-\d\d-\d\dT", now)


async def step_up_and_call_server_stats(page: Page, stack: Stack, browser: KeycloakBrowser) -> tuple[str, str]:
    """server_stats needs mcp:admin: the 403 makes the Inspector offer re-authorization with the
    union of scopes; after the round trip through Keycloak the user runs the tool again."""
    await page.get_by_role("button", name="server_stats", exact=True).click()
    await page.get_by_role("button", name="Execute Tool").click()
    await page.get_by_text("Additional permissions required").wait_for()
    await page.get_by_role("button", name="Authorize", exact=True).click()
    await page.wait_for_url(f"{stack.issuer}/protocol/openid-connect/auth?*")
    authorization_url = page.url
    await browser.sign_in()
    await page.get_by_text("Connected", exact=True).wait_for()
    await page.get_by_text("Tools", exact=True).first.click()
    await page.get_by_role("button", name="server_stats", exact=True).click()
    await page.get_by_role("button", name="Execute Tool").click()
    result = page.get_by_text('"uptime_seconds"')
    await result.first.wait_for()
    return authorization_url, await result.first.inner_text()


@pytest.mark.matrix("MCP Inspector", "CIMD")
@pytest.mark.matrix("MCP Inspector", "step-up")
async def test_inspector_connects_with_the_cimd_document_published_for_it(stack: Stack, compose: DockerCompose):
    document = f"{stack.cimd_origin}/clients/mcp-inspector/metadata.json"
    with inspector(stack) as url:
        async with chromium(stack.ca_file, admin_user(stack)) as browser:
            page = await browser.visit(url)
            await use_cimd(page, document)
            try:
                authorization_url = await add_server_and_connect(page, stack, browser)
                now = await list_tools_and_call_get_time(page)
                step_up_url, stats = await step_up_and_call_server_stats(page, stack, browser)
            finally:
                delete_clients(compose, stack, document)  # the client Keycloak made from the document
    assert dict(parse_qsl(urlsplit(authorization_url).query))["client_id"] == document
    assert re.match(r"^\d{4}-\d\d-\d\dT", now)
    # Step-up: the scopes already granted plus the challenged one (SEP-2350), a second consent.
    assert set(dict(parse_qsl(urlsplit(step_up_url).query))["scope"].split()) == {
        "mcp:connect", "mcp:tools", "offline_access", "mcp:admin"}
    assert browser.consents == 2
    assert "uptime_seconds" in stats


@pytest.mark.matrix("MCP Inspector", "refused")
async def test_a_user_without_an_mcp_role_gets_403_in_the_inspector_not_a_login_loop(stack: Stack, compose: DockerCompose):
    """nora signs in (DCR, the Inspector's default mode): her token carries this server's audience
    (mcp:connect needs no role) but no mcp:tools, so the MCP server answers 403 insufficient_scope.
    The Inspector shows the refusal and asks the user what to do; it does not loop through logins."""
    with inspector(stack) as url:
        async with chromium(stack.ca_file, User("nora", stack.secret("norole-user-password"))) as browser:
            page = await browser.visit(url)
            authorization_url = ""
            try:
                authorization_url = await start_connecting(page, stack)
                await browser.sign_in()
                # The network panel's status (upper-cased by CSS only).
                await page.get_by_text(re.compile(r"^403 forbidden$", re.IGNORECASE)).first.wait_for()
                await page.get_by_text("Re-authentication required").wait_for()
                connected = await page.get_by_text("Connected", exact=True).count()
            finally:
                if authorization_url:
                    delete_clients(compose, stack, dict(parse_qsl(urlsplit(authorization_url).query))["client_id"])
    assert connected == 0
    assert browser.logins == 1
