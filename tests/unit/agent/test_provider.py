"""AgentOAuthProvider against a mock authorization server: each override of the SDK's provider
(private_key_jwt on the code exchange and on refresh, python-sdk#3250 restart-then-refresh) and
the `kid` in the assertion, with the SDK's own flow around them.

The mock is an httpx2.MockTransport serving the MCP server's 401 and PRM, the AS metadata, and a
token endpoint that records every form it receives.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl

from mcp_agent.assertion import ASSERTION_TYPE, SigningKeyFile
from mcp_agent.auth import signer
from mcp_agent.provider import AgentOAuthProvider
from mcp_agent.storage import FileTokenStorage
from tests.support.mock_as import CLIENT_ID, ISSUER, MCP, REDIRECT, MockAS


def write_private_jwk(path: Path, kid: str) -> None:
    """A signing key file as cimd-host writes it: a private JWK (RFC 7517) with its kid."""
    jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    path.write_text(json.dumps({**jwk, "kid": kid, "alg": "ES256", "use": "sig"}))


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    write_private_jwk(directory / "signing.jwk", "kid-1")
    return directory


def provider(mock: MockAS, state: Path, key_dir: Path) -> AgentOAuthProvider:
    sign = signer(CLIENT_ID, SigningKeyFile(key_dir / "signing.jwk"))

    async def redirect(url: str) -> None:
        mock.authorizations.append(url)

    async def callback() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(mock.authorizations[-1]).query)
        return AuthorizationCodeResult(code="the-code", state=query["state"][0], iss=ISSUER)

    metadata = OAuthClientMetadata(redirect_uris=[AnyUrl(REDIRECT)], grant_types=["authorization_code", "refresh_token"],
                                   response_types=["code"], token_endpoint_auth_method="none")
    return AgentOAuthProvider(MCP, client_metadata=metadata, storage=FileTokenStorage(state, MCP),
                              redirect_handler=redirect, callback_handler=callback, client_metadata_url=CLIENT_ID,
                              assertion=sign)


async def call(mock: MockAS, auth: AgentOAuthProvider) -> int:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(mock.handler), auth=auth) as http:
        return (await http.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).status_code


def assertion_of(form: dict[str, str]) -> tuple[dict, dict]:
    assert form["client_assertion_type"] == ASSERTION_TYPE
    token = form["client_assertion"]
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def mock() -> MockAS:
    return MockAS()


def test_the_code_exchange_carries_a_private_key_jwt_with_the_kid(mock: MockAS, tmp_path: Path, key_dir: Path):
    assert anyio.run(call, mock, provider(mock, tmp_path, key_dir)) == 200
    (exchange,) = mock.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["client_id"] == CLIENT_ID
    header, claims = assertion_of(exchange)
    assert header["kid"] == "kid-1"  # Keycloak picks the verification key by kid
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == ISSUER  # the AS's issuer identifier (RFC 7523bis)


def test_refresh_carries_a_private_key_jwt_too(mock: MockAS, tmp_path: Path, key_dir: Path):
    auth = provider(mock, tmp_path, key_dir)

    async def twice() -> None:
        assert await call(mock, auth) == 200
        auth.context.token_expiry_time = time.time() - 1  # the clock passes the token's expiry
        assert await call(mock, auth) == 200

    anyio.run(twice)
    grants = [form["grant_type"] for form in mock.token_requests]
    assert grants == ["authorization_code", "refresh_token"]
    header, _ = assertion_of(mock.token_requests[1])
    assert header["kid"] == "kid-1"


def test_a_restarted_agent_refreshes_instead_of_logging_in_again(mock: MockAS, tmp_path: Path, key_dir: Path):
    """python-sdk#3250: the SDK forgets the expiry and the metadata; the provider persists them."""
    assert anyio.run(call, mock, provider(mock, tmp_path, key_dir)) == 200
    assert len(mock.authorizations) == 1
    # A new process, after the access token expired: a new provider on the same storage.
    FileTokenStorage(tmp_path, MCP).set_session(expires_at=time.time() - 1)
    assert anyio.run(call, mock, provider(mock, tmp_path, key_dir)) == 200
    assert len(mock.authorizations) == 1  # no second interactive login
    assert [form["grant_type"] for form in mock.token_requests] == ["authorization_code", "refresh_token"]
    assert assertion_of(mock.token_requests[1])[0]["kid"] == "kid-1"


def test_after_a_key_rotation_the_assertion_names_the_new_key(mock: MockAS, tmp_path: Path, key_dir: Path):
    auth = provider(mock, tmp_path, key_dir)
    assert anyio.run(call, mock, auth) == 200
    auth.context.token_expiry_time = time.time() - 1
    write_private_jwk(key_dir / "signing.jwk", "kid-2")  # cimd-host rotated the key
    assert anyio.run(call, mock, auth) == 200
    assert assertion_of(mock.token_requests[-1])[0]["kid"] == "kid-2"
