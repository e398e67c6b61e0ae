"""The demo agent against the real stack, with a real browser playing the user (C1-C33).

Discover -> identify (CIMD / pre-registered / DCR) -> authorize (login + consent) -> call.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx2
import jwt
import pytest
from mcp.shared.auth import OAuthToken
from testcontainers.compose import DockerCompose

from cimd_host.keys import current_key, signing_jwk_path
from mcp_agent.agent import connect
from mcp_agent.assertion import client_assertion, form_fields
from mcp_agent.config import AgentSettings
from mcp_agent.dpop import DPoPKeyFile, thumbprint
from mcp_agent.errors import explain
from mcp_agent.refusal import PermissionRefused
from mcp_agent.storage import FileTokenStorage
from mcp_agent.trace import Tracer
from tests.support.browser import KeycloakBrowser, User, chromium
from tests.support.keycloak import delete_clients, kcadm
from tests.support.mcp import TOOL_NAMES
from tests.support.notes import assert_the_api_saw_an_exchanged_token
from tests.support.stack import ROOT, Stack
from tests.support.tokens import CLIENT_ID as MACHINE_BEARER_CLIENT

pytestmark = pytest.mark.anyio


def settings_for(stack: Stack, state: Path, **overrides) -> AgentSettings:
    return AgentSettings(**{
        "login_timeout_seconds": 60,
        "server_url": stack.resource_url,
        "ca_bundle": stack.ca_file,
        "state_dir": state,
        "client_metadata_url": f"{stack.cimd_origin}/agents/demo/metadata.json",
        # Against a remote deployment (make test-remote) only the pre-registered clients and the
        # machine key are available: no CIMD identity of the demo agent there.
        "key_file": None if stack.remote else signing_jwk_path(stack.key_dir("demo")),
        "machine_key_file": signing_jwk_path(stack.key_dir("machine")),
        "machine_issuer": stack.issuer,
        "open_browser": False,
        "callback_port": stack.callback_port,
        **overrides,
    })


def stored_access_claims(settings: AgentSettings, *, machine: bool = False) -> dict:
    stored = FileTokenStorage(settings.state_dir, settings.server_url + ("#machine" if machine else "")).snapshot()
    return jwt.decode(stored["tokens"]["access_token"], options={"verify_signature": False})


def assert_bound_to_the_agents_key(settings: AgentSettings, *, machine: bool = False) -> None:
    """RFC 9449 §6.1: Keycloak bound the token to the agent's DPoP key (its thumbprint in cnf.jkt)."""
    key = json.loads(settings.dpop_key_file.read_text())
    assert oct(settings.dpop_key_file.stat().st_mode & 0o777) == "0o600"
    assert stored_access_claims(settings, machine=machine)["cnf"]["jkt"] == thumbprint(key)


def user(stack: Stack) -> User:
    return User("alice", stack.secret("demo-user-password"))


def admin_user(stack: Stack) -> User:
    return User("ada", stack.secret("admin-user-password"))


def norole_user(stack: Stack) -> User:
    return User("nora", stack.secret("norole-user-password"))


