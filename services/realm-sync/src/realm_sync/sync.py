"""Making a running Keycloak match a realm file, through the admin API.

The rule, for every part of the file:
- what the file declares is made to match it, including the lists inside a declared thing (a
  scope's protocol mappers, a client's default scopes, the client policies);
- what the file does not name is never deleted: DCR- and CIMD-created clients, users who signed
  up, sessions and consents live in the same realm. Client scopes and registration policies the
  file does not name are reported, so a rename does not go unnoticed;
- realm roles the file declares are made to match it (description, composites); others are reported;
- users are created once, then left to operators (users.py): never re-created, re-enabled or
  updated; only a realm role newly declared for a user in the file is granted, once.
Each write is made only when Keycloak's answer differs from the file, so a second run writes
nothing and reports the realm up to date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from realm_sync.admin import Admin, SyncError, matches, without
from realm_sync.realm import settings
from realm_sync.roles import RoleSync
from realm_sync.users import UserSync

__all__ = ["Admin", "RealmSync", "SyncError", "matches"]


class RealmSync:
    """One realm file applied to one Keycloak."""

    def __init__(self, admin: Admin, realm: Mapping[str, Any]) -> None:
        self.admin, self.realm = admin, realm
        self.name: str = realm["realm"]
        self.base = f"/{quote(self.name, safe='')}"
        self.unmanaged: list[str] = []

    def run(self) -> None:
        before = len(self.admin.changes)
        current = self.admin.get(self.base)
        users = UserSync(self.admin, self.name, self.base)
        if current is None:
            self.admin.write("POST", "", f"{self.name}: realm created from the file", self.realm)
            if not self.admin.dry_run:
                users.run(self.realm)  # Keycloak's import created them: recorded, as seeded
        else:
            self.settings(current)
            RoleSync(self.admin, self.name, self.base, self.unmanaged).run(self.realm, current)
            self.client_scopes()
            self.default_scopes()
            self.scope_mappings()
            self.client_policies()
            self.components(current["id"])
            created = self.clients()
            users.run(self.realm, new_clients=created)
        for thing in self.unmanaged:
            print(f"realm-sync: {self.name}: {thing} is not in the file (left in place)", flush=True)
        changed = len(self.admin.changes) - before
        print(f"realm-sync: {self.name}: " + (f"{changed} change(s)" if changed else "up to date"), flush=True)

    # The realm's own settings (lifespans, brute-force protection, events...)
    def settings(self, current: Mapping[str, Any]) -> None:
        wanted = settings(self.realm)
        differ = sorted(key for key, value in wanted.items() if not matches(value, current.get(key)))
        if differ:
            self.admin.write("PUT", self.base, f"{self.name}: realm settings {', '.join(differ)}", wanted)

    # Client scopes and their protocol mappers
    def scope_ids(self) -> dict[str, str]:
        return {scope["name"]: scope["id"] for scope in self.admin.get(f"{self.base}/client-scopes")}

    def client_scopes(self) -> None:
        if "clientScopes" not in self.realm:
            return
        current = {scope["name"]: scope for scope in self.admin.get(f"{self.base}/client-scopes")}
        for scope in self.realm["clientScopes"]:
            name, have = scope["name"], current.get(scope["name"])
            what = f"{self.name}: client scope {name}"
            if have is None:
                self.admin.write("POST", f"{self.base}/client-scopes", f"{what} created", without(scope, "id"))
                continue
            fields = without(scope, "id", "protocolMappers")
            if not matches(fields, have):
                self.admin.write("PUT", f"{self.base}/client-scopes/{have['id']}", f"{what} updated", {**fields, "id": have["id"]})
            if "protocolMappers" in scope:
                self.protocol_mappers(f"{self.base}/client-scopes/{have['id']}", what, scope["protocolMappers"],
                                      have.get("protocolMappers", []))
        declared = {scope["name"] for scope in self.realm["clientScopes"]}
        self.unmanaged += [f"client scope {name}" for name in sorted(current.keys() - declared)]

    def protocol_mappers(self, owner: str, what: str, desired: Iterable[Mapping[str, Any]],
                         current: Iterable[Mapping[str, Any]]) -> None:
        have = {mapper["name"]: mapper for mapper in current}
        wanted = {mapper["name"]: without(mapper, "id") for mapper in desired}
        for name, mapper in wanted.items():
            if name not in have:
                self.admin.write("POST", f"{owner}/protocol-mappers/models", f"{what}: protocol mapper {name} added", mapper)
            elif not matches(mapper, have[name]):
                self.admin.write("PUT", f"{owner}/protocol-mappers/models/{have[name]['id']}",
                                 f"{what}: protocol mapper {name} updated", {**mapper, "id": have[name]["id"]})
        for name in sorted(have.keys() - wanted.keys()):
            self.admin.write("DELETE", f"{owner}/protocol-mappers/models/{have[name]['id']}",
                             f"{what}: protocol mapper {name} removed")

    def scope_links(self, owner: str, what: str, kinds: Mapping[str, Iterable[str] | None]) -> None:
        """Make the default and optional scopes of `owner` (the realm, or a client) the declared
        ones: removals first, so a scope can move from one list to the other."""
        ids = self.scope_ids()
        declared = {kind: set(names) for kind, names in kinds.items() if names is not None}
        current = {kind: {scope["name"]: scope["id"] for scope in self.admin.get(f"{owner}/{kind}")} for kind in declared}
        for kind, names in declared.items():
            for name in sorted(current[kind].keys() - names):
                self.admin.write("DELETE", f"{owner}/{kind}/{current[kind][name]}", f"{what}: {name} no longer in {kind}")
        for kind, names in declared.items():
            for name in sorted(names - current[kind].keys()):
                if name not in ids and not self.admin.dry_run:
                    raise SyncError(f"{what}: {kind} names client scope {name!r}, which the realm does not have")
                self.admin.write("PUT", f"{owner}/{kind}/{ids.get(name, name)}", f"{what}: {name} added to {kind}")

    def default_scopes(self) -> None:
        self.scope_links(self.base, self.name, {
            "default-default-client-scopes": self.realm.get("defaultDefaultClientScopes"),
            "default-optional-client-scopes": self.realm.get("defaultOptionalClientScopes"),
        })

    def scope_mappings(self) -> None:
        """Realm roles a client scope (or a client) carries into tokens: offline_access's role."""
        for mapping in self.realm.get("scopeMappings", []):
            if "clientScope" in mapping:
                scope_id = self.scope_ids().get(mapping["clientScope"])
                what = f"{self.name}: client scope {mapping['clientScope']}"
                owner = f"{self.base}/client-scopes/{scope_id}" if scope_id else None
            else:
                found = self.admin.get(f"{self.base}/clients", clientId=mapping["client"])
                what = f"{self.name}: client {mapping['client']}"
                owner = f"{self.base}/clients/{found[0]['id']}" if found else None
            if owner is None:
                if self.admin.dry_run:
                    continue
                raise SyncError(f"{what}: scope mapping for something the realm does not have")
            have = {role["name"]: role for role in self.admin.get(f"{owner}/scope-mappings/realm")}
            wanted = set(mapping.get("roles", []))
            missing = sorted(wanted - have.keys())
            if missing:
                self.admin.write("POST", f"{owner}/scope-mappings/realm",
                                 f"{what}: realm roles {', '.join(missing)} mapped",
                                 self.admin.realm_roles(self.base, missing))
            extra = [have[name] for name in sorted(have.keys() - wanted)]
            if extra:
                self.admin.write("DELETE", f"{owner}/scope-mappings/realm",
                                 f"{what}: realm roles {', '.join(role['name'] for role in extra)} unmapped", extra)

    # Client policies (CIMD, PKCE, no password grant, what anonymous DCR may register)
    def client_policies(self) -> None:
        for key, path in (("clientProfiles", "client-policies/profiles"), ("clientPolicies", "client-policies/policies")):
            if key in self.realm and not matches(self.realm[key], self.admin.get(f"{self.base}/{path}")):
                self.admin.write("PUT", f"{self.base}/{path}", f"{self.name}: {key} updated", self.realm[key])

    # Components: the client registration policies (anonymous and authenticated DCR)
    def components(self, realm_id: str) -> None:
        for provider_type, declared in self.realm.get("components", {}).items():
            current = self.admin.get(f"{self.base}/components", parent=realm_id, type=provider_type)
            index = {(c["name"], c["providerId"], c.get("subType")): c for c in current}
            kind = provider_type.rsplit(".", 1)[-1]
            for component in declared:
                key = (component["name"], component["providerId"], component.get("subType"))
                what = f"{self.name}: {kind} '{key[0]}' ({key[2] or 'realm'})"
                fields = without(component, "id", "subComponents")
                if key not in index:
                    self.admin.write("POST", f"{self.base}/components", f"{what} created",
                                     {**fields, "providerType": provider_type, "parentId": realm_id})
                elif not matches(fields, index[key]):
                    self.admin.write("PUT", f"{self.base}/components/{index[key]['id']}", f"{what} updated",
                                     {**index[key], **fields})
            names = {(c["name"], c["providerId"], c.get("subType")) for c in declared}
            self.unmanaged += [f"{kind} '{key[0]}' ({key[2] or 'realm'})" for key in sorted(index.keys() - names,
                                                                                          key=lambda k: (k[0], k[2] or ""))]

    # Clients declared in the file (DCR- and CIMD-created clients are not touched)
    def clients(self) -> list[str]:
        """Apply the declared clients; the clientIds of those created (with a new service account)."""
        created = []
        for client in self.realm.get("clients", []):
            what = f"{self.name}: client {client['clientId']}"
            found = self.admin.get(f"{self.base}/clients", clientId=client["clientId"])
            if not found:
                self.admin.write("POST", f"{self.base}/clients", f"{what} created", without(client, "id"))
                created.append(client["clientId"])
                continue
            have = found[0]
            owner = f"{self.base}/clients/{have['id']}"
            fields = without(client, "id", "defaultClientScopes", "optionalClientScopes", "protocolMappers")
            if not matches(fields, have):
                self.admin.write("PUT", owner, f"{what} updated", {**fields, "id": have["id"]})
            if "protocolMappers" in client:
                self.protocol_mappers(owner, what, client["protocolMappers"], have.get("protocolMappers", []))
            self.scope_links(owner, what, {"default-client-scopes": client.get("defaultClientScopes"),
                                           "optional-client-scopes": client.get("optionalClientScopes")})
        return created
