"""A malicious DCR client: anonymous registration keeps redirect URIs on loopback (RFC 8252),
exact, with no wildcard or fragment, and scopes within the allowed set (client policy
`anonymous-dcr` and the "Allowed Client Scopes" registration policy, realm mcp)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import INSPECTOR, registered
from tests.support.keycloak import events, kcadm_json
from tests.support.stack import Stack

BAD_REDIRECTS = {
    "redirect_to_a_non_loopback_http_host": ["http://evil.example/callback"],
    "redirect_to_a_non_loopback_https_host": ["https://evil.example/callback"],
    "wildcard_redirect_path": ["http://localhost:6274/*"],
    "wildcard_redirect": ["*"],
    "redirect_with_a_fragment": ["http://localhost:6274/callback#steal"],
    "private_use_scheme_redirect": ["com.example.app:/callback"],
    "one_good_and_one_bad_redirect": ["http://localhost:6274/callback", "https://evil.example/callback"],
}


@pytest.mark.parametrize("attack", BAD_REDIRECTS)
def test_registration_with_a_redirect_off_loopback_is_refused(attack: str, stack: Stack, compose: DockerCompose):
    def client_names() -> list[str]:
        return [c.get("name") for c in kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "name")]

    since = datetime.now(UTC)
    with registered(stack, {**INSPECTOR, "client_name": attack, "redirect_uris": BAD_REDIRECTS[attack]}) as response:
        assert response.status_code == 403, response.text
        assert attack not in client_names()  # nothing was created (checked before any cleanup)
    refusals = [e for e in events(compose, since) if e.get("type") == "CLIENT_REGISTER_ERROR"]
    assert refusals, "Keycloak logged no registration error"
    assert all(e["client_policy_error_detail"].startswith("Invalid Redirect Uri") for e in refusals), refusals


def test_registration_with_an_evil_post_logout_redirect_is_refused(stack: Stack, compose: DockerCompose):
    since = datetime.now(UTC)
    with registered(stack, {**INSPECTOR, "post_logout_redirect_uris": ["https://evil.example/"]}) as response:
        assert response.status_code == 403, response.text
    details = [e.get("client_policy_error_detail", "") for e in events(compose, since)]
    assert any(d.startswith("Invalid Redirect Uri") for d in details), details


def test_registration_asking_for_an_unknown_scope_is_refused(stack: Stack):
    with registered(stack, {**INSPECTOR, "scope": "mcp:tools evil:scope"}) as response:
        assert response.status_code == 403
        assert "Allowed Client Scopes" in response.json()["error_description"]