async def login_and_call(settings: AgentSettings, browser: KeycloakBrowser, tool: str | None = None) -> dict:
    async with connect(settings, redirect=browser.open) as (client, login):
        tools = {t.name for t in (await client.list_tools()).tools}
        now = await client.call_tool("get_time", {})
        who = (await client.call_tool("whoami", {})).structured_content
        if tool:
            await client.call_tool(tool, {})
    assert tools == set(TOOL_NAMES)
    assert not now.is_error
    return {"login": login, "whoami": who}


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "DPoP")
@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "CIMD")
async def test_cimd_login_consent_and_tool_calls(stack: Stack, compose: DockerCompose, tmp_path: Path):
    """C13: the CIMD URL is the client_id; Keycloak fetches the document; private_key_jwt at the token endpoint."""
    settings = settings_for(stack, tmp_path)
    trace = io.StringIO()
    async with chromium(stack.ca_file, user(stack)) as browser:
        async with connect(settings, redirect=browser.open, tracer=Tracer(trace)) as (client, login):
            assert {t.name for t in (await client.list_tools()).tools} == set(TOOL_NAMES)
            assert not (await client.call_tool("get_time", {})).is_error
            result = {"login": login, "whoami": (await client.call_tool("whoami", {})).structured_content}
    assert browser.logins == 1
    assert browser.consents == 1
    assert result["login"].registration == "cimd"
    # C21: the canonical MCP URL as `resource` in the authorization and the token request.
    (authorization_url,) = browser.authorization_urls
    assert dict(parse_qsl(urlsplit(authorization_url).query))["resource"] == stack.resource_url
    assert f"resource={stack.resource_url}" in trace.getvalue()
    assert "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" in trace.getvalue()
    # C28: the token travels in the Authorization header, never in a URL; DPoP-bound, with a
    # proof at the token endpoint and on every MCP request (RFC 9449 §5, §7.1), masked in the trace.
    assert "authorization: DPoP" in trace.getvalue()
    assert "authorization: Bearer" not in trace.getvalue()
    assert "dpop: eyJ" in trace.getvalue()
    assert "access_token=" not in trace.getvalue()
    assert_bound_to_the_agents_key(settings)
    who = result["whoami"]
    assert who["client_id"] == settings.client_metadata_url
    assert who["audience"] == [stack.resource_url]
    # The document's `scope` replaces the default scopes with `basic`: no profile claims, but the
    # subject is alice.
    assert who["username"] is None
    (alice,) = json.loads(kcadm(compose, stack, "get", "users", "-r", "mcp", "-q", "username=alice", "-q", "exact=true"))
    assert who["subject"] == alice["id"]
    # Keycloak made a client out of the fetched document: confidential, keys from the JWKS URL.
    clients = json.loads(kcadm(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={settings.client_metadata_url}"))
    assert len(clients) == 1
    assert clients[0]["publicClient"] is False
    assert clients[0]["attributes"]["jwks.url"] == f"{stack.cimd_origin}/agents/demo/jwks.json"


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "notes API")
async def test_the_demo_agent_calls_the_notes_tools_as_alice(stack: Stack, tmp_path: Path):
    """The agent, signed in as alice, adds, lists and deletes a note: the MCP server exchanges her
    token at Keycloak for one whose audience is the notes API (RFC 8693) and calls the API with
    that; the answers show what the API saw. Keycloak 26.7.3 does not exchange a DPoP-bound token
    (docs/decisions.md), and the agent's own identities (CIMD document, mcp-agent) require DPoP, so
    this cell runs the agent the way a third-party client would: its DCR fallback (an anonymously
    registered public client, which may use Bearer) with AGENT_DPOP=false. With its default (DPoP)
    the notes tools answer one sentence instead (test_the_notes_tools_tell_a_dpop_bound_agent_...)."""
    settings = settings_for(stack, tmp_path, registration="dcr", dpop=False)
    text = f"demo agent note {uuid.uuid4().hex[:8]}"
    async with chromium(stack.ca_file, user(stack)) as browser:
        async with connect(settings, redirect=browser.open) as (client, _):
            who = (await client.call_tool("whoami", {})).structured_content
            added = await client.call_tool("add_note", {"text": text})
            listed = await client.call_tool("list_notes", {})
            note = (added.structured_content or {}).get("note") or {}
            deleted = await client.call_tool("delete_note", {"note_id": note.get("id", 0)})
    assert not added.is_error, added
    assert not listed.is_error, listed
    assert not deleted.is_error, deleted
    assert note["text"] == text
    assert note in listed.structured_content["notes"]
    assert deleted.structured_content["deleted"] == note["id"]
    assert_the_api_saw_an_exchanged_token(stack, who["subject"], ((added.structured_content, ["notes:write"]),
                                                                  (listed.structured_content, ["notes:read"])))


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "DPoP")
@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "pre-registered")
@pytest.mark.blackbox
async def test_preregistered_client_path(stack: Stack, tmp_path: Path):
    """C10/C11 fallback: a configured pre-registered public client (PKCE, no secret)."""
    settings = settings_for(stack, tmp_path, registration="preregistered", preregistered_client_id="mcp-agent")
    async with chromium(stack.ca_file, user(stack)) as browser:
        result = await login_and_call(settings, browser)
    assert result["login"].registration == "preregistered"
    assert result["whoami"]["client_id"] == "mcp-agent"
    assert result["whoami"]["audience"] == [stack.resource_url]
    assert_bound_to_the_agents_key(settings)


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "pre-registered")
async def test_preregistered_confidential_client_with_client_secret_basic(stack: Stack, tmp_path: Path):
    """C11: a pre-registered confidential client; the secret (from a file) goes as HTTP Basic at
    the token endpoint, PKCE still applies."""
    settings = settings_for(stack, tmp_path, registration="preregistered", preregistered_client_id="mcp-agent-confidential",
                            preregistered_client_secret_file=stack.secret_file("agent-confidential-client-secret"))
    trace = io.StringIO()
    async with chromium(stack.ca_file, user(stack)) as browser:
        async with connect(settings, redirect=browser.open, tracer=Tracer(trace)) as (client, login):
            who = (await client.call_tool("whoami", {})).structured_content
    assert login.registration == "preregistered"
    assert who["client_id"] == "mcp-agent-confidential"
    assert who["audience"] == [stack.resource_url]
    assert "authorization: Basic" in trace.getvalue()
    assert stack.secret("agent-confidential-client-secret") not in trace.getvalue()


