"""Checks on the realm-as-code files that fail in seconds, not as an unhealthy Keycloak: the source
files themselves, and the two profiles realm/profile.py renders from them (`production`: the shared
files only; `sandbox`: the shared files plus realm/sandbox/, the demo users and the tests' clients)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realm_sync.users import RECORD_ATTRIBUTE, record_of

from tests.unit.realm_profile import REALM_DIR, profile, realm_of, rendered

KEYCLOAK_DIR = REALM_DIR.parent
# Every realm file: the shared ones, the sandbox's additions, the master realm's settings.
REALMS = sorted(KEYCLOAK_DIR.rglob("*.json"))
# Keycloak stores these in VARCHAR(255) columns; a longer value aborts the whole import.
SHORT_FIELDS = {"name", "description", "clientId"}

PRODUCTION, SANDBOX = rendered("production"), rendered("sandbox")
# The clients only the tests need: a shared secret, no MCP audience, 1 s tokens, a confidential
# agent with a per-checkout secret, and the Bearer-allowed twins of the demo agent's clients. None
# of them may reach a deployment.
TEST_ONLY_CLIENTS = {"mcp-machine-agent-secret", "mcp-machine-agent-no-audience", "mcp-machine-agent-short-lived",
                     "mcp-agent-confidential", "mcp-bearer-client", "mcp-machine-bearer"}
# The demo agent's own identities: DPoP-bound tokens required (RFC 9449; docs/decisions.md, "Which
# clients must use DPoP"). Each Bearer-allowed twin: (the original, the attributes it drops).
DEMO_AGENT_CLIENTS = {"mcp-agent", "mcp-machine-agent"}
BEARER_TWINS = {"mcp-bearer-client": "mcp-agent", "mcp-machine-bearer": "mcp-machine-agent"}
REQUIRES_DPOP = "dpop.bound.access.tokens"
DEMO_USERS = {"alice", "ada", "nora"}
# Keycloak's own clients, declared to be disabled; and the MCP server itself (the audience, never a requester).
BUILT_IN_CLIENTS = {"admin-cli", "security-admin-console"}
RESOURCE_CLIENT = "${MCP_RESOURCE_URL}"
# The notes API: an audience only, never a requester.
API_CLIENT = "${API_URL}"
NOTES_SCOPES = {"notes:read", "notes:write"}


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SHORT_FIELDS and isinstance(value, str):
                yield f"{path}/{key}", value
            yield from strings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from strings(value, f"{path}[{i}]")


def test_every_realm_file_is_checked():
    names = {path.relative_to(KEYCLOAK_DIR).as_posix() for path in REALMS}
    assert {"realm/mcp-realm.json", "realm/sandbox/mcp-realm.json", "realm/sandbox/other-realm.json"} <= names


@pytest.mark.parametrize("realm", REALMS, ids=lambda p: p.relative_to(KEYCLOAK_DIR).as_posix())
def test_short_fields_fit_keycloaks_columns(realm: Path):
    too_long = {path: len(value) for path, value in strings(json.loads(realm.read_text())) if len(value) > 255}
    assert too_long == {}


def test_client_secrets_come_from_the_environment_not_the_file():
    for realm in REALMS:
        data = json.loads(realm.read_text())
        for client in data.get("clients", []) if isinstance(data, dict) else []:
            secret = client.get("secret")
            assert secret is None or (secret.startswith("${") and secret.endswith("}")), (realm.name, client["clientId"])


# The production profile: nothing test-only

def clients(realm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {client["clientId"]: client for client in realm.get("clients", [])}


def audience_scopes(realm: dict[str, Any]) -> set[str]:
    """The client scopes that put the MCP server into a token's audience."""
    return {scope["name"] for scope in realm.get("clientScopes", [])
            if any(m["protocolMapper"] == "oidc-audience-mapper"
                   and m["config"].get("included.custom.audience") == "${MCP_RESOURCE_URL}"
                   for m in scope.get("protocolMappers", []))}


def test_production_is_the_realm_mcp_alone():
    assert {realm["realm"] for realm in PRODUCTION.values()} == {"mcp"}
    assert set(PRODUCTION) == {"mcp-realm.json"}


def test_production_has_no_person_only_service_accounts():
    mcp = realm_of(PRODUCTION, "mcp")
    people = [user["username"] for user in mcp.get("users", []) if not user.get("serviceAccountClientId")]
    assert people == []


