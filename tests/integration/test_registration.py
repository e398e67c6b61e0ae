"""Anonymous DCR accepts what real clients send (MCP C16): the MCP Inspector's registration, with
its `client_uri` on GitHub, and the other informational URIs on any https host."""

from __future__ import annotations

import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import INSPECTOR, registered
from tests.support.keycloak import kcadm_json
from tests.support.stack import Stack


@pytest.mark.parametrize("redirect", [
    "http://localhost:6274/oauth/callback", "http://127.0.0.1:33418/callback", "http://[::1]:8976/callback",
    "https://localhost:6274/callback",
])
def test_loopback_redirects_register(stack: Stack, redirect: str):
    with registered(stack, {**INSPECTOR, "redirect_uris": [redirect]}) as response:
        assert response.status_code == 201, response.text
        assert response.json()["redirect_uris"] == [redirect]


def test_the_inspectors_registration_is_accepted_with_consent_required(stack: Stack, compose: DockerCompose):
    body = {**INSPECTOR, "logo_uri": "https://cdn.example.net/logo.png", "policy_uri": "https://example.org/privacy",
            "tos_uri": "https://example.org/terms"}
    with registered(stack, body) as response:
        assert response.status_code == 201, response.text
        client = response.json()
        assert client["client_uri"] == INSPECTOR["client_uri"]
        assert set(client["scope"].split()) == {"mcp:tools", "offline_access"}
        (stored,) = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client['client_id']}")
        assert stored["consentRequired"] is True
        assert stored["publicClient"] is True
        assert stored["directAccessGrantsEnabled"] is False