async def test_preregistered_confidential_client_with_a_wrong_secret_is_refused(stack: Stack, tmp_path: Path):
    wrong = tmp_path / "secret"
    wrong.write_text("not-the-secret")
    settings = settings_for(stack, tmp_path / "state", registration="preregistered",
                            preregistered_client_id="mcp-agent-confidential", preregistered_client_secret_file=wrong)
    async with chromium(stack.ca_file, user(stack)) as browser:
        with pytest.raises(ExceptionGroup) as refused:  # the SDK's OAuthTokenError, from its task group
            async with connect(settings, redirect=browser.open) as (client, _):
                await client.list_tools()
    assert "Token exchange failed (401)" in explain(refused.value)
    assert "Invalid client credentials" in explain(refused.value)


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "DCR")
async def test_dynamic_client_registration_path(stack: Stack, compose: DockerCompose, tmp_path: Path):
    """C16: DCR (deprecated in 2026-07-28, still supported) with loopback redirect URIs."""
    settings = settings_for(stack, tmp_path, registration="dcr")
    async with chromium(stack.ca_file, user(stack)) as browser:
        result = await login_and_call(settings, browser)
    client_id = result["whoami"]["client_id"]
    # The registration is the test's own: gone afterwards (the realm caps anonymous clients at 200).
    assert delete_clients(compose, stack, client_id) == 1
    assert result["login"].registration == "dcr"
    assert client_id not in ("mcp-agent", settings.client_metadata_url)
    assert result["whoami"]["audience"] == [stack.resource_url]
    stored = await FileTokenStorage(tmp_path, settings.server_url).get_client_info()
    assert stored.client_id == client_id
    # C17: the registration is bound to the issuer that made it.
    assert stored.issuer == stack.issuer


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "client credentials")
async def test_client_credentials_with_a_client_secret(stack: Stack, tmp_path: Path):
    """Client credentials with a shared secret (client_secret_basic) instead of a key."""
    settings = settings_for(stack, tmp_path, machine_client_id="mcp-machine-agent-secret",
                            machine_client_secret_file=stack.secret_file("machine-client-secret"))
    trace = io.StringIO()
    async with connect(settings, machine=True, tracer=Tracer(trace)) as (client, login):
        who = (await client.call_tool("whoami", {})).structured_content
    assert login.registration == "client_credentials"
    assert who["client_id"] == "mcp-machine-agent-secret"
    assert who["audience"] == [stack.resource_url]
    assert "authorization: Basic" in trace.getvalue()
    assert "client_assertion" not in trace.getvalue()
    assert_bound_to_the_agents_key(settings, machine=True)