def test_production_has_none_of_the_test_only_clients_and_nothing_like_them():
    mcp = clients(realm_of(PRODUCTION, "mcp"))
    assert not TEST_ONLY_CLIENTS & mcp.keys()
    assert [name for name, client in mcp.items() if "secret" in client] == []
    assert [name for name, client in mcp.items() if "access.token.lifespan" in client.get("attributes", {})] == []
    # Every client that asks for tokens can ask for the MCP server's audience (no "no audience" client).
    audience = audience_scopes(realm_of(PRODUCTION, "mcp"))
    assert {"mcp:connect", "mcp:tools", "mcp:audit", "mcp:admin"} <= audience
    without = [name for name, client in mcp.items() if name not in BUILT_IN_CLIENTS | {RESOURCE_CLIENT, API_CLIENT}
               and not audience & {*client.get("defaultClientScopes", []), *client.get("optionalClientScopes", [])}]
    assert without == []


@pytest.mark.parametrize("name", ["production", "sandbox"])
def test_the_demo_agents_clients_require_dpop(name: str):
    """Issue 20.1: a token request by the demo agent's pre-registered clients without a DPoP proof
    is refused by Keycloak (tested against it in integration/test_dpop.py)."""
    mcp = clients(realm_of(rendered(name), "mcp"))
    assert {client: mcp[client]["attributes"].get(REQUIRES_DPOP) for client in DEMO_AGENT_CLIENTS} == \
        dict.fromkeys(DEMO_AGENT_CLIENTS, "true")


def test_the_bearer_twins_are_their_originals_without_required_dpop():
    """The twins prove what their originals would prove for Bearer-only software: same flows,
    keys, redirect URIs, scopes and service-account roles; only the DPoP requirement differs."""
    sandbox = realm_of(SANDBOX, "mcp")
    every = clients(sandbox)
    roles = {user["serviceAccountClientId"]: user["realmRoles"] for user in sandbox["users"]
             if user.get("serviceAccountClientId")}
    for twin, original in BEARER_TWINS.items():
        assert REQUIRES_DPOP not in every[twin]["attributes"]
        same = {key: value for key, value in every[original].items() if key not in ("clientId", "name", "description")}
        same["attributes"] = {k: v for k, v in same["attributes"].items() if k != REQUIRES_DPOP}
        assert {key: every[twin].get(key) for key in same} == same, twin
        assert roles.get(twin) == roles.get(original), twin


# The sandbox profile: production, plus exactly the sandbox's additions

def identity(item: Any) -> Any:
    """What names a thing in a list: a client's clientId, a scope's name, a registration policy's
    name and subType (anonymous, authenticated)..."""
    if isinstance(item, dict):
        for key in ("clientId", "username", "name", "clientScope", "alias"):
            if key in item:
                return (item[key], item.get("subType"))
    return None


def extends(shared: Any, sandbox: Any, where: str = "") -> Iterator[str]:
    """What the sandbox changed of the shared part (nothing, if every shared value is in the
    sandbox as it is: lists of things only get things appended, never one with a shared name)."""
    if isinstance(shared, dict):
        if not isinstance(sandbox, dict):
            yield f"{where}: not an object"
            return
        for key, value in shared.items():
            if key not in sandbox:
                yield f"{where}.{key}: missing"
            else:
                yield from extends(value, sandbox[key], f"{where}.{key}")
    elif isinstance(shared, list):
        if not isinstance(sandbox, list) or sandbox[:len(shared)] != shared:
            yield f"{where}: the shared entries changed"
            return
        names = [identity(item) for item in sandbox if identity(item) is not None]
        twice = sorted({str(name) for name in names if names.count(name) > 1})
        if twice:
            yield f"{where}: declared in both the shared file and sandbox/: {', '.join(twice)}"
    elif shared != sandbox:
        yield f"{where}: {shared!r} in the shared file, {sandbox!r} in the sandbox"


def test_the_sandbox_keeps_every_shared_thing_as_it_is():
    """One source of truth: every shared client, scope, role, mapping and policy is in the sandbox
    profile unchanged, and sandbox/ redefines none of them."""
    for name, shared in PRODUCTION.items():
        assert list(extends(without_record(shared), without_record(SANDBOX[name]), name)) == []


def without_record(realm: dict[str, Any]) -> dict[str, Any]:
    """The realm minus realm-sync's record of seeded users, which profile.py derives from `users`."""
    attributes = {k: v for k, v in realm.get("attributes", {}).items() if k != profile.SEEDED_USERS}
    return {**{k: v for k, v in realm.items() if k != "attributes"}, **({"attributes": attributes} if attributes else {})}


@pytest.mark.parametrize("name", ["production", "sandbox"])
def test_the_import_records_the_users_it_seeds(name: str):
    """Keycloak's first import creates the file's users; the record says so, so realm-sync leaves them
    to operators from the start (realm_sync.users)."""
    realm = realm_of(PRODUCTION if name == "production" else SANDBOX, "mcp")
    assert profile.SEEDED_USERS == RECORD_ATTRIBUTE
    assert realm["attributes"][RECORD_ATTRIBUTE] == record_of(realm["users"])


