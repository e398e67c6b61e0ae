"""Which scopes each tool needs, and how scopes imply one another.

The scope names are the Keycloak client scopes of realm `mcp`; each carries an audience mapper
that puts this server's URL into `aud`.
"""

from __future__ import annotations

from collections.abc import Iterable

TOOLS_SCOPE = "mcp:tools"
ADMIN_SCOPE = "mcp:admin"
# What PRM advertises (RS1, RS7: never offline_access).
SUPPORTED = (TOOLS_SCOPE, ADMIN_SCOPE)
# Needed for any request to the MCP endpoint.
BASE = frozenset({TOOLS_SCOPE})

# RS19: a scope hierarchy. mcp:admin includes everything mcp:tools allows.
IMPLIES: dict[str, frozenset[str]] = {ADMIN_SCOPE: frozenset({TOOLS_SCOPE})}

# Tool name -> scopes a call needs in total (RS16 puts all of them in one challenge).
_TOOL_SCOPES: dict[str, frozenset[str]] = {}


def requires(*scopes: str):
    """Decorator recording the scopes a tool needs beyond BASE."""

    def register(fn):
        _TOOL_SCOPES[fn.__name__] = BASE | frozenset(scopes)
        return fn

    return register


def for_tool(name: str) -> frozenset[str]:
    return _TOOL_SCOPES.get(name, BASE)


def expand(granted: Iterable[str]) -> frozenset[str]:
    """The granted scopes plus everything they imply."""
    result = set(granted)
    for scope in list(result):
        result |= IMPLIES.get(scope, frozenset())
    return frozenset(result)


def missing(needed: Iterable[str], granted: Iterable[str]) -> frozenset[str]:
    return frozenset(needed) - expand(granted)


def ordered(scopes: Iterable[str]) -> str:
    """Space-separated, in SUPPORTED order then alphabetical: stable challenge strings."""
    rank = {s: i for i, s in enumerate(SUPPORTED)}
    return " ".join(sorted(set(scopes), key=lambda s: (rank.get(s, len(rank)), s)))