@pytest.mark.parametrize("machine_client", ["mcp-machine-agent", "mcp-machine-agent-secret"])
async def test_a_client_that_requires_dpop_refuses_the_agent_without_it(stack: Stack, tmp_path: Path,
                                                                       machine_client: str):
    """The realm requires DPoP-bound tokens of the demo agent's machine clients
    (dpop.bound.access.tokens): with AGENT_DPOP=false the token request carries no proof and
    Keycloak refuses it."""
    secret = {"machine_client_secret_file": stack.secret_file("machine-client-secret")} \
        if machine_client.endswith("-secret") else {}
    settings = settings_for(stack, tmp_path, machine_client_id=machine_client, dpop=False, **secret)
    with pytest.raises(Exception) as refused:  # noqa: PT011  (the message is what matters)
        async with connect(settings, machine=True) as (client, _):
            await client.call_tool("whoami", {})
    assert "DPoP" in explain(refused.value), explain(refused.value)


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "DPoP")
@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "client credentials")
async def test_client_credentials_path(stack: Stack, tmp_path: Path):
    """Machine agent (SEP-1046): client credentials, private_key_jwt with a kid, no user, no browser."""
    settings = settings_for(stack, tmp_path)
    async with connect(settings, machine=True) as (client, login):
        who = (await client.call_tool("whoami", {})).structured_content
    assert login.registration == "client_credentials"
    assert who["client_id"] == "mcp-machine-agent"
    assert who["audience"] == [stack.resource_url]
    assert_bound_to_the_agents_key(settings, machine=True)


async def test_with_dpop_off_the_agent_gets_and_sends_a_bearer_token(stack: Stack, tmp_path: Path):
    """AGENT_DPOP=false, for comparison: no proof, so Keycloak issues an unbound Bearer token — to
    a client that allows it, the sandbox's Bearer-allowed twin of mcp-machine-agent (same key)."""
    settings = settings_for(stack, tmp_path, machine_client_id=MACHINE_BEARER_CLIENT, dpop=False)
    trace = io.StringIO()
    async with connect(settings, machine=True, tracer=Tracer(trace)) as (client, _):
        assert not (await client.call_tool("get_time", {})).is_error
    assert "cnf" not in stored_access_claims(settings, machine=True)
    assert "authorization: Bearer" in trace.getvalue()
    assert "dpop:" not in trace.getvalue()
    assert not settings.dpop_key_file.exists()


def run_agent(settings: AgentSettings, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AGENT_SERVER_URL": settings.server_url,
        "AGENT_CA_BUNDLE": str(settings.ca_bundle),
        "AGENT_STATE_DIR": str(settings.state_dir),
        "AGENT_CLIENT_METADATA_URL": settings.client_metadata_url or "",
        "AGENT_KEY_FILE": str(settings.key_file),
        "AGENT_LOGIN_TIMEOUT_SECONDS": "5",
        "AGENT_CALLBACK_PORT": str(settings.callback_port),
        **(extra_env or {}),
    }
    return subprocess.run([sys.executable, "-m", "mcp_agent", "--no-browser", "--json", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "DPoP")
@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "refresh")
async def test_refresh_after_restarting_the_agent_process_needs_no_new_login(stack: Stack, tmp_path: Path):
    """C29 + python-sdk#3250: a new process refreshes the stored token instead of logging in again."""
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, user(stack)) as browser:
        await login_and_call(settings, browser)
    storage = FileTokenStorage(tmp_path, settings.server_url)
    before = await storage.get_tokens()
    assert before.refresh_token
    assert oct(storage.path.stat().st_mode & 0o777) == "0o600"
    # Time passes: the stored access token is now expired.
    storage.set_session(expires_at=time.time() - 1)

    result = run_agent(settings, "whoami")  # a fresh process, no browser, stdin closed
    assert result.returncode == 0, result.stderr
    assert "Open this URL" not in result.stderr
    assert json.loads(result.stdout)["whoami"]["client_id"] == settings.client_metadata_url
    after = await storage.get_tokens()
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # AS12: Keycloak rotates refresh tokens
    assert_bound_to_the_agents_key(settings)  # the new process proved the same key (dpop.jwk)


