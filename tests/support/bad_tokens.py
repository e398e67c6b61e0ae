"""Every way a bearer token can be wrong, as data: name -> (factory, the reason the refusal must
name). The verifier's unit tests and the HTTP-level tests both run the whole table."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.authorization_server import ISSUER, KID, FakeAuthorizationServer, claims_for, mint
from tests.support.jose import sign, signed

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


def _header(**members: object) -> dict[str, object]:
    """A JOSE header as the AS writes it, with `members` replaced (None: removed)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": KID, **members}
    return {k: v for k, v in header.items() if v is not None}


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
    # Signed by the AS's key, so only the malformed member can be what refuses them.
    "header not an object": (lambda f, r: sign(f.key, b"[1]", json.dumps(claims_for(r)).encode()), "JWS"),
    "kid a number": (lambda f, r: signed(f.key, _header(kid=5), claims_for(r)), "kid"),
    "kid an object": (lambda f, r: signed(f.key, _header(kid={"kid": KID}), claims_for(r)), "kid"),
    "crit naming an extension": (lambda f, r: signed(f.key, _header(crit=["exp"]), claims_for(r)), "crit"),
    "crit naming b64, which PyJWT knows": (
        lambda f, r: signed(f.key, _header(crit=["b64"], b64=True), claims_for(r)), "crit"),
    "empty crit": (lambda f, r: signed(f.key, _header(crit=[]), claims_for(r)), "crit"),
    "alg not a string": (lambda f, r: signed(f.key, _header(alg=["RS256"]), claims_for(r)), "alg"),
    "header typ not a string": (lambda f, r: signed(f.key, _header(typ={"t": "JWT"}), claims_for(r)), "typ"),
    "claims not an object": (lambda f, r: sign(f.key, json.dumps(_header()).encode(), b'["sub"]'), "claims"),
    "exp a numeric string": (lambda f, r: signed(f.key, _header(), claims_for(r, exp=str(now + 300))), "exp"),
    "exp NaN": (lambda f, r: signed(f.key, _header(), claims_for(r, exp=float("nan"))), "exp"),
    "exp past any date": (lambda f, r: signed(f.key, _header(), claims_for(r, exp=10**400)), "exp"),
    "exp a boolean": (lambda f, r: signed(f.key, _header(), claims_for(r, exp=True)), "exp"),
    "iat a numeric string": (lambda f, r: signed(f.key, _header(), claims_for(r, iat=str(now))), "iat"),
    "nbf an object": (lambda f, r: signed(f.key, _header(), claims_for(r, nbf={"at": now})), "nbf"),
    "aud a number": (lambda f, r: signed(f.key, _header(), claims_for(r, aud=5)), "audience"),
    "aud a list with a number": (lambda f, r: signed(f.key, _header(), claims_for(r, aud=[r, 5])), "audience"),
    "iss a list": (lambda f, r: signed(f.key, _header(), claims_for(r, iss=[ISSUER])), "issuer"),
    "sub a number": (lambda f, r: signed(f.key, _header(), claims_for(r, sub=123)), "sub"),
    # A list of scope tokens is accepted (Okta's `scp`); one whose entries are not scope tokens is not.
    "scope a list of numbers": (lambda f, r: signed(f.key, _header(), claims_for(r, scope=[1])), "scope"),
    "scope a list entry holding two scopes": (
        lambda f, r: signed(f.key, _header(), claims_for(r, scope=["mcp:tools mcp:admin"])), "scope"),
    "scope an object": (lambda f, r: signed(f.key, _header(), claims_for(r, scope={"mcp:admin": True})), "scope"),
    "azp an object": (lambda f, r: signed(f.key, _header(), claims_for(r, azp={"id": "x"})), "azp"),
    "preferred_username a list": (
        lambda f, r: signed(f.key, _header(), claims_for(r, preferred_username=["alice"])), "preferred_username"),
    "typ claim a list": (lambda f, r: signed(f.key, _header(), claims_for(r, typ=["Bearer"])), "typ"),
}
