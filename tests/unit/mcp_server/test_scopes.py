"""Tool scopes and the scope hierarchy (RS16, RS19)."""

from mcp_server import tools  # noqa: F401  (importing tools registers their scope needs)
from mcp_server.config import Settings
from mcp_server.scopes import ScopePolicy

policy = ScopePolicy()


def test_privileged_tool_needs_admin_and_base_scope():
    assert policy.for_tool("server_stats") == {"mcp:tools", "mcp:admin"}
    assert policy.for_tool("get_time") == {"mcp:tools"}


def test_admin_implies_tools():
    assert policy.missing({"mcp:tools"}, {"mcp:admin"}) == frozenset()
    assert policy.missing({"mcp:tools", "mcp:admin"}, {"mcp:tools"}) == {"mcp:admin"}


def test_challenge_scope_string_is_stable():
    assert policy.ordered({"mcp:admin", "mcp:tools"}) == "mcp:tools mcp:admin"


def test_offline_access_is_never_advertised():
    assert "offline_access" not in policy.supported


def test_scope_names_come_from_configuration():
    renamed = Settings(tools_scope="api://mcp/tools", admin_scope="api://mcp/admin").scope_policy
    assert renamed.for_tool("server_stats") == {"api://mcp/tools", "api://mcp/admin"}
    assert renamed.supported == ("api://mcp/tools", "api://mcp/admin")