async def test_logout_revokes_the_refresh_token_at_keycloak(stack: Stack, tmp_path: Path):
    """RFC 7009: `mcp-agent logout` revokes the refresh token (authenticated with the CIMD
    identity's private_key_jwt, as the agent's token requests are) before deleting it; Keycloak
    then refuses that token, though the same refresh request worked just before."""
    settings = settings_for(stack, tmp_path)
    client_id = settings.client_metadata_url
    async with chromium(stack.ca_file, user(stack)) as browser:
        await login_and_call(settings, browser)
    storage = FileTokenStorage(tmp_path, settings.server_url)
    dpop = DPoPKeyFile(settings.dpop_key_file).key()  # the document requires DPoP: a proof from the agent's key

    def refresh(refresh_token: str) -> httpx2.Response:
        kid, pem = current_key(stack.key_dir("demo"))
        assertion = client_assertion(client_id=client_id, audience=stack.issuer, key_id=kid, private_key=pem)
        with stack.client() as http:
            return http.post(stack.token_endpoint(), headers={"DPoP": dpop.proof("POST", stack.token_endpoint())},
                             data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                   "client_id": client_id, **form_fields(assertion)})

    working = refresh((await storage.get_tokens()).refresh_token)  # the request is right for this client
    assert working.status_code == 200, working.text
    assert working.json()["token_type"] == "DPoP"
    # Stored as the agent stores it: the SDK's OAuthToken takes only `Bearer` (mcp_agent/dpop.py).
    await storage.set_tokens(OAuthToken.model_validate({**working.json(), "token_type": "Bearer"}))
    held = working.json()["refresh_token"]

    result = run_agent(settings, "logout")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"logged_out": True, "revoked": True}
    assert not storage.path.exists()
    refused = refresh(held)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"


async def test_a_public_clients_refresh_token_is_bound_too_and_logout_revokes_it(stack: Stack, tmp_path: Path):
    """Keycloak binds a public client's refresh token to the DPoP key as well (RFC 9449 §5): a
    refresh without a proof from that key is refused, which is why the agent keeps its key across
    restarts. Logout still revokes it (RFC 7009)."""
    settings = settings_for(stack, tmp_path, registration="preregistered", preregistered_client_id="mcp-agent")
    async with chromium(stack.ca_file, user(stack)) as browser:
        await login_and_call(settings, browser)
    held = (await FileTokenStorage(tmp_path, settings.server_url).get_tokens()).refresh_token

    def refresh(**headers: str) -> httpx2.Response:
        with stack.client() as http:
            return http.post(stack.token_endpoint(), headers=headers, data={
                "grant_type": "refresh_token", "refresh_token": held, "client_id": "mcp-agent"})

    without_proof = refresh()
    assert without_proof.status_code == 400, without_proof.text

    result = run_agent(settings, "logout", extra_env={"AGENT_REGISTRATION": "preregistered",
                                                      "AGENT_PREREGISTERED_CLIENT_ID": "mcp-agent"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"logged_out": True, "revoked": True}
    # Revoked: not even a proof from the right key brings it back.
    key = DPoPKeyFile(settings.dpop_key_file).key()
    after = refresh(DPoP=key.proof("POST", stack.token_endpoint()))
    assert after.status_code == 400, after.text
    assert after.json()["error"] == "invalid_grant"


async def test_the_notes_tools_tell_a_dpop_bound_agent_why_they_cannot_act_for_it(stack: Stack, tmp_path: Path):
    """The agent's default, DPoP: Keycloak 26.7.3 exchanges a DPoP-bound subject token only for the
    client it was issued to (docs/decisions.md, "DPoP and token exchange"), so the notes tools answer
    one sentence saying so and what works instead, not a 500 or a hang; whoami still works."""
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, user(stack)) as browser, connect(settings, redirect=browser.open) as (client, _):
        who = await client.call_tool("whoami", {})
        listed = await client.call_tool("list_notes", {})
    assert not who.is_error, who.content
    assert listed.is_error
    text = " ".join(getattr(part, "text", "") for part in listed.content)
    assert "cannot act for a DPoP-bound session" in text, text
    assert "bearer token (without DPoP)" in text, text


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "step-up")
@pytest.mark.parametrize("identity", [
    "cimd", pytest.param("preregistered", marks=pytest.mark.blackbox)])
