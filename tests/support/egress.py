"""What Keycloak's egress proxy decided: one JSON line per request (smokescreen's
CANONICAL-PROXY-DECISION), read from the container's log."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from testcontainers.compose import DockerCompose


@dataclass(frozen=True)
class Decision:
    requested_host: str
    allow: bool
    reason: str
    proxy_type: str


def now() -> datetime:
    """A marker: only decisions on requests that arrived after it are read."""
    return datetime.now(UTC)


def _started(entry: dict) -> datetime:
    # start_time has nanoseconds ("...:15.276712998Z"); datetime keeps microseconds.
    stamp = entry["start_time"].rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")


def decisions(compose: DockerCompose, since: datetime) -> list[Decision]:
    out = subprocess.run(
        [*compose.docker_compose_command(), "logs", "--no-log-prefix", "egress"],
        cwd=compose.context, capture_output=True, text=True, check=True,
    ).stdout
    found = []
    for line in out.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") != "CANONICAL-PROXY-DECISION" or "requested_host" not in entry:
            continue
        if _started(entry) >= since:
            found.append(Decision(entry["requested_host"], entry.get("allow") is True,
                                  entry.get("decision_reason", ""), entry.get("proxy_type", "")))
    return found


# Raw proxy requests from a container on the edge network (where the proxy listens): one status
# line per request, in order.
_ASK = """
import socket, sys
for request in sys.argv[1:]:
    with socket.create_connection(("egress", 4750), timeout=10) as s:
        s.sendall(request.encode())
        print(s.recv(200).split(b"\\r\\n")[0].decode())
"""


def ask(compose: DockerCompose, *requests: str) -> list[str]:
    stdout, stderr, code = compose.exec_in_container(["python", "-c", _ASK, *requests], service_name="mcp-server")
    assert code == 0, stderr
    return stdout.splitlines()


def connect(compose: DockerCompose, *targets: str) -> dict[str, str]:
    """CONNECT each host:port through the proxy; its answer's status line for each."""
    lines = ask(compose, *(f"CONNECT {t} HTTP/1.1\r\nHost: {t}\r\n\r\n" for t in targets))
    return dict(zip(targets, lines, strict=True))


def settled(compose: DockerCompose, since: datetime) -> list[Decision]:
    """Every decision since the marker, complete: a sentinel request is sent through the proxy
    after the action under test, and the log is read once the sentinel's decision is in it
    (the log is ordered), so an absent decision is absent, not late."""
    sentinel = f"sentinel-{uuid.uuid4().hex[:12]}.invalid:443"
    connect(compose, sentinel)
    assert wait_for(compose, since, sentinel), "the proxy never logged the sentinel request"
    return [d for d in decisions(compose, since) if d.requested_host != sentinel]


def wait_for(compose: DockerCompose, since: datetime, host: str, timeout: float = 10.0) -> list[Decision]:
    """Every decision about `host` since the marker, once at least one has been logged."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in decisions(compose, since) if d.requested_host == host]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)
