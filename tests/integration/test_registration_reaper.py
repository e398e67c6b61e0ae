"""Registrations nobody ever logged in with are reaped (`realm-sync reap`, the long-running
`registration-reaper` service of `make up`): against the real Keycloak, three anonymous DCR
clients, a login completed through one. The two unused ones go; the used one stays and is
remembered in its attribute `reaper.used-at` (still working: its refresh token is honoured), and
so does every client that is not a registration (the declared ones, CIMD's, Keycloak's own).

Other tests register and delete clients at the same time. The reaper here runs in a one-off
container of realm-sync's image, built from the checkout like `make realm-sync` (so it tests this
code, not what the service was started with), with `--older-than 0`. Its writes are limited to
the clients this test names (`--only`), so no other test's registration is touched; the whole
realm is judged once in a dry run (`--check`), which writes nothing. The stack's own
`registration-reaper` is paused meanwhile: it remembers a used registration as soon as it sees the
login, young or not, and one of its rounds between this test's login and its dry run would do the
remembering this test means to watch."""

from __future__ import annotations

import re
import secrets
import subprocess
from contextlib import ExitStack
from typing import Any

from testcontainers.compose import DockerCompose

from tests.support.dcr import INSPECTOR, registered
from tests.support.keycloak import kcadm, kcadm_json
from tests.support.login import authorize, exchange
from tests.support.secrets import remember
from tests.support.stack import Stack

USED = "reaper.used-at"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def reap(compose: DockerCompose, *args: str) -> subprocess.CompletedProcess[str]:
    """One round, as `docker compose run --rm realm-sync reap ...` (realm-sync's image, its admin client)."""
    command = [*compose.docker_compose_command(), "--profile", "realm-sync", "run", "--rm", "--build", "--no-deps",
               "realm-sync", "reap", *args]
    return subprocess.run(command, cwd=compose.context, capture_output=True, text=True, timeout=600)


def service(compose: DockerCompose, action: str) -> None:
    """Pause or unpause the stack's registration-reaper (frozen mid-round, it resumes where it was)."""
    subprocess.run([*compose.docker_compose_command(), action, "registration-reaper"], cwd=compose.context,
                   capture_output=True, text=True, check=True)


def clients(compose: DockerCompose, stack: Stack) -> list[dict[str, Any]]:
    return kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "id,clientId,attributes")


def client(compose: DockerCompose, stack: Stack, client_id: str) -> dict[str, Any] | None:
    found = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client_id}")
    return found[0] if found else None


def is_registration(entry: dict[str, Any]) -> bool:
    return entry["clientId"] == entry["id"] and UUID.fullmatch(entry["clientId"]) is not None


def test_the_registration_reaper_service_runs_with_the_stack(compose: DockerCompose):
    """make up starts it (no profile), and it is healthy: its rounds complete."""
    state = subprocess.run([*compose.docker_compose_command(), "ps", "--format", "{{.State}} {{.Health}}",
                            "registration-reaper"], cwd=compose.context, capture_output=True, text=True, check=True)
    assert state.stdout.split() == ["running", "healthy"], f"registration-reaper: {state.stdout!r}; run make up"
    logs = subprocess.run([*compose.docker_compose_command(), "logs", "--no-log-prefix", "registration-reaper"],
                          cwd=compose.context, capture_output=True, text=True, check=True).stdout
    assert "realm-sync reap: every " in logs
    assert re.search(r"^realm-sync reap: mcp: \d+ reaped, ", logs, re.MULTILINE), logs[-2000:]
    assert "Traceback" not in logs


