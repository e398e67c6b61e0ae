"""Realm changes reach a running Keycloak without wiping its data (realm-sync, run by `make up`):
a changed client scope and a changed registration policy take effect, on every Keycloak node,
while the users, their consents and refresh tokens, and the clients already there stay as they were.
Roles, their composites, the role scope mappings gating the MCP scopes and the roles declared for
users come from the files too; but a user, once seeded, is the operators': one they disabled,
deleted or gave a new password stays so. Runs in whichever topology is up (in TOPOLOGY=ha the
change is written through one node and must show on both)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import registered
from tests.support.keycloak import kcadm, kcadm_json
from tests.support.login import BEARER_CLIENT, authorize, exchange
from tests.support.secrets import remember
from tests.support.stack import ROOT, Stack
from tests.support.tokens import CLIENT_ID, request_token

REALM_DIR = ROOT / "services" / "keycloak" / "realm"
PROBE = "realm_sync_probe"
DCR = {"redirect_uris": ["http://127.0.0.1:9/callback"], "token_endpoint_auth_method": "none",
       "client_name": "realm-sync test", "grant_types": ["authorization_code"], "response_types": ["code"],
       "scope": "mcp:tools"}


def realm_sync(compose: DockerCompose, realm_dir: Path | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker compose run --rm realm-sync`, as make up runs it; `realm_dir` replaces the realm
    files baked into its image (the checkout's)."""
    mount = ["-v", f"{realm_dir}:/changed:ro"] if realm_dir else []
    command = [*compose.docker_compose_command(), "--profile", "realm-sync", "run", "--rm", "--build", "--no-deps",
               *mount, "realm-sync", *args, *(["/changed"] if realm_dir else [])]
    return subprocess.run(command, cwd=compose.context, capture_output=True, text=True, timeout=600)


def rendered_realm_files(directory: Path) -> Path:
    """The checkout's realm files as realm-sync's image holds them: the sandbox profile, rendered
    by realm/profile.py (the shared files plus realm/sandbox/)."""
    directory.mkdir()
    subprocess.run([sys.executable, str(REALM_DIR / "profile.py"), "--profile", "sandbox", str(REALM_DIR), str(directory)],
                   check=True, capture_output=True, text=True)
    directory.chmod(0o755)  # the container's user is not root
    for path in directory.glob("*.json"):
        path.chmod(0o644)
    return directory


def read_realm(directory: Path, name: str = "mcp-realm.json") -> dict[str, Any]:
    return json.loads((directory / name).read_text())


def write_realm(directory: Path, realm: dict[str, Any], name: str = "mcp-realm.json") -> None:
    (directory / name).write_text(json.dumps(realm, indent=2))


def changed_realm_files(directory: Path, probe_value: str) -> Path:
    """The checkout's realm files with two edits a maintainer might make: a claim added to the
    mcp:tools scope, and anonymous DCR closed (its Max Clients policy down to 1, fewer than the
    realm already has)."""
    rendered_realm_files(directory)
    path = directory / "mcp-realm.json"
    realm = json.loads(path.read_text())
    (tools,) = [scope for scope in realm["clientScopes"] if scope["name"] == "mcp:tools"]
    tools["protocolMappers"].append({
        "name": "realm-sync-probe", "protocol": "openid-connect", "protocolMapper": "oidc-hardcoded-claim-mapper",
        "consentRequired": False, "config": {"claim.name": PROBE, "claim.value": probe_value, "jsonType.label": "String",
                                             "access.token.claim": "true", "id.token.claim": "false",
                                             "introspection.token.claim": "true"}})
    policies = realm["components"]["org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy"]
    (limit,) = [p for p in policies if p["name"] == "Max Clients Limit" and p["subType"] == "anonymous"]
    limit["config"]["max-clients"] = ["1"]
    path.write_text(json.dumps(realm, indent=2))
    return directory


def probes(stack: Stack, times: int = 4) -> set[str | None]:
    """The probe claim of new machine tokens; several, so that in TOPOLOGY=ha both nodes answer."""
    found = set()
    for _ in range(times):
        response = request_token(stack)
        assert response.status_code == 200, response.text
        found.add(jwt.decode(response.json()["access_token"], options={"verify_signature": False}).get(PROBE))
    return found


