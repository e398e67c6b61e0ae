"""A stand-in authorization server for the resource server's unit tests: locally minted keys and
tokens, and the resource server running on loopback.

The authorization server is replaced by a JWKS document served from memory (httpx2's
MockTransport); everything the resource server does with tokens is real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from mcp_server.config import Settings
from mcp_server.jwks import JWKSCache
from mcp_server.verifier import AccessTokenVerifier

ISSUER = "https://auth.test/realms/mcp"
JWKS_URL = "https://auth.test/realms/mcp/protocol/openid-connect/certs"
KID = "kid-current"


@dataclass
class FakeAuthorizationServer:
    """Signs tokens like Keycloak does and serves its JWKS; counts the JWKS fetches."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid: str = KID
    fetches: int = 0  # successful JWKS responses
    attempts: int = 0  # requests, answered or not
    down: bool = False

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.attempts += 1
        if self.down:
            return httpx2.Response(503)
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        return httpx2.Response(200, json=self.jwks())

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler))


def claims_for(resource: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": resource,
        "sub": "user-123",
        "azp": "test-client",
        "typ": "Bearer",
        "scope": "mcp:tools",
        "iat": now,
        "exp": now + 300,
        "preferred_username": "alice",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(key: Any, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = KID, **headers: Any) -> str:
    hdrs = dict(headers)
    if kid is not None:
        hdrs["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=hdrs)


def make_settings(resource_url: str = "http://127.0.0.1:8000/mcp") -> Settings:
    return Settings(issuer=ISSUER, resource_url=resource_url, jwks_url=JWKS_URL, jwks_min_refresh_seconds=30)


def make_keys(fake: FakeAuthorizationServer, settings: Settings, clock: Callable[[], float] | None = None) -> JWKSCache:
    return JWKSCache(
        fake.http(),
        issuer=settings.issuer,
        jwks_url=settings.jwks_url,
        algorithms=settings.algorithms,
        min_refresh=settings.jwks_min_refresh_seconds,
        max_age=settings.jwks_max_age_seconds,
        **({"clock": clock} if clock else {}),
    )


def make_verifier(
    fake: FakeAuthorizationServer, settings: Settings, clock: Callable[[], float] | None = None
) -> tuple[AccessTokenVerifier, JWKSCache]:
    keys = make_keys(fake, settings, clock)
    return AccessTokenVerifier(settings, keys), keys


@dataclass
class RunningServer:
    url: str
    resource_url: str
    fake: FakeAuthorizationServer
    client: httpx2.Client

    def token(self, **overrides: Any) -> str:
        return mint(self.fake.key, claims_for(self.resource_url, **overrides))

    def call(self, token: str | None, method: str = "tools/call", params: dict | None = None, **headers: str):
        hdrs = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25", **headers}
        if token is not None:
            hdrs["authorization"] = f"Bearer {token}"
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        return self.client.post(self.resource_url, json=body, headers=hdrs)


def serve(app: Any, port: int) -> Iterator[None]:
    """Run an ASGI app under uvicorn on loopback in a thread (lifespan included)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
