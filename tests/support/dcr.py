"""Anonymous dynamic client registration (RFC 7591) against the real Keycloak, and the body the
MCP Inspector sends (its default mode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx2

from tests.support.stack import Stack

# What the MCP Inspector 2.x registers with, as it sends it.
INSPECTOR = {
    "redirect_uris": ["http://localhost:6274/oauth/callback"],
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "client_name": "MCP Inspector",
    "client_uri": "https://github.com/modelcontextprotocol/inspector",
    "scope": "mcp:tools offline_access",
    "application_type": "native",
}


@contextmanager
def registered(stack: Stack, body: dict) -> Iterator[httpx2.Response]:
    """POST the registration; whatever was created is deleted afterwards (RFC 7592)."""
    with stack.client() as http:
        response = http.post(f"{stack.issuer}/clients-registrations/openid-connect", json=body)
        try:
            yield response
        finally:
            if response.status_code == 201:
                client = response.json()
                http.delete(client["registration_client_uri"],
                            headers={"authorization": f"Bearer {client['registration_access_token']}"})
