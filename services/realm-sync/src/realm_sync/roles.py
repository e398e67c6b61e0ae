"""Realm roles: the roles the file declares exist, with its description and composites.

A declared role is created when missing; its description (and attributes, when the file has
some) are made the file's. Its composites are made exactly the file's: the realm roles of
`composites.realm`, and, for each client `composites.client` names, that client's roles; a
client the file does not name keeps its roles in the composite (Keycloak puts the `account`
client's roles into every realm's default role). A role without `composites` has none, unless
the file says `"composite": true` without saying of what (then they are left as they are).

`defaultRole` names the realm's default role (`default-roles-<realm>`, which every realm has and
which every new user gets): what the file says about it is applied to that role, as to any other.
Roles the file does not declare are reported, never deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from realm_sync.admin import Admin, SyncError, matches
from realm_sync.realm import declared_roles


def desired_composites(role: Mapping[str, Any]) -> dict[str, Any] | None:
    """{"realm": names, "client": {clientId: names}} the role must be made of; None: not managed."""
    if "composites" not in role:
        return None if role.get("composite") is True else {"realm": [], "client": {}}
    composites = role["composites"]
    return {"realm": list(composites.get("realm", [])), "client": dict(composites.get("client", {}))}


class RoleSync:
    """The realm roles of one realm file."""

    def __init__(self, admin: Admin, name: str, base: str, unmanaged: list[str]) -> None:
        self.admin, self.name, self.base, self.unmanaged = admin, name, base, unmanaged

    def run(self, realm: Mapping[str, Any], current_realm: Mapping[str, Any]) -> None:
        if "roles" not in realm and "defaultRole" not in realm:
            return
        declared = declared_roles(realm)
        default = realm.get("defaultRole")
        have_default = (current_realm.get("defaultRole") or {}).get("name")
        if default is not None and default["name"] != have_default:
            raise SyncError(f"{self.name}: defaultRole is {default['name']}, but the realm's default role is {have_default} "
                            "(Keycloak names it default-roles-<realm>; realm-sync does not rename it)")
        current = {role["name"]: role for role in self.admin.get(f"{self.base}/roles", briefRepresentation="false")}
        # Every role first, then the composites: a composite may name a role created just before.
        for role in declared:
            self.fields(role, current.get(role["name"]))
        for role in declared:
            wanted = desired_composites(role)
            if wanted is not None:
                self.composites(role["name"], wanted)
        if "roles" in realm:
            names = {role["name"] for role in declared}
            self.unmanaged += [f"realm role {name}" for name in sorted(current.keys() - names)]

    def fields(self, role: Mapping[str, Any], have: Mapping[str, Any] | None) -> None:
        what = f"{self.name}: realm role {role['name']}"
        fields = {key: role[key] for key in ("name", "description", "attributes") if key in role}
        if have is None:
            self.admin.write("POST", f"{self.base}/roles", f"{what} created", fields)
        elif not matches(fields, have):
            # Keycloak's update sets the description from the body (absent: none): keep the current one.
            self.admin.write("PUT", f"{self.base}/roles/{quote(role['name'], safe='')}", f"{what} updated",
                             {"description": have.get("description"), **fields})

    def composites(self, name: str, wanted: Mapping[str, Any]) -> None:
        what = f"{self.name}: realm role {name}"
        owner = f"{self.base}/roles/{quote(name, safe='')}/composites"
        have = self.admin.get(owner) or []  # none when the role is only about to be created (dry run)
        add: list[tuple[str, Any]] = []      # (the name printed, the role's representation)
        remove: list[tuple[str, Any]] = []

        realm_have = {role["name"]: role for role in have if not role.get("clientRole")}
        missing = sorted(set(wanted["realm"]) - realm_have.keys())
        add += zip(missing, self.admin.realm_roles(self.base, missing), strict=True)
        remove += [(role, realm_have[role]) for role in sorted(realm_have.keys() - set(wanted["realm"]))]

        for client_id, names in sorted(wanted["client"].items()):
            found = self.admin.get(f"{self.base}/clients", clientId=client_id)
            client_have = {role["name"]: role for role in have
                           if found and role.get("clientRole") and role.get("containerId") == found[0]["id"]}
            client = f"{self.base}/clients/{found[0]['id']}" if found else None
            add += [(f"{client_id}/{role}", self.admin.get(f"{client}/roles/{quote(role, safe='')}") if client else None)
                    for role in sorted(set(names) - client_have.keys())]
            remove += [(f"{client_id}/{role}", client_have[role]) for role in sorted(client_have.keys() - set(names))]

        unknown = [shown for shown, role in add if role is None]
        if unknown and not self.admin.dry_run:
            raise SyncError(f"{what}: composites name {', '.join(unknown)}, which the realm does not have")
        if add:
            self.admin.write("POST", owner, f"{what}: composites {', '.join(n for n, _ in add)} added", [r for _, r in add])
        if remove:
            self.admin.write("DELETE", owner, f"{what}: composites {', '.join(n for n, _ in remove)} removed",
                             [r for _, r in remove])
