"""Container logs for the audit (tests/security/test_logs.py), including those of containers a
test replaced: `archive` keeps their logs before they go, so the audit still sees them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from testcontainers.compose import DockerCompose

from tests.support.keycloak import services
from tests.support.stack import STATE

ARCHIVE = STATE / "test-logs"


def current(compose: DockerCompose, service: str) -> str:
    return subprocess.run([*compose.docker_compose_command(), "logs", "--no-log-prefix", service], cwd=compose.context,
                          capture_output=True, text=True, check=True).stdout


def archive(compose: DockerCompose) -> None:
    """Keep every service's log before its container is removed."""
    ARCHIVE.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    for service in services(compose):
        (ARCHIVE / f"{service}.{stamp}.log").write_text(current(compose, service))


def all_logs(compose: DockerCompose) -> dict[str, str]:
    """Every service of the running topology, its archived logs first."""
    logs = {}
    for service in services(compose):
        archived = "".join(p.read_text() for p in sorted(ARCHIVE.glob(f"{service}.*.log")))
        logs[service] = archived + current(compose, service)
    return logs
