"""Permissions over HTTP: a signed-in user with no MCP role is refused with 403 (not a 401 loop),
recent_calls needs mcp:audit, and a tool with a new scope changes PRM and the challenges with
nothing but its declaration."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mcp_server import tools
from mcp_server.scopes import ToolTable
from tests.support.authorization_server import FakeAuthorizationServer, RunningServer, running_server

INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


def _params(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def _prm_url(running: RunningServer) -> str:
    return f"{running.url}/.well-known/oauth-protected-resource/mcp"


def _insufficient(running: RunningServer, needs: str) -> str:
    return (f'Bearer error="insufficient_scope", error_description="This call needs scope {needs}", '
            f'scope="mcp:connect {needs}", resource_metadata="{_prm_url(running)}"')


def test_a_token_with_only_the_audience_scope_is_refused_with_403_at_initialize(running: RunningServer):
    """What Keycloak grants a signed-in user with no MCP role: `aud` = this server, scope mcp:connect.
    The token is valid, so 401 would be a lie (and a re-login loop); 403 asks for mcp:tools."""
    response = running.call(running.token(scope="mcp:connect"), method="initialize", params=INITIALIZE)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == _insufficient(running, "mcp:tools")


@pytest.mark.parametrize(("tool", "needs"), [("get_time", "mcp:tools"), ("server_stats", "mcp:tools mcp:admin"),
                                             ("recent_calls", "mcp:tools mcp:audit")])
def test_a_token_with_only_the_audience_scope_is_refused_with_403_at_tools_call(running: RunningServer, tool: str,
                                                                                needs: str):
    response = running.call(running.token(scope="mcp:connect"), params=_params(tool))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == _insufficient(running, needs)


def test_the_audience_scope_is_never_required(running: RunningServer):
    """A token without mcp:connect but with the permission (and the audience) is served."""
    assert running.call(running.token(scope="mcp:tools"), params=_params("get_time")).status_code == 200


@pytest.mark.parametrize("scope", ["mcp:tools", "mcp:connect mcp:tools mcp:admin"])
def test_recent_calls_needs_mcp_audit(running: RunningServer, scope: str):
    """mcp:admin implies mcp:tools, not mcp:audit: the hierarchy is exactly the declared one."""
    response = running.call(running.token(scope=scope), params=_params("recent_calls"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == _insufficient(running, "mcp:tools mcp:audit")


def test_recent_calls_lists_the_callers_newest_first(running: RunningServer):
    running.call(running.token(sub="user-a", preferred_username="alice", azp="client-a"), params=_params("get_time"))
    # No preferred_username (claims_for drops None): the caller is named by `sub`.
    running.call(running.token(sub="user-b", preferred_username=None, azp="client-b"), params=_params("whoami"))
    auditor = running.token(scope="mcp:tools mcp:audit", preferred_username="ada", azp="client-c")
    response = running.call(auditor, params=_params("recent_calls"))
    assert response.status_code == 200, response.text
    calls = response.json()["result"]["structuredContent"]["calls"]
    assert [(c["tool"], c["user"], c["client_id"]) for c in calls[:3]] == [
        ("recent_calls", "ada", "client-c"), ("whoami", "user-b", "client-b"), ("get_time", "alice", "client-a")]
    times = [datetime.fromisoformat(c["time"]) for c in calls]
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times == sorted(times, reverse=True)


def test_recent_calls_keeps_the_last_50(running: RunningServer):
    token = running.token()
    for _ in range(55):
        running.call(token, params=_params("get_time"))
    response = running.call(running.token(scope="mcp:tools mcp:audit"), params=_params("recent_calls"))
    calls = response.json()["result"]["structuredContent"]["calls"]
    assert len(calls) == 50
    assert [c["tool"] for c in calls] == ["recent_calls"] + ["get_time"] * 49


def deploy() -> str:
    """A tool with a permission nothing else knows."""
    return "deployed"


def test_a_new_tool_with_a_new_scope_changes_prm_and_challenges(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    declared = tools.register

    def register_with_deploy(server, notes=None) -> ToolTable:
        table = declared(server, notes)
        table.add(deploy, name="deploy", scopes=["mcp:tools", "mcp:deploy"])  # the only edit
        return table

    monkeypatch.setattr(tools, "register", register_with_deploy)
    with running_server(FakeAuthorizationServer(), tmp_path) as server:
        metadata = server.client.get("/.well-known/oauth-protected-resource/mcp").json()
        assert metadata["scopes_supported"] == ["mcp:connect", "mcp:tools", "mcp:admin", "mcp:audit", "mcp:deploy"]
        refused = server.call(server.token(scope="mcp:tools"), params=_params("deploy"))
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == _insufficient(server, "mcp:tools mcp:deploy")
        allowed = server.call(server.token(scope="mcp:tools mcp:deploy"), params=_params("deploy"))
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["result"]["structuredContent"] == {"result": "deployed"}
        # Deny by default still holds for anything not declared.
        assert server.call(server.token(scope="mcp:tools mcp:deploy"), params=_params("undeclared")).status_code == 403


def test_renamed_scopes_are_what_prm_and_the_challenges_name(tmp_path: Path):
    """Another AS: its own scope names (MCP_SCOPE_NAMES), no audience scope (MCP_AUDIENCE_SCOPE=)."""
    names = {"mcp:tools": "api://mcp/tools", "mcp:admin": "api://mcp/admin"}
    with running_server(FakeAuthorizationServer(), tmp_path, scope_names=names, audience_scope="") as server:
        metadata = server.client.get("/.well-known/oauth-protected-resource").json()
        assert metadata["scopes_supported"] == ["api://mcp/tools", "api://mcp/admin", "mcp:audit"]
        assert server.call(None, method="tools/list").headers["www-authenticate"] == (
            f'Bearer scope="api://mcp/tools", resource_metadata="{_prm_url(server)}"')
        assert server.call(server.token(scope="mcp:tools"), method="tools/list").status_code == 403
        assert server.call(server.token(scope="api://mcp/admin"), params=_params("server_stats")).status_code == 200
