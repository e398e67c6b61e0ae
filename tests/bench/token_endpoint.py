"""The benchmark's stand-in authorization server: RFC 8414 metadata, the JWKS, and a token endpoint
answering RFC 8693 token exchanges, over real HTTP on loopback.

It is there so that the MCP server's notes tools run their production path (metadata lookup,
private_key_jwt assertion, the exchange request, the answer's checks, the cache) against something
that answers. It does only the checks that keep the benchmark honest — the MCP server's client
assertion verifies (RFC 7523 §3), the subject token verifies — and then signs a token for the
requested audience and scope. It is NOT a model of Keycloak's cost per exchange: what the benchmark
reports from it is the MCP server's own CPU, never this process's. Keycloak's rate is measured
against the sandbox with `--keycloak` (tool_call_throughput.py).

`/stats` counts the exchanges per requesting client, so the benchmark can check that the cached
variant really reused its token and the uncached one really exchanged on every call.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REALM_PATH = "/realms/mcp"
CERTS_PATH = f"{REALM_PATH}/protocol/openid-connect/certs"
TOKEN_PATH = f"{REALM_PATH}/protocol/openid-connect/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3 (a URN)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
LIFETIME = 300  # seconds, as Keycloak's default access-token lifespan


def create_app(*, origin: str, signing_pem: str, kid: str, clients: dict[str, dict[str, Any]]) -> Starlette:
    """`clients`: client id -> its public JWK with its `kid` (the MCP servers' own keys, private_key_jwt)."""
    issuer = origin + REALM_PATH
    # Loaded once: loading an RSA private key checks it, which costs more than signing with it.
    private_key = serialization.load_pem_private_key(signing_pem.encode(), password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    public_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key())),
                  "kid": kid, "use": "sig", "alg": "RS256"}
    signing_key = jwt.PyJWK(public_jwk)
    # kid -> the key and the clients registered with it (the benchmark's MCP servers share one key).
    client_keys: dict[str, tuple[jwt.PyJWK, set[str]]] = {}
    for cid, jwk in clients.items():
        client_keys.setdefault(jwk["kid"], (jwt.PyJWK(jwk), set()))[1].add(cid)
    exchanges: Counter[str] = Counter()

    async def metadata(_: Request) -> JSONResponse:
        return JSONResponse({"issuer": issuer, "jwks_uri": origin + CERTS_PATH, "token_endpoint": origin + TOKEN_PATH,
                             "grant_types_supported": [GRANT_TYPE]})

    async def certs(_: Request) -> JSONResponse:
        return JSONResponse({"keys": [public_jwk]})

    async def token(request: Request) -> JSONResponse:
        form = dict(await request.form())
        client = _authenticate(form, client_keys, issuer)
        if client is None:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != GRANT_TYPE or form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            subject = jwt.decode(str(form.get("subject_token", "")), signing_key, algorithms=["RS256"],
                                 audience=client, issuer=issuer)
        except jwt.PyJWTError:
            return JSONResponse({"error": "invalid_request", "error_description": "Invalid token"}, status_code=400)
        exchanges[client] += 1
        now = int(time.time())
        scope = str(form.get("scope", ""))
        issued = jwt.encode({"iss": issuer, "aud": form.get("audience"), "azp": client, "sub": subject["sub"],
                             "typ": "Bearer", "scope": scope, "iat": now, "exp": now + LIFETIME,
                             "jti": str(uuid.uuid4())}, private_key, algorithm="RS256", headers={"kid": kid})
        return JSONResponse({"access_token": issued, "token_type": "Bearer", "expires_in": LIFETIME,
                             "issued_token_type": ACCESS_TOKEN_TYPE, "scope": scope})

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse(dict(exchanges))

    return Starlette(routes=[
        Route(f"/.well-known/oauth-authorization-server{REALM_PATH}", metadata),
        Route(CERTS_PATH, certs),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route("/stats", stats),
    ])


def _authenticate(form: dict[str, Any], client_keys: dict[str, tuple[jwt.PyJWK, set[str]]], issuer: str) -> str | None:
    """The client id a private_key_jwt assertion proves (RFC 7523 §3: iss = sub = the client,
    aud = the issuer), or None."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        return None
    assertion = str(form.get("client_assertion", ""))
    try:
        registered = client_keys.get(jwt.get_unverified_header(assertion).get("kid", ""))
        if registered is None:
            return None
        key, registered_clients = registered
        claims = jwt.decode(assertion, key, algorithms=["ES256"], audience=issuer,
                            options={"require": ["iss", "sub", "aud", "exp", "jti"]})
    except jwt.PyJWTError:
        return None
    client = str(claims["sub"])
    return client if claims["iss"] == client and client in registered_clients else None
