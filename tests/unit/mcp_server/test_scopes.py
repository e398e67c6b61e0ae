"""Permissions as data: tool scopes declared where tools are registered, deny by default, the
scope hierarchy (RS16, RS19), what PRM and the challenges ask for, and renaming from configuration."""

import pytest
from mcp.server import MCPServer
from pydantic import ValidationError

from mcp_server import tools
from mcp_server.config import Settings
from mcp_server.scopes import ScopePolicy, ToolTable, UndeclaredTool, Vocabulary


def declared_policy(settings: Settings | None = None, server: MCPServer | None = None) -> ScopePolicy:
    table = tools.register(server or MCPServer(name="test"))
    return (settings or Settings()).scope_policy.with_tools(table.declarations)


policy = declared_policy()


def test_each_tool_needs_its_declared_scopes_and_the_base_scope():
    assert policy.for_tool("get_time") == {"mcp:tools"}
    assert policy.for_tool("whoami") == {"mcp:tools"}
    assert policy.for_tool("server_stats") == {"mcp:tools", "mcp:admin"}
    assert policy.for_tool("recent_calls") == {"mcp:tools", "mcp:audit"}
    assert policy.base == {"mcp:tools"}


def test_only_server_stats_is_privileged():
    assert policy.privileged_tools == ("server_stats",)
    assert policy.is_privileged("server_stats")
    assert not policy.is_privileged("recent_calls")
    assert not policy.is_privileged("not_declared_anywhere")


def test_a_tool_without_a_declaration_is_refused_not_allowed_by_default():
    with pytest.raises(UndeclaredTool):
        policy.for_tool("delete_everything")


def test_scopes_are_keyed_on_the_name_clients_call_not_the_function_name():
    def helper() -> str:
        return "x"

    table = ToolTable(MCPServer(name="test"))
    table.add(helper, name="public_name", scopes=["mcp:admin"])
    renamed = Settings().scope_policy.with_tools(table.declarations)
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


@pytest.mark.parametrize("scope", ["offline_access", "two words", "", 'quote"d'])
def test_a_scope_that_cannot_be_declared_is_a_declaration_error(scope: str):
    """RS7: never offline_access; RFC 6749 §3.3: a scope is one scope-token."""
    with pytest.raises(ValueError, match="not a scope"):
        ToolTable(MCPServer(name="test")).add(lambda: None, name="x", scopes=[scope])


def test_a_tool_is_declared_once():
    table = ToolTable(MCPServer(name="test"))
    table.add(lambda: None, name="x", scopes=["mcp:tools"])
    with pytest.raises(ValueError, match="twice"):
        table.add(lambda: None, name="x", scopes=["mcp:admin"])


def test_admin_implies_tools():
    assert policy.missing({"mcp:tools"}, {"mcp:admin"}) == frozenset()
    assert policy.missing({"mcp:tools", "mcp:admin"}, {"mcp:tools"}) == {"mcp:admin"}
    # The hierarchy is the declared one: admin does not imply audit, and audit implies nothing.
    assert policy.missing({"mcp:tools", "mcp:audit"}, {"mcp:admin"}) == {"mcp:audit"}
    assert policy.missing({"mcp:tools"}, {"mcp:audit"}) == {"mcp:tools"}


def test_the_hierarchy_is_transitive():
    vocabulary = Vocabulary(audience="a", base="read", implies={"owner": ["write"], "write": ["read"]})
    chained = ScopePolicy(vocabulary, audience="a").with_tools({})
    assert chained.expand({"owner"}) == {"owner", "write", "read"}


def test_the_audience_scope_is_never_required():
    """mcp:connect only puts this server into `aud`; a token with it alone may call nothing."""
    assert "mcp:connect" not in policy.base
    assert policy.missing(policy.base, {"mcp:connect"}) == {"mcp:tools"}
    for tool in ("get_time", "whoami", "server_stats", "recent_calls"):
        assert "mcp:connect" not in policy.for_tool(tool)


def test_challenge_scope_strings_are_stable_and_carry_the_audience_scope():
    """RS16: everything the call needs, plus the audience scope so the next token still names us."""
    assert policy.challenge(policy.base) == "mcp:connect mcp:tools"
    assert policy.challenge({"mcp:admin", "mcp:tools"}) == "mcp:connect mcp:tools mcp:admin"
    assert policy.challenge(policy.for_tool("recent_calls")) == "mcp:connect mcp:tools mcp:audit"
    assert policy.ordered({"mcp:admin", "mcp:tools"}) == "mcp:tools mcp:admin"


def test_prm_advertises_exactly_the_configured_scopes():
    """RS7: never offline_access — the audience scope first, then every declared scope."""
    assert policy.supported == ("mcp:connect", "mcp:tools", "mcp:admin", "mcp:audit")


def test_a_new_tool_with_a_new_scope_is_one_declaration():
    """Nothing in the scope machinery names a permission: declaring the tool is enough."""
    server = MCPServer(name="test")
    table = tools.register(server)

    def deploy() -> str:
        return "deployed"

    table.add(deploy, name="deploy", scopes=["mcp:tools", "mcp:deploy"])
    extended = Settings().scope_policy.with_tools(table.declarations)
    assert extended.supported == ("mcp:connect", "mcp:tools", "mcp:admin", "mcp:audit", "mcp:deploy")
    assert extended.challenge(extended.for_tool("deploy")) == "mcp:connect mcp:tools mcp:deploy"


def test_scope_names_come_from_configuration():
    renamed = declared_policy(Settings(scope_names={"mcp:tools": "api://mcp/tools", "mcp:admin": "api://mcp/admin"},
                                       audience_scope="api://mcp/connect"))
    assert renamed.for_tool("server_stats") == {"api://mcp/tools", "api://mcp/admin"}
    assert renamed.for_tool("recent_calls") == {"api://mcp/tools", "mcp:audit"}
    assert renamed.supported == ("api://mcp/connect", "api://mcp/tools", "api://mcp/admin", "mcp:audit")
    assert renamed.challenge(renamed.base) == "api://mcp/connect api://mcp/tools"
    # The hierarchy follows the renaming.
    assert renamed.missing(renamed.base, {"api://mcp/admin"}) == frozenset()


def test_scope_names_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MCP_SCOPE_NAMES", '{"mcp:audit": "audit.read"}')
    monkeypatch.setenv("MCP_AUDIENCE_SCOPE", "")
    renamed = declared_policy(Settings())
    assert renamed.supported == ("mcp:tools", "mcp:admin", "audit.read")
    assert renamed.challenge(renamed.base) == "mcp:tools"  # no audience scope: advertise none


def test_renaming_a_scope_nothing_declares_is_refused():
    with pytest.raises(ValueError, match=r"MCP_SCOPE_NAMES renames \['mcp:tool'\], which nothing declares"):
        declared_policy(Settings(scope_names={"mcp:tool": "x"}))


def test_renaming_two_scopes_to_one_name_is_refused():
    """That would merge two permissions into one."""
    with pytest.raises(ValueError, match="same name"):
        declared_policy(Settings(scope_names={"mcp:admin": "admin", "mcp:audit": "admin"}))


@pytest.mark.parametrize("names", [{"mcp:tools": "two words"}, {"mcp:tools": "offline_access"}])
def test_a_renamed_scope_must_be_a_scope(names: dict[str, str]):
    with pytest.raises(ValidationError, match="MCP_SCOPE_NAMES"):
        Settings(scope_names=names)
