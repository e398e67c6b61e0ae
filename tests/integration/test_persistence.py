"""Nothing is lost when every container is replaced (`make down && make up`): users, consents,
clients registered by DCR and created from CIMD documents, and refresh tokens — the old refresh
token still works afterwards. Runs in whichever topology is up (embedded database, or PostgreSQL
with two Keycloak nodes in TOPOLOGY=ha)."""

from __future__ import annotations

import subprocess
from urllib.parse import urlencode

import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import registered
from tests.support.keycloak import delete_clients, kcadm_json
from tests.support.login import BEARER_CLIENT, authorize, exchange
from tests.support.logs import archive
from tests.support.mcp import rpc
from tests.support.secrets import remember
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.restarts


def replace_every_container(compose: DockerCompose) -> None:
    """What `make down && make up` does: containers removed (volumes kept), created again, healthy."""
    archive(compose)  # the log audit still reads what the removed containers logged
    subprocess.run(["make", "down"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    subprocess.run([*compose.docker_compose_command(), "up", "--wait", "--wait-timeout", "300"], cwd=compose.context,
                   check=True, capture_output=True, timeout=600)


def test_users_consents_clients_and_refresh_tokens_survive_replacing_every_container(stack: Stack,
                                                                                     compose: DockerCompose):
    cimd_url = f"{stack.cimd_origin}/agents/demo/metadata.json"
    existed = {c["clientId"] for c in kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "clientId")}
    with stack.client(follow_redirects=False) as http:
        grant = authorize(http, stack, "alice", stack.secret("demo-user-password"))  # consents to mcp-bearer-client
        tokens = exchange(http, stack, grant)
        # Keycloak makes a client from the CIMD document at the first authorization request.
        page = http.get(f"{stack.issuer}/protocol/openid-connect/auth?" + urlencode({
            "client_id": cimd_url, "redirect_uri": stack.callback_url, "response_type": "code", "scope": "mcp:tools",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeKt8zGZvRjpCBaaYd4o", "code_challenge_method": "S256"}))
        assert page.status_code == 200, page.text[:300]
    body = {"redirect_uris": ["http://127.0.0.1:9/callback"], "token_endpoint_auth_method": "none",
            "client_name": "persistence test", "grant_types": ["authorization_code"], "response_types": ["code"]}
    with registered(stack, body) as registration:
        assert registration.status_code == 201, registration.text
        dcr_client = registration.json()["client_id"]
        (alice,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", "username=alice", "-q", "exact=true")

        replace_every_container(compose)

        with stack.client() as http:
            refreshed = http.post(stack.token_endpoint(), data={
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": BEARER_CLIENT})
        assert refreshed.status_code == 200, refreshed.text
        remember(refreshed.json()["access_token"], refreshed.json().get("refresh_token"))
        assert rpc(stack, f"Bearer {refreshed.json()['access_token']}").status_code == 200
        (still_alice,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", "username=alice", "-q", "exact=true")
        assert still_alice["id"] == alice["id"]
        consents = kcadm_json(compose, stack, "get", f"users/{alice['id']}/consents", "-r", "mcp")
        assert BEARER_CLIENT in {c["clientId"] for c in consents}
        found = {c["clientId"] for c in kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "clientId")}
        if cimd_url not in existed:
            delete_clients(compose, stack, cimd_url)
        assert dcr_client in found
        assert cimd_url in found
