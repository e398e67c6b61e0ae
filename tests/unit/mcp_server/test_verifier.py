"""Every way a bearer token can be wrong is refused with 401, and the right one passes (RS8-RS12)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp_server.jwks import UnknownKey
from mcp_server.verifier import AccessTokenVerifier, TokenRejected

from .conftest import ISSUER, KID, FakeAuthorizationServer, claims_for, make_settings, make_verifier, mint
from .test_jwks import Clock

RESOURCE = "http://127.0.0.1:8000/mcp"
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "mcp:tools mcp:admin"
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 0x01
    return ".".join([header, payload, _b64(bytes(raw))])


def _alg_none(resource: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    return f"{header}.{_b64(json.dumps(claims_for(resource)).encode())}."


def _hs256_with_public_key(fake: FakeAuthorizationServer, resource: str) -> str:
    # The classic algorithm-confusion attack: HMAC keyed with the server's *public* key.
    public_pem = fake.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    payload = _b64(json.dumps(claims_for(resource)).encode())

    sig = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(sig)}"


now = int(time.time())
Factory = Callable[[FakeAuthorizationServer, str], str]  # (authorization server, resource) -> token
BAD_TOKENS: dict[str, tuple[Factory, str]] = {
    "wrong audience": (lambda f, r: mint(f.key, claims_for("https://other.example/mcp")), "audience"),
    "audience with trailing slash": (lambda f, r: mint(f.key, claims_for(r + "/")), "audience"),
    "missing audience": (lambda f, r: mint(f.key, claims_for(r, aud=None)), "aud"),
    "wrong issuer": (lambda f, r: mint(f.key, claims_for(r, iss="https://auth.test/realms/other")), "issuer"),
    "expired": (lambda f, r: mint(f.key, claims_for(r, iat=now - 900, exp=now - 600)), "expired"),
    "not yet valid": (lambda f, r: mint(f.key, claims_for(r, nbf=now + 600)), "not yet valid"),
    "issued in the future": (lambda f, r: mint(f.key, claims_for(r, iat=now + 600, exp=now + 900)), "future"),
    "missing exp": (lambda f, r: mint(f.key, claims_for(r, exp=None)), "exp"),
    "missing sub": (lambda f, r: mint(f.key, claims_for(r, sub=None)), "sub"),
    "tampered payload": (lambda f, r: _tamper_payload(mint(f.key, claims_for(r))), "signature"),
    "tampered signature": (lambda f, r: _tamper_signature(mint(f.key, claims_for(r))), "signature"),
    "alg none": (lambda f, r: _alg_none(r), "algorithm"),
    "HS256 signed with the public key": (lambda f, r: _hs256_with_public_key(f, r), "algorithm"),
    "ES256 not in the allow-list": (lambda f, r: mint(EC_KEY, claims_for(r), alg="ES256"), "algorithm"),
    "unknown kid": (lambda f, r: mint(OTHER_KEY, claims_for(r), kid="someone-elses-key"), "unknown"),
    "missing kid": (lambda f, r: mint(f.key, claims_for(r), kid=None), "kid"),
    "right kid, wrong key": (lambda f, r: mint(OTHER_KEY, claims_for(r)), "signature"),
    "ID token": (lambda f, r: mint(f.key, claims_for(r, typ="ID")), "typ"),
    "refresh token": (lambda f, r: mint(f.key, claims_for(r, typ="Refresh")), "typ"),
    "refresh token signed HS512 like Keycloak's": (
        lambda f, r: mint(b"realm-hmac-secret" * 4, claims_for(r, typ="Refresh"), alg="HS512"),
        "algorithm",
    ),
    "wrong header typ": (lambda f, r: mint(f.key, claims_for(r), typ="dpop+jwt"), "header typ"),
    "token from another realm": (
        lambda f, r: mint(OTHER_KEY, claims_for(r, iss="https://auth.test/realms/other"), kid="other-realm-key"),
        "unknown",
    ),
    "oversized": (lambda f, r: mint(f.key, claims_for(r, padding="x" * 9000)), "larger"),
    "garbage": (lambda f, r: "not-a-jwt", "JWS"),
    "empty": (lambda f, r: "", "JWS"),
    "three garbage segments": (lambda f, r: "abc.def.ghi", "JWS"),
}


@pytest.fixture
def verifier():
    fake = FakeAuthorizationServer()
    verifier, keys = make_verifier(fake, make_settings(RESOURCE))
    return fake, verifier, keys


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_is_rejected_with_its_reason(verifier, case):
    fake, verifier, _ = verifier
    factory, reason = BAD_TOKENS[case]
    with pytest.raises(TokenRejected, match=reason):
        await verifier.verify(factory(fake, RESOURCE))
    assert await verifier.verify_token(factory(fake, RESOURCE)) is None


@pytest.mark.anyio
async def test_valid_token_yields_subject_client_scopes_and_resource(verifier):
    fake, verifier, _ = verifier
    token = await verifier.verify_token(mint(fake.key, claims_for(RESOURCE, scope="mcp:admin")))
    assert token is not None
    assert token.subject == "user-123"
    assert token.client_id == "test-client"
    # RS19: mcp:admin implies mcp:tools.
    assert token.scopes == ["mcp:admin", "mcp:tools"]
    assert token.resource == RESOURCE
    assert token.claims["iss"] == ISSUER


@pytest.mark.anyio
async def test_audience_list_containing_the_resource_is_accepted(verifier):
    fake, verifier, _ = verifier
    token = mint(fake.key, claims_for(RESOURCE, aud=["account", RESOURCE]))
    assert await verifier.verify_token(token) is not None


@pytest.mark.anyio
async def test_small_clock_skew_is_tolerated(verifier):
    fake, verifier, _ = verifier
    skewed = int(time.time()) + 5  # within the 10 s leeway
    assert await verifier.verify_token(mint(fake.key, claims_for(RESOURCE, iat=skewed, nbf=skewed))) is not None


def test_symmetric_or_none_algorithms_cannot_be_configured():
    fake = FakeAuthorizationServer()
    settings = make_settings(RESOURCE).model_copy(update={"algorithms": ["RS256", "HS256"]})
    with pytest.raises(ValueError, match="HS256"):
        make_verifier(fake, settings)


@pytest.mark.anyio
async def test_a_cached_token_still_expires():
    fake, now = FakeAuthorizationServer(), [time.time()]
    settings = make_settings(RESOURCE)
    _, keys = make_verifier(fake, settings)
    verifier = AccessTokenVerifier(settings, keys, clock=lambda: now[0])
    exp = int(now[0]) + 60
    token = mint(fake.key, claims_for(RESOURCE, exp=exp))
    assert await verifier.verify_token(token) is not None
    now[0] = exp + settings.leeway_seconds + 1
    with pytest.raises(TokenRejected, match="expired"):
        await verifier.verify(token)


@pytest.mark.anyio
async def test_key_rotation_empties_the_cache_of_verified_tokens():
    fake, clock = FakeAuthorizationServer(), Clock()
    settings = make_settings(RESOURCE)
    verifier, keys = make_verifier(fake, settings, clock)
    token = mint(fake.key, claims_for(RESOURCE))
    assert await verifier.verify_token(token) is not None
    fake.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # old key withdrawn, same kid
    clock.now += 31
    with pytest.raises(UnknownKey):
        await keys.get("a-kid-that-triggers-a-refresh")
    with pytest.raises(TokenRejected, match="signature"):
        await verifier.verify(token)