async def test_step_up_reauthorizes_with_the_union_of_scopes(stack: Stack, tmp_path: Path, identity: str):
    """C30/C31: 403 insufficient_scope -> re-authorize with mcp:tools + mcp:admin -> retry succeeds.
    ada holds mcp-admin: the step-up is granted (alice's is not: the next test)."""
    if identity == "cimd":
        settings = settings_for(stack, tmp_path)
    else:
        settings = settings_for(stack, tmp_path, registration="preregistered", preregistered_client_id="mcp-agent")
    async with chromium(stack.ca_file, admin_user(stack)) as browser:
        async with connect(settings, redirect=browser.open) as (client, _):
            first = (await client.call_tool("whoami", {})).structured_content
            assert "mcp:admin" not in first["granted_scopes"]
            stats = await client.call_tool("server_stats", {})
            after = (await client.call_tool("whoami", {})).structured_content
    assert not stats.is_error
    assert "tool_calls" in stats.structured_content
    assert {"mcp:tools", "mcp:admin"} <= set(after["granted_scopes"])
    # Two authorizations: the step-up went back to Keycloak, and the user consented to mcp:admin.
    assert len(browser.authorization_urls) == 2


async def test_a_permission_the_role_does_not_give_is_refused_once_then_the_agent_stops(stack: Stack, tmp_path: Path):
    """alice (mcp-user) asks for server_stats: 403 -> one step-up -> Keycloak leaves mcp:admin out
    (no mcp-admin role, whatever she consents to) -> 403 again -> the agent stops with one
    sentence naming the permission (MCP 2026-07-28: no retry loop, `auth/scope-retry-limit`)."""
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, user(stack)) as browser:
        with pytest.raises(PermissionRefused) as refused:
            await login_and_call(settings, browser, "server_stats")
    assert refused.value.missing == ["mcp:admin"]
    assert explain(refused.value).startswith("permission refused: this call needs mcp:admin")
    assert stack.issuer in explain(refused.value)
    # The first login, and exactly one step-up: no loop.
    assert len(browser.authorization_urls) == 2
    assert "mcp:admin" in dict(parse_qsl(urlsplit(browser.authorization_urls[1]).query))["scope"].split()


@pytest.mark.matrix("Demo agent (this repository, `mcp` Python SDK 2.x)", "refused")
async def test_a_user_without_an_mcp_role_is_told_which_permission_is_missing(stack: Stack, tmp_path: Path):
    """nora may sign in to the realm but holds no MCP role: her token has this server's audience
    (mcp:connect needs no role), so the server answers 403 insufficient_scope, not 401 — and the
    agent stops after one step-up with the missing permission named."""
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, norole_user(stack)) as browser:
        with pytest.raises(PermissionRefused) as refused:
            async with connect(settings, redirect=browser.open) as (client, _):
                await client.list_tools()
    assert refused.value.missing == ["mcp:tools"]
    assert set(refused.value.needed) == {"mcp:connect", "mcp:tools"}
    assert len(browser.authorization_urls) == 2


# --- refusals: each one clear, and no token issued ---------------------------------------------


