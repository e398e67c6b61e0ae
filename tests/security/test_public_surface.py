"""What Keycloak shows the network: only the served realms, no password grant anywhere,
brute-force detection everywhere, no admin console, the port on loopback only."""

from __future__ import annotations

import secrets
import subprocess

import pytest
from testcontainers.compose import DockerCompose

from tests.support.keycloak import kcadm, kcadm_json
from tests.support.login import form_action
from tests.support.stack import Stack

pytestmark = pytest.mark.blackbox

REALMS = ("master", "mcp", "other")

MASTER_PATHS = [
    "/realms/master/protocol/openid-connect/auth?client_id=security-admin-console&response_type=code",
    "/realms/master/account/",
    "/realms/master/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server/realms/master",
    "/.well-known/openid-configuration/realms/master",
    "/admin/master/console/",
    "/admin/realms/mcp",
    "/realms/unknown-realm/.well-known/openid-configuration",
]


@pytest.mark.parametrize("path", MASTER_PATHS)
def test_the_master_realm_and_admin_paths_are_not_routed(stack: Stack, path: str):
    with stack.client() as http:
        response = http.get(stack.auth_origin + path)
    assert response.status_code == 404
    assert response.text == "Not found"  # Caddy's answer: the request never reached Keycloak


def test_the_master_token_endpoint_is_not_routed(stack: Stack):
    with stack.client() as http:
        response = http.post(f"{stack.auth_origin}/realms/master/protocol/openid-connect/token",
                             data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                                   "password": stack.secret("keycloak-admin-password")})
    assert response.status_code == 404


def exec_in(compose: DockerCompose, service: str, *command: str) -> subprocess.CompletedProcess:
    """Like compose.exec_in_container, for commands expected to fail (no exception, no log)."""
    return subprocess.run([*compose.docker_compose_command(), "exec", "-T", service, *command],
                          cwd=compose.context, capture_output=True, text=True)


def test_the_admin_console_is_built_out_of_keycloak_itself(compose: DockerCompose):
    """Not only unrouted: Keycloak answers 404 even to a request from inside its network."""
    result = exec_in(compose, "caddy", "wget", "-S", "-q", "-O", "/dev/null", "http://keycloak:8080/admin/master/console/")
    assert result.returncode != 0
    assert "404 Not Found" in result.stderr


def test_the_admin_password_grant_is_refused_in_master(stack: Stack, compose: DockerCompose):
    """Even with the right admin password, from inside the container (kcadm uses admin-cli's
    password grant): the realm-wide client policy refuses it. The password goes to kcadm in its
    environment (KC_CLI_PASSWORD), read from the container's compose secret: on no command line."""
    login = ('KC_CLI_PASSWORD="$(tr -d \'\\n\' < /run/secrets/keycloak_admin_password)" exec /opt/keycloak/bin/kcadm.sh '
             "config credentials --config /tmp/attack.config --server http://localhost:8080 --realm master --user admin")
    result = exec_in(compose, "keycloak", "bash", "-c", login)
    assert result.returncode != 0
    assert "resource owner password credentials grant is prohibited" in result.stdout + result.stderr


@pytest.mark.parametrize("realm", REALMS)
def test_every_realm_rejects_the_password_grant_by_policy(stack: Stack, compose: DockerCompose, realm: str):
    policies = kcadm_json(compose, stack, "get", "client-policies/policies", "-r", realm)["policies"]
    policy = next(p for p in policies if p["name"] == "no-password-grant")
    assert policy["enabled"] is True
    assert [c["condition"] for c in policy["conditions"]] == ["any-client"]
    profiles = kcadm_json(compose, stack, "get", "client-policies/profiles", "-r", realm)["profiles"]
    profile = next(p for p in profiles if p["name"] == "no-password-grant")
    assert [e["executor"] for e in profile["executors"]] == ["reject-ropc-grant"]


def test_a_client_cannot_register_for_the_password_grant(stack: Stack):
    """A malicious DCR client asks for the password grant: refused at registration with the reason
    (the edge's registration guard; Keycloak's anonymous-clients policy would refuse it too), so no
    client exists that could use it (docs/authorization.md)."""
    with stack.client() as http:
        registered = http.post(f"{stack.issuer}/clients-registrations/openid-connect", json={
            "client_name": "wants passwords", "redirect_uris": [stack.callback_url], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "password"], "application_type": "native"})
    assert registered.status_code == 400, registered.text
    assert registered.json()["error"] == "invalid_client_metadata"
    assert registered.json()["error_description"].startswith('grant type "password" is not allowed (removed by OAuth 2.1)')


