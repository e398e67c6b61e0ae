"""realm-sync's reading of realm files and its notion of "already applied" (the admin API side is
proven against the real Keycloak in tests/integration/test_realm_sync.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realm_sync.realm import RealmFileError, load, realm_files, settings, variables
from realm_sync.sync import matches

REALM_DIR = Path(__file__).resolve().parents[2] / "services" / "keycloak" / "realm"
PLACEHOLDERS = {name: f"value-of-{name}" for name in
                ("MCP_RESOURCE_URL", "CIMD_ORIGIN", "AGENT_CALLBACK_PORT", "DEMO_USER_PASSWORD",
                 "MACHINE_CLIENT_SECRET", "AGENT_CONFIDENTIAL_CLIENT_SECRET")}


def write(tmp_path: Path, realm: dict) -> Path:
    path = tmp_path / "realm.json"
    path.write_text(json.dumps(realm))
    return path


@pytest.mark.parametrize("path", sorted(REALM_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_realm_file_of_the_sandbox_is_one_realm_sync_can_apply(path: Path):
    realm = load(path, PLACEHOLDERS)
    assert "${MCP_RESOURCE_URL}" not in json.dumps(realm)
    assert realm["realm"] in {"mcp", "other"}


def test_placeholders_are_filled_from_the_environment_and_from_secret_files(tmp_path: Path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "demo_user_password").write_text("from-the-secret\n")
    values = variables({"MCP_RESOURCE_URL": "https://mcp.example/mcp"}, secrets)
    realm = load(write(tmp_path, {"realm": "r", "users": [{"username": "u", "credentials": [
        {"type": "password", "value": "${DEMO_USER_PASSWORD}"}]}], "clients": [
        {"clientId": "c", "name": "${client_admin-cli}", "attributes": {"aud": "${MCP_RESOURCE_URL}"}}]}), values)
    assert realm["users"][0]["credentials"][0]["value"] == "from-the-secret"
    assert realm["clients"][0]["attributes"]["aud"] == "https://mcp.example/mcp"
    # Lower-case placeholders are Keycloak's message keys: left for Keycloak to translate.
    assert realm["clients"][0]["name"] == "${client_admin-cli}"


def test_an_unset_placeholder_is_an_error_naming_it_not_an_empty_string(tmp_path: Path):
    with pytest.raises(RealmFileError, match=r"placeholder \$\{MACHINE_CLIENT_SECRET\} is not set"):
        load(write(tmp_path, {"realm": "r", "clients": [{"clientId": "c", "secret": "${MACHINE_CLIENT_SECRET}"}]}), {})


@pytest.mark.parametrize("part", ["groups", "roles", "identityProviders", "authenticationFlows", "requiredActions"])
def test_parts_it_does_not_apply_are_refused_by_name_not_ignored(tmp_path: Path, part: str):
    value = {"realm": [{"name": "x"}]} if part == "roles" else [{"name": "x"}]
    with pytest.raises(RealmFileError, match=f"does not apply {part}; .*make clean"):
        load(write(tmp_path, {"realm": "r", part: value}), {})


def test_not_json_or_not_a_realm_is_refused_with_the_file_named(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RealmFileError, match=r"bad\.json: not a readable JSON realm file"):
        load(bad, {})
    with pytest.raises(RealmFileError, match=r'a JSON object with a "realm" name'):
        load(write(tmp_path, {"clients": []}), {})


def test_directories_give_their_json_files_and_an_empty_one_is_an_error(tmp_path: Path):
    assert realm_files([REALM_DIR]) == sorted(REALM_DIR.glob("*.json"))
    with pytest.raises(RealmFileError, match="no realm file"):
        realm_files([tmp_path])
    with pytest.raises(RealmFileError, match="no such realm file"):
        realm_files([tmp_path / "missing.json"])


def test_realm_settings_are_the_values_and_lists_of_values():
    assert settings({"realm": "r", "accessTokenLifespan": 300, "eventsListeners": ["jboss-logging"],
                     "clients": [{"clientId": "c"}], "components": {}, "clientPolicies": {"policies": []}}) == {
        "realm": "r", "accessTokenLifespan": 300, "eventsListeners": ["jboss-logging"]}


@pytest.mark.parametrize(("desired", "current", "same"), [
    ({"a": "true"}, {"a": True, "extra": 1}, True),          # Keycloak adds defaults; booleans as strings
    ({"a": 300}, {"a": "300"}, True),
    ({"a": 1}, {}, False),                                    # something the file says is missing
    (["b", "a"], ["a", "b"], True),                           # values: a set (redirect URIs, scope names)
    (["a"], ["a", "b"], False),
    ([{"n": 1}, {"n": 2}], [{"n": 2}, {"n": 1}], False),      # objects: in order (policies, profiles)
    ({"config": {"x": ["1"]}}, {"config": {"x": ["1"], "y": ["2"]}}, True),
    ({"config": {"x": ["1"]}}, {"config": {"x": ["2"]}}, False),
])
def test_already_applied_means_keycloak_says_everything_the_file_says(desired, current, same):
    assert matches(desired, current) is same
