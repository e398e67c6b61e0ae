"""The pre-registered machine client: client credentials with a private_key_jwt assertion
(RFC 7523), its JWKS fetched by Keycloak from the CIMD host over HTTPS (local CA). It requires
DPoP (docs/decisions.md, "Which clients must use DPoP"), so each token request carries a proof."""

from __future__ import annotations

import uuid

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cimd_host.keys import current_key
from mcp_agent.assertion import form_fields
from mcp_agent.dpop import DPoPKey
from tests.support.keys import restored_afterwards
from tests.support.stack import Stack
from tests.support.tokens import DEMO_MACHINE_CLIENT_ID as CLIENT_ID
from tests.support.tokens import request_token as any_token_request


def proof(stack: Stack) -> dict[str, str]:
    """A fresh DPoP proof for the token endpoint (RFC 9449 §4), from a new key."""
    return {"DPoP": DPoPKey(ec.generate_private_key(ec.SECP256R1())).proof("POST", stack.token_endpoint())}


def request_token(stack: Stack, **kwargs) -> httpx2.Response:
    return any_token_request(stack, client_id=CLIENT_ID, headers=proof(stack), **kwargs)


@pytest.mark.blackbox
def test_machine_client_gets_an_audience_bound_token(stack: Stack):
    response = request_token(stack)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert stack.resource_url in aud
    assert claims["iss"] == stack.issuer
    assert claims["azp"] == CLIENT_ID
    assert "mcp:tools" in claims["scope"].split()
    assert claims["exp"] - claims["iat"] == 300  # AS11: short-lived access tokens


@pytest.mark.blackbox
def test_a_token_requested_with_no_scope_is_usable_for_the_base_tools(stack: Stack):
    """Clients that send only `resource` (the TypeScript SDK's machine provider) still get this
    server's audience: mcp:tools is a default scope of the machine client."""
    response = request_token(stack, scope=None)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert stack.resource_url in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert "mcp:tools" in claims["scope"].split()
    assert "mcp:admin" not in claims["scope"].split()  # privileged scopes stay opt-in


@pytest.mark.blackbox
def test_keycloak_refuses_an_assertion_signed_with_a_key_not_in_the_jwks(stack: Stack):
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    current_kid, _ = current_key(stack.key_dir("machine"))
    for kid in (current_kid, "not-published"):
        response = request_token(stack, key_id=kid, pem=stranger)
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_client", "unauthorized_client")
        assert "access_token" not in response.json()


def test_key_rotation_is_picked_up_by_keycloak(stack: Stack):
    """`make rotate-keys`: a new key signs, the old one stays published; Keycloak fetches the
    new JWKS when it meets the new kid (at most every 10 s, so poll rather than sleep)."""
    import subprocess
    import sys
    import time

    from tests.support.stack import ROOT

    with restored_afterwards("machine"):  # the developer's sandbox keeps its key
        old_kid, old_pem = current_key(stack.key_dir("machine"))
        subprocess.run([sys.executable, "-m", "cimd_host", "--state", str(ROOT / ".local"), "rotate", "--agent",
                        "machine", "--origin", stack.cimd_origin, "--callback-port", str(stack.callback_port)],
                       check=True, capture_output=True)
        new_kid, _ = current_key(stack.key_dir("machine"))
        assert new_kid != old_kid
        deadline = time.monotonic() + 30
        while (response := request_token(stack)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(1)
        assert response.status_code == 200, response.text
        # Assertions signed with the previous key still verify during the overlap.
        assert request_token(stack, key_id=old_kid, pem=old_pem).status_code == 200
        # A client that signs without `kid` (the TypeScript SDK's PrivateKeyJwtProvider) is
        # checked against the first key of the JWKS, which is the current one.
        _, current_pem = current_key(stack.key_dir("machine"))
        now = int(time.time())
        without_kid = jwt.encode({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": stack.token_endpoint(), "jti": str(uuid.uuid4()),
                                  "iat": now, "exp": now + 60}, current_pem, algorithm="ES256", headers={"typ": "JWT"})
        assert "kid" not in jwt.get_unverified_header(without_kid)
        with stack.client() as http:
            response = http.post(stack.token_endpoint(), data={"grant_type": "client_credentials", "scope": "mcp:tools",
                                                                 **form_fields(without_kid)}, headers=proof(stack))
        assert response.status_code == 200, response.text
