"""Every service is healthy and reachable over HTTPS with a certificate from the local CA,
from the host and from inside a container (same URLs everywhere)."""

from __future__ import annotations

import json
import ssl
import subprocess

import httpx2
import pytest
from testcontainers.compose import DockerCompose

from tests.support.keycloak import services
from tests.support.stack import Stack


def test_every_service_is_healthy(compose: DockerCompose):
    expected = services(compose)
    assert {"keycloak", "caddy", "cimd-host", "mcp-server", "egress", "api"} <= set(expected)
    result = subprocess.run(
        [*compose.docker_compose_command(), "ps", "--format", "json"],
        cwd=compose.context,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    health = {row["Service"]: row.get("Health") for row in rows}
    for service in expected:
        assert health.get(service) == "healthy", health


def public_urls(stack: Stack) -> list[str]:
    return [
        f"{stack.issuer}/.well-known/openid-configuration",
        f"{stack.mcp_origin}/.well-known/oauth-protected-resource/mcp",
        f"{stack.cimd_origin}/agents/demo/metadata.json",
        # The notes API, where the deployment has one (the sandbox does).
        *([f"{stack.env['API_URL']}/.well-known/oauth-protected-resource"] if "API_URL" in stack.env else []),
    ]


def test_https_from_the_host_validates_against_the_local_ca(stack: Stack):
    with stack.client() as client:
        for url in public_urls(stack):
            assert client.get(url).status_code == 200, url


def test_the_system_trust_store_alone_does_not_trust_the_sandbox(stack: Stack):
    """The certificates chain to this checkout's CA, not to anything a default client trusts."""
    from mcp_agent.localhost import sync_transport

    with httpx2.Client(transport=sync_transport(ssl.create_default_context())) as client:
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(public_urls(stack)[0])


CONTAINER_CHECK = """
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="/run/secrets/sandbox_ca")
for url in sys.argv[1:]:
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        assert r.status == 200, url
print("ok")
"""


def test_https_from_inside_a_container_uses_the_same_urls(stack: Stack, compose: DockerCompose):
    stdout, stderr, code = compose.exec_in_container(
        ["python", "-c", CONTAINER_CHECK, *public_urls(stack)], service_name="mcp-server"
    )
    assert code == 0, stderr
    assert stdout.strip() == "ok"


def test_keycloak_admin_console_and_management_port_are_not_public(stack: Stack):
    with stack.client() as client:
        assert client.get(f"{stack.auth_origin}/admin/").status_code == 404
        assert client.get(f"{stack.auth_origin}/health/ready").status_code == 404
        assert client.get(f"{stack.auth_origin}/metrics").status_code == 404


def test_cimd_host_serves_json_with_cache_lifetime_and_no_redirect(stack: Stack):
    with stack.client() as client:
        response = client.get(f"{stack.cimd_origin}/agents/demo/metadata.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "max-age=300" in response.headers["cache-control"]
    assert len(response.content) < 5000
    assert response.json()["client_id"] == f"{stack.cimd_origin}/agents/demo/metadata.json"


def test_every_name_on_the_https_port_sends_one_hsts_header(stack: Stack):
    """Caddy sets Strict-Transport-Security for every site (services/caddy/Caddyfile), replacing
    the one Keycloak sends on its pages rather than doubling it (tests/unit/test_caddyfile.py
    reads the same from the file)."""
    with stack.client() as client:
        responses = [client.get(url) for url in public_urls(stack)]
        responses.append(client.get(f"{stack.issuer}/protocol/openid-connect/auth"))  # a Keycloak page
        responses.append(client.get(f"{stack.mcp_origin}/", headers={"host": "elsewhere.localhost"}))  # 421
    assert responses[-1].status_code == 421
    for response in responses:
        assert response.headers.get_list("strict-transport-security") == [
            "max-age=31536000; includeSubDomains"], response.url
