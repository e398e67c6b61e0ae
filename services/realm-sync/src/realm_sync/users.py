"""Users: created once, then left to operators.

A user the file declares is seeded: created when missing, with the file's password and realm
roles. After that the user belongs to the realm's operators: realm-sync never re-creates a user
they deleted, never re-enables one they disabled, never resets a password or a profile field,
and never takes a role away. What it still does is apply a *change to the file* once: a realm
role newly declared for a user is granted, one time.

To tell "deleted by an operator" from "never created", and "role removed by an operator" from
"role newly declared", realm-sync keeps a record in the realm itself: the realm attribute
`realmSync.users`, a JSON object {user: [the realm roles of the file, as last applied]}.
- a declared user not in the record is created when missing, or adopted when it exists (Keycloak's
  first import created it): it gets the file's realm roles it lacks, and is recorded;
- a user in the record is never created again, never updated; it gets only the roles the file
  declares and the record does not list yet, and the record then lists them.
Service accounts (`serviceAccountClientId`) come with their client; they follow the same role
rule, recorded as `service-account-<clientId>`. A client realm-sync creates has a new service
account: the record's entry for the old one does not apply to it.

Keycloak's first import seeds the users too. A rendered realm file may carry the record of its
own users (`attributes.realmSync.users`, as `record_of` writes it), so that the import records
them as well; without it, realm-sync's first run adopts them. realm-sync itself goes by the
record in the realm, never by a file's.

`plan` is that rule, without Keycloak: what to do for each declared user, given the record and
what the realm holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from realm_sync.admin import Admin, SyncError
from realm_sync.realm import RECORD_ATTRIBUTE

__all__ = ["RECORD_ATTRIBUTE", "Existing", "UserAction", "UserSync", "plan", "read_record", "record_of", "write_record"]


@dataclass(frozen=True)
class Existing:
    """A user as the realm has it: its id and the realm roles it holds (composites expanded)."""

    id: str
    roles: frozenset[str]


@dataclass(frozen=True)
class UserAction:
    """What realm-sync does for one declared user. `record` is the user's new entry in the record
    (None: the entry stays as it is); `grant` the realm roles granted; `note` says why nothing
    happens where that is worth saying (a user an operator deleted)."""

    key: str
    user: Mapping[str, Any]
    create: bool = False
    grant: tuple[str, ...] = ()
    record: tuple[str, ...] | None = None
    note: str = ""


def record_key(user: Mapping[str, Any]) -> str:
    client = user.get("serviceAccountClientId")
    return f"service-account-{client}" if client else str(user["username"])


def plan(users: Iterable[Mapping[str, Any]], record: Mapping[str, Iterable[str]],
         existing: Mapping[str, Existing | None], default_role: str | None = None) -> list[UserAction]:
    """The actions for the declared `users`, by the rule above. `existing` holds, per record key,
    the user the realm has (None: none). A user realm-sync creates gets the realm's default role
    from Keycloak itself; `default_role` is left out of what it then grants."""
    actions = []
    for user in users:
        key = record_key(user)
        declared = tuple(sorted(set(user.get("realmRoles", []))))
        have = existing.get(key)
        if key not in record:
            if have is None:
                if user.get("serviceAccountClientId"):
                    # Keycloak creates it with its client; nothing to create, nothing to record yet.
                    actions.append(UserAction(key, user, note="no service account user yet (its client has none)"))
                else:
                    grant = tuple(role for role in declared if role != default_role)
                    actions.append(UserAction(key, user, create=True, grant=grant, record=declared))
            else:
                # Adopted: created by Keycloak's import (or by hand) before realm-sync recorded it.
                grant = tuple(role for role in declared if role not in have.roles)
                actions.append(UserAction(key, user, grant=grant, record=declared))
            continue
        recorded = set(record[key])
        if have is None:
            note = ("its client has no service account" if user.get("serviceAccountClientId")
                    else "in realm-sync's record but not in the realm: deleted by an operator, left deleted")
            actions.append(UserAction(key, user, note=note))
            continue
        new = [role for role in declared if role not in recorded]
        grant = tuple(role for role in new if role not in have.roles)
        # The record becomes the file's roles as applied now: a role dropped from the file and
        # declared again later is a new declaration, applied once more.
        changed = set(declared) != recorded
        actions.append(UserAction(key, user, grant=grant, record=declared if changed else None))
    return actions


def read_record(attributes: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The record from the realm's attributes ({} when there is none yet)."""
    raw = (attributes or {}).get(RECORD_ATTRIBUTE)
    if not raw:
        return {}
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not all(
            isinstance(roles, list) and all(isinstance(role, str) for role in roles) for roles in record.values()):
        raise ValueError(f"realm attribute {RECORD_ATTRIBUTE} is not a JSON object of user -> [realm roles]; "
                         "fix it or delete it (then every declared user is adopted, or created if missing, again)")
    return {str(key): list(roles) for key, roles in record.items()}


