"""Which scopes each tool needs, and how scopes imply one another.

Tools declare *roles* (`TOOLS`, `ADMIN`); the scope name of each role comes from configuration
(MCP_TOOLS_SCOPE, MCP_ADMIN_SCOPE — defaults are the Keycloak client scopes of realm `mcp`, each of
which carries an audience mapper putting this server's URL into `aud`). So the server can be
pointed at an authorization server with other scope names without touching the tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

TOOLS = "tools"
ADMIN = "admin"

# tool name -> roles a call needs beyond TOOLS
_TOOL_ROLES: dict[str, frozenset[str]] = {}
F = TypeVar("F", bound=Callable[..., object])


def requires(*roles: str) -> Callable[[F], F]:
    """Decorator recording the roles a tool needs beyond the base role."""

    def register(fn: F) -> F:
        _TOOL_ROLES[fn.__name__] = frozenset(roles)
        return fn

    return register


@dataclass(frozen=True)
class ScopePolicy:
    tools_scope: str = "mcp:tools"
    admin_scope: str = "mcp:admin"

    def name(self, role: str) -> str:
        return {TOOLS: self.tools_scope, ADMIN: self.admin_scope}[role]

    @cached_property
    def supported(self) -> tuple[str, ...]:
        """What PRM advertises (RS1; RS7: never offline_access)."""
        return (self.tools_scope, self.admin_scope)

    @cached_property
    def base(self) -> frozenset[str]:
        """Needed for any request to the MCP endpoint."""
        return frozenset({self.tools_scope})

    def for_tool(self, tool: str) -> frozenset[str]:
        """Every scope a call of `tool` needs (RS16 puts all of them in one challenge)."""
        return self.base | {self.name(r) for r in _TOOL_ROLES.get(tool, ())}

    def expand(self, granted: Iterable[str]) -> frozenset[str]:
        """RS19: a scope hierarchy — the admin scope includes everything the tools scope allows."""
        result = set(granted)
        if self.admin_scope in result:
            result.add(self.tools_scope)
        return frozenset(result)

    def missing(self, needed: Iterable[str], granted: Iterable[str]) -> frozenset[str]:
        return frozenset(needed) - self.expand(granted)

    def ordered(self, scopes: Iterable[str]) -> str:
        """Space-separated, supported scopes first: stable challenge strings."""
        rank = {s: i for i, s in enumerate(self.supported)}
        return " ".join(sorted(set(scopes), key=lambda s: (rank.get(s, len(rank)), s)))
