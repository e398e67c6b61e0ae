"""errors.explain: one line that says what to do, for the errors the SDK really raises (produced
here by the SDK's own flows against the mock authorization server, not written by hand)."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client.auth.extensions.client_credentials import PrivateKeyJWTOAuthProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl

from mcp_agent.errors import explain
from mcp_agent.provider import AgentOAuthProvider
from mcp_agent.storage import FileTokenStorage
from tests.support.mock_as import CLIENT_ID, ISSUER, MCP, REDIRECT, MockAS


def failure(mock: MockAS, auth: httpx2.Auth) -> BaseException:
    async def go() -> None:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(mock.handler), auth=auth) as http:
            await http.post(MCP, json={})

    with pytest.raises(Exception) as caught:  # noqa: PT011  (whatever the SDK raises is the subject)
        anyio.run(go)
    return caught.value


def interactive(mock: MockAS, tmp_path, *, iss: str = ISSUER) -> AgentOAuthProvider:
    urls: list[str] = []

    async def redirect(url: str) -> None:
        urls.append(url)

    async def callback() -> AuthorizationCodeResult:
        from urllib.parse import parse_qs, urlsplit

        return AuthorizationCodeResult(code="c", state=parse_qs(urlsplit(urls[-1]).query)["state"][0], iss=iss)

    metadata = OAuthClientMetadata(redirect_uris=[AnyUrl(REDIRECT)], token_endpoint_auth_method="none")
    return AgentOAuthProvider(MCP, client_metadata=metadata, storage=FileTokenStorage(tmp_path, MCP),
                              redirect_handler=redirect, callback_handler=callback, client_metadata_url=CLIENT_ID)


def test_protected_resource_metadata_failing_says_check_the_server(tmp_path):
    mock = MockAS(fail={"https://mcp.test/.well-known/oauth-protected-resource/mcp": 503})
    error = failure(mock, interactive(mock, tmp_path))
    assert "Protected resource metadata request failed: HTTP 503" in str(error)  # the SDK's words
    assert explain(error).startswith("the authorization server did not serve its metadata")


def test_machine_agent_without_as_metadata_says_is_keycloak_up(tmp_path):
    mock = MockAS(fail={"https://as.test/.well-known/oauth-authorization-server/realms/mcp": 404,
                        "https://as.test/.well-known/openid-configuration/realms/mcp": 404,
                        "https://as.test/realms/mcp/.well-known/openid-configuration": 404})

    async def assertion(audience: str) -> str:
        return "unused"

    auth = PrivateKeyJWTOAuthProvider(MCP, storage=FileTokenStorage(tmp_path, MCP), client_id="m",
                                      assertion_provider=assertion, scope="mcp:tools", issuer=ISSUER)
    error = failure(mock, auth)
    assert f"No authorization server metadata discovered for configured issuer {ISSUER}" in str(error)
    assert explain(error).startswith("the authorization server did not serve its metadata")


def test_an_issuer_mix_up_is_named(tmp_path):
    mock = MockAS()
    error = failure(mock, interactive(mock, tmp_path, iss="https://as.test/realms/other"))
    assert explain(error) == (
        "authorization failed: Authorization response iss mismatch: https://as.test/realms/other != " + ISSUER)


def test_a_refused_connection_says_make_up(tmp_path):
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)

    async def go() -> None:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(refuse)) as http:
            await http.get(MCP)

    with pytest.raises(httpx2.ConnectError) as caught:
        anyio.run(go)
    assert explain(caught.value) == "cannot connect ([Errno 111] Connection refused): is the sandbox up? run `make up`"