def test_an_admin_created_client_with_direct_grants_is_reconfigured_by_the_policy(stack: Stack,
                                                                                 compose: DockerCompose):
    client_id = f"security-ropc-{secrets.token_hex(4)}"
    kcadm(compose, stack, "create", "clients", "-r", "mcp", "-s", f"clientId={client_id}", "-s", "publicClient=true",
          "-s", "directAccessGrantsEnabled=true")
    try:
        (created,) = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client_id}")
        assert created["directAccessGrantsEnabled"] is False
        with stack.client() as http:
            response = http.post(stack.token_endpoint(), data={
                "grant_type": "password", "client_id": client_id, "username": "alice",
                "password": stack.secret("demo-user-password")})
        assert response.status_code == 400
        assert response.json()["error"] == "unauthorized_client"
    finally:
        kcadm(compose, stack, "delete", f"clients/{created['id']}", "-r", "mcp")


@pytest.mark.parametrize("realm", REALMS)
def test_brute_force_detection_is_on_in_every_realm(stack: Stack, compose: DockerCompose, realm: str):
    settings = kcadm_json(compose, stack, "get", f"realms/{realm}")
    assert settings["bruteForceProtected"] is True
    assert settings["failureFactor"] <= 10


def test_repeated_wrong_passwords_lock_the_account(stack: Stack, compose: DockerCompose):
    """Password guessing through the login form: within 10 failures the account is locked (fast
    guessing trips the quick-login check at once), and the right password no longer works."""
    username = f"victim-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    kcadm(compose, stack, "create", "users", "-r", "mcp", "-s", f"username={username}", "-s", "enabled=true",
          "-s", f"email={username}@example.com", "-s", "emailVerified=true", "-s", "firstName=V", "-s", "lastName=V")
    try:
        kcadm(compose, stack, "set-password", "-r", "mcp", "--username", username, "--new-password", password)
        (user,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", f"username={username}", "-q", "exact=true")

        def attempt(guess: str):
            with stack.client(follow_redirects=False) as http:
                page = http.get(f"{stack.issuer}/protocol/openid-connect/auth?client_id=mcp-agent&response_type=code"
                                f"&redirect_uri={stack.callback_url}&scope=openid&code_challenge={'a' * 43}"
                                "&code_challenge_method=S256&state=s")
                return http.post(form_action(page), data={"username": username, "password": guess})

        status_path = f"attack-detection/brute-force/users/{user['id']}"
        for guesses in range(1, 11):  # noqa: B007  (read after the loop: how many it took)
            assert attempt("wrong-" + secrets.token_hex(4)).status_code == 200  # the form again, with an error
            status = kcadm_json(compose, stack, "get", status_path, "-r", "mcp")
            if status["disabled"]:
                break
        assert status["disabled"] is True
        assert status["numFailures"] == guesses
        locked = attempt(password)
        assert locked.status_code == 200  # no redirect with a code: still the login page
        assert "location" not in locked.headers
    finally:
        kcadm(compose, stack, "delete", f"users/{user['id']}", "-r", "mcp")


@pytest.mark.parametrize("realm", ["mcp", "other"])
def test_built_in_clients_are_least_privilege(stack: Stack, compose: DockerCompose, realm: str):
    """docs/security.md#built-in-clients records the review."""
    clients = {c["clientId"]: c for c in kcadm_json(compose, stack, "get", "clients", "-r", realm)}
    assert clients["admin-cli"]["enabled"] is False
    assert clients["security-admin-console"]["enabled"] is False
    for name in ("broker", "realm-management"):
        assert not clients[name]["standardFlowEnabled"] or clients[name]["bearerOnly"], name
        assert not clients[name]["directAccessGrantsEnabled"], name
    account_console = clients["account-console"]
    assert account_console["publicClient"] is True
    assert account_console["attributes"]["pkce.code.challenge.method"] == "S256"
    assert not any(c["directAccessGrantsEnabled"] for c in clients.values() if c["enabled"])
    assert not any(c.get("implicitFlowEnabled") for c in clients.values())


def test_admin_cli_of_the_served_realm_issues_nothing(stack: Stack):
    with stack.client() as http:
        response = http.post(stack.token_endpoint(), data={
            "grant_type": "password", "client_id": "admin-cli", "username": "alice",
            "password": stack.secret("demo-user-password")})
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_the_https_port_is_published_on_loopback_only(stack: Stack, compose: DockerCompose):
    """A LAN neighbour cannot reach the sandbox unless HTTPS_BIND says so (docs/security.md)."""
    out = subprocess.run([*compose.docker_compose_command(), "port", "caddy", stack.env["HTTPS_PORT"]],
                         cwd=compose.context, capture_output=True, text=True, check=True).stdout.strip()
    assert stack.env["HTTPS_BIND"] == "127.0.0.1"
    assert out == f"127.0.0.1:{stack.env['HTTPS_PORT']}"