def test_unused_registrations_are_reaped_the_used_one_and_every_other_client_stay(compose: DockerCompose, stack: Stack):
    tag = secrets.token_hex(4)
    body = {**INSPECTOR, "redirect_uris": [stack.callback_url]}
    with ExitStack() as cleanup:
        service(compose, "pause")
        cleanup.callback(service, compose, "unpause")
        ids = []
        for n in range(3):
            response = cleanup.enter_context(registered(stack, {**body, "client_name": f"reaper-{tag}-{n}"}))
            assert response.status_code == 201, response.text
            ids.append(response.json()["client_id"])
        used, unused = ids[0], ids[1:]
        cleanup.callback(lambda: [kcadm(compose, stack, "delete", f"clients/{c['id']}", "-r", "mcp")
                                  for c in filter(None, (client(compose, stack, i) for i in ids))])

        # A completed login through the first one: alice, consent, code for tokens.
        with stack.client() as http:
            tokens = exchange(http, stack, authorize(http, stack, "alice", stack.secret("demo-user-password"),
                                                     client_id=used))
        before = client(compose, stack, used)
        assert before is not None
        others = [c for c in clients(compose, stack) if not is_registration(c)]
        kept = {c["clientId"] for c in others}
        assert {"mcp-agent", "mcp-machine-agent", stack.resource_url} <= kept, kept
        cimd = [c for c in kept if c.startswith(f"{stack.cimd_origin}/")]

        # The whole realm, judged and left as it is (--check): ours are named, nothing else is.
        dry = reap(compose, "--check", "--older-than", "0")
        assert dry.returncode == 1, dry.stdout + dry.stderr
        for client_id in unused:
            assert f"realm-sync reap: mcp: would reap {client_id} \"reaper-{tag}-" in dry.stdout, dry.stdout
        assert f"realm-sync reap: mcp: would remember {used} \"reaper-{tag}-0\" as used" in dry.stdout, dry.stdout
        assert not [c for c in kept if f"would reap {c} " in dry.stdout or f"would remember {c} " in dry.stdout]
        assert all(client(compose, stack, client_id) for client_id in ids)
        assert USED not in (client(compose, stack, used) or {}).get("attributes", {})

        # One round for real, over our three and every client that is not a registration.
        named = [arg for client_id in [*ids, *sorted(kept)] for arg in ("--only", client_id)]
        run = reap(compose, "--older-than", "0", *named)
        assert run.returncode == 0, run.stdout + run.stderr
        for n, client_id in enumerate(unused, start=1):
            assert re.search(rf'^realm-sync reap: mcp: reaped {client_id} "reaper-{tag}-{n}" \(registered \d+ s ago; '
                             r"no login, no session\)$", run.stdout, re.MULTILINE), run.stdout
        assert re.search(rf'^realm-sync reap: mcp: {used} "reaper-{tag}-0" is used \((LOGIN|CODE_TO_TOKEN) event\): '
                         rf"remembered as {USED}$", run.stdout, re.MULTILINE), run.stdout
        assert "realm-sync reap: mcp: 2 reaped, 1 in use (1 newly seen), 0 younger than 0 s" in run.stdout, run.stdout

        for client_id in unused:
            assert client(compose, stack, client_id) is None
        after = client(compose, stack, used)
        assert after is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", after["attributes"].pop(USED))
        assert after == before  # the PUT carried the client as it was: only the attribute is new
        still = {c["clientId"] for c in clients(compose, stack)}
        assert kept <= still, kept - still
        assert set(cimd) <= still

        # The used client works as before: its refresh token is honoured.
        with stack.client() as http:
            refreshed = http.post(stack.token_endpoint(), data={
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": used})
        assert refreshed.status_code == 200, refreshed.text
        remember(refreshed.json()["access_token"], refreshed.json().get("refresh_token"))

        # A second round finds nothing to do: the used one is remembered, not looked into again.
        again = reap(compose, "--older-than", "0", *named)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "realm-sync reap: mcp: 0 reaped, 1 in use, 0 younger than 0 s" in again.stdout, again.stdout
        assert " reaped " not in again.stdout.replace("0 reaped", "")


def test_a_young_registration_is_left_for_later(compose: DockerCompose, stack: Stack):
    """With the service's own limit (an hour), a registration made a moment ago is kept."""
    body = {**INSPECTOR, "redirect_uris": [stack.callback_url], "client_name": f"reaper-young-{secrets.token_hex(4)}"}
    with registered(stack, body) as response:
        assert response.status_code == 201, response.text
        client_id = response.json()["client_id"]
        run = reap(compose, "--only", client_id)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "realm-sync reap: mcp: 0 reaped, 0 in use, 1 younger than 60 min" in run.stdout, run.stdout
        assert client(compose, stack, client_id) is not None