def test_the_sandbox_adds_exactly_the_demo_users_the_test_clients_and_the_realm_other():
    assert set(SANDBOX) - set(PRODUCTION) == {"other-realm.json"}
    assert realm_of(SANDBOX, "other")["realm"] == "other"
    shared, sandbox = realm_of(PRODUCTION, "mcp"), realm_of(SANDBOX, "mcp")
    assert clients(sandbox).keys() - clients(shared).keys() == TEST_ONLY_CLIENTS
    added_users = {u["username"] for u in sandbox["users"]} - {u["username"] for u in shared["users"]}
    service_accounts = {f"service-account-{name}" for name in TEST_ONLY_CLIENTS
                        if clients(sandbox)[name].get("serviceAccountsEnabled")}
    assert added_users == DEMO_USERS | service_accounts
    shared, sandbox = without_record(shared), without_record(sandbox)
    assert {key for key in sandbox if sandbox[key] != shared.get(key)} == {"users", "clients"}


@pytest.mark.parametrize("name", ["production", "sandbox"])
def test_every_service_account_and_every_role_it_names_is_declared(name: str):
    """A service account's roles gate the MCP scopes it gets: a machine client without its
    service-account user in the file would get none (or whatever an operator gave it)."""
    mcp = realm_of(rendered(name), "mcp")
    declared = {user["serviceAccountClientId"] for user in mcp["users"] if user.get("serviceAccountClientId")}
    assert declared == {name for name, client in clients(mcp).items() if client.get("serviceAccountsEnabled")}
    roles = {role["name"] for role in mcp["roles"]["realm"]}
    named = {role for user in mcp["users"] for role in user.get("realmRoles", [])}
    named |= {role for mapping in mcp["scopeMappings"] for role in mapping.get("roles", [])}
    named |= {role for r in mcp["roles"]["realm"] for role in r.get("composites", {}).get("realm", [])}
    assert named - roles == set()
    assert mcp["defaultRole"]["name"] in roles


@pytest.mark.parametrize("name", ["production", "sandbox"])
def test_a_record_of_seeded_users_in_a_rendered_file_is_exactly_its_users(name: str):
    """A rendered file may carry realm-sync's record (so that Keycloak's first import, which seeds
    the users, records them too); it must then say what realm-sync would record for those users."""
    for realm in rendered(name).values():
        record = realm.get("attributes", {}).get(RECORD_ATTRIBUTE)
        if record is not None:
            assert json.loads(record) == json.loads(record_of(realm.get("users", []))), realm["realm"]


def test_a_role_gating_an_mcp_scope_contains_no_other_role():
    """Keycloak grants a role-mapped scope to a holder of any role the mapped role contains:
    a composite gate would hand its scope to every holder of its parts."""
    mcp = realm_of(PRODUCTION, "mcp")
    roles = {role["name"]: role for role in mcp["roles"]["realm"]}
    gates = {role for mapping in mcp["scopeMappings"] if mapping["clientScope"].startswith("mcp:")
             for role in mapping["roles"]}
    assert gates
    assert [gate for gate in sorted(gates) if roles[gate].get("composites")] == []


# realm/profile.py itself

