"""A withdrawn realm signing key stops verifying: at once after `make reload-jwks`.

An operator who withdraws a compromised Keycloak signing key deletes it from the realm; Keycloak's
JWKS no longer lists it. The MCP server trusts its cached keys until MCP_JWKS_MAX_AGE_SECONDS
(300 s; that bound is measured on a fake clock in tests/unit/mcp_server/test_jwks.py), so the
runbook (docs/production.md) tells every replica to fetch the JWKS now: SIGHUP, which
`make reload-jwks` sends to each running replica. Tokens the withdrawn key signed are refused from
then on, by every replica (two in TOPOLOGY=ha, behind Caddy's load balancing).
"""

from __future__ import annotations

import subprocess
import time

import jwt
from testcontainers.compose import DockerCompose

from tests.support.keycloak import kcadm, kcadm_json
from tests.support.mcp import rpc
from tests.support.stack import ROOT, Stack
from tests.support.tokens import token

# The reload is asynchronous (each replica fetches the JWKS once signalled); seconds to wait.
RELOAD_SECONDS = 20
# Consecutive refusals that show every replica refuses (Caddy spreads requests over them).
IN_A_ROW = 8


def add_signing_key(compose: DockerCompose, stack: Stack) -> str:
    """A new RSA key above every other: Keycloak signs with it from now on."""
    realm_id = kcadm_json(compose, stack, "get", "realms/mcp", "--fields", "id")["id"]
    return kcadm(compose, stack, "create", "components", "-r", "mcp", "-s", "name=withdrawn-key-test",
                 "-s", "providerId=rsa-generated", "-s", "providerType=org.keycloak.keys.KeyProvider",
                 "-s", f"parentId={realm_id}", "-s", 'config.priority=["900"]', "-s", 'config.keySize=["2048"]',
                 "-i").strip()


def kid_of(compose: DockerCompose, stack: Stack, component: str) -> str:
    keys = kcadm_json(compose, stack, "get", "keys", "-r", "mcp")["keys"]
    return next(k["kid"] for k in keys if k["providerId"] == component and k.get("use") == "SIG")


def test_a_withdrawn_signing_key_is_refused_once_the_replicas_reload(compose: DockerCompose, stack: Stack) -> None:
    component = add_signing_key(compose, stack)
    try:
        access = token(stack)
        assert jwt.get_unverified_header(access)["kid"] == kid_of(compose, stack, component)
        # An unknown kid makes each replica fetch the JWKS: the new key is trusted at once.
        for _ in range(IN_A_ROW):
            assert rpc(stack, f"Bearer {access}").status_code == 200
    finally:
        kcadm(compose, stack, "delete", f"components/{component}", "-r", "mcp")

    subprocess.run(["make", "--no-print-directory", "reload-jwks"], cwd=ROOT, check=True, capture_output=True)
    deadline = time.monotonic() + RELOAD_SECONDS
    refused = 0
    while refused < IN_A_ROW:
        response = rpc(stack, f"Bearer {access}")
        if response.status_code == 401:
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            refused += 1
            continue
        assert response.status_code == 200, response.text
        refused = 0
        assert time.monotonic() < deadline, f"a token of the withdrawn key still worked {RELOAD_SECONDS} s after reload-jwks"
        time.sleep(0.25)

    # A token of the realm's remaining key works as before.
    assert rpc(stack, f"Bearer {token(stack)}").status_code == 200
