"""Keycloak's authorization server metadata, in every form MCP clients try (AS2-AS4, AS10, C5-C7)."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.blackbox


def test_rfc8414_metadata_with_path_insertion(stack: Stack):
    with stack.client() as client:
        metadata = client.get(f"{stack.auth_origin}/.well-known/oauth-authorization-server/realms/mcp").json()
    # Exactly the issuer every party uses (C7); with the default port: https://auth.localhost/realms/mcp.
    assert metadata["issuer"] == stack.issuer
    if stack.env.get("HTTPS_PORT") == "443":  # the sandbox on its default port
        assert metadata["issuer"] == "https://auth.localhost/realms/mcp"
    assert metadata["client_id_metadata_document_supported"] is True  # AS4
    assert "S256" in metadata["code_challenge_methods_supported"]  # AS3
    assert metadata["authorization_response_iss_parameter_supported"] is True  # AS10
    assert metadata["token_endpoint"].startswith(stack.issuer + "/")


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/openid-configuration/realms/mcp",  # OIDC path insertion (Caddy maps it, keycloak#45271)
        "/realms/mcp/.well-known/openid-configuration",  # OIDC path appending
        "/realms/mcp/.well-known/oauth-authorization-server",
    ],
)
def test_oidc_discovery_forms_answer_with_the_same_issuer(stack: Stack, path: str):
    with stack.client() as client:
        response = client.get(stack.auth_origin + path)
    assert response.status_code == 200
    assert response.json()["issuer"] == stack.issuer
