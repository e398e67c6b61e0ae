"""The gate in front of the MCP endpoint (authorization.py), over HTTP: one credential per request,
and a request authorized when it arrived runs to completion — only the event stream ends with its
token."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from mcp_server import tools
from mcp_server.scopes import ToolTable
from tests.support.authorization_server import FakeAuthorizationServer, RunningServer, running_server

HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def _prm_url(running: RunningServer) -> str:
    return f"{running.url}/.well-known/oauth-protected-resource/mcp"


@pytest.mark.parametrize("second", ["same", "garbage", "another valid"])
def test_two_authorization_headers_are_a_400_not_first_wins(running: RunningServer, second: str):
    """RFC 6750 §2.1/§3.1, RFC 9110 §5.3: one request, one credential. Which of two the server
    would use is not the client's to guess: 400 invalid_request, for either order."""
    first = running.token()
    other = {"same": first, "garbage": "not-a-jwt", "another valid": running.token(sub="someone-else")}[second]
    for pair in ((first, other), (other, first)):
        headers = [*HEADERS.items(), *(("authorization", f"Bearer {t}") for t in pair)]
        response = running.client.post(running.resource_url, json=TOOLS_LIST, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "more than one Authorization header: send exactly one credential",
        }
        assert response.headers["www-authenticate"] == (
            'Bearer error="invalid_request", error_description="more than one Authorization header: send exactly one '
            f'credential", scope="mcp:connect mcp:tools", resource_metadata="{_prm_url(running)}"')


def test_one_authorization_header_is_served(running: RunningServer):
    response = running.client.post(running.resource_url, json=TOOLS_LIST,
                                   headers={**HEADERS, "authorization": f"Bearer {running.token()}"})
    assert response.status_code == 200


class SlowTool:
    """A tool with a side effect (`runs`) that holds its call open until the test releases it."""

    def __init__(self) -> None:
        self.runs = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def slow_tool(self) -> str:
        """Counts its run, then waits for the test."""
        self.runs += 1
        self.entered.set()
        assert self.release.wait(timeout=20), "the test never released the tool"
        return "done"


def test_a_tool_call_outliving_its_token_runs_once_and_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A tools/call authorized when it arrived completes even if the token expires while it runs:
    cancelling it at `exp` (after its side effects) and answering 401 makes the client re-authorize
    and send the same call again — the tool would run twice."""
    slow = SlowTool()
    declared = tools.register

    def register_with_slow_tool(server, notes=None) -> ToolTable:
        table = declared(server, notes)
        table.add(slow.slow_tool, name="slow_tool", scopes=["mcp:tools"])
        return table

    monkeypatch.setattr(tools, "register", register_with_slow_tool)
    with running_server(FakeAuthorizationServer(), tmp_path) as server:
        token = server.token(exp=int(time.time()) + 2)
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow_tool", "arguments": {}}}
        with httpx2.Client(base_url=server.url, timeout=30) as caller, ThreadPoolExecutor(1) as pool:
            call = pool.submit(caller.post, server.resource_url, json=body,
                               headers={**HEADERS, "authorization": f"Bearer {token}"})
            assert slow.entered.wait(timeout=20)
            # Until the server itself refuses the token as expired (its clock, not a guessed sleep).
            while (probe := server.call(token, method="tools/list")).status_code == 200:
                slow.release.wait(timeout=0.05)  # poll interval; nobody sets `release` yet
            assert probe.status_code == 401
            assert "expired" in probe.json()["error_description"]
            slow.release.set()
            response = call.result(timeout=20)
        assert response.status_code == 200, response.text
        assert response.json()["result"]["content"][0]["text"] == "done"
        assert slow.runs == 1
