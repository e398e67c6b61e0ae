"""A permission the authorization server would not grant, said as one sentence.

The MCP server answers a call the token's scopes do not cover with 403 `insufficient_scope` and
every scope the call needs (MCP RS15-RS17). The SDK then re-authorizes once with the union of
scopes (step-up, C30). When the authorization server still leaves a scope out — Keycloak does so
for a user or service account without the role that grants it, whatever was asked for or
consented to — the retried call gets a second 403, and the client must stop there (MCP
2026-07-28; conformance scenario `auth/scope-retry-limit`), not loop through logins.

The SDK turns that 403 into a bare "Server returned an error response". `ScopeRefusals` watches
the HTTP responses (an httpx2 response hook) so the agent can say which permission is missing
and who can grant it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx2
from mcp.client.auth.utils import extract_field_from_www_auth, extract_scope_from_www_auth


class PermissionRefused(Exception):
    """The call needs scopes this agent's authorization does not carry, even after one step-up."""

    def __init__(self, missing: list[str], needed: list[str], issuer: str | None) -> None:
        self.missing, self.needed, self.issuer = missing, needed, issuer
        who = f"an administrator of {issuer}" if issuer else "the authorization server's administrator"
        super().__init__(
            f"permission refused: this call needs {' '.join(missing)}, which the authorization server did not grant "
            f"to this sign-in (asked again once, step-up). {who} grants it, with the role that maps to "
            f"{'that scope' if len(missing) == 1 else 'those scopes'}."
        )


@dataclass
class ScopeRefusals:
    """The last 403 insufficient_scope challenge seen, until a later request succeeds."""

    granted: Callable[[], str | None]  # the scope of the token currently held
    issuer: Callable[[], str | None]
    needed: list[str] | None = None

    async def on_response(self, response: httpx2.Response) -> None:
        if response.status_code == 403 and extract_field_from_www_auth(response, "error") == "insufficient_scope":
            self.needed = (extract_scope_from_www_auth(response) or "").split()
        elif response.status_code < 400:
            self.needed = None

    def refused(self) -> PermissionRefused | None:
        if self.needed is None:
            return None
        granted = set((self.granted() or "").split())
        missing = [scope for scope in self.needed if scope not in granted] or self.needed
        return PermissionRefused(missing, self.needed, self.issuer())
