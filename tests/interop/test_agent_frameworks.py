"""The agent-framework examples (examples/<framework>/agent.py), each in its own virtualenv
(.local/interop/example-<framework>, from its hash-pinned requirements.txt, with mcp 2.x and the
demo agent's auth library), against the sandbox as a developer runs them:

- CIMD: the demo agent's Client ID Metadata Document as client_id, `private_key_jwt`, PKCE, a
  real browser login as alice, DPoP (the library's default), then a protected tool call;
- refresh: a new process of the same example, its stored access token expired, refreshes it
  (with `private_key_jwt` and a DPoP proof) instead of signing in again;
- client credentials: the machine client's `private_key_jwt`, no user.

pydantic-ai runs its whole agent loop on its deterministic TestModel, which calls `whoami`; the
OpenAI Agents SDK and LangChain call `whoami` through their MCP client objects.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from cimd_host.keys import signing_jwk_path
from mcp_agent.dpop import thumbprint
from mcp_agent.storage import FileTokenStorage
from tests.support.interop import sign_in_and_run
from tests.support.stack import ROOT, STATE, Stack

pytestmark = pytest.mark.anyio

FRAMEWORKS = {
    "pydantic_ai": "pydantic-ai (`MCPToolset`) with `mcp_agent.agent_auth`",
    "openai_agents": "OpenAI Agents SDK (`MCPServerStreamableHttp`) with `mcp_agent.agent_auth`",
    "langchain": "LangChain (`langchain.mcp`, FastMCP client) with `mcp_agent.agent_auth`",
}


def command(framework: str, *flags: str) -> list[str]:
    python = STATE / "interop" / f"example-{framework}" / "bin" / "python"
    assert python.exists(), "the examples' environments are not installed; run the tests with `make test`"
    return [str(python), str(ROOT / "examples" / framework / "agent.py"), "--json", *flags]


def environment(stack: Stack, state: Path) -> dict[str, str]:
    """The AGENT_* settings the library reads, for this sandbox."""
    return {**os.environ,
            "AGENT_SERVER_URL": stack.resource_url, "AGENT_CA_BUNDLE": str(stack.ca_file),
            "AGENT_STATE_DIR": str(state), "AGENT_REGISTRATION": "cimd",
            "AGENT_CLIENT_METADATA_URL": f"{stack.cimd_origin}/agents/demo/metadata.json",
            "AGENT_KEY_FILE": str(signing_jwk_path(stack.key_dir("demo"))),
            "AGENT_MACHINE_KEY_FILE": str(signing_jwk_path(stack.key_dir("machine"))),
            "AGENT_MACHINE_ISSUER": stack.issuer, "AGENT_CALLBACK_PORT": str(stack.callback_port),
            "AGENT_OPEN_BROWSER": "false", "AGENT_LOGIN_TIMEOUT_SECONDS": "60"}


def whoami_of(framework: str, result: dict) -> dict:
    """whoami's answer as each framework hands it on: pydantic-ai and the OpenAI Agents SDK as the
    structured result, a LangChain tool as its content blocks (the JSON in a text block)."""
    who = result["tool_results"]["whoami"] if framework == "pydantic_ai" else result["whoami"]
    if isinstance(who, list):
        (who,) = [block["text"] for block in who if block.get("type") == "text"]
    return json.loads(who) if isinstance(who, str) else who


def assert_dpop_bound(state: Path, stack: Stack, *, machine: bool) -> None:
    """RFC 9449 §6.1: the token the framework used is bound to the library's DPoP key."""
    stored = FileTokenStorage(state, stack.resource_url + ("#machine" if machine else "")).snapshot()
    claims = jwt.decode(stored["tokens"]["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == thumbprint(json.loads((state / "dpop.jwk").read_text()))


# The library sends DPoP by default: the same run proves the DPoP cell (the token is bound, the
# calls carry proofs and succeed).
@pytest.mark.parametrize("framework", [pytest.param(f, marks=[pytest.mark.matrix(name, "CIMD"),
                                                              pytest.mark.matrix(name, "DPoP")])
                                       for f, name in FRAMEWORKS.items()])
async def test_framework_signs_in_by_cimd_and_calls_a_protected_tool(framework: str, stack: Stack, tmp_path: Path):
    cimd = f"{stack.cimd_origin}/agents/demo/metadata.json"
    result, authorization = await sign_in_and_run(stack, command(framework), env=environment(stack, tmp_path))
    assert authorization["client_id"] == cimd
    assert authorization["code_challenge_method"] == "S256"
    assert (result["client_id"], result["registration"]) == (cimd, "cimd")
    who = whoami_of(framework, result)
    assert who["client_id"] == cimd
    assert who["audience"] == [stack.resource_url]
    assert "mcp:tools" in who["granted_scopes"]
    assert result["signed_in_now"] is True
    assert_dpop_bound(tmp_path, stack, machine=False)


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.matrix(name, "refresh"))
                                       for f, name in FRAMEWORKS.items()])
async def test_framework_refreshes_after_a_restart_instead_of_signing_in(framework: str, stack: Stack, tmp_path: Path):
    env = environment(stack, tmp_path)
    await sign_in_and_run(stack, command(framework), env=env)
    storage = FileTokenStorage(tmp_path, stack.resource_url)
    before = storage.snapshot()["tokens"]
    storage.set_session(expires_at=time.time() - 1)  # time passes: the access token has expired

    done = subprocess.run(command(framework), env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)  # a new process, no browser
    assert done.returncode == 0, done.stderr[-2000:]
    assert "authorize" not in done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["signed_in_now"] is False
    assert whoami_of(framework, result)["client_id"] == f"{stack.cimd_origin}/agents/demo/metadata.json"
    after = storage.snapshot()["tokens"]
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # Keycloak rotates refresh tokens (AS12)
    assert_dpop_bound(tmp_path, stack, machine=False)


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.matrix(name, "client credentials"))
                                       for f, name in FRAMEWORKS.items()])
def test_framework_as_a_machine_client_calls_a_protected_tool(framework: str, stack: Stack, tmp_path: Path):
    done = subprocess.run(command(framework, "--machine"), env=environment(stack, tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["registration"] == "client_credentials"
    who = whoami_of(framework, result)
    assert who["client_id"] == "mcp-machine-agent"
    assert who["audience"] == [stack.resource_url]
    assert_dpop_bound(tmp_path, stack, machine=True)
