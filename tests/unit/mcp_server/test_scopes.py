"""Tool scopes and the scope hierarchy (RS16, RS19)."""

from mcp_server import scopes, tools  # noqa: F401  (tools registers the per-tool scopes)


def test_privileged_tool_needs_admin_and_base_scope():
    assert scopes.for_tool("server_stats") == {"mcp:tools", "mcp:admin"}
    assert scopes.for_tool("get_time") == {"mcp:tools"}


def test_admin_implies_tools():
    assert scopes.missing({"mcp:tools"}, {"mcp:admin"}) == frozenset()
    assert scopes.missing({"mcp:tools", "mcp:admin"}, {"mcp:tools"}) == {"mcp:admin"}


def test_challenge_scope_string_is_stable():
    assert scopes.ordered({"mcp:admin", "mcp:tools"}) == "mcp:tools mcp:admin"


def test_offline_access_is_never_advertised():
    assert "offline_access" not in scopes.SUPPORTED
