"""Which scopes each tool needs, and how scopes imply one another.

Deny by default: a tool's scope needs are declared where it is registered (`ToolTable.add`),
keyed on the name clients call. A call to a tool with no declaration is refused, and the server
refuses to start if any registered tool has none (`ToolTable.check`).

Tools declare *roles* (`TOOLS`, `ADMIN`); the scope name of each role comes from configuration
(MCP_TOOLS_SCOPE, MCP_ADMIN_SCOPE — defaults are the Keycloak client scopes of realm `mcp`, each of
which carries an audience mapper putting this server's URL into `aud`). So the server can be
pointed at an authorization server with other scope names without touching the tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

from mcp.server import MCPServer

TOOLS = "tools"
ADMIN = "admin"


class UndeclaredTool(Exception):
    """A tool without a scope declaration: refused, never allowed by default."""


class ToolTable:
    """Registers tools on the server together with the roles each needs beyond TOOLS."""

    def __init__(self, server: MCPServer) -> None:
        self._server = server
        self._roles: dict[str, frozenset[str]] = {}

    def add(self, fn: Callable[..., Any], *, name: str, roles: Iterable[str] = ()) -> None:
        unknown = set(roles) - {TOOLS, ADMIN}
        if unknown:
            raise ValueError(f"tool {name!r} declares unknown roles {sorted(unknown)}")
        self._server.add_tool(fn, name=name)
        self._roles[name] = frozenset(roles)

    @property
    def roles(self) -> Mapping[str, frozenset[str]]:
        return MappingProxyType(self._roles)

    async def check(self) -> None:
        """Refuse to start if a tool reached the server without going through `add`."""
        undeclared = sorted({t.name for t in await self._server.list_tools()} - set(self._roles))
        if undeclared:
            raise UndeclaredTool(f"tools registered without a scope declaration: {undeclared}")


@dataclass(frozen=True)
class ScopePolicy:
    # The names come from configuration (config.Settings: MCP_TOOLS_SCOPE, MCP_ADMIN_SCOPE).
    tools_scope: str
    admin_scope: str
    tool_roles: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False)

    def with_tools(self, roles: Mapping[str, frozenset[str]]) -> ScopePolicy:
        return replace(self, tool_roles=roles)

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
        try:
            roles = self.tool_roles[tool]
        except KeyError:
            raise UndeclaredTool(tool) from None
        return self.base | {self.name(r) for r in roles}

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
