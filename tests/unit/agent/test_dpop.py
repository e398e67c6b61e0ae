"""The agent's DPoP (RFC 9449) against a mock authorization server and MCP server whose proofs are
checked by the MCP server's own checker (tests/support/mock_as.py): the proof key, proofs at the
token endpoint (code, refresh, client credentials) and on the MCP request, AS and RS nonces with
one retry, a restart, an AS that does not bind, and the SDK limitation the agent works around."""

from __future__ import annotations

import io
import json
import stat
import time
from pathlib import Path

import anyio
import httpx2
import jwt
import pytest
from mcp.client.auth import OAuthTokenError
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import OAuthToken
from pydantic import ValidationError

from mcp_agent.auth import with_dpop
from mcp_agent.config import AgentSettings
from mcp_agent.dpop import DPoPAuth, DPoPKeyError, DPoPKeyFile, thumbprint
from mcp_agent.storage import FileTokenStorage
from mcp_agent.trace import Tracer
from mcp_server.dpop import ProofChecker
from tests.support.mock_as import ISSUER, MCP, TOKEN_ENDPOINT, MockAS
from tests.unit.agent.test_provider import key_dir, provider  # noqa: F401  (fixture)


def settings(state: Path) -> AgentSettings:
    return AgentSettings(server_url=MCP, state_dir=state, callback_port=8976)


def dpop_provider(mock: MockAS, state: Path, keys: Path) -> DPoPAuth:
    auth = provider(mock, state, keys)
    return with_dpop(settings(state), auth, FileTokenStorage(state, MCP))


async def call(handler, auth: httpx2.Auth) -> int:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=auth) as http:
        return (await http.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).status_code


@pytest.fixture
def mock() -> MockAS:
    return MockAS()


def key_thumbprint(state: Path) -> str:
    return thumbprint(json.loads((state / "dpop.jwk").read_text()))


def test_the_key_is_made_once_0600_and_reused(tmp_path: Path):
    first = DPoPKeyFile(tmp_path / "state" / "dpop.jwk").key()
    path = tmp_path / "state" / "dpop.jwk"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["crv"] == "P-256"
    again = DPoPKeyFile(path).key()  # another process, or the next run
    assert again.thumbprint == first.thumbprint
    assert "d" not in first.public_jwk
    assert "private" not in repr(first)
    assert json.loads(path.read_text())["d"] not in repr(first)


def test_a_key_others_can_read_is_refused(tmp_path: Path):
    path = tmp_path / "dpop.jwk"
    DPoPKeyFile(path).key()
    path.chmod(0o644)
    with pytest.raises(DPoPKeyError, match="readable by others"):
        DPoPKeyFile(path).key()


def test_a_file_that_is_not_a_private_p256_jwk_is_refused(tmp_path: Path):
    path = tmp_path / "dpop.jwk"
    path.write_text("not json")
    path.chmod(0o600)
    with pytest.raises(DPoPKeyError, match="not a private EC JWK"):
        DPoPKeyFile(path).key()
    public = DPoPKeyFile(tmp_path / "other.jwk").key().public_jwk
    path.write_text(json.dumps(public))
    with pytest.raises(DPoPKeyError, match="not a private P-256 key"):
        DPoPKeyFile(path).key()


def test_a_proof_passes_the_mcp_servers_checker(tmp_path: Path):
    key = DPoPKeyFile(tmp_path / "dpop.jwk").key()
    proof = key.proof("post", "https://mcp.test/mcp?x=1#f", access_token="the-token", nonce="n-1")
    checked = ProofChecker().check(proof, method="POST", uri=MCP, access_token="the-token")
    assert checked.thumbprint == key.thumbprint
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert "d" not in header["jwk"]
    claims = jwt.decode(proof, options={"verify_signature": False})
    assert claims["htu"] == MCP  # RFC 9449 §4.2: no query, no fragment
    assert claims["nonce"] == "n-1"
    assert key.proof("POST", MCP) != key.proof("POST", MCP)  # a new jti each time


def test_code_flow_binds_the_token_and_presents_it_as_dpop(mock: MockAS, tmp_path: Path, key_dir: Path):  # noqa: F811
    assert anyio.run(call, mock.handler, dpop_provider(mock, tmp_path, key_dir)) == 200
    assert mock.refusals == []  # nothing refused on the way
    (token,) = mock.issued
    assert mock.bound[token] == key_thumbprint(tmp_path)
    final = mock.mcp_requests[-1]
    assert final.headers["authorization"] == f"DPoP {token}"
    urls = [url for url, _ in mock.proofs]
    assert urls == [TOKEN_ENDPOINT, MCP]
    # The code exchange still carries the private_key_jwt assertion (provider.py) beside the proof.
    assert mock.token_requests[0]["grant_type"] == "authorization_code"
    assert "client_assertion" in mock.token_requests[0]


def test_refresh_and_a_restart_keep_the_key_and_the_binding(mock: MockAS, tmp_path: Path, key_dir: Path):  # noqa: F811
    auth = dpop_provider(mock, tmp_path, key_dir)
    assert anyio.run(call, mock.handler, auth) == 200
    auth.inner.context.token_expiry_time = time.time() - 1  # type: ignore[attr-defined]
    assert anyio.run(call, mock.handler, auth) == 200
    # A new process after the token expired: same state directory, new objects.
    FileTokenStorage(tmp_path, MCP).set_session(expires_at=time.time() - 1)
    assert anyio.run(call, mock.handler, dpop_provider(mock, tmp_path, key_dir)) == 200
    # And one more whose stored token is still valid: presented as DPoP straight away.
    assert anyio.run(call, mock.handler, dpop_provider(mock, tmp_path, key_dir)) == 200
    assert [form["grant_type"] for form in mock.token_requests] == ["authorization_code", "refresh_token",
                                                                    "refresh_token"]
    assert len(mock.authorizations) == 1
    assert set(mock.bound.values()) == {key_thumbprint(tmp_path)}
    assert mock.refusals == []
    assert mock.mcp_requests[-1].headers["authorization"].startswith("DPoP ")


