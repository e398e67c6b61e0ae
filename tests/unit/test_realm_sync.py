"""realm-sync's reading of realm files, its notion of "already applied", its rule for roles and
for users (created once, then left to operators), the last against a fake admin API. The admin
API side is proven against the real Keycloak in tests/integration/test_realm_sync.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest
from realm_sync.admin import Admin, SyncError
from realm_sync.realm import RealmFileError, declared_roles, load, realm_files, settings, variables
from realm_sync.roles import RoleSync, desired_composites
from realm_sync.sync import matches
from realm_sync.users import RECORD_ATTRIBUTE, Existing, UserSync, plan, read_record, record_of, write_record

from tests.unit.realm_profile import REALM_DIR, rendered

PLACEHOLDERS = {name: f"value-of-{name}" for name in
                ("MCP_RESOURCE_URL", "API_URL", "CIMD_ORIGIN", "AGENT_CALLBACK_PORT", "DEMO_USER_PASSWORD", "ADMIN_USER_PASSWORD",
                 "NOROLE_USER_PASSWORD", "MACHINE_CLIENT_SECRET", "AGENT_CONFIDENTIAL_CLIENT_SECRET")}
# realm-sync only ever sees rendered files (its image renders them at build time).
PROFILES = {profile: rendered(profile) for profile in ("production", "sandbox")}


def write(tmp_path: Path, realm: dict) -> Path:
    path = tmp_path / "realm.json"
    path.write_text(json.dumps(realm))
    return path


@pytest.mark.parametrize(("profile", "name"), [(profile, name) for profile, realms in PROFILES.items() for name in realms],
                         ids=lambda value: value)
def test_every_rendered_realm_file_is_one_realm_sync_can_apply(tmp_path: Path, profile: str, name: str):
    path = write(tmp_path, PROFILES[profile][name])
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


@pytest.mark.parametrize("part", ["groups", "identityProviders", "authenticationFlows", "requiredActions"])
def test_parts_it_does_not_apply_are_refused_by_name_not_ignored(tmp_path: Path, part: str):
    with pytest.raises(RealmFileError, match=f"does not apply {part}; .*make clean"):
        load(write(tmp_path, {"realm": "r", part: [{"name": "x"}]}), {})


def test_the_only_attribute_a_file_may_carry_is_the_record_of_its_users(tmp_path: Path):
    record = record_of([ALICE, MACHINE])
    assert json.loads(record) == {"alice": ["default-roles-mcp", "mcp-user"],
                                  "service-account-m": ["default-roles-mcp", "mcp-user"]}
    assert load(write(tmp_path, {"realm": "r", "attributes": {RECORD_ATTRIBUTE: record}}), {})["attributes"] == {
        RECORD_ATTRIBUTE: record}
    with pytest.raises(RealmFileError, match=r"does not apply attributes \(only realmSync\.users"):
        load(write(tmp_path, {"realm": "r", "attributes": {"frontendUrl": "https://auth.example"}}), {})


def test_client_roles_are_refused_by_name_not_ignored(tmp_path: Path):
    with pytest.raises(RealmFileError, match=r"does not apply roles\.client \(client roles\); .*make clean"):
        load(write(tmp_path, {"realm": "r", "roles": {"realm": [], "client": {"c": [{"name": "x"}]}}}), {})
    with pytest.raises(RealmFileError, match="grants realm roles only"):
        load(write(tmp_path, {"realm": "r", "users": [{"username": "u", "clientRoles": {"c": ["x"]}}]}), {})


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


# Realm roles and the default role

def test_roles_and_the_default_role_are_read_the_default_role_merged_into_its_entry(tmp_path: Path):
    realm = load(write(tmp_path, {"realm": "r", "roles": {"realm": [
        {"name": "default-roles-r", "composite": True, "composites": {"realm": ["offline_access"]}},
        {"name": "reader", "description": "Reads."}]},
        "defaultRole": {"name": "default-roles-r", "description": "Everyone.", "composite": True}}), {})
    assert declared_roles(realm) == [
        {"name": "default-roles-r", "composite": True, "composites": {"realm": ["offline_access"]}, "description": "Everyone."},
        {"name": "reader", "description": "Reads."}]
    # A default role the roles do not list is still declared (every realm has it).
    assert declared_roles({"realm": "r", "defaultRole": {"name": "default-roles-r"}}) == [{"name": "default-roles-r"}]


@pytest.mark.parametrize(("realm", "error"), [
    ({"roles": {"realm": [{"name": "a"}, {"name": "a"}]}}, "realm role a is declared twice"),
    ({"roles": {"realm": [{"name": "d", "description": "x"}]}, "defaultRole": {"name": "d", "description": "y"}},
     "defaultRole and roles.realm say different things about d's description"),
    ({"roles": {"realm": [{"name": "a", "composites": {"realm": "b"}}]}}, "realm role a: composites is"),
    ({"roles": {"realm": [{"name": "a", "composites": {"groups": ["b"]}}]}}, "realm role a: composites is"),
    ({"roles": {"realm": [{"description": "no name"}]}}, 'every entry of roles.realm is an object with a "name"'),
    ({"users": [{"username": "u"}, {"username": "u"}]}, "user u is declared twice"),
    ({"users": [{"username": "u", "realmRoles": "mcp-user"}]}, "realmRoles is a list of realm role names"),
])
def test_malformed_roles_and_users_are_refused_before_any_write(tmp_path: Path, realm: dict, error: str):
    with pytest.raises(RealmFileError, match=error):
        load(write(tmp_path, {"realm": "r", **realm}), {})


@pytest.mark.parametrize(("role", "composites"), [
    ({"name": "a", "composites": {"realm": ["b"]}}, {"realm": ["b"], "client": {}}),
    ({"name": "a", "composite": True, "composites": {"client": {"account": ["view-profile"]}}},
     {"realm": [], "client": {"account": ["view-profile"]}}),
    ({"name": "a"}, {"realm": [], "client": {}}),                       # none declared: none
    ({"name": "a", "composite": False}, {"realm": [], "client": {}}),
    ({"name": "a", "composite": True}, None),                           # composite, of what is not said: left as is
])
def test_a_roles_composites_are_what_the_file_declares(role: dict, composites: dict | None):
    assert desired_composites(role) == composites


def test_the_shared_realms_roles_are_all_read_and_gate_each_mcp_scope():
    """What realm-sync applies (roles, composites, scope mappings) says: mcp:tools needs mcp-user,
    mcp:audit mcp-auditor, mcp:admin mcp-admin; mcp:connect needs none; the notes API's scopes
    need notes-user."""
    (shared,) = PROFILES["production"].values()
    roles = {role["name"]: role for role in declared_roles(shared)}
    assert {"default-roles-mcp", "offline_access", "mcp-user", "mcp-auditor", "mcp-admin", "notes-user"} <= roles.keys()
    assert set(desired_composites(roles["default-roles-mcp"])["realm"]) == {"offline_access", "uma_authorization"}
    gates = {m["clientScope"]: m["roles"] for m in shared["scopeMappings"]}
    assert gates == {"offline_access": ["offline_access"], "mcp:tools": ["mcp-user"], "mcp:audit": ["mcp-auditor"],
                     "mcp:admin": ["mcp-admin"], "notes:read": ["notes-user"], "notes:write": ["notes-user"]}


# Users: created once, then left to operators

ALICE = {"username": "alice", "credentials": [{"type": "password", "value": "pw"}],
         "realmRoles": ["default-roles-mcp", "mcp-user"]}
MACHINE = {"username": "service-account-m", "serviceAccountClientId": "m", "realmRoles": ["default-roles-mcp", "mcp-user"]}
HAS_DEFAULT = frozenset({"default-roles-mcp", "offline_access"})


def one(users: list[dict], record: dict, existing: dict) -> tuple:
    (action,) = plan(users, record, existing, "default-roles-mcp")
    return action.create, action.grant, action.record, action.note


def test_a_declared_user_missing_and_unrecorded_is_created_with_its_roles_and_recorded():
    # Keycloak gives a new user the default role itself: only the others are granted.
    assert one([ALICE], {}, {"alice": None}) == (True, ("mcp-user",), ("default-roles-mcp", "mcp-user"), "")


def test_an_existing_unrecorded_user_is_adopted_granted_the_roles_it_lacks_and_recorded():
    """An existing sandbox's alice (Keycloak's first import) gets the new mcp-user role."""
    assert one([ALICE], {}, {"alice": Existing("id", HAS_DEFAULT)}) == (
        False, ("mcp-user",), ("default-roles-mcp", "mcp-user"), "")
    assert one([ALICE], {}, {"alice": Existing("id", HAS_DEFAULT | {"mcp-user"})}) == (
        False, (), ("default-roles-mcp", "mcp-user"), "")


def test_a_recorded_user_an_operator_deleted_stays_deleted():
    create, grant, record, note = one([ALICE], {"alice": ["default-roles-mcp", "mcp-user"]}, {"alice": None})
    assert (create, grant, record) == (False, (), None)
    assert "deleted by an operator, left deleted" in note
    # ... even when the file declares a new role for it.
    assert one([{**ALICE, "realmRoles": [*ALICE["realmRoles"], "mcp-auditor"]}],
               {"alice": ["default-roles-mcp", "mcp-user"]}, {"alice": None})[:3] == (False, (), None)


def test_a_recorded_user_gets_nothing_again_a_role_an_operator_removed_is_not_granted_again():
    recorded = {"alice": ["default-roles-mcp", "mcp-user"]}
    assert one([ALICE], recorded, {"alice": Existing("id", HAS_DEFAULT | {"mcp-user"})}) == (False, (), None, "")
    assert one([ALICE], recorded, {"alice": Existing("id", HAS_DEFAULT)}) == (False, (), None, "")  # mcp-user removed


def test_a_role_newly_declared_for_a_recorded_user_is_granted_once_and_recorded():
    recorded = {"alice": ["default-roles-mcp", "mcp-user"]}
    declared = {**ALICE, "realmRoles": [*ALICE["realmRoles"], "mcp-auditor"]}
    roles = ("default-roles-mcp", "mcp-auditor", "mcp-user")
    assert one([declared], recorded, {"alice": Existing("id", HAS_DEFAULT)}) == (False, ("mcp-auditor",), roles, "")
    # Already held (an operator granted it first): nothing to grant, but recorded all the same.
    assert one([declared], recorded, {"alice": Existing("id", HAS_DEFAULT | {"mcp-auditor"})}) == (False, (), roles, "")
    # A role dropped from the file is not taken away; the record follows the file.
    assert one([{**ALICE, "realmRoles": ["default-roles-mcp"]}], recorded,
               {"alice": Existing("id", HAS_DEFAULT | {"mcp-user"})}) == (False, (), ("default-roles-mcp",), "")


def test_service_accounts_follow_the_role_rule_and_are_never_created():
    key = "service-account-m"
    assert one([MACHINE], {}, {key: Existing("sa", HAS_DEFAULT)}) == (False, ("mcp-user",), ("default-roles-mcp", "mcp-user"), "")
    assert one([MACHINE], {key: ["default-roles-mcp", "mcp-user"]}, {key: Existing("sa", HAS_DEFAULT)}) == (False, (), None, "")
    create, grant, record, note = one([MACHINE], {}, {key: None})
    assert (create, grant, record) == (False, (), None)
    assert "no service account user yet" in note


def test_the_record_is_a_json_object_of_users_and_their_roles():
    assert read_record(None) == read_record({}) == read_record({RECORD_ATTRIBUTE: ""}) == {}
    value = write_record({"b": ["y", "x"], "a": []})
    assert value == '{"a":[],"b":["x","y"]}'
    assert read_record({RECORD_ATTRIBUTE: value, "frontendUrl": "x"}) == {"a": [], "b": ["x", "y"]}
    for broken in ("not json", "[]", '{"a": "x"}', '{"a": [1]}'):
        with pytest.raises(ValueError, match=f"{RECORD_ATTRIBUTE} is not a JSON object"):
            read_record({RECORD_ATTRIBUTE: broken})


class FakeKeycloak(Admin):
    """The parts of the admin API UserSync uses, in memory: GET answers from `users`, `clients`
    and `realm`; writes are recorded in `sent` (and, unless a dry run, applied)."""

    def __init__(self, *, dry_run: bool = False) -> None:
        super().__init__(None, "http://keycloak:8080", "sandbox-admin", "secret", dry_run=dry_run)  # type: ignore[arg-type]
        self.realm: dict[str, Any] = {"id": "r1", "realm": "mcp", "displayName": "MCP sandbox",
                                      "browserSecurityHeaders": {"xFrameOptions": "SAMEORIGIN"},
                                      "defaultRole": {"id": "d", "name": "default-roles-mcp"},
                                      "attributes": {"frontendUrl": "https://auth.example"}}
        self.users: dict[str, dict[str, Any]] = {}
        self.clients = {"m": {"id": "c1", "clientId": "m", "serviceAccountsEnabled": True}}
        self.sent: list[tuple[str, str, Any]] = []
        self.add_user("service-account-m", "sa", {"default-roles-mcp"})

    def add_user(self, username: str, user_id: str, roles: set[str]) -> None:
        self.users[user_id] = {"id": user_id, "username": username, "enabled": True, "roles": set(roles)}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        params, body = kwargs.get("params") or {}, kwargs.get("json")
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if method != "GET":
            self.sent.append((method, path, body))
        match method, parts:
            case "GET", ["mcp"]:
                return httpx2.Response(200, json=self.realm)
            case "PUT", ["mcp"]:
                self.realm = body
            case "GET", ["mcp", "roles", name]:
                return httpx2.Response(200, json={"id": f"role-{name}", "name": name})
            case "GET", ["mcp", "clients"]:
                client = self.clients.get(params["clientId"])
                return httpx2.Response(200, json=[client] if client else [])
            case "GET", ["mcp", "clients", _, "service-account-user"]:
                (user,) = [u for u in self.users.values() if u["username"] == "service-account-m"]
                return httpx2.Response(200, json={k: v for k, v in user.items() if k != "roles"})
            case "GET", ["mcp", "users"]:
                found = [u for u in self.users.values() if u["username"] == params["username"]]
                return httpx2.Response(200, json=[{k: v for k, v in u.items() if k != "roles"} for u in found])
            case "POST", ["mcp", "users"]:
                self.add_user(body["username"], f"id-{body['username']}", {"default-roles-mcp"})
                return httpx2.Response(201, headers={"Location": f"{self.server}/admin/realms/mcp/users/id-{body['username']}"})
            case "GET", ["mcp", "users", user_id, "role-mappings", "realm", "composite"]:
                return httpx2.Response(200, json=[{"name": role} for role in self.users[user_id]["roles"]])
            case "POST", ["mcp", "users", user_id, "role-mappings", "realm"]:
                self.users[user_id]["roles"] |= {role["name"] for role in body}
            case _:
                raise AssertionError(f"unexpected {method} {path}")
        return httpx2.Response(204)


def sync_users(keycloak: FakeKeycloak, users: list[dict], new_clients: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    before = len(keycloak.sent)
    UserSync(keycloak, "mcp", "/mcp").run({"realm": "mcp", "users": users}, new_clients)
    return [(method, path) for method, path, _ in keycloak.sent[before:]]


ADA = {"username": "ada", "enabled": True, "credentials": [{"type": "password", "value": "pw"}],
       "realmRoles": ["default-roles-mcp", "mcp-admin"]}


def test_users_are_seeded_once_and_the_record_is_written_with_the_whole_realm(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    keycloak.add_user("alice", "id-alice", {"default-roles-mcp"})  # Keycloak's first import made her
    writes = sync_users(keycloak, [ALICE, ADA, MACHINE])
    assert writes == [("POST", "/mcp/users/id-alice/role-mappings/realm"), ("POST", "/mcp/users"),
                      ("POST", "/mcp/users/id-ada/role-mappings/realm"), ("POST", "/mcp/users/sa/role-mappings/realm"),
                      ("PUT", "/mcp")]
    (_, _, created), *_ = [sent for sent in keycloak.sent if sent[1] == "/mcp/users"]
    assert created == {key: value for key, value in ADA.items() if key != "realmRoles"}  # with its password
    assert keycloak.users["id-ada"]["roles"] == {"default-roles-mcp", "mcp-admin"}
    # The realm PUT carries everything Keycloak gave (its update drops attributes and header
    # settings the body lacks), plus the record.
    put = keycloak.sent[-1][2]
    assert put["browserSecurityHeaders"] == {"xFrameOptions": "SAMEORIGIN"}
    assert put["attributes"]["frontendUrl"] == "https://auth.example"
    assert json.loads(put["attributes"][RECORD_ATTRIBUTE]) == {
        "ada": ["default-roles-mcp", "mcp-admin"], "alice": ["default-roles-mcp", "mcp-user"],
        "service-account-m": ["default-roles-mcp", "mcp-user"]}
    assert "users ada, alice, service-account-m recorded as seeded" in capsys.readouterr().out
    # The second run: nothing to do.
    assert sync_users(keycloak, [ALICE, ADA, MACHINE]) == []


def test_what_an_operator_did_to_a_seeded_user_stays_done(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    sync_users(keycloak, [ALICE, ADA])
    keycloak.users["id-alice"].update(enabled=False, roles={"default-roles-mcp"})  # disabled, mcp-user taken away
    del keycloak.users["id-ada"]
    capsys.readouterr()
    assert sync_users(keycloak, [ALICE, ADA]) == []
    assert keycloak.users["id-alice"]["enabled"] is False
    assert "user ada: in realm-sync's record but not in the realm: deleted by an operator, left deleted" in capsys.readouterr().out
    # A role newly declared for alice is granted; mcp-user, which the operator took away, is not.
    writes = sync_users(keycloak, [{**ALICE, "realmRoles": [*ALICE["realmRoles"], "mcp-auditor"]}, ADA])
    assert writes == [("POST", "/mcp/users/id-alice/role-mappings/realm"), ("PUT", "/mcp")]
    assert keycloak.users["id-alice"]["roles"] == {"default-roles-mcp", "mcp-auditor"}
    assert "id-ada" not in keycloak.users


def test_a_service_account_of_a_client_realm_sync_just_created_is_seeded_again():
    keycloak = FakeKeycloak()
    sync_users(keycloak, [MACHINE])
    keycloak.users["sa"]["roles"] = {"default-roles-mcp"}  # a new client, a new service account
    assert sync_users(keycloak, [MACHINE]) == []
    assert sync_users(keycloak, [MACHINE], new_clients=("m",)) == [("POST", "/mcp/users/sa/role-mappings/realm")]


def test_a_dry_run_says_what_it_would_do_and_writes_nothing(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak(dry_run=True)
    sync_users(keycloak, [ALICE, MACHINE])
    out = capsys.readouterr().out
    assert "would change: mcp: user alice created" in out
    assert "would change: mcp: user alice: realm roles mcp-user granted" in out
    assert "would change: mcp: users alice, service-account-m recorded as seeded" in out
    assert RECORD_ATTRIBUTE not in keycloak.realm["attributes"]
    assert set(keycloak.users) == {"sa"}
    assert keycloak.users["sa"]["roles"] == {"default-roles-mcp"}


class FakeRoles(Admin):
    """The realm-role part of the admin API, in memory: roles by name, each with its composites
    (realm role names, and `account/<role>` for the account client's roles)."""

    def __init__(self, roles: dict[str, tuple[str, set[str]]]) -> None:
        super().__init__(None, "http://keycloak:8080", "sandbox-admin", "secret")  # type: ignore[arg-type]
        self.roles = {name: {"description": description, "composites": set(composites)}
                      for name, (description, composites) in roles.items()}
        self.sent: list[tuple[str, str]] = []

    def rep(self, name: str) -> dict[str, Any]:
        if "/" in name:
            return {"id": name, "name": name.split("/")[1], "clientRole": True, "containerId": "account-id"}
        return {"id": name, "name": name, "clientRole": False, "containerId": "r1",
                "description": self.roles[name]["description"], "attributes": {}}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        body = kwargs.get("json")
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if method != "GET":
            self.sent.append((method, "/".join(parts[1:])))
        match method, parts:
            case "GET", ["mcp", "roles"]:
                return httpx2.Response(200, json=[self.rep(name) for name in self.roles])
            case "GET", ["mcp", "roles", name]:
                return httpx2.Response(200, json=self.rep(name)) if name in self.roles else httpx2.Response(404)
            case "POST", ["mcp", "roles"]:
                self.roles[body["name"]] = {"description": body.get("description"), "composites": set()}
            case "PUT", ["mcp", "roles", name]:
                self.roles[name]["description"] = body["description"]
            case "GET", ["mcp", "roles", name, "composites"]:
                return httpx2.Response(200, json=[self.rep(c) for c in self.roles[name]["composites"]])
            case "POST", ["mcp", "roles", name, "composites"]:
                self.roles[name]["composites"] |= {role["id"] for role in body}
            case "DELETE", ["mcp", "roles", name, "composites"]:
                self.roles[name]["composites"] -= {role["id"] for role in body}
            case _:
                raise AssertionError(f"unexpected {method} {path}")
        return httpx2.Response(204)


def test_roles_are_created_described_and_made_of_what_the_file_says(capsys: pytest.CaptureFixture[str]):
    (shared,) = PROFILES["production"].values()
    keycloak = FakeRoles({
        "offline_access": ("${role_offline-access}", set()), "uma_authorization": ("${role_uma_authorization}", set()),
        # As Keycloak's first import of an older file left it: the account client's roles in the default role.
        "default-roles-mcp": ("${role_default-roles}", {"offline_access", "uma_authorization", "account/view-profile"}),
        "mcp-user": ("old", {"uma_authorization"}),     # a composite the file does not declare
        "by-hand": ("an operator's role", set())})
    unmanaged: list[str] = []
    RoleSync(keycloak, "mcp", "/mcp", unmanaged).run(shared, {"defaultRole": {"name": "default-roles-mcp"}})
    declared = {role["name"]: role for role in declared_roles(shared)}
    for name, role in declared.items():
        assert keycloak.roles[name]["description"] == role["description"], name
        assert {c for c in keycloak.roles[name]["composites"] if "/" not in c} == set(desired_composites(role)["realm"]), name
    assert "account/view-profile" in keycloak.roles["default-roles-mcp"]["composites"]  # a client the file does not name
    assert ("POST", "roles") in keycloak.sent
    assert ("DELETE", "roles/mcp-user/composites") in keycloak.sent
    assert unmanaged == ["realm role by-hand"]
    assert "by-hand" in keycloak.roles
    # The second run: nothing to do.
    before = len(keycloak.sent)
    RoleSync(keycloak, "mcp", "/mcp", []).run(shared, {"defaultRole": {"name": "default-roles-mcp"}})
    assert keycloak.sent[before:] == []


def test_a_default_role_that_is_not_the_realms_is_refused():
    keycloak = FakeRoles({"default-roles-mcp": ("", set())})
    with pytest.raises(SyncError, match="defaultRole is default-roles-other, but the realm's default role is default-roles-mcp"):
        RoleSync(keycloak, "mcp", "/mcp", []).run({"realm": "mcp", "defaultRole": {"name": "default-roles-other"}},
                                                  {"defaultRole": {"name": "default-roles-mcp"}})
