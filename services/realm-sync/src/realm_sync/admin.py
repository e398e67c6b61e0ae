"""The admin API of one Keycloak, and the comparison that decides whether a write is needed."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx2


class SyncError(Exception):
    """The admin API refused or could not be reached (the message names the request)."""


def _scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def matches(desired: Any, current: Any) -> bool:
    """Whether Keycloak's `current` already says everything `desired` says. Extra keys in
    `current` are fine (Keycloak fills defaults); lists of values compare as sets (Keycloak
    keeps redirect URIs and scope names unordered); lists of objects compare in order."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(key in current and matches(value, current[key])
                                                 for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(current, list) or len(desired) != len(current):
            return False
        if all(not isinstance(item, dict | list) for item in desired):
            return sorted(map(_scalar, desired)) == sorted(map(_scalar, current))
        return all(matches(want, have) for want, have in zip(desired, current, strict=True))
    return _scalar(desired) == _scalar(current)


def without(representation: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in representation.items() if key not in keys}


class Admin:
    """The admin API as a service-account client (client credentials in the master realm).
    Writes are recorded; with `dry_run` they are only recorded."""

    def __init__(self, http: httpx2.Client, server: str, client_id: str, secret: str, *, dry_run: bool = False) -> None:
        self.http, self.server, self.client_id, self.secret = http, server.rstrip("/"), client_id, secret
        self.dry_run = dry_run
        self.changes: list[str] = []
        self._token: tuple[str, float] | None = None

    def _bearer(self) -> str:
        if self._token is None or time.monotonic() > self._token[1]:
            response = self._send("POST", f"{self.server}/realms/master/protocol/openid-connect/token",
                                  data={"grant_type": "client_credentials", "client_id": self.client_id,
                                        "client_secret": self.secret})
            if response.status_code != 200:
                raise SyncError(f"the admin client '{self.client_id}' cannot log in to {self.server} "
                                f"(HTTP {response.status_code}: {_reason(response)})")
            body = response.json()
            self._token = (body["access_token"], time.monotonic() + max(float(body.get("expires_in", 60)) / 2, 5))
        return self._token[0]

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        # Keycloak may still be starting (a node restarted just before): retry refused connections.
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.http.request(method, url, **kwargs)
            except httpx2.TransportError as error:
                if time.monotonic() > deadline:
                    raise SyncError(f"{method} {url}: Keycloak unreachable for 60 s ({error.__class__.__name__}); "
                                    "is the stack up (make up)?") from error
                time.sleep(2)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        response = self._send(method, f"{self.server}/admin/realms{path}",
                              headers={"Authorization": f"Bearer {self._bearer()}"}, **kwargs)
        if response.status_code >= 400 and not (method == "GET" and response.status_code == 404):
            raise SyncError(f"{method} /admin/realms{path}: HTTP {response.status_code}: {_reason(response)}")
        return response

    def get(self, path: str, **params: str) -> Any:
        response = self.request("GET", path, params=params)
        return None if response.status_code == 404 else response.json()

    def realm_roles(self, realm: str, names: Iterable[str]) -> list[Any]:
        """The realm roles' representations, as role-mapping and composite writes take them
        (`realm` is the realm's path, `/mcp`). In a dry run a role not created yet is None."""
        return [self.get(f"{realm}/roles/{quote(name, safe='')}") for name in names]

    def write(self, method: str, path: str, change: str, body: Any = None) -> httpx2.Response | None:
        """One change, printed as `change`; Keycloak's answer, or None in a dry run."""
        self.changes.append(change)
        print(f"realm-sync: {'would change: ' if self.dry_run else ''}{change}", flush=True)
        return None if self.dry_run else self.request(method, path, json=body)


def _reason(response: httpx2.Response) -> str:
    """Keycloak's error message, never the request or a token."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("errorMessage") or body.get("error_description") or body.get("error") or response.reason_phrase)
    return response.reason_phrase