def write_record(record: Mapping[str, Iterable[str]]) -> str:
    return json.dumps({key: sorted(roles) for key, roles in sorted(record.items())}, separators=(",", ":"))


def record_of(users: Iterable[Mapping[str, Any]]) -> str:
    """The record of `users` as seeded from the file: what Keycloak's import of the file does, and
    what a rendered file's `attributes.realmSync.users` holds (so that the import records them)."""
    return write_record({record_key(user): user.get("realmRoles", []) for user in users})


class UserSync:
    """The users of one realm file, by `plan`, and the record that makes it possible."""

    def __init__(self, admin: Admin, name: str, base: str) -> None:
        self.admin, self.name, self.base = admin, name, base

    def run(self, realm: Mapping[str, Any], new_clients: Iterable[str] = ()) -> None:
        if "users" not in realm:
            return
        current = self.admin.get(self.base)
        try:
            before = read_record(current.get("attributes"))
        except ValueError as error:
            raise SyncError(f"{self.name}: {error}") from error
        # A client created in this run comes with a new service account: an entry for an older one is not its.
        fresh = {f"service-account-{client}" for client in new_clients}
        known = {key: roles for key, roles in before.items() if key not in fresh}
        users = realm["users"]
        existing = {record_key(user): self.existing(user) for user in users}
        record = dict(before)
        for action in plan(users, known, existing, (current.get("defaultRole") or {}).get("name")):
            self.apply(action, existing[action.key])
            if action.record is not None:
                record[action.key] = list(action.record)
        changed = [key for key in sorted(record) if sorted(record[key]) != sorted(before.get(key, [])) or key not in before]
        if changed:
            # The whole realm as Keycloak gave it, with the record added: Keycloak's realm update
            # replaces the realm's attributes with the body's, dropping those it lacks (and the
            # settings it keeps as attributes, such as the browser security headers, unless the
            # body has them too). Keycloak 26 keeps the record's value in a TEXT column.
            attributes = {**(current.get("attributes") or {}), RECORD_ATTRIBUTE: write_record(record)}
            self.admin.write("PUT", self.base, f"{self.name}: users {', '.join(changed)} recorded as seeded "
                             f"(realm attribute {RECORD_ATTRIBUTE})", {**current, "attributes": attributes})

    def existing(self, user: Mapping[str, Any]) -> Existing | None:
        client_id = user.get("serviceAccountClientId")
        if client_id:
            clients = self.admin.get(f"{self.base}/clients", clientId=client_id)
            if not clients or not clients[0].get("serviceAccountsEnabled"):
                return None
            found = self.admin.get(f"{self.base}/clients/{clients[0]['id']}/service-account-user")
        else:
            users = self.admin.get(f"{self.base}/users", username=user["username"], exact="true")
            found = users[0] if users else None
        if found is None:
            return None
        roles = self.admin.get(f"{self.base}/users/{found['id']}/role-mappings/realm/composite")
        return Existing(found["id"], frozenset(role["name"] for role in roles))

    def apply(self, action: UserAction, have: Existing | None) -> None:
        what = f"{self.name}: user {action.user['username']}"
        if action.note:
            print(f"realm-sync: {what}: {action.note}", flush=True)
        roles = self.admin.realm_roles(self.base, action.grant)
        unknown = [name for name, role in zip(action.grant, roles, strict=True) if role is None]
        if unknown and not self.admin.dry_run:
            raise SyncError(f"{what}: realmRoles names {', '.join(unknown)}, which the realm does not have")
        user_id = have.id if have else "<new>"
        if action.create:
            body = {key: value for key, value in action.user.items() if key not in ("id", "realmRoles")}
            response = self.admin.write("POST", f"{self.base}/users", f"{what} created", body)
            if response is not None:
                user_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        if action.grant:
            self.admin.write("POST", f"{self.base}/users/{user_id}/role-mappings/realm",
                             f"{what}: realm roles {', '.join(action.grant)} granted", roles)
