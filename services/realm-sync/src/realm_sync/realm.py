"""Reading a realm file as Keycloak's import would: placeholders filled, unsupported parts refused."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# `${NAME}` with an upper-case name is an environment placeholder, as in Keycloak's import.
# Lower-case ones (`${client_admin-cli}`) are Keycloak's message keys and stay literal.
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# The parts of a realm representation this tool applies (sync.py; roles in roles.py, users in users.py).
MANAGED = frozenset({
    "clientScopes", "defaultDefaultClientScopes", "defaultOptionalClientScopes", "scopeMappings",
    "clientProfiles", "clientPolicies", "components", "clients", "users", "roles", "defaultRole", "attributes",
})
# The realm attribute holding realm-sync's record of the users it seeded (users.py). The only
# attribute a realm file may carry: a rendered file can hold the record of its own users, so that
# Keycloak's first import, which seeds them, records them too. realm-sync itself goes by the record
# in the realm, never by a file's.
RECORD_ATTRIBUTE = "realmSync.users"


class RealmFileError(Exception):
    """A realm file this tool cannot apply as written (the message says why and what to do)."""


def variables(environ: Mapping[str, str], secrets_dir: Path) -> dict[str, str]:
    """The placeholder values: the environment, plus each secret file as its upper-cased name
    (`/run/secrets/demo_user_password` fills `${DEMO_USER_PASSWORD}`), as Keycloak's entrypoint does."""
    values = dict(environ)
    if secrets_dir.is_dir():
        for secret in sorted(secrets_dir.iterdir()):
            if secret.is_file():
                values.setdefault(secret.name.upper(), secret.read_text().strip())
    return values


