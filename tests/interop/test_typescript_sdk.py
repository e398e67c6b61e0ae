"""The MCP TypeScript SDK (npm @modelcontextprotocol/sdk, version pinned in
tests/interop/node/package-lock.json) against the sandbox, run by Node 22 from the same lockfile.

Its machine provider (PrivateKeyJwtProvider) signs assertions without a `kid` and, with no scope
configured, sends only `resource`: the realm answers both (the signing key is listed first in the
JWKS; mcp:tools is a default scope of the machine client)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cimd_host.keys import current_key, key_path
from tests.support.interop import sign_in_and_run
from tests.support.keys import restored_afterwards
from tests.support.mcp import TOOL_NAMES
from tests.support.notes import assert_a_notes_round_trip
from tests.support.stack import ROOT, Stack
from tests.support.tokens import CLIENT_ID as MACHINE_BEARER_CLIENT

NODE_DIR = ROOT / "tests" / "interop" / "node"


def node(stack: Stack, script: str, *args: str) -> dict:
    binary = NODE_DIR / "node_modules" / ".bin" / "node"
    assert binary.exists(), "the interop clients are not installed; run the tests with `make test`"
    result = subprocess.run(
        [str(binary), "--require", "./localhost.cjs", script, *args], cwd=NODE_DIR, capture_output=True, text=True,
        timeout=120, env={**os.environ, "NODE_EXTRA_CA_CERTS": str(stack.ca_file)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_flow(stack: Stack) -> dict:
    kid, _ = current_key(stack.key_dir("machine"))
    # Bearer only: the sandbox's Bearer-allowed twin of mcp-machine-agent (same key), which
    # requires DPoP (docs/decisions.md, "Which clients must use DPoP").
    return node(stack, "ts-machine.mjs", stack.resource_url, MACHINE_BEARER_CLIENT,
                str(key_path(stack.key_dir("machine"), kid)), stack.issuer)


@pytest.mark.matrix("TypeScript SDK 1.x", "client credentials")
def test_typescript_sdk_machine_flow_with_no_scope_and_no_kid(stack: Stack):
    out = machine_flow(stack)
    assert out["tools"] == TOOL_NAMES
    assert out["callIsError"] is False
    assert "mcp:tools" in out["scope"].split()


@pytest.mark.matrix("TypeScript SDK 1.x", "client credentials")
def test_typescript_sdk_machine_flow_right_after_rotate_keys(stack: Stack):
    """`make rotate-keys`: the new key signs at once, though the SDK names no `kid` (the target
    also makes Keycloak forget the keys it cached)."""
    with restored_afterwards("machine"):
        before, _ = current_key(stack.key_dir("machine"))
        subprocess.run(["make", "rotate-keys", "AGENT=machine"], cwd=ROOT, check=True, capture_output=True,
                       timeout=300)
        assert current_key(stack.key_dir("machine"))[0] != before  # a new key signs now
        out = machine_flow(stack)
    assert out["callIsError"] is False


@pytest.mark.anyio
@pytest.mark.matrix("TypeScript SDK 1.x", "CIMD")
@pytest.mark.matrix("TypeScript SDK 1.x", "notes API")
async def test_typescript_sdk_authorization_code_with_cimd_and_private_key_jwt(stack: Stack):
    """The SDK's clientMetadataUrl (CIMD) with the demo agent's key and a document that says
    private_key_jwt: the SDK's createPrivateKeyJwtAuth signs every token request. The document is
    the sandbox's Bearer-allowed twin of the demo agent's (`agents/demo-bearer`: the same key and
    redirect URIs, no `dpop_bound_access_tokens`), since the SDK 1.x speaks Bearer only. A real
    browser plays the user (alice: login and consent). Then the notes tools, which the MCP server
    serves by calling the notes API as alice with a token it exchanged for hers."""
    kid, _ = current_key(stack.key_dir("demo"))
    client_id = f"{stack.cimd_origin}/agents/demo-bearer/metadata.json"
    result, query = await sign_in_and_run(
        stack,
        [str(NODE_DIR / "node_modules" / ".bin" / "node"), "--require", "./localhost.cjs", "ts-cimd.mjs",
         stack.resource_url, client_id, str(key_path(stack.key_dir("demo"), kid)), str(stack.callback_port)],
        cwd=NODE_DIR, env={**os.environ, "NODE_EXTRA_CA_CERTS": str(stack.ca_file)})
    assert query["client_id"] == client_id  # CIMD, not DCR
    assert result["tools"] == TOOL_NAMES
    assert result["clientId"] == client_id
    assert result["whoami"]["client_id"] == client_id
    assert result["whoami"]["audience"] == [stack.resource_url]
    assert_a_notes_round_trip(stack, result["whoami"]["subject"], result["notes"])
