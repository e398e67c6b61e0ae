"""Clients on the edge network: throwaway containers, each at an address of its own, so to Caddy
(and the registration guard's per-source limit) each is one more source — never the host, whose
registration budget the rest of the suite uses (services/registration-guard)."""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from testcontainers.compose import DockerCompose

from tests.support.logs import current
from tests.support.stack import Stack

GUARD = "registration-guard"  # the compose service; its image has Python (standard library)

# Edge addresses this test run has handed out: never given twice (the top quarter of a /24 has 63,
# the suite needs about ten).
HANDED_OUT: set[str] = set()

# Runs inside a source container: the requests of the job on stdin, sequential, each on a new
# connection; prints every answer as JSON.
SEND = r"""
import base64, http.client, json, ssl, sys
from urllib.parse import urlsplit
job = json.load(sys.stdin)
context = ssl.create_default_context(cadata=job["ca"])
results = []
for request in job["requests"]:
    url = urlsplit(request["url"])
    body = None if request["body"] is None else base64.b64decode(request["body"])
    connection = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context, timeout=30)
    try:
        connection.request(request["method"], url.path, body=body, headers=request["headers"])
        response = connection.getresponse()
        results.append({"status": response.status, "headers": dict(response.getheaders()),
                        "body": response.read().decode(errors="replace")})
    except Exception as exc:
        results.append({"status": None, "headers": {}, "body": repr(exc)})
    finally:
        connection.close()
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Limit:
    requests: int
    window: int


@dataclass(frozen=True)
class Source:
    """A container on the edge network: to Caddy, one more client address."""

    name: str
    address: str


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes | None = None
    headers: dict[str, str] | None = None

    @classmethod
    def json(cls, method: str, url: str, body: object, headers: dict[str, str] | None = None) -> Request:
        return cls(method, url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def docker(*args: str, timeout: float = 60, stdin: str | None = None) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def registration_limit(compose: DockerCompose) -> Limit:
    """The limit the running guard enforces (RATELIMIT_ZONES, from REGISTRATION_RATE_LIMIT)."""
    stdout, stderr, code = compose.exec_in_container(["printenv", "RATELIMIT_ZONES"], service_name=GUARD)
    assert code == 0, stderr
    match = re.search(r"(?:^|[,\s])registration=(\d+)/(\d+)", stdout)
    assert match, f"the guard has no registration zone: RATELIMIT_ZONES={stdout.strip()!r}"
    return Limit(int(match.group(1)), int(match.group(2)))


@contextmanager
def edge_sources(compose: DockerCompose, stack: Stack) -> Iterator[Callable[[], Source]]:
    """Starts containers of the guard's image on the edge network, each at a random free address
    in the top quarter of the subnet (Docker hands out addresses from the bottom, and would give
    a freed one to the next container, budget spent and all) that no source of this run had yet —
    a source that spent its budget a moment ago leaves the guard remembering its address for a
    window (the random pick alone once landed on one: a 429 in CI). All stay up until the block
    ends."""
    guard = subprocess.run([*compose.docker_compose_command(), "ps", "-q", GUARD], cwd=compose.context,
                           capture_output=True, text=True, check=True).stdout.split()[0]
    image = docker("inspect", "-f", "{{.Config.Image}}", guard)
    (network,) = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", guard))
    subnet = ipaddress.ip_network(stack.env["SANDBOX_SUBNET"])
    hosts = list(subnet.hosts())
    started: list[str] = []

    def start() -> Source:
        taken = {entry.get("IPv4Address", "").split("/")[0] for entry in
                 json.loads(docker("network", "inspect", "-f", "{{json .Containers}}", network)).values()}
        free = [str(h) for h in hosts[len(hosts) * 3 // 4:]
                if str(h) not in taken and str(h) not in HANDED_OUT and str(h) != stack.env["CADDY_IP"]]
        assert free, f"every edge address of {subnet} was used by this run already"
        address = random.choice(free)
        HANDED_OUT.add(address)
        name = f"{stack.env['COMPOSE_PROJECT_NAME']}-edge-{secrets.token_hex(4)}"
        docker("run", "-d", "--rm", "--no-healthcheck", "--network", network, "--ip", address, "--name", name,
               image, "sleep", "600", timeout=120)
        started.append(name)
        return Source(name, address)

    try:
        yield start
    finally:
        for name in started:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def send(stack: Stack, source: Source, requests: list[Request]) -> list[dict]:
    """The requests, sent from inside `source` in order; each answer as
    {"status", "headers", "body"} (status None if the connection failed)."""
    job = {"ca": stack.ca_file.read_text(), "requests": [
        {"method": r.method, "url": r.url, "headers": r.headers or {},
         "body": None if r.body is None else base64.b64encode(r.body).decode()} for r in requests]}
    return json.loads(docker("exec", "-i", source.name, "python", "-c", SEND, timeout=180, stdin=json.dumps(job)))


def guard_log(compose: DockerCompose, message: str, since: datetime) -> list[dict]:
    """The guard's JSON log entries with `msg` == `message` logged at or after `since`."""
    found = []
    for line in current(compose, GUARD).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == message and datetime.fromisoformat(entry["time"]) >= since:
            found.append(entry)
    return found
