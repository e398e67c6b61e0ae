"""Keycloak's admin API for tests, as the sandbox's service-account admin client (no password
grant: no realm allows it).

`kcadm(compose, stack, <kcadm.sh arguments>)` keeps kcadm.sh's command language, which the tests
are written in, but runs the commands the suite uses (get, create, update, delete,
set-password) as admin REST calls from the host to a Keycloak node's own HTTP port on the
compose network — the address kcadm.sh would use inside the container, never routed publicly.
kcadm.sh itself is a JVM started per command (about 4.5 s on the project's machine kind), and the
suite makes a few hundred admin calls in each topology. Where that address cannot be reached from
the host (Docker Desktop keeps container addresses inside its VM) or a command uses an option this
translation does not know, the command runs as before: kcadm-admin.sh inside the container.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from testcontainers.compose import DockerCompose

from tests.support.stack import Stack

ADMIN_CLIENT_ID = "sandbox-admin"
ADMIN_SECRET = "keycloak-admin-client-secret"
HTTP_PORT = 8080  # Keycloak's own HTTP listener, inside the compose network (kcadm-admin.sh's server)


class Unsupported(Exception):
    """A kcadm command or option the REST translation does not handle: run kcadm.sh itself."""


def kcadm(compose: DockerCompose, stack: Stack, *args: str) -> str:
    """kcadm.sh's output for `args`, as the admin client (see the module's docstring). A command
    that fails fails the test with Keycloak's answer."""
    try:
        admin = _admin(compose, stack)
        if admin is not None:
            return admin.run(list(args))
    except Unsupported:
        pass
    return _kcadm_in_container(compose, *args)


def _kcadm_in_container(compose: DockerCompose, *args: str) -> str:
    """kcadm.sh inside the Keycloak container: kcadm-admin.sh reads the client secret from the
    container's own compose secret, so it is on no command line, neither the host's `docker
    compose exec` nor the container's."""
    stdout, stderr, code = compose.exec_in_container(["/opt/keycloak/bin/kcadm-admin.sh", *args], service_name="keycloak")
    assert code == 0, stderr
    return stdout


class AdminAPI:
    """The admin REST API of the Keycloak node at `origin` (http://<container address>:8080), with
    a client-credentials token of the admin client, renewed before it expires."""

    def __init__(self, origin: str, secret: str) -> None:
        self.origin = origin
        self._secret = secret
        self._http = httpx2.Client(base_url=origin, timeout=30.0)
        self._token: str | None = None
        self._renew_at = 0.0

    def _headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._renew_at:
            answer = self._http.post("/realms/master/protocol/openid-connect/token",
                                     data={"grant_type": "client_credentials", "client_id": ADMIN_CLIENT_ID,
                                           "client_secret": self._secret})
            assert answer.status_code == 200, f"admin client login: {answer.status_code} {answer.text[:300]}"
            tokens = answer.json()
            self._token = tokens["access_token"]
            self._renew_at = time.monotonic() + max(5, int(tokens.get("expires_in", 60)) - 15)
        return {"authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None,
                body: Any = None) -> httpx2.Response:
        answer = self._http.request(method, f"/admin/{path}", params=params, json=body, headers=self._headers())
        assert answer.is_success, f"{method} /admin/{path}: {answer.status_code} {answer.text[:500]}"
        return answer

    def run(self, args: list[str]) -> str:
        """One kcadm.sh command (its arguments) as REST calls; its output as kcadm.sh prints it."""
        if not args:
            raise Unsupported
        command, rest = args[0], args[1:]
        path = rest.pop(0) if command in ("get", "create", "update", "delete") and rest else None
        realm, queries, fields, sets, print_id, options = None, [], None, [], False, {}
        while rest:
            option = rest.pop(0)
            if option == "-i":
                print_id = True
            elif option in ("-r", "-q", "--fields", "-s", "--username", "--new-password") and rest:
                value = rest.pop(0)
                if option == "-r":
                    realm = value
                elif option == "-q":
                    queries.append(tuple(value.split("=", 1)) if "=" in value else (value, ""))
                elif option == "--fields":
                    fields = value.split(",")
                elif option == "-s":
                    sets.append(value)
                else:
                    options[option] = value
            else:
                raise Unsupported(option)
        if command == "set-password":
            if set(options) != {"--username", "--new-password"} or realm is None:
                raise Unsupported(command)
            found = self.request("GET", f"realms/{realm}/users",
                                 params=[("username", options["--username"]), ("exact", "true")]).json()
            assert len(found) == 1, f"set-password: user {options['--username']!r} not found in realm {realm}"
            self.request("PUT", f"realms/{realm}/users/{found[0]['id']}/reset-password",
                         body={"type": "password", "value": options["--new-password"], "temporary": False})
            return ""
        if path is None or options:
            raise Unsupported(command)
        # kcadm.sh: a path under realms/ or serverinfo is the admin API's own; others are the realm's.
        if not (path == "serverinfo" or path == "realms" or path.startswith("realms/")):
            path = f"realms/{realm or 'master'}/{path}"
        if command == "get":
            if sets or print_id:
                raise Unsupported(command)
            found = self.request("GET", path, params=queries).json()
            if fields is not None:
                found = [_only(item, fields) for item in found] if isinstance(found, list) else _only(found, fields)
            return json.dumps(found, indent=2)
        if command == "delete":
            if sets or queries or fields or print_id:
                raise Unsupported(command)
            self.request("DELETE", path)
            return ""
        if queries or fields:
            raise Unsupported(command)
        body = _assigned({} if command == "create" else self.request("GET", path).json(), sets)
        if command == "create":
            answer = self.request("POST", path, body=body if sets else None)
            location = answer.headers.get("location", "")
            return location.rstrip("/").rsplit("/", 1)[-1] + "\n" if print_id else ""
        self.request("PUT", path, body=body)
        return ""