def write_realms(directory: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(json.dumps(content))
    return directory


def test_a_sandbox_file_appends_to_lists_and_merges_objects(tmp_path: Path):
    source = write_realms(tmp_path, {
        "r-realm.json": {"realm": "r", "accessTokenLifespan": 300, "clients": [{"clientId": "shared"}],
                         "attributes": {"a": "1"}, "roles": {"realm": [{"name": "shared-role"}]}},
        "sandbox/r-realm.json": {"realm": "r", "clients": [{"clientId": "test-only"}], "users": [{"username": "u"}],
                                 "attributes": {"b": "2"}, "roles": {"realm": [{"name": "test-role"}]}},
        "sandbox/s-realm.json": {"realm": "s"}})
    assert profile.render(source, "production") == {"r-realm.json": json.loads((source / "r-realm.json").read_text())}
    sandbox = profile.render(source, "sandbox")
    assert sandbox["r-realm.json"] == {
        "realm": "r", "accessTokenLifespan": 300, "clients": [{"clientId": "shared"}, {"clientId": "test-only"}],
        "attributes": {"a": "1", "b": "2", profile.SEEDED_USERS: '{"u":[]}'},
        "roles": {"realm": [{"name": "shared-role"}, {"name": "test-role"}]},
        "users": [{"username": "u"}]}
    assert sandbox["s-realm.json"] == {"realm": "s"}  # a file of its own: a realm of its own


@pytest.mark.parametrize(("shared", "extra", "error"), [
    ({"realm": "r", "clients": []}, {"realm": "r", "clients": {"c": 1}}, "clients is a list in the shared file, a dict here"),
    ({"realm": "r", "clientPolicies": {"policies": []}}, {"realm": "r", "clientPolicies": {"policies": {}}},
     r"clientPolicies: policies is a list"),
    ({"realm": "r"}, {"realm": "other"}, "realm 'other', but .* is 'r'"),
])
def test_a_sandbox_file_that_contradicts_the_shared_one_is_refused(tmp_path: Path, shared: dict, extra: dict, error: str):
    source = write_realms(tmp_path, {"r-realm.json": shared, "sandbox/r-realm.json": extra})
    with pytest.raises(ValueError, match=error):
        profile.render(source, "sandbox")
    assert profile.main(["--profile", "sandbox", str(source), str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_an_unknown_profile_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown profile 'staging'"):
        profile.render(tmp_path, "staging")


def test_the_rendered_files_are_what_render_says(tmp_path: Path):
    assert profile.main(["--profile", "sandbox", str(REALM_DIR), str(tmp_path)]) == 0
    assert {path.name: json.loads(path.read_text()) for path in tmp_path.glob("*.json")} == SANDBOX


# Token exchange for the notes API (docs/decisions.md, "The downstream API")

@pytest.mark.parametrize("profile_name", ["production", "sandbox"])
def test_only_the_mcp_servers_client_may_exchange_tokens(profile_name: str):
    mcp = clients(realm_of(rendered(profile_name), "mcp"))
    exchanging = sorted(name for name, client in mcp.items()
                        if client.get("attributes", {}).get("standard.token.exchange.enabled") == "true")
    assert exchanging == [RESOURCE_CLIENT]
    # Confidential, with its own key (private_key_jwt): public clients cannot exchange at all.
    assert mcp[RESOURCE_CLIENT]["publicClient"] is False
    assert mcp[RESOURCE_CLIENT]["clientAuthenticatorType"] == "client-jwt"


@pytest.mark.parametrize("profile_name", ["production", "sandbox"])
def test_only_the_mcp_servers_client_can_obtain_the_notes_scopes(profile_name: str):
    """The notes scopes carry the API's audience: a client that could ask for them directly would
    get a token for the API without the exchange. Only the MCP server's client has them, as
    optional scopes; no realm default hands them to new (DCR, CIMD) clients."""
    realm = realm_of(rendered(profile_name), "mcp")
    holders = sorted(name for name, client in clients(realm).items()
                     if NOTES_SCOPES & {*client.get("defaultClientScopes", []), *client.get("optionalClientScopes", [])})
    assert holders == [RESOURCE_CLIENT]
    assert set(clients(realm)[RESOURCE_CLIENT]["optionalClientScopes"]) == NOTES_SCOPES
    assert not NOTES_SCOPES & {*realm["defaultDefaultClientScopes"], *realm["defaultOptionalClientScopes"]}


def test_the_notes_scopes_are_gated_by_a_role_and_carry_the_apis_audience_alone():
    realm = realm_of(PRODUCTION, "mcp")
    gates = {m["clientScope"]: m["roles"] for m in realm["scopeMappings"]}
    assert {scope: gates.get(scope) for scope in NOTES_SCOPES} == {scope: ["notes-user"] for scope in NOTES_SCOPES}
    for scope in realm["clientScopes"]:
        if scope["name"] in NOTES_SCOPES:
            audiences = [m["config"] for m in scope["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
            # A client audience (V2's `audience` parameter names a client), and not the MCP server's.
            assert audiences == [{**audiences[0], "included.client.audience": API_CLIENT}]
            assert "included.custom.audience" not in audiences[0]


def test_nobody_can_obtain_a_token_as_the_notes_api():
    api = clients(realm_of(PRODUCTION, "mcp"))[API_CLIENT]
    assert api["publicClient"] is False
    assert not any(api.get(flow) for flow in ("standardFlowEnabled", "implicitFlowEnabled", "directAccessGrantsEnabled",
                                             "serviceAccountsEnabled"))
    # No credential at all: no key, no secret.
    assert "jwks.url" not in api.get("attributes", {})
    assert "secret" not in api
    assert api["defaultClientScopes"] == api["optionalClientScopes"] == []


def test_alice_holds_the_notes_role_and_ada_does_not():
    users = {u["username"]: u for u in realm_of(SANDBOX, "mcp")["users"]}
    assert "notes-user" in users["alice"]["realmRoles"]
    # ada administers the MCP server; that gives her no notes (a user without the API permission).
    assert "notes-user" not in users["ada"]["realmRoles"]
