"""A stand-in authorization server for the resource server's unit tests: locally minted keys and
tokens, and the resource server running on loopback.

The authorization server is replaced by documents served from memory (httpx2's MockTransport):
its RFC 8414 metadata, its JWKS, and an RFC 7662 introspection endpoint that authenticates the
MCP server's own client like Keycloak does (private_key_jwt, checked against a test key) and
answers `active: false` for tokens a test revoked. Everything the resource server does with
tokens is real.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_server.app import create_app
from mcp_server.client_auth import ASSERTION_TYPE
from mcp_server.config import Settings
from mcp_server.jwks import JWKSCache
from mcp_server.verifier import AccessTokenVerifier
from tests.support.net import free_port

ISSUER = "https://auth.test/realms/mcp"
METADATA_URL = "https://auth.test/.well-known/oauth-authorization-server/realms/mcp"
JWKS_URL = "https://auth.test/realms/mcp/protocol/openid-connect/certs"
INTROSPECTION_URL = "https://auth.test/realms/mcp/protocol/openid-connect/token/introspect"
KID = "kid-current"
CLIENT_KID = "mcp-server-key"  # the kid of the MCP server's own client key


@dataclass
class FakeAuthorizationServer:
    """Signs tokens like Keycloak does, serves its metadata and JWKS, and introspects tokens for
    the MCP server's client; counts the JWKS fetches and the introspections."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid: str = KID
    fetches: int = 0  # successful JWKS responses
    attempts: int = 0  # requests, answered or not
    down: bool = False
    # The MCP server's own client, as registered here: its public key verifies client assertions.
    client_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    client_kid: str = CLIENT_KID
    introspections: int = 0  # introspection requests whose client authentication passed
    refused_clients: int = 0  # introspection requests whose client authentication failed
    introspected_by: str | None = None  # the client id of the last authenticated introspection
    revoked: set[str] = field(default_factory=set)  # tokens whose session ended (signed out, revoked)
    answer_overrides: dict[str, Any] = field(default_factory=dict)  # merged into every active answer
    assertion_ids: set[str] = field(default_factory=set)  # jti of every assertion accepted (no replay)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    def write_client_key(self, directory: Path) -> Path:
        """The MCP server's key directory: <kid>.pem and `current` (cimd-host's layout)."""
        directory.mkdir(parents=True, exist_ok=True)
        pem = self.client_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
        (directory / f"{self.client_kid}.pem").write_bytes(pem)
        (directory / "current").write_text(self.client_kid + "\n")
        return directory

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.attempts += 1
        if self.down:
            return httpx2.Response(503)
        url = str(request.url)
        if url == METADATA_URL:
            return httpx2.Response(200, json={"issuer": ISSUER, "jwks_uri": JWKS_URL,
                                              "introspection_endpoint": INTROSPECTION_URL})
        if url == INTROSPECTION_URL:
            return self.introspect(request)
        assert url == JWKS_URL
        self.fetches += 1
        return httpx2.Response(200, json=self.jwks())

    def introspect(self, request: httpx2.Request) -> httpx2.Response:
        """RFC 7662 §2, as Keycloak answers: the caller authenticates (private_key_jwt), then
        `active` with the token's claims, or just `active: false`."""
        assert request.method == "POST"
        form = dict(parse_qsl(request.content.decode()))
        client = self.authenticate(form)
        if client is None:
            self.refused_clients += 1
            return httpx2.Response(401, json={"error": "invalid_client"})
        self.introspections += 1
        self.introspected_by = client
        token = form.get("token", "")
        try:
            claims = jwt.decode(token, self.key.public_key(), algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return httpx2.Response(200, json={"active": False})
        if token in self.revoked:
            return httpx2.Response(200, json={"active": False})
        answer = {"active": True, "sub": claims["sub"], "client_id": claims.get("azp"), "iss": claims["iss"],
                  "aud": claims["aud"], "exp": claims["exp"], "scope": claims.get("scope", ""), "token_type": "Bearer",
                  "username": claims.get("preferred_username")}
        return httpx2.Response(200, json={**answer, **self.answer_overrides})

    def authenticate(self, form: dict[str, str]) -> str | None:
        """The client id a private_key_jwt assertion (RFC 7523 §3) proves, or None."""
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return None
        assertion = form.get("client_assertion", "")
        try:
            if jwt.get_unverified_header(assertion).get("kid") != self.client_kid:
                return None
            claims = jwt.decode(assertion, self.client_key.public_key(), algorithms=["ES256"], audience=ISSUER,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError:
            return None
        if claims["iss"] != claims["sub"] or claims["exp"] - claims["iat"] > 60 or claims["jti"] in self.assertion_ids:
            return None
        self.assertion_ids.add(claims["jti"])
        return str(claims["iss"])

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
        "jti": str(uuid.uuid4()),  # as Keycloak's: two tokens minted in one second still differ
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(key: Any, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = KID, **headers: Any) -> str:
    hdrs = dict(headers)
    if kid is not None:
        hdrs["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=hdrs)


def make_settings(resource_url: str = "http://127.0.0.1:8000/mcp", **overrides: Any) -> Settings:
    return Settings(**{"issuer": ISSUER, "resource_url": resource_url, "jwks_url": JWKS_URL,
                       "introspection_url": INTROSPECTION_URL, "jwks_min_refresh_seconds": 30, **overrides})


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


@contextmanager
def running_server(fake: FakeAuthorizationServer, key_dir: Path | None, **overrides: Any) -> Iterator[RunningServer]:
    """The resource server on loopback, talking to `fake` for everything (JWKS, introspection).
    With `key_dir`, its client key is written there and configured (MCP_CLIENT_KEY_DIR)."""
    port = free_port()
    if key_dir is not None:
        overrides["client_key_dir"] = fake.write_client_key(key_dir)
    settings = make_settings(f"http://127.0.0.1:{port}/mcp", **overrides)
    verifier, _ = make_verifier(fake, settings)
    app = create_app(settings, http=fake.http(), verifier=verifier)
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in serve(app, port):
            yield RunningServer(f"http://127.0.0.1:{port}", settings.resource_url, fake, client)


def serve(app: Any, port: int) -> Iterator[None]:
    """Run an ASGI app under uvicorn on loopback in a thread (lifespan included)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = start_in_thread(server)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_in_thread(server: uvicorn.Server) -> threading.Thread:
    """Run a uvicorn server in a thread; return once it listens (an event set by its startup, or
    by its end should it fail to start), never by polling."""
    done = threading.Event()
    startup = server.startup

    async def signalling_startup(sockets: Any = None) -> None:
        try:
            await startup(sockets=sockets)
        finally:
            done.set()

    def run() -> None:
        try:
            server.run()
        finally:
            done.set()

    server.startup = signalling_startup  # type: ignore[method-assign]
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not done.wait(20) or not server.started:
        raise RuntimeError("test server did not start")
    return thread
