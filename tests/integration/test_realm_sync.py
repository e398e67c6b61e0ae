"""Realm changes reach a running Keycloak without wiping its data (realm-sync, run by `make up`):
a changed client scope and a changed registration policy take effect, on every Keycloak node,
while the users, their consents and refresh tokens, and the clients already there stay as they were.
Runs in whichever topology is up (in TOPOLOGY=ha the change is written through one node and
must show on both)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import jwt
import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import registered
from tests.support.keycloak import kcadm_json
from tests.support.login import authorize, exchange
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


def changed_realm_files(directory: Path, probe_value: str) -> Path:
    """The checkout's realm files with two edits a maintainer might make: a claim added to the
    mcp:tools scope, and anonymous DCR closed (its Max Clients policy down to 1, fewer than the
    realm already has)."""
    directory.mkdir(mode=0o755)
    for path in REALM_DIR.glob("*.json"):
        shutil.copy(path, directory / path.name)
        (directory / path.name).chmod(0o644)  # the container's user is not root
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
                    "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "mcp-agent"})
            assert refreshed.status_code == 200, refreshed.text
            remember(refreshed.json()["access_token"], refreshed.json().get("refresh_token"))
            claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
            assert claims[PROBE] == value
            assert claims["sub"] == alice["id"]
            (still_alice,) = kcadm_json(compose, stack, "get", "users", "-r", "mcp", "-q", "username=alice",
                                        "-q", "exact=true")
            assert still_alice == alice
            consents = kcadm_json(compose, stack, "get", f"users/{alice['id']}/consents", "-r", "mcp")
            assert "mcp-agent" in {c["clientId"] for c in consents}
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
