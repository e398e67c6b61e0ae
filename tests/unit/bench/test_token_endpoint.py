"""The benchmark's stand-in token endpoint (tests/bench/token_endpoint.py): the MCP server's own
exchange code (exchange.py) gets a token from it for the API, and the stand-in refuses what the
benchmark must never measure by accident — an unknown client key, another grant, a subject token
that is not for the requesting client — and counts what it answered."""

from __future__ import annotations

import json
import time

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp.server.auth.provider import AccessToken

from mcp_server.client_auth import PrivateKeyJWT
from mcp_server.discovery import AuthorizationServerMetadata
from mcp_server.exchange import Refused, TokenExchange, Unavailable
from tests.bench.token_endpoint import CERTS_PATH, REALM_PATH, TOKEN_PATH, create_app

ORIGIN = "http://127.0.0.1:9"
ISSUER = ORIGIN + REALM_PATH
MCP = "http://127.0.0.1:8000/mcp"  # the requesting client: an MCP server's resource URL
API = "http://127.0.0.1:8001"
KID = "signing"
CLIENT_KID = "mcp-key"


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


SIGNING = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLIENT = ec.generate_private_key(ec.SECP256R1())


def http(registered: ec.EllipticCurvePrivateKey = CLIENT) -> httpx2.AsyncClient:
    jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(registered.public_key())), "kid": CLIENT_KID}
    app = create_app(origin=ORIGIN, signing_pem=pem(SIGNING), kid=KID, clients={MCP: jwk})
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ORIGIN)


def subject(aud: str = MCP) -> AccessToken:
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": aud, "sub": "bench", "exp": now + 300}, pem(SIGNING),
                       algorithm="RS256", headers={"kid": KID})
    return AccessToken(token=token, client_id="agent", scopes=["mcp:tools"], expires_at=now + 300)


def exchange(client: httpx2.AsyncClient) -> TokenExchange:
    own = PrivateKeyJWT(client_id=MCP, audience=ISSUER, key=(CLIENT_KID, pem(CLIENT)))
    return TokenExchange(client, client=own, metadata=AuthorizationServerMetadata(client, ISSUER), endpoint=None,
                         timeout=3.0)


@pytest.mark.anyio
async def test_the_mcp_servers_exchange_gets_a_token_for_the_api_and_is_counted():
    async with http() as client:
        token = await exchange(client).token_for(subject(), audience=API, scope="notes:read")
        jwks = (await client.get(CERTS_PATH)).json()
        stats = (await client.get("/stats")).json()
    claims = jwt.decode(token, jwt.PyJWK(jwks["keys"][0]), algorithms=["RS256"], audience=API, issuer=ISSUER)
    assert (claims["sub"], claims["azp"], claims["scope"]) == ("bench", MCP, "notes:read")
    assert stats == {MCP: 1}


@pytest.mark.anyio
async def test_a_client_key_it_does_not_know_is_refused():
    async with http(registered=ec.generate_private_key(ec.SECP256R1())) as client:
        with pytest.raises(Unavailable, match="401 invalid_client"):
            await exchange(client).token_for(subject(), audience=API, scope="notes:read")
        assert (await client.get("/stats")).json() == {}


@pytest.mark.anyio
async def test_a_subject_token_for_another_audience_is_refused():
    async with http() as client:
        with pytest.raises(Refused, match="invalid_request: Invalid token"):
            await exchange(client).token_for(subject(aud=API), audience=API, scope="notes:read")


@pytest.mark.anyio
async def test_another_grant_is_refused():
    async with http() as client:
        form = PrivateKeyJWT(client_id=MCP, audience=ISSUER, key=(CLIENT_KID, pem(CLIENT))).form_fields()
        response = await client.post(TOKEN_PATH, data={"grant_type": "client_credentials", **form})
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}