def authorize_url(stack: Stack, client_id: str, redirect_uri: str) -> str:
    from urllib.parse import urlencode

    return f"{stack.issuer}/protocol/openid-connect/auth?" + urlencode({
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "mcp:tools",
        "state": "s" * 16,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "resource": stack.resource_url,
    })


def refused(stack: Stack, url: str) -> str:
    with stack.client() as client:
        response = client.get(url)
    assert response.status_code == 400, response.status_code
    assert "location" not in response.headers  # nothing redirected back, so no code
    return response.text


@pytest.fixture
def extra_document(stack: Stack):
    """Write a document onto the CIMD host for one test (the host serves .local/cimd-public live)."""
    written = []

    def write(name: str, document: dict) -> str:
        path = ROOT / ".local" / "cimd-public" / "tests" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        path.chmod(0o644)
        written.append(path)
        return f"{stack.cimd_origin}/tests/{name}"

    yield write
    for path in written:
        path.unlink(missing_ok=True)


async def test_a_cimd_document_with_dpop_bound_access_tokens_makes_keycloak_require_dpop(
        stack: Stack, compose: DockerCompose, tmp_path: Path, extra_document):
    """RFC 9449 §5.2 client metadata `dpop_bound_access_tokens: true` in a CIMD document: Keycloak
    26.7.3 turns it into the client's "require DPoP" setting, so the code exchange without a proof
    is refused, and with one the token is bound."""
    url = f"{stack.cimd_origin}/tests/dpop-agent.json"
    extra_document("dpop-agent.json", {
        "client_id": url, "client_name": "DPoP test agent", "redirect_uris": [stack.callback_url],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none", "scope": "mcp:connect mcp:tools offline_access",
        "dpop_bound_access_tokens": True})
    try:
        without = settings_for(stack, tmp_path / "bearer", registration="cimd", client_metadata_url=url, key_file=None,
                               dpop=False)
        async with chromium(stack.ca_file, user(stack)) as browser:
            with pytest.raises(Exception) as refused:  # noqa: PT011  (the SDK's error types vary; the message is what matters)
                await login_and_call(without, browser)
        assert "DPoP" in explain(refused.value), explain(refused.value)
        (client,) = json.loads(kcadm(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={url}"))
        assert client["attributes"]["dpop.bound.access.tokens"] == "true"

        with_dpop = settings_for(stack, tmp_path / "dpop", registration="cimd", client_metadata_url=url, key_file=None)
        async with chromium(stack.ca_file, user(stack)) as browser:
            await login_and_call(with_dpop, browser)
        assert_bound_to_the_agents_key(with_dpop)
    finally:
        delete_clients(compose, stack, url)


@pytest.mark.security
def test_redirect_uri_not_in_the_document_is_refused(stack: Stack):
    """AS5/AS14: the request's redirect_uri must be one of the document's redirect_uris."""
    page = refused(stack, authorize_url(stack, f"{stack.cimd_origin}/agents/demo/metadata.json",
                                        "http://127.0.0.1:9999/callback"))
    assert "redirect" in page.lower()


@pytest.mark.security
def test_client_id_on_an_untrusted_host_is_refused(stack: Stack):
    """Only https client_ids on the trusted CIMD host are resolved as metadata documents."""
    page = refused(stack, authorize_url(stack, "https://untrusted.localhost/agents/demo/metadata.json",
                                        stack.callback_url))
    assert "client" in page.lower()


@pytest.mark.security
def test_document_whose_client_id_differs_from_its_url_is_refused(stack: Stack, extra_document):
    """CIMD -02: the document's client_id must equal the URL it was fetched from."""
    url = extra_document("mismatched-client-id.json", {
        "client_id": f"{stack.cimd_origin}/agents/demo/metadata.json",
        "client_name": "impostor",
        "redirect_uris": [stack.callback_url],
    })
    page = refused(stack, authorize_url(stack, url, stack.callback_url))
    assert "client" in page.lower()


@pytest.mark.security
async def test_authorization_response_with_a_wrong_iss_is_refused(stack: Stack, tmp_path: Path):
    """RFC 9207 (C23-C25): a response claiming another issuer is not exchanged for a token."""
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, user(stack)) as browser:
        browser.rewrite_callback = {"iss": f"{stack.auth_origin}/realms/other"}
        with pytest.raises(BaseException) as caught:  # noqa: PT011  (an anyio ExceptionGroup; the message is checked below)
            async with connect(settings, redirect=browser.open):
                pass

    message = explain(caught.value)
    assert "Authorization response iss mismatch" in message, message  # the SDK's RFC 9207 check
    assert "realms/other" in message, message
    assert await FileTokenStorage(tmp_path, settings.server_url).get_tokens() is None


@pytest.mark.security
async def test_authorization_response_with_a_wrong_state_is_refused(stack: Stack, tmp_path: Path):
    """C26: the state the agent sent must come back unchanged (CSRF). A response with another
    state is not this login's answer: the loopback listener answers it 400 and keeps waiting, so
    nothing is exchanged and the login ends only when its time is up."""
    settings = settings_for(stack, tmp_path, login_timeout_seconds=10)
    async with chromium(stack.ca_file, user(stack)) as browser:
        browser.rewrite_callback = {"state": "forged-state"}
        with pytest.raises(BaseException) as caught:  # noqa: PT011  (an anyio ExceptionGroup; the message is checked below)
            async with connect(settings, redirect=browser.open):
                pass
        page = await browser.error_text()

    assert "does not belong to the agent's sign-in" in page
    assert explain(caught.value).startswith("no login completed in time")
    assert await FileTokenStorage(tmp_path, settings.server_url).get_tokens() is None


@pytest.mark.security
@pytest.mark.parametrize("challenge", [None, "plain"])
def test_pkce_s256_is_required_even_for_cimd_clients(stack: Stack, challenge: str | None):
    """C18-C20 / OAuth 2.1: the realm's PKCE policy applies to CIMD clients (keycloak#52795)."""
    from urllib.parse import parse_qsl, urlsplit

    url = authorize_url(stack, f"{stack.cimd_origin}/agents/demo/metadata.json", stack.callback_url)
    query = dict(parse_qsl(urlsplit(url).query))
    del query["code_challenge_method"]
    if challenge is None:
        del query["code_challenge"]
    else:
        query["code_challenge_method"] = challenge
    from urllib.parse import urlencode

    with stack.client() as client:
        response = client.get(url.split("?")[0] + "?" + urlencode(query))
    if response.status_code == 302:
        returned = dict(parse_qsl(urlsplit(response.headers["location"]).query))
        assert returned.get("error") == "invalid_request"
        assert "code" not in returned
    else:
        assert response.status_code == 400


@pytest.mark.security
async def test_consent_denied_is_a_clear_error_and_no_token(stack: Stack, tmp_path: Path):
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, user(stack)) as browser:

        async def deny(url: str) -> None:
            await browser.open(url, consent=False)

        with pytest.raises(BaseException) as caught:  # noqa: PT011  (an anyio ExceptionGroup; the message is checked below)
            async with connect(settings, redirect=deny):
                pass

    assert explain(caught.value).startswith("consent denied")
    assert await FileTokenStorage(tmp_path, settings.server_url).get_tokens() is None


@pytest.mark.parametrize("flag", [[], ["--legacy"]])
def test_cli_machine_mode_on_both_protocol_generations(stack: Stack, tmp_path: Path, flag: list[str]):
    """The CLI end to end: 2026-07-28 (default) and the 2025-11-25 handshake (--legacy)."""
    settings = settings_for(stack, tmp_path)
    result = run_agent(settings, *flag, "--machine", "call", "get_time", "timezone=Europe/Paris",
                       extra_env={"AGENT_MACHINE_KEY_FILE": str(signing_jwk_path(stack.key_dir("machine"))),
                                  "AGENT_MACHINE_ISSUER": stack.issuer})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["registration"] == "client_credentials"
    assert out["result"].endswith("+01:00") or out["result"].endswith("+02:00")
