"""Keycloak's admin API for tests, as the sandbox's service-account admin client (no password
grant: no realm allows it)."""

from __future__ import annotations

import json

from testcontainers.compose import DockerCompose

from tests.support.stack import Stack

ADMIN_CLIENT_ID = "sandbox-admin"


def kcadm(compose: DockerCompose, stack: Stack, *args: str) -> str:
    """Run kcadm.sh inside the Keycloak container (the admin API is not routed publicly)."""
    stdout, stderr, code = compose.exec_in_container(
        ["/opt/keycloak/bin/kcadm.sh", *args, "--no-config", "--server", "http://localhost:8080",
         "--realm", "master", "--client", ADMIN_CLIENT_ID, "--secret", stack.secret("keycloak-admin-client-secret")],
        service_name="keycloak",
    )
    assert code == 0, stderr
    return stdout


def kcadm_json(compose: DockerCompose, stack: Stack, *args: str):
    return json.loads(kcadm(compose, stack, *args))
