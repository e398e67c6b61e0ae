"""Pointed at another authorization server: tokens and JWKS shaped like Auth0's, WorkOS AuthKit's,
Entra ID's (v2) and Okta's (custom authorization server), signed with test keys, pass with the
settings docs/resource-server.md gives for each — and the checks still bite."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mcp_server.config import Settings
from mcp_server.jwks import JWKSCache
from mcp_server.verifier import AccessTokenVerifier, TokenRejected

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RESOURCE = "https://mcp.example.com/mcp"
ENTRA_TENANT = "9a8b7c6d-0000-4000-8000-00000000000a"
ENTRA_APP = "3f2e1d0c-0000-4000-8000-00000000000b"  # the MCP server's application (client) id


def _jwk(**members: Any) -> dict[str, Any]:
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), **members}
    return {k: v for k, v in jwk.items() if v is not None}


# name -> (settings, the JWKS as that AS publishes it, the token's JOSE header, its claims, the scopes granted)
SHAPES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], list[str]]] = {
    "auth0": (
        # Issuer with its trailing slash; the API identifier is the resource URL; `scope` a string.
        {"issuer": "https://tenant.eu.auth0.com/", "jwks_url": "https://tenant.eu.auth0.com/.well-known/jwks.json",
         "introspect_privileged": False},
        {"keys": [_jwk(kid="auth0-kid", use="sig", alg="RS256", x5t="abc")]},
        {"alg": "RS256", "typ": "JWT", "kid": "auth0-kid"},
        {"iss": "https://tenant.eu.auth0.com/", "sub": "auth0|64f0c0ffee", "azp": "client-abc",
         "aud": [RESOURCE, "https://tenant.eu.auth0.com/userinfo"], "scope": "openid mcp:tools", "gty": None},
        ["mcp:tools", "openid"],
    ),
    "workos": (
        {"issuer": "https://example-42.authkit.app", "jwks_url": "https://example-42.authkit.app/oauth2/jwks",
         "introspect_privileged": False},
        {"keys": [_jwk(kid="key_01WORKOS", use="sig", alg="RS256")]},
        {"alg": "RS256", "typ": "JWT", "kid": "key_01WORKOS"},
        {"iss": "https://example-42.authkit.app", "sub": "user_01HXYZ", "aud": RESOURCE, "sid": "session_01H",
         "client_id": "client_01H", "scope": "mcp:tools"},
        ["mcp:tools"],
    ),
    "entra": (
        # v2 tokens: `aud` is the application's client id; `scp` a space-separated string of the
        # scopes' short names; the JWKS publishes no `alg`.
        {"issuer": f"https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0", "audience": ENTRA_APP,
         "jwks_url": f"https://login.microsoftonline.com/{ENTRA_TENANT}/discovery/v2.0/keys", "scope_claim": "scp",
         "scope_names": {"mcp:tools": "mcp.tools", "mcp:admin": "mcp.admin", "mcp:audit": "mcp.audit"},
         "audience_scope": "", "introspect_privileged": False},
        {"keys": [_jwk(kid="entra-kid", use="sig", x5t="entra-kid", issuer=f"https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0")]},
        {"alg": "RS256", "typ": "JWT", "kid": "entra-kid", "x5t": "entra-kid"},
        {"iss": f"https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0", "aud": ENTRA_APP,
         "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
         "azp": "client-app-id", "scp": "mcp.tools", "tid": ENTRA_TENANT, "oid": "oid-1", "ver": "2.0"},
        ["mcp.tools"],
    ),
    "okta": (
        # A custom authorization server whose audience is set to the resource URL; `scp` a JSON
        # list; the client in `cid`.
        {"issuer": "https://example.okta.com/oauth2/aus1mcp", "jwks_url": "https://example.okta.com/oauth2/aus1mcp/v1/keys",
         "scope_claim": "scp", "introspection_url": "https://example.okta.com/oauth2/aus1mcp/v1/introspect",
         "introspect_privileged": False},
        {"keys": [_jwk(kid="okta-kid", use="sig", alg="RS256")]},
        {"alg": "RS256", "kid": "okta-kid"},
        {"iss": "https://example.okta.com/oauth2/aus1mcp", "aud": RESOURCE, "sub": "alice@example.com", "cid": "0oa1client",
         "uid": "00u1alice", "scp": ["openid", "mcp:admin"], "ver": 1, "jti": "AT.x"},
        ["mcp:admin", "mcp:tools", "openid"],  # mcp:admin implies mcp:tools (RS19)
    ),
}


def _verifier(settings: Settings, jwks: dict[str, Any]) -> AccessTokenVerifier:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert str(request.url) == settings.jwks_url
        return httpx2.Response(200, json=jwks)

    keys = JWKSCache(httpx2.AsyncClient(transport=httpx2.MockTransport(handler)), issuer=settings.issuer,
                     jwks_url=settings.jwks_url, algorithms=settings.algorithms, min_refresh=30, max_age=300)
    return AccessTokenVerifier(settings, keys)


def _token(header: dict[str, Any], claims: dict[str, Any], **changes: Any) -> str:
    now = int(time.time())
    body = {"iat": now, "nbf": now, "exp": now + 3600, **claims, **changes}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, KEY, algorithm=header["alg"],
                      headers={k: v for k, v in header.items() if k != "alg"})


def _case(name: str) -> tuple[AccessTokenVerifier, dict[str, Any], dict[str, Any], list[str]]:
    overrides, jwks, header, claims, scopes = SHAPES[name]
    settings = Settings(resource_url=RESOURCE, **overrides)
    return _verifier(settings, jwks), header, claims, scopes


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SHAPES))
async def test_a_token_shaped_like_theirs_passes_with_its_scopes(name: str):
    verifier, header, claims, scopes = _case(name)
    access = await verifier.verify_token(_token(header, claims))
    assert access is not None
    assert sorted(access.scopes) == sorted(scopes)
    assert access.subject == claims["sub"]
    assert access.client_id == (claims.get("azp") or claims.get("client_id") or claims.get("cid"))


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SHAPES))
async def test_their_tokens_for_another_audience_or_issuer_are_refused(name: str):
    verifier, header, claims, _ = _case(name)
    with pytest.raises(TokenRejected, match="audience"):
        await verifier.verify(_token(header, claims, aud="https://other.example.com/api"))
    with pytest.raises(TokenRejected, match="issuer"):
        await verifier.verify(_token(header, claims, iss="https://login.example.net/"))


@pytest.mark.anyio
async def test_entra_tokens_name_the_application_not_the_url():
    """MCP_AUDIENCE replaces the resource URL as the required `aud`; the URL alone no longer passes."""
    verifier, header, claims, _ = _case("entra")
    with pytest.raises(TokenRejected, match="audience"):
        await verifier.verify(_token(header, claims, aud=RESOURCE))


@pytest.mark.anyio
async def test_with_scp_configured_the_scope_claim_grants_nothing():
    verifier, header, claims, _ = _case("okta")
    access = await verifier.verify_token(_token(header, claims, scp=None, scope="mcp:admin"))
    assert access is not None
    assert access.scopes == []


@pytest.mark.anyio
async def test_an_algless_key_does_not_verify_another_algorithm():
    """Entra's JWKS names no `alg`: its RSA key serves the allowed RSA algorithms only (here RS256),
    so a token claiming another allowed algorithm that the key's type does not fit is refused."""
    overrides, jwks, _, claims, _ = SHAPES["entra"]
    settings = Settings(resource_url=RESOURCE, **{**overrides, "algorithms": ["RS256", "ES256"]})
    verifier = _verifier(settings, jwks)
    segments = [{"alg": "ES256", "typ": "JWT", "kid": "entra-kid"}, {**claims, "exp": int(time.time()) + 60}]
    forged = ".".join(base64.urlsafe_b64encode(json.dumps(s).encode()).rstrip(b"=").decode() for s in segments) + ".c2ln"
    with pytest.raises(TokenRejected, match="not for algorithm 'ES256'"):
        await verifier.verify(forged)
