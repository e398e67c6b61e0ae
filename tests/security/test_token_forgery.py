"""Forged, replayed and misdirected tokens against the real stack (RS8-RS12, RFC 8725).

Every forgery starts from a real Keycloak token or key, so each refusal is the resource server's
check, not an accident of a fake. The precise reason is asserted from the 401's
error_description. (The unit table in tests/unit/mcp_server/test_verifier.py covers the same
checks claim by claim with locally minted tokens.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.login import authorize, exchange
from tests.support.mcp import rpc
from tests.support.stack import Stack
from tests.support.tokens import DEMO_MACHINE_CLIENT_ID, token

pytestmark = pytest.mark.blackbox

ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(access_token: str) -> tuple[dict, dict, str]:
    header, payload, signature = access_token.split(".")
    return (json.loads(base64.urlsafe_b64decode(header + "==")), json.loads(base64.urlsafe_b64decode(payload + "==")),
            signature)


def resign(claims: dict, header: dict) -> str:
    return jwt.encode(claims, ATTACKER, algorithm="RS256", headers=header)


def refused(response: httpx2.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert reason in response.json()["error_description"], response.json()


@pytest.fixture(scope="module")
def real(stack: Stack) -> str:
    return token(stack)


@pytest.fixture(scope="module")
def keycloak_public_pem(stack: Stack) -> bytes:
    with stack.client() as http:
        jwks = http.get(f"{stack.issuer}/protocol/openid-connect/certs").json()
    rs256 = next(k for k in jwks["keys"] if k.get("alg") == "RS256")
    return jwt.PyJWK(rs256).key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_tampered_payload_granting_admin_is_refused(stack: Stack, real: str):
    _header, claims, signature = parts(real)
    claims["scope"] = "mcp:tools mcp:admin"
    forged = ".".join([real.split(".")[0], b64(json.dumps(claims).encode()), signature])
    refused(rpc(stack, f"Bearer {forged}"), "signature")


def test_tampered_signature_is_refused(stack: Stack, real: str):
    head, payload, signature = real.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[-1] ^= 0x01
    refused(rpc(stack, f"Bearer {head}.{payload}.{b64(bytes(raw))}"), "signature")


def test_alg_none_with_real_claims_is_refused(stack: Stack, real: str):
    header, claims, _ = parts(real)
    forged = f"{b64(json.dumps({**header, 'alg': 'none'}).encode())}.{b64(json.dumps(claims).encode())}."
    refused(rpc(stack, f"Bearer {forged}"), "algorithm")


def test_hs256_keyed_with_keycloaks_public_key_is_refused(stack: Stack, real: str, keycloak_public_pem: bytes):
    """Algorithm confusion: HMAC with the AS's public key, which anyone can download."""
    header, claims, _ = parts(real)
    head = b64(json.dumps({**header, "alg": "HS256"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(keycloak_public_pem, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    refused(rpc(stack, f"Bearer {head}.{payload}.{b64(signature)}"), "algorithm")


def test_attacker_key_under_keycloaks_kid_is_refused(stack: Stack, real: str):
    header, claims, _ = parts(real)
    refused(rpc(stack, f"Bearer {resign(claims, {'kid': header['kid']})}"), "signature")


def test_attacker_key_under_an_unknown_kid_is_refused(stack: Stack, real: str):
    _, claims, _ = parts(real)
    refused(rpc(stack, f"Bearer {resign(claims, {'kid': 'attacker-key-1'})}"), "unknown")


def test_jku_header_pointing_at_the_attackers_keys_is_ignored(stack: Stack, real: str):
    header, claims, _ = parts(real)
    forged = resign(claims, {"kid": header["kid"], "jku": "https://attacker.example/jwks.json"})
    refused(rpc(stack, f"Bearer {forged}"), "signature")


def test_embedded_jwk_header_is_ignored(stack: Stack, real: str):
    """JWK injection (CVE-2018-0114 class): the key inside the token is never trusted."""
    header, claims, _ = parts(real)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER.public_key()))
    refused(rpc(stack, f"Bearer {resign(claims, {'kid': header['kid'], 'jwk': jwk})}"), "signature")


def test_token_without_this_server_in_its_audience_is_refused(stack: Stack):
    """RS9/RS12: no mcp:tools scope -> no audience mapper -> aud lacks the MCP server."""
    access_token = token(stack, scope=None, client_id="mcp-machine-agent-no-audience")
    assert stack.resource_url not in str(jwt.decode(access_token, options={"verify_signature": False}).get("aud"))
    refused(rpc(stack, f"Bearer {access_token}"), "aud")


def test_token_from_another_realm_is_refused(stack: Stack):
    """Same client, same key, audience mapper to this server — but another issuer, whose signing
    keys are not this issuer's (the unit table covers a wrong `iss` under a known key)."""
    access_token = token(stack, realm="other", client_id=DEMO_MACHINE_CLIENT_ID)  # realm other: Bearer allowed
    claims = jwt.decode(access_token, options={"verify_signature": False})
    assert stack.resource_url in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["iss"] != stack.issuer
    refused(rpc(stack, f"Bearer {access_token}"), "signing key unknown")


def test_expired_token_is_refused(stack: Stack):
    """RS10. The short-lived client's tokens live 1 s; exp is exact (no leeway on exp)."""
    access_token = token(stack, client_id="mcp-machine-agent-short-lived")
    expires = jwt.decode(access_token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires + 1 - time.time()))
    refused(rpc(stack, f"Bearer {access_token}"), "expired")


@pytest.fixture(scope="module")
def user_tokens(stack: Stack) -> dict:
    with stack.client(follow_redirects=False) as http:
        return exchange(http, stack, authorize(http, stack, "alice", stack.secret("demo-user-password")))


def test_id_token_replayed_as_an_access_token_is_refused(stack: Stack, user_tokens: dict):
    refused(rpc(stack, f"Bearer {user_tokens['id_token']}"), "audience")


def test_refresh_token_replayed_as_an_access_token_is_refused(stack: Stack, user_tokens: dict):
    refused(rpc(stack, f"Bearer {user_tokens['refresh_token']}"), "algorithm")  # Keycloak signs them HS512


def test_oversized_token_is_refused_unparsed(stack: Stack, real: str):
    refused(rpc(stack, f"Bearer {real}{'A' * 9000}"), "larger than")


def test_garbage_bearer_value_is_refused(stack: Stack):
    refused(rpc(stack, "Bearer not.a.jwt"), "JWS")


def test_token_in_the_query_string_is_not_accepted(stack: Stack, real: str):
    """C28/RFC 6750 §2.3 is not supported: a token in the URL counts as no credentials."""
    response = rpc(stack, None, url=f"{stack.resource_url}?access_token={real}")
    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


def test_token_under_another_auth_scheme_is_not_accepted(stack: Stack, real: str):
    response = rpc(stack, f"Basic {real}")
    assert response.status_code == 401


def test_privileged_tool_with_the_base_scope_only_gets_a_step_up_challenge(stack: Stack, real: str):
    """RS15-RS17: 403 insufficient_scope naming every scope the call needs."""
    response = rpc(stack, f"Bearer {real}", method="tools/call", params={"name": "server_stats", "arguments": {}})
    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert 'scope="mcp:connect mcp:tools mcp:admin"' in response.headers["www-authenticate"]


def test_a_foreign_origin_is_refused_with_a_valid_token(stack: Stack, real: str):
    """RS20: DNS rebinding / cross-site use from a page on another origin."""
    response = rpc(stack, f"Bearer {real}", origin="https://evil.example")
    assert response.status_code == 403
