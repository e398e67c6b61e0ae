"""Permissions as data: which scopes each tool needs, how scopes imply one another, and what the
server advertises (MCP RS7, RS16, RS19; RFC 9728 §2 `scopes_supported`; RFC 6750 §3 `scope`).

Everything is declared in tools.py, by scope name: the audience scope clients request so their
token names this server in `aud`, the base scope every MCP request needs, the hierarchy, and each
tool's scopes where the tool is registered (`ToolTable.add`). PRM's `scopes_supported` and the
challenges' `scope` follow from those declarations, so a tool with a new permission is one
declaration (plus the client scope and role at the authorization server), never an edit here.

Deny by default: a call to a tool with no declaration is refused, and the server refuses to start
if any registered tool has none (`ToolTable.check`).

The declared names are this server's; configuration maps them to the authorization server's
(MCP_SCOPE_NAMES, MCP_AUDIENCE_SCOPE), so the server can be pointed at an authorization server
with other scope names without touching the tools.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

from mcp.server import MCPServer

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RS7: offline_access is between the client and the AS; a resource never asks for it.
NEVER_DECLARED = frozenset({"offline_access"})


def scope_token(value: str, where: str) -> str:
    """`value` if it can be a scope this server declares, advertises or renames to; else ValueError."""
    if not SCOPE_TOKEN.fullmatch(value) or value in NEVER_DECLARED:
        raise ValueError(f"{where}: {value!r} is not a scope this server can use")
    return value


class UndeclaredTool(Exception):
    """A tool without a scope declaration: refused, never allowed by default."""


@dataclass(frozen=True)
class Vocabulary:
    """The scopes that belong to no single tool (tools.py declares them once)."""

    # Requested by clients so the token's `aud` names this server (an audience mapper at the AS).
    # Advertised in PRM and every challenge, never required: the verifier checks `aud` itself.
    audience: str
    # Needed by every request to the MCP endpoint (initialize, tools/list, any tools/call).
    base: str
    # RS19: a scope that includes others, e.g. {"mcp:admin": ["mcp:tools"]}.
    implies: Mapping[str, Collection[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for scope in (self.audience, self.base, *self.implies, *(s for i in self.implies.values() for s in i)):
            scope_token(scope, "scope vocabulary")


@dataclass(frozen=True)
class Declaration:
    """What one tool needs: its scopes (declared names), whether the token's revocation status
    must be confirmed at the authorization server before it runs (introspection.py), and the
    scopes it asks for at a downstream API by token exchange (notes.py; never checked or
    advertised here: the authorization server decides them at the exchange)."""

    scopes: tuple[str, ...]
    privileged: bool = False
    downstream: tuple[str, ...] = ()


class ToolTable:
    """Registers tools on the server together with the scopes each needs."""

    def __init__(self, server: MCPServer) -> None:
        self._server = server
        self._declarations: dict[str, Declaration] = {}

    def add(self, fn: Callable[..., Any], *, name: str, scopes: Iterable[str], privileged: bool = False,
            downstream: Iterable[str] = ()) -> None:
        if name in self._declarations:
            raise ValueError(f"tool {name!r} is declared twice")
        needed = tuple(dict.fromkeys(scope_token(s, f"tool {name!r}") for s in scopes))
        elsewhere = tuple(dict.fromkeys(scope_token(s, f"tool {name!r}") for s in downstream))
        self._server.add_tool(fn, name=name)
        self._declarations[name] = Declaration(needed, privileged, elsewhere)

    @property
    def declarations(self) -> Mapping[str, Declaration]:
        return MappingProxyType(self._declarations)

    async def check(self) -> None:
        """Refuse to start if a tool reached the server without going through `add`."""
        undeclared = sorted({t.name for t in await self._server.list_tools()} - set(self._declarations))
        if undeclared:
            raise UndeclaredTool(f"tools registered without a scope declaration: {undeclared}")


@dataclass(frozen=True)
class ScopePolicy:
    """The declarations, in the authorization server's scope names.

    `audience` is the AS's name of the audience scope (None: advertise none); `names` maps declared
    names to the AS's (config.Settings: MCP_AUDIENCE_SCOPE, MCP_SCOPE_NAMES)."""

    vocabulary: Vocabulary
    audience: str | None
    names: Mapping[str, str] = field(default_factory=dict)
    tools: Mapping[str, Declaration] = field(default_factory=dict)

    def with_tools(self, tools: Mapping[str, Declaration]) -> ScopePolicy:
        """The policy for these tools; ValueError if the renaming does not fit the declarations."""
        policy = replace(self, tools=tools)
        unknown = sorted(set(self.names) - set(policy.declared))
        if unknown:
            raise ValueError(f"MCP_SCOPE_NAMES renames {unknown}, which nothing declares "
                             f"(declared: {' '.join(policy.declared)})")
        renamed = [policy.name(s) for s in policy.declared]
        if len(set(renamed)) < len(renamed):
            raise ValueError(f"MCP_SCOPE_NAMES gives two declared scopes the same name: {dict(self.names)}")
        return policy

    def name(self, declared: str) -> str:
        return self.names.get(declared, declared)

    @cached_property
    def declared(self) -> tuple[str, ...]:
        """Every permission scope (declared names): the base scope, then the tools' scopes in
        registration order, then any scope only the hierarchy names. Stable, so the strings are."""
        order = [self.vocabulary.base]
        for declaration in self.tools.values():
            order += declaration.scopes
        for scope, implied in self.vocabulary.implies.items():
            order += [scope, *implied]
        return tuple(dict.fromkeys(order))

    @cached_property
    def supported(self) -> tuple[str, ...]:
        """PRM `scopes_supported`: the audience scope first, then every permission scope (RS7:
        never offline_access, which nothing can declare)."""
        audience = (self.audience,) if self.audience else ()
        return tuple(dict.fromkeys((*audience, *map(self.name, self.declared))))

    @cached_property
    def base(self) -> frozenset[str]:
        """Needed for any request to the MCP endpoint."""
        return frozenset({self.name(self.vocabulary.base)})

    @cached_property
    def privileged_tools(self) -> tuple[str, ...]:
        return tuple(name for name, declaration in self.tools.items() if declaration.privileged)

    def for_tool(self, tool: str) -> frozenset[str]:
        """Every scope a call of `tool` needs (RS16 puts all of them in one challenge)."""
        try:
            return self._needed[tool]
        except KeyError:
            raise UndeclaredTool(tool) from None

    @cached_property
    def _needed(self) -> dict[str, frozenset[str]]:
        # Once per policy, not per call: the gate asks on every tools/call.
        return {tool: self.base | {self.name(s) for s in d.scopes} for tool, d in self.tools.items()}

    def is_privileged(self, tool: str) -> bool:
        declaration = self.tools.get(tool)
        return declaration is not None and declaration.privileged

    @cached_property
    def _implies(self) -> dict[str, frozenset[str]]:
        return {self.name(s): frozenset(map(self.name, implied)) for s, implied in self.vocabulary.implies.items()}

    def expand(self, granted: Iterable[str]) -> frozenset[str]:
        """RS19: the granted scopes plus everything they imply, transitively."""
        result = set(granted)
        pending = list(result)
        while pending:
            for implied in self._implies.get(pending.pop(), ()):
                if implied not in result:
                    result.add(implied)
                    pending.append(implied)
        return frozenset(result)

    def missing(self, needed: Iterable[str], granted: Iterable[str]) -> frozenset[str]:
        return frozenset(needed) - self.expand(granted)

    def ordered(self, scopes: Iterable[str]) -> str:
        """Space-separated, in the order PRM advertises them: stable challenge strings."""
        rank = {s: i for i, s in enumerate(self.supported)}
        return " ".join(sorted(set(scopes), key=lambda s: (rank.get(s, len(rank)), s)))

    def challenge(self, needed: Iterable[str]) -> str:
        """A challenge's `scope`: the audience scope, so the token the client gets next still names
        this server, and everything the request needs (RS16: all of it, not only what is missing)."""
        audience = {self.audience} if self.audience else set()
        return self.ordered(audience | set(needed))
