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

# The parts of a realm representation this tool applies; each is handled in sync.py.
MANAGED = frozenset({
    "clientScopes", "defaultDefaultClientScopes", "defaultOptionalClientScopes", "scopeMappings",
    "clientProfiles", "clientPolicies", "components", "clients", "users",
})


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


def load(path: Path, values: Mapping[str, str]) -> dict[str, Any]:
    """One realm file, placeholders filled. Parts of a realm this tool does not apply (groups,
    roles, identity providers, flows...) are refused by name, rather than silently ignored."""
    try:
        realm = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RealmFileError(f"{path}: not a readable JSON realm file ({error})") from error
    if not isinstance(realm, dict) or not isinstance(realm.get("realm"), str):
        raise RealmFileError(f"{path}: a realm file is a JSON object with a \"realm\" name")
    unsupported = sorted(set(realm) - MANAGED - set(settings(realm)))
    if unsupported:
        raise RealmFileError(
            f"{path}: realm-sync does not apply {', '.join(unsupported)}; apply such a change by hand in the "
            "admin API, or recreate the sandbox's data with 'make clean && make up'")
    filled: dict[str, Any] = fill(realm, values, str(path))
    return filled


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