def test_an_as_nonce_is_answered_by_one_retry_and_reused(mock: MockAS, tmp_path: Path, key_dir: Path):  # noqa: F811
    mock.as_nonce = "as-nonce-1"
    auth = dpop_provider(mock, tmp_path, key_dir)
    assert anyio.run(call, mock.handler, auth) == 200
    assert mock.refusals == ["use_dpop_nonce"]  # the first proof had no nonce
    assert len(mock.token_requests) == 2  # the same code exchange, sent again once
    auth.inner.context.token_expiry_time = time.time() - 1  # type: ignore[attr-defined]
    assert anyio.run(call, mock.handler, auth) == 200
    assert mock.refusals == ["use_dpop_nonce"]  # the refresh carried the nonce at once
    token_proofs = [claims for url, claims in mock.proofs if url == TOKEN_ENDPOINT]
    assert [claims.get("nonce") for claims in token_proofs] == ["as-nonce-1", "as-nonce-1"]


def test_an_rs_nonce_is_answered_by_one_retry_and_reused(mock: MockAS, tmp_path: Path, key_dir: Path):  # noqa: F811
    mock.rs_nonce = "rs-nonce-1"
    auth = dpop_provider(mock, tmp_path, key_dir)
    assert anyio.run(call, mock.handler, auth) == 200
    assert mock.refusals == ["use_dpop_nonce"]
    assert anyio.run(call, mock.handler, auth) == 200
    assert mock.refusals == ["use_dpop_nonce"]  # the second request carried the nonce at once
    mcp_proofs = [claims for url, claims in mock.proofs if url == MCP]
    assert [claims.get("nonce") for claims in mcp_proofs] == ["rs-nonce-1", "rs-nonce-1"]
    assert len(mock.authorizations) == 1  # the nonce challenge did not restart the login


def test_a_nonce_challenge_is_retried_once_only(mock: MockAS, tmp_path: Path, key_dir: Path):  # noqa: F811
    answers = iter(range(100))

    def always_a_new_nonce(request: httpx2.Request) -> httpx2.Response:
        if str(request.url) == TOKEN_ENDPOINT:
            mock.token_requests.append({})
            return httpx2.Response(400, headers={"dpop-nonce": f"n-{next(answers)}"}, json={"error": "use_dpop_nonce"})
        return mock.handler(request)

    with pytest.raises(OAuthTokenError, match="use_dpop_nonce"):
        anyio.run(call, always_a_new_nonce, dpop_provider(mock, tmp_path, key_dir))
    assert len(mock.token_requests) == 2


def test_a_token_the_as_did_not_bind_goes_as_bearer(mock: MockAS, tmp_path: Path, key_dir: Path):  # noqa: F811
    def as_ignoring_dpop(request: httpx2.Request) -> httpx2.Response:
        if str(request.url) == TOKEN_ENDPOINT:
            request.headers.pop("dpop")  # an AS without DPoP: it answers token_type Bearer
        return mock.handler(request)

    assert anyio.run(call, as_ignoring_dpop, dpop_provider(mock, tmp_path, key_dir)) == 200
    assert mock.bound == {}
    final = mock.mcp_requests[-1]
    assert final.headers["authorization"].startswith("Bearer ")
    assert "dpop" not in final.headers
    assert mock.refusals == []


def test_client_credentials_get_a_bound_token(mock: MockAS, tmp_path: Path):
    storage = FileTokenStorage(tmp_path, MCP + "#machine")
    machine = ClientCredentialsOAuthProvider(MCP, storage=storage, client_id="mcp-machine-agent", client_secret="s",
                                             scope="mcp:tools", issuer=ISSUER)
    assert anyio.run(call, mock.handler, with_dpop(settings(tmp_path), machine, storage)) == 200
    assert mock.token_requests[0]["grant_type"] == "client_credentials"
    assert mock.bound[mock.issued[-1]] == key_thumbprint(tmp_path)
    assert mock.mcp_requests[-1].headers["authorization"].startswith("DPoP ")
    assert mock.refusals == []


def test_the_sdk_still_refuses_the_dpop_token_type():
    """Why dpop.py hands the SDK `token_type: Bearer`: mcp 2.3's OAuthToken takes only Bearer. When
    this fails the SDK learned DPoP: drop the rewrite in DPoPAuth._token_response."""
    with pytest.raises(ValidationError):
        OAuthToken.model_validate({"access_token": "t", "token_type": "DPoP"})


def test_trace_masks_the_proof(tmp_path: Path):
    proof = DPoPKeyFile(tmp_path / "dpop.jwk").key().proof("POST", MCP, access_token="the-token")
    out = io.StringIO()
    request = httpx2.Request("POST", MCP, headers={"authorization": "DPoP the-token-value", "dpop": proof})
    anyio.run(Tracer(out).on_request, request)
    assert proof not in out.getvalue()
    assert proof[:6] in out.getvalue()
    assert "the-token-value" not in out.getvalue()
