"""Keycloak's admin API for tests, as the sandbox's service-account admin client (no password
grant: no realm allows it)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime

from testcontainers.compose import DockerCompose

from tests.support.stack import Stack

ADMIN_CLIENT_ID = "sandbox-admin"


def kcadm(compose: DockerCompose, stack: Stack, *args: str) -> str:
    """Run kcadm.sh inside the Keycloak container (the admin API is not routed publicly), as the
    admin client: kcadm-admin.sh reads the client secret from the container's own compose secret,
    so it is on no command line, neither the host's `docker compose exec` nor the container's.
    (`stack` is kept for the callers; the secret no longer comes from it.)"""
    stdout, stderr, code = compose.exec_in_container(["/opt/keycloak/bin/kcadm-admin.sh", *args], service_name="keycloak")
    assert code == 0, stderr
    return stdout


def kcadm_json(compose: DockerCompose, stack: Stack, *args: str):
    return json.loads(kcadm(compose, stack, *args))


def delete_clients(compose: DockerCompose, stack: Stack, prefix: str, realm: str = "mcp") -> int:
    """Remove the clients a test created (CIMD clients are named by their URL), so the suite
    leaves a developer's sandbox as it found it."""
    found = kcadm_json(compose, stack, "get", "clients", "-r", realm, "-q", f"clientId={prefix}", "-q", "search=true",
                       "--fields", "id,clientId")
    doomed = [c for c in found if c["clientId"].startswith(prefix)]
    for client in doomed:
        kcadm(compose, stack, "delete", f"clients/{client['id']}", "-r", realm)
    return len(doomed)


def services(compose: DockerCompose) -> list[str]:
    """The services of the running topology (two Keycloak nodes and MCP replicas in TOPOLOGY=ha)."""
    return subprocess.run([*compose.docker_compose_command(), "config", "--services"], cwd=compose.context,
                          capture_output=True, text=True, check=True).stdout.split()


def nodes(compose: DockerCompose) -> list[str]:
    """The Keycloak nodes: a refusal may be logged by whichever node the front chose."""
    return [s for s in services(compose) if s == "keycloak" or s.startswith("keycloak-")]


EVENT = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) WARN  \[org\.keycloak\.events\] \([^)]*\) (.*)$')


def events(compose: DockerCompose, since: datetime) -> list[dict[str, str]]:
    """Keycloak's error events (its `jboss-logging` listener) logged at or after `since` (UTC):
    the reason behind a refusal the HTTP answer only summarises."""
    out = subprocess.run([*compose.docker_compose_command(), "logs", "--no-log-prefix", *nodes(compose)],
                         cwd=compose.context, capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        match = EVENT.match(line)
        if match and datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC) >= since:
            found.append(dict(re.findall(r'(\w+)="([^"]*)"', match.group(2))))
    return found


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def warnings(compose: DockerCompose, since: datetime) -> str:
    """Keycloak's WARN and ERROR log entries (continuation lines included) logged at or after
    `since` (UTC): where it says why, when neither the answer nor the event does."""
    out = subprocess.run([*compose.docker_compose_command(), "logs", "--no-log-prefix", *nodes(compose)],
                         cwd=compose.context, capture_output=True, text=True, check=True).stdout
    kept, keeping = [], False
    for line in out.splitlines():
        stamp = STAMP.match(line)
        if stamp:
            at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            keeping = at >= since and line[stamp.end():].startswith(("WARN", "ERROR"))
        if keeping:
            kept.append(line)
    return "\n".join(kept)
