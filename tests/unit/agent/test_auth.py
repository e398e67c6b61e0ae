"""The library's entry point on its own (mcp_agent.agent_auth): what a framework gets — an
httpx2.Auth and a client factory — driven through whole flows against the mock authorization
server (tests/support/mock_as.py), with the real loopback listener answering the sign-in.

Each test plays a framework: it builds its HTTP client with `agent.http_client` (the MCP SDK's
client-factory signature), passes `agent.auth`, and calls the MCP endpoint.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import mcp_agent
from mcp_agent import AgentAuth, AgentSettings, agent_auth
from mcp_agent.assertion import ASSERTION_TYPE
from mcp_agent.dpop import DPoPAuth
from mcp_agent.provider import AgentOAuthProvider
from tests.support.mock_as import CLIENT_ID, ISSUER, MCP, MockAS
from tests.support.net import free_port
from tests.unit.agent.test_proxy import certificate_authority

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mock transport stands for the network; a proxy from the environment would take over.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mock() -> MockAS:
    return MockAS()


def private_jwk(path: Path, kid: str) -> Path:
    jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    path.write_text(json.dumps({**jwk, "kid": kid, "alg": "ES256", "use": "sig"}))
    return path


def settings(tmp_path: Path, **overrides: Any) -> AgentSettings:
    return AgentSettings(**{"server_url": MCP, "state_dir": tmp_path / "state", "callback_port": free_port(),
                            "client_metadata_url": CLIENT_ID, "registration": "cimd",
                            "key_file": private_jwk(tmp_path / "demo.jwk", "demo-1"), "machine_issuer": ISSUER,
                            "open_browser": False, "login_timeout_seconds": 10, **overrides})


def browser(mock: MockAS):
    """The user's browser: the AS (mocked) approves at once, and the browser follows the redirect
    to the agent's loopback listener with the code, the state and the issuer (RFC 9207)."""

    async def redirect(url: str) -> None:
        mock.authorizations.append(url)
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        async with httpx2.AsyncClient() as http:
            answer = await http.get(query["redirect_uri"], params={"code": "the-code", "state": query["state"],
                                                                   "iss": ISSUER})
        assert answer.status_code == 200

    return redirect


async def tools_list(mock: MockAS, agent: AgentAuth) -> int:
    """As a framework would: its client from the library's factory, the library's auth."""
    async with agent.http_client(headers={"accept": "application/json"}, auth=agent.auth,
                                 transport=httpx2.MockTransport(mock.handler)) as http:
        return (await http.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).status_code


def test_cimd_sign_in_with_private_key_jwt_pkce_and_dpop(mock: MockAS, tmp_path: Path):
    agent = anyio.run(lambda: agent_auth(settings(tmp_path), redirect=browser(mock)))
    assert isinstance(agent.auth, DPoPAuth)  # AGENT_DPOP defaults to on
    assert anyio.run(tools_list, mock, agent) == 200
    (authorization,) = mock.authorizations
    query = parse_qs(urlsplit(authorization).query)
    assert query["client_id"] == [CLIENT_ID]  # the CIMD URL is the client_id
    assert query["code_challenge_method"] == ["S256"]
    assert query["resource"] == [MCP]
    (exchange,) = mock.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["client_assertion_type"] == ASSERTION_TYPE
    assert mock.bound  # the token is bound to the agent's DPoP key
    assert mock.mcp_requests[-1].headers["authorization"].startswith("DPoP ")
    assert (agent.client_id, agent.registration, agent.login.signed_in_now) == (CLIENT_ID, "cimd", True)


def test_a_new_process_reuses_the_stored_tokens_without_signing_in(mock: MockAS, tmp_path: Path):
    configured = settings(tmp_path)
    assert anyio.run(tools_list, mock, anyio.run(lambda: agent_auth(configured, redirect=browser(mock)))) == 200

    async def never(url: str) -> None:
        raise AssertionError("a stored token needs no sign-in")

    again = anyio.run(lambda: agent_auth(configured, redirect=never))
    assert anyio.run(tools_list, mock, again) == 200
    assert len(mock.authorizations) == 1
    assert len(mock.token_requests) == 1
    assert again.login.signed_in_now is False