def fill(value: Any, values: Mapping[str, str], where: str) -> Any:
    """`value` with every environment placeholder replaced; an unset one is an error, not ''."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise RealmFileError(f"{where}: placeholder ${{{name}}} is not set (environment or /run/secrets)")
            return values[name]
        return PLACEHOLDER.sub(replace, value)
    if isinstance(value, list):
        return [fill(item, values, where) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values, where) for key, item in value.items()}
    return value


def settings(realm: Mapping[str, Any]) -> dict[str, Any]:
    """The realm's own settings: everything that is a value or a list of values (token lifespans,
    brute-force protection, event listeners...), applied with one PUT of the realm."""
    return {key: value for key, value in realm.items()
            if key not in MANAGED and not isinstance(value, dict)
            and not (isinstance(value, list) and any(isinstance(item, dict) for item in value))}


def read(path: Path) -> dict[str, Any]:
    """A realm file as JSON: an object with a "realm" name, or RealmFileError naming the file."""
    try:
        realm = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RealmFileError(f"{path}: not a readable JSON realm file ({error})") from error
    if not isinstance(realm, dict) or not isinstance(realm.get("realm"), str):
        raise RealmFileError(f"{path}: a realm file is a JSON object with a \"realm\" name")
    return realm


def load(path: Path, values: Mapping[str, str]) -> dict[str, Any]:
    """One realm file, placeholders filled. Parts of a realm this tool does not apply (groups,
    client roles, identity providers, flows...) are refused by name, rather than silently ignored."""
    realm = read(path)
    unsupported = sorted(set(realm) - MANAGED - set(settings(realm)))
    if unsupported:
        raise RealmFileError(
            f"{path}: realm-sync does not apply {', '.join(unsupported)}; apply such a change by hand in the "
            "admin API, or recreate the sandbox's data with 'make clean && make up'")
    attributes = realm.get("attributes", {})
    if not isinstance(attributes, dict) or set(attributes) - {RECORD_ATTRIBUTE}:
        raise RealmFileError(
            f"{path}: realm-sync does not apply attributes (only {RECORD_ATTRIBUTE}, its record of seeded users, may be "
            "in a file); apply such a change by hand in the admin API")
    filled: dict[str, Any] = fill(realm, values, str(path))
    declared_roles(filled, str(path))
    declared_users(filled, str(path))
    return filled


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def declared_roles(realm: Mapping[str, Any], where: str = "") -> list[dict[str, Any]]:
    """The realm roles the file declares (`roles.realm`), with `defaultRole` merged into its entry
    (Keycloak's export names the default role in both). Composites are checked here, so that a
    malformed file is refused before the first write; client roles (`roles.client`) are not applied."""
    where = where or realm.get("realm", "?")
    roles = realm.get("roles", {})
    if not isinstance(roles, dict) or not isinstance(roles.get("realm", []), list):
        raise RealmFileError(f"{where}: roles is an object whose \"realm\" is a list of realm roles")
    if roles.get("client"):
        raise RealmFileError(f"{where}: realm-sync does not apply roles.client (client roles); apply such a change by "
                             "hand in the admin API, or recreate the sandbox's data with 'make clean && make up'")
    unknown = sorted(set(roles) - {"realm", "client"})
    if unknown:
        raise RealmFileError(f"{where}: realm-sync does not apply roles.{', roles.'.join(unknown)}")
    declared: dict[str, dict[str, Any]] = {}
    for role in roles.get("realm", []):
        if not isinstance(role, dict) or not isinstance(role.get("name"), str):
            raise RealmFileError(f"{where}: every entry of roles.realm is an object with a \"name\"")
        if role["name"] in declared:
            raise RealmFileError(f"{where}: realm role {role['name']} is declared twice")
        declared[role["name"]] = dict(role)
    default = realm.get("defaultRole")
    if default is not None:
        if not isinstance(default, dict) or not isinstance(default.get("name"), str):
            raise RealmFileError(f"{where}: defaultRole is an object with a \"name\"")
        entry = declared.setdefault(default["name"], {"name": default["name"]})
        for key in ("description", "composite", "composites", "attributes"):
            if key in default:
                if key in entry and entry[key] != default[key]:
                    raise RealmFileError(f"{where}: defaultRole and roles.realm say different things about "
                                         f"{default['name']}'s {key}")
                entry[key] = default[key]
    for name, role in declared.items():
        composites = role.get("composites", {})
        if (not isinstance(composites, dict) or set(composites) - {"realm", "client"}
                or not _names(composites.get("realm", []))
                or not isinstance(composites.get("client", {}), dict)
                or not all(_names(names) for names in composites.get("client", {}).values())):
            raise RealmFileError(f"{where}: realm role {name}: composites is {{\"realm\": [role names], "
                                 "\"client\": {clientId: [role names]}}")
    return list(declared.values())


def declared_users(realm: Mapping[str, Any], where: str = "") -> list[dict[str, Any]]:
    """The users the file declares: people by `username`, service accounts by `serviceAccountClientId`."""
    where = where or realm.get("realm", "?")
    users: list[dict[str, Any]] = realm.get("users", [])
    seen: set[str] = set()
    for user in users:
        if not isinstance(user, dict) or not isinstance(user.get("username"), str):
            raise RealmFileError(f"{where}: every user is an object with a \"username\"")
        if not _names(user.get("realmRoles", [])):
            raise RealmFileError(f"{where}: user {user['username']}: realmRoles is a list of realm role names")
        if user.get("clientRoles") or user.get("groups"):
            raise RealmFileError(f"{where}: user {user['username']}: realm-sync grants realm roles only "
                                 "(not clientRoles or groups)")
        if user["username"] in seen:
            raise RealmFileError(f"{where}: user {user['username']} is declared twice")
        seen.add(user["username"])
    return users


def realm_files(paths: list[Path]) -> list[Path]:
    """The files to apply: each given file, and the *.json files of each given directory."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            found.append(path)
        else:
            raise RealmFileError(f"{path}: no such realm file or directory")
    if not found:
        raise RealmFileError(f"no realm file (*.json) in {', '.join(map(str, paths))}")
    return found