def dcr_status(stack: Stack) -> int:
    with registered(stack, DCR) as registration:
        return registration.status_code


def test_the_running_realm_already_says_what_the_checkouts_files_say(compose: DockerCompose):
    """Keycloak's first import and realm-sync agree, and a run after make up's finds nothing to
    do: idempotent (--check writes nothing and exits 1 if it would)."""
    run = realm_sync(compose, None, "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "realm-sync: mcp: up to date" in run.stdout
    assert "would change" not in run.stdout


def test_a_changed_scope_and_policy_take_effect_with_users_and_clients_intact(stack: Stack, compose: DockerCompose,
                                                                              tmp_path: Path):
    # What the realm holds before the change: a user with a consent and a refresh token, a
    # client registered by DCR, the pre-registered machine client.
    with stack.client(follow_redirects=False) as http:
        tokens = exchange(http, stack, authorize(http, stack, "alice", stack.secret("demo-user-password")))
    (alice,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", "username=alice", "-q", "exact=true")
    (machine,) = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={CLIENT_ID}")
    assert probes(stack) == {None}
    assert dcr_status(stack) == 201

    value = uuid.uuid4().hex
    changed = changed_realm_files(tmp_path / "realm", value)
    with registered(stack, DCR) as registration:
        assert registration.status_code == 201, registration.text
        dcr_client = registration.json()["client_id"]
        try:
            run = realm_sync(compose, changed)
            assert run.returncode == 0, run.stdout + run.stderr
            assert "client scope mcp:tools: protocol mapper realm-sync-probe added" in run.stdout
            assert "ClientRegistrationPolicy 'Max Clients Limit' (anonymous) updated" in run.stdout
            again = realm_sync(compose, changed)
            assert "realm-sync: mcp: up to date" in again.stdout, again.stdout + again.stderr

            # The change took effect, on every node. (The DCR client made before stays.)
            assert probes(stack) == {value}
            assert dcr_status(stack) == 403

            # ... and nothing else moved: the old refresh token works (and its new access token
            # carries the new claim), alice, her consent, the DCR and the machine client are the same.
            with stack.client() as http:
                refreshed = http.post(stack.token_endpoint(), data={
                    "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": BEARER_CLIENT})
            assert refreshed.status_code == 200, refreshed.text
            remember(refreshed.json()["access_token"], refreshed.json().get("refresh_token"))
            claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
            assert claims[PROBE] == value
            assert claims["sub"] == alice["id"]
            (still_alice,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", "username=alice",
                                        "-q", "exact=true")
            assert still_alice == alice
            consents = kcadm_json(compose, stack, "get", f"users/{alice['id']}/consents", "-r", "mcp")
            assert BEARER_CLIENT in {c["clientId"] for c in consents}
            assert kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={dcr_client}")
            (still_machine,) = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={CLIENT_ID}")
            assert still_machine["id"] == machine["id"]
        finally:
            # The checkout's files again (the image's): the mapper goes, DCR opens again.
            restored = realm_sync(compose)
            assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "protocol mapper realm-sync-probe removed" in restored.stdout
    assert probes(stack) == {None}
    assert dcr_status(stack) == 201


@pytest.mark.parametrize("edit", ["unsupported part", "unset placeholder"])
def test_a_file_it_cannot_apply_changes_nothing_and_says_why(compose: DockerCompose, tmp_path: Path, edit: str):
    changed = changed_realm_files(tmp_path / "realm", "never-applied")
    path = changed / "mcp-realm.json"
    realm = json.loads(path.read_text())
    if edit == "unsupported part":
        realm["groups"] = [{"name": "operators"}]
    else:
        realm["clients"][0]["description"] = "${NOT_SET_ANYWHERE}"
    path.write_text(json.dumps(realm))
    run = realm_sync(compose, changed)
    assert run.returncode == 2
    assert ("does not apply groups" if edit == "unsupported part" else "${NOT_SET_ANYWHERE} is not set") in run.stderr
    assert "Traceback" not in run.stderr
    check = realm_sync(compose, None, "--check")
    assert "realm-sync: mcp: up to date" in check.stdout, check.stdout + check.stderr


# Roles, role scope mappings and users' roles come from the files; seeded users are the operators'

PROBE_ROLE = "realm-sync-probe"
# A user no other test signs in as: nora, who holds no MCP role.
OPERATED = "nora"


def user(compose: DockerCompose, stack: Stack, username: str) -> dict | None:
    found = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", f"username={username}", "-q", "exact=true")
    return found[0] if found else None


def realm_role_names(compose: DockerCompose, stack: Stack, path: str) -> set[str]:
    return {role["name"] for role in kcadm_json(compose, stack, "get", path, "-r", "mcp")}


def scope_id(compose: DockerCompose, stack: Stack, name: str) -> str:
    (scope,) = [s for s in kcadm_json(compose, stack, "get", "client-scopes", "-r", "mcp") if s["name"] == name]
    return scope["id"]


def assert_up_to_date(compose: DockerCompose) -> None:
    check = realm_sync(compose, None, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "realm-sync: mcp: up to date" in check.stdout, check.stdout + check.stderr


def restore_operated_user(compose: DockerCompose, stack: Stack) -> None:
    """nora as the sandbox seeded her: enabled, her sandbox password, no consent; recreated (with
    the file's fields) if a test deleted her. realm-sync would not do it: she is in its record."""
    (declared,) = [u for u in json.loads((REALM_DIR / "sandbox" / "mcp-realm.json").read_text())["users"]
                   if u["username"] == OPERATED]
    found = user(compose, stack, OPERATED)
    if found is None:
        fields = [f"{key}={json.dumps(declared[key]) if isinstance(declared[key], bool) else declared[key]}"
                  for key in ("enabled", "email", "emailVerified", "firstName", "lastName") if key in declared]
        kcadm(compose, stack, "create", "users", "-r", "mcp", "-s", f"username={OPERATED}",
              *[arg for field in fields for arg in ("-s", field)])
        found = user(compose, stack, OPERATED)
        assert found is not None
    elif not found["enabled"]:
        kcadm(compose, stack, "update", f"users/{found['id']}", "-r", "mcp", "-s", "enabled=true")
    kcadm(compose, stack, "set-password", "-r", "mcp", "--username", OPERATED,
          "--new-password", stack.secret("norole-user-password"))
    consents = kcadm_json(compose, stack, "get", f"users/{found['id']}/consents", "-r", "mcp")
    for consent in consents:
        kcadm(compose, stack, "delete", f"users/{found['id']}/consents/{consent['clientId']}", "-r", "mcp")
    # Only the default role, which Keycloak gives every new user (and nora's file entry declares).
    assert realm_role_names(compose, stack, f"users/{found['id']}/role-mappings/realm") >= {"default-roles-mcp"}


def test_roles_their_scope_mappings_and_users_roles_come_from_the_files(stack: Stack, compose: DockerCompose,
                                                                        tmp_path: Path):
    """A new role (a composite), a change to an existing role's composites, a role scope mapping,
    and a role declared for a seeded user: each applied once, the second run finds nothing."""
    changed = rendered_realm_files(tmp_path / "realm")
    realm = read_realm(changed)
    realm["roles"]["realm"].append({"name": PROBE_ROLE, "description": "realm-sync test: a role the file adds",
                                    "composite": True, "composites": {"realm": ["offline_access"]}})
    (default_role,) = [r for r in realm["roles"]["realm"] if r["name"] == "default-roles-mcp"]
    default_role["composites"]["realm"].remove("uma_authorization")  # unused by the MCP stack
    # The offline_access scope already needs offline_access, which every user holds: adding a role changes no token.
    (offline,) = [m for m in realm["scopeMappings"] if m["clientScope"] == "offline_access"]
    offline["roles"].append(PROBE_ROLE)
    (declared,) = [u for u in realm["users"] if u["username"] == OPERATED]
    declared["realmRoles"].append(PROBE_ROLE)
    write_realm(changed, realm)
    nora = user(compose, stack, OPERATED)
    assert nora is not None
    assert PROBE_ROLE not in realm_role_names(compose, stack, f"users/{nora['id']}/role-mappings/realm")
    try:
        run = realm_sync(compose, changed)
        assert run.returncode == 0, run.stdout + run.stderr
        for line in (f"realm role {PROBE_ROLE} created",
                     f"realm role {PROBE_ROLE}: composites offline_access added",
                     "realm role default-roles-mcp: composites uma_authorization removed",
                     f"client scope offline_access: realm roles {PROBE_ROLE} mapped",
                     f"user {OPERATED}: realm roles {PROBE_ROLE} granted"):
            assert line in run.stdout, run.stdout
        again = realm_sync(compose, changed)
        assert "realm-sync: mcp: up to date" in again.stdout, again.stdout + again.stderr

        assert realm_role_names(compose, stack, f"roles/{PROBE_ROLE}/composites") == {"offline_access"}
        assert "uma_authorization" not in realm_role_names(compose, stack, "roles/default-roles-mcp/composites/realm")
        offline_id = scope_id(compose, stack, "offline_access")
        assert PROBE_ROLE in realm_role_names(compose, stack, f"client-scopes/{offline_id}/scope-mappings/realm")
        assert PROBE_ROLE in realm_role_names(compose, stack, f"users/{nora['id']}/role-mappings/realm")
        # The gates of the MCP scopes are still what the shared file says.
        for scope, role in (("mcp:tools", "mcp-user"), ("mcp:audit", "mcp-auditor"), ("mcp:admin", "mcp-admin")):
            gate = realm_role_names(compose, stack, f"client-scopes/{scope_id(compose, stack, scope)}/scope-mappings/realm")
            assert gate == {role}, scope
    finally:
        # The checkout's files again: composites and the mapping as they were; the role itself is
        # left in place (realm-sync deletes no role), and nora keeps it (it takes no role away).
        restored = realm_sync(compose)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        if PROBE_ROLE in realm_role_names(compose, stack, "roles"):
            kcadm(compose, stack, "delete", f"roles/{PROBE_ROLE}", "-r", "mcp")
    assert "realm role default-roles-mcp: composites uma_authorization added" in restored.stdout
    assert f"client scope offline_access: realm roles {PROBE_ROLE} unmapped" in restored.stdout
    assert f"realm role {PROBE_ROLE} is not in the file (left in place)" in restored.stdout
    assert f"user {OPERATED}: realm roles" not in restored.stdout  # nothing granted, nothing taken away
    assert {"offline_access", "uma_authorization"} <= realm_role_names(compose, stack, "roles/default-roles-mcp/composites/realm")
    assert_up_to_date(compose)


def test_a_user_an_operator_disabled_or_deleted_stays_so(stack: Stack, compose: DockerCompose):
    nora = user(compose, stack, OPERATED)
    assert nora is not None
    assert nora["enabled"]
    try:
        kcadm(compose, stack, "update", f"users/{nora['id']}", "-r", "mcp", "-s", "enabled=false")
        run = realm_sync(compose)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"user {OPERATED}" not in run.stdout
        assert "realm-sync: mcp: up to date" in run.stdout, run.stdout
        disabled = user(compose, stack, OPERATED)
        assert disabled is not None
        assert disabled["enabled"] is False

        kcadm(compose, stack, "delete", f"users/{nora['id']}", "-r", "mcp")
        run = realm_sync(compose)
        assert run.returncode == 0, run.stdout + run.stderr
        assert (f"user {OPERATED}: in realm-sync's record but not in the realm: deleted by an operator, left deleted"
                in run.stdout), run.stdout
        assert f"user {OPERATED} created" not in run.stdout
        assert "realm-sync: mcp: up to date" in run.stdout, run.stdout
        assert user(compose, stack, OPERATED) is None
    finally:
        restore_operated_user(compose, stack)
    assert_up_to_date(compose)


def test_an_operators_password_change_survives_realm_sync(stack: Stack, compose: DockerCompose):
    """The file holds nora's sandbox password; realm-sync never sets it again, so the operator's
    new one still signs her in."""
    new_password = secrets.token_urlsafe(18)
    remember(new_password)
    try:
        kcadm(compose, stack, "set-password", "-r", "mcp", "--username", OPERATED, "--new-password", new_password)
        run = realm_sync(compose)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"user {OPERATED}" not in run.stdout
        assert "realm-sync: mcp: up to date" in run.stdout, run.stdout
        # nora holds no MCP role: mcp:connect (the audience alone) is what she may ask for.
        with stack.client(follow_redirects=False) as http:
            grant = authorize(http, stack, OPERATED, new_password, scope="openid mcp:connect")
        assert grant.code
    finally:
        restore_operated_user(compose, stack)