def test_without_dpop_the_auth_is_the_sdk_provider_and_sends_bearer(mock: MockAS, tmp_path: Path):
    agent = anyio.run(lambda: agent_auth(settings(tmp_path, dpop=False), redirect=browser(mock)))
    assert isinstance(agent.auth, AgentOAuthProvider)
    assert anyio.run(tools_list, mock, agent) == 200
    assert not mock.bound
    assert mock.mcp_requests[-1].headers["authorization"].startswith("Bearer ")


def test_a_preregistered_client_is_stored_as_the_registration(mock: MockAS, tmp_path: Path):
    agent = anyio.run(lambda: agent_auth(settings(tmp_path, registration="preregistered",
                                                  preregistered_client_id="mcp-agent"), redirect=browser(mock)))
    assert anyio.run(tools_list, mock, agent) == 200
    assert parse_qs(urlsplit(mock.authorizations[0]).query)["client_id"] == ["mcp-agent"]
    assert "client_assertion" not in mock.token_requests[0]  # public: PKCE only
    assert agent.registration == "preregistered"


def test_machine_with_a_key_signs_a_client_assertion(mock: MockAS, tmp_path: Path):
    agent = anyio.run(lambda: agent_auth(settings(tmp_path, machine_key_file=private_jwk(tmp_path / "m.jwk", "m-1")),
                                         machine=True))
    assert anyio.run(tools_list, mock, agent) == 200
    (grant,) = mock.token_requests
    assert grant["grant_type"] == "client_credentials"
    assert grant["client_assertion_type"] == ASSERTION_TYPE
    assert mock.bound  # DPoP-bound too
    assert agent.registration == "client_credentials"
    assert mock.authorizations == []


def test_machine_with_a_secret_uses_it_instead(mock: MockAS, tmp_path: Path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    agent = anyio.run(lambda: agent_auth(settings(tmp_path, machine_client_secret_file=secret), machine=True))
    assert anyio.run(tools_list, mock, agent) == 200
    (grant,) = mock.token_requests
    assert grant["grant_type"] == "client_credentials"
    assert "client_assertion" not in grant


def test_machine_without_a_key_or_a_secret_says_what_to_set(tmp_path: Path):
    with pytest.raises(ValueError, match=r"AGENT_MACHINE_KEY_FILE .* or AGENT_MACHINE_CLIENT_SECRET_FILE"):
        anyio.run(lambda: agent_auth(settings(tmp_path), machine=True))


def test_the_client_factory_takes_the_mcp_sdks_arguments_and_trusts_the_ca(tmp_path: Path):
    ca, _, _ = certificate_authority(tmp_path)
    agent = anyio.run(lambda: agent_auth(settings(tmp_path, ca_bundle=ca)))
    # mcp.shared._httpx_utils.McpHttpClientFactory: headers, timeout, auth (FastMCP adds follow_redirects).
    client = agent.http_client(headers={"x-test": "1"}, timeout=None, auth=agent.auth, follow_redirects=True)
    assert client.headers["x-test"] == "1"
    assert client.auth is agent.auth
    assert client.follow_redirects is True
    assert (client.timeout.connect, client.timeout.read) == (30.0, 300.0)  # long-lived streams
    assert agent.http_client(timeout=httpx2.Timeout(7.0)).timeout.read == 7.0  # a framework's own wins
    assert any(cert["subject"] == ((("commonName", "throwaway test CA"),),) for cert in agent.ssl_context.get_ca_certs())


def test_the_public_api_and_its_version():
    assert sorted(mcp_agent.__all__) == sorted(["AgentAuth", "AgentSettings", "FileTokenStorage", "Login",
                                                "PermissionRefused", "Tracer", "__version__", "agent_auth"])
    for name in mcp_agent.__all__:
        assert getattr(mcp_agent, name) is not None
    pyproject = tomllib.loads((ROOT / "services" / "agent" / "pyproject.toml").read_text())
    assert mcp_agent.__version__ == pyproject["project"]["version"]
