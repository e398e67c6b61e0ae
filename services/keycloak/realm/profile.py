"""Render the realm files of one profile: `production`, or `sandbox` (production plus the demo).

    python3 profile.py --profile sandbox SOURCE_DIR OUT_DIR

SOURCE_DIR/*.json is what every deployment shares: scopes, roles, role scope mappings, client
policies, the MCP clients. SOURCE_DIR/sandbox/*.json adds what only the sandbox and its tests
have: demo users, test-only clients, the second realm of the negative tests. A sandbox file
whose realm is also in SOURCE_DIR is merged into it: its lists of things (users, clients, scope
mappings...) are appended, its values override; a file of its own is a realm of its own.

One source of truth, two outputs: nothing shared is written twice. Standard library only: the
Keycloak image runs this in its build, realm-sync's image too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PROFILES = ("production", "sandbox")


def merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        have = merged.get(key)
        if isinstance(have, list) and isinstance(value, list):
            merged[key] = have + value
        elif isinstance(have, dict) and isinstance(value, dict):
            merged[key] = merge(have, value, f"{where}.{key}")
        elif key in merged and type(have) is not type(value):
            raise ValueError(f"{where}: {key} is a {type(have).__name__} in the shared file, a {type(value).__name__} here")
        else:
            merged[key] = value
    return merged


def render(source: Path, profile: str) -> dict[str, dict[str, Any]]:
    """File name -> realm representation, for `profile`."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    realms = {path.name: json.loads(path.read_text()) for path in sorted(source.glob("*.json"))}
    if profile == "sandbox":
        for path in sorted((source / "sandbox").glob("*.json")):
            extra = json.loads(path.read_text())
            base = realms.get(path.name)
            if base is not None and base.get("realm") != extra.get("realm"):
                raise ValueError(f"{path}: realm {extra.get('realm')!r}, but {source / path.name} is {base.get('realm')!r}")
            realms[path.name] = merge(base, extra, str(path)) if base is not None else extra
    for realm in realms.values():
        if "users" in realm:
            realm.setdefault("attributes", {})[SEEDED_USERS] = seeded(realm["users"])
    return realms


# realm-sync creates the file's users once and then leaves them to operators; it remembers which
# in this realm attribute (services/realm-sync: users.py). Keycloak's first import creates them,
# so the imported realm carries the record from the start.
SEEDED_USERS = "realmSync.users"


def seeded(users: list[dict[str, Any]]) -> str:
    """The record realm-sync keeps (realm_sync.users.record_of): who -> the realm roles granted."""
    record = {(f"service-account-{u['serviceAccountClientId']}" if u.get("serviceAccountClientId") else u["username"]):
              sorted(u.get("realmRoles", [])) for u in users}
    return json.dumps(dict(sorted(record.items())), separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="profile.py", description="Render the realm files of one profile.")
    parser.add_argument("--profile", choices=PROFILES, required=True)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        realms = render(args.source, args.profile)
    except (OSError, ValueError) as error:
        print(f"realm profile {args.profile}: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, realm in realms.items():
        (args.out / name).write_text(json.dumps(realm, indent=2, ensure_ascii=False) + "\n")
    print(f"realm profile {args.profile}: {', '.join(sorted(realms))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
