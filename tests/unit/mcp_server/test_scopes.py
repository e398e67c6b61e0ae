"""Tool scopes, deny by default, and the scope hierarchy (RS16, RS19)."""

import pytest
from mcp.server import MCPServer

from mcp_server import tools
from mcp_server.config import Settings
from mcp_server.scopes import ADMIN, ScopePolicy, ToolTable, UndeclaredTool


def declared_policy(base: ScopePolicy | None = None) -> ScopePolicy:
    table = tools.register(MCPServer(name="test"))
    return (base or Settings().scope_policy).with_tools(table.roles)


policy = declared_policy()


def test_privileged_tool_needs_admin_and_base_scope():
    assert policy.for_tool("server_stats") == {"mcp:tools", "mcp:admin"}
    assert policy.for_tool("get_time") == {"mcp:tools"}


def test_a_tool_without_a_declaration_is_refused_not_allowed_by_default():
    with pytest.raises(UndeclaredTool):
        policy.for_tool("delete_everything")


def test_scopes_are_keyed_on_the_name_clients_call_not_the_function_name():
    def helper() -> str:
        return "x"

    table = ToolTable(MCPServer(name="test"))
    table.add(helper, name="public_name", roles=[ADMIN])
    renamed = Settings().scope_policy.with_tools(table.roles)
    assert renamed.for_tool("public_name") == {"mcp:tools", "mcp:admin"}
    with pytest.raises(UndeclaredTool):
        renamed.for_tool("helper")


@pytest.mark.anyio
async def test_the_server_refuses_to_start_with_a_tool_registered_around_the_table():
    server = MCPServer(name="test")
    table = tools.register(server)
    await table.check()  # every tool declared: fine

    def forgotten() -> str:
        return "no scope declared"

    server.add_tool(forgotten, name="forgotten")
    with pytest.raises(UndeclaredTool, match="forgotten"):
        await table.check()


def test_an_unknown_role_is_a_declaration_error():
    with pytest.raises(ValueError, match="unknown roles"):
        ToolTable(MCPServer(name="test")).add(lambda: None, name="x", roles=["superuser"])


def test_admin_implies_tools():
    assert policy.missing({"mcp:tools"}, {"mcp:admin"}) == frozenset()
    assert policy.missing({"mcp:tools", "mcp:admin"}, {"mcp:tools"}) == {"mcp:admin"}


def test_challenge_scope_string_is_stable():
    assert policy.ordered({"mcp:admin", "mcp:tools"}) == "mcp:tools mcp:admin"


def test_prm_advertises_exactly_the_configured_scopes():
    """RS7: never offline_access — only the two role scopes, in a stable order."""
    assert policy.supported == ("mcp:tools", "mcp:admin")


def test_scope_names_come_from_configuration():
    renamed = declared_policy(Settings(tools_scope="api://mcp/tools", admin_scope="api://mcp/admin").scope_policy)
    assert renamed.for_tool("server_stats") == {"api://mcp/tools", "api://mcp/admin"}
    assert renamed.supported == ("api://mcp/tools", "api://mcp/admin")