def _only(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {name: item[name] for name in fields if name in item}


def _assigned(body: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """kcadm.sh's `-s name=value`: a dotted name sets a nested attribute; a value that parses as
    JSON (true, 5, ["900"]) is that JSON, any other value a string."""
    for assignment in sets:
        name, sep, value = assignment.partition("=")
        if not sep or "[" in name:
            raise Unsupported(assignment)
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        *parents, leaf = name.split(".")
        target = body
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = parsed
    return body


_admins: dict[str, AdminAPI | None] = {}


def _admin(compose: DockerCompose, stack: Stack) -> AdminAPI | None:
    """The admin API of a running Keycloak node reachable from here (the first that answers), or
    None where no node's address can be reached from the host. Resolved again when the node
    was replaced (a new container has a new address)."""
    for node in nodes(compose):
        ids = subprocess.run([*compose.docker_compose_command(), "ps", "-q", node], cwd=compose.context,
                             capture_output=True, text=True, check=True).stdout.split()
        for container in ids:
            addresses = subprocess.run(
                ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container],
                capture_output=True, text=True, check=True).stdout.split()
            for address in addresses:
                key = f"{container}@{address}"
                if key not in _admins:
                    _admins[key] = AdminAPI(f"http://{address}:{HTTP_PORT}", stack.secret(ADMIN_SECRET)) \
                        if _reachable(address) else None
                if _admins[key] is not None:
                    return _admins[key]
    return None


def _reachable(address: str) -> bool:
    try:
        with socket.create_connection((address, HTTP_PORT), timeout=1):
            return True
    except OSError:
        return False


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


def _logs(compose: DockerCompose, since: datetime) -> str:
    """The Keycloak nodes' log lines from shortly before `since` on (not the whole log since the
    containers started, which grows with every test); the callers filter by the lines' own time."""
    start = (since - timedelta(seconds=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return subprocess.run([*compose.docker_compose_command(), "logs", "--no-log-prefix", "--since", start, *nodes(compose)],
                          cwd=compose.context, capture_output=True, text=True, check=True).stdout


EVENT = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) WARN  \[org\.keycloak\.events\] \([^)]*\) (.*)$')


def events(compose: DockerCompose, since: datetime) -> list[dict[str, str]]:
    """Keycloak's error events (its `jboss-logging` listener) logged at or after `since` (UTC):
    the reason behind a refusal the HTTP answer only summarises."""
    out = _logs(compose, since)
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
    out = _logs(compose, since)
    kept, keeping = [], False
    for line in out.splitlines():
        stamp = STAMP.match(line)
        if stamp:
            at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            keeping = at >= since and line[stamp.end():].startswith(("WARN", "ERROR"))
        if keeping:
            kept.append(line)
    return "\n".join(kept)
