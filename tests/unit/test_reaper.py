"""`realm-sync reap`'s rule, against an in-memory admin API: which clients are registrations (the
UUID rule; declared and CIMD clients never), when one is old enough (its CLIENT_REGISTER event, or
none kept), what counts as used (login events, sessions, the remembered attribute), the deletion
cap, the dry run, and the long-running loop. The admin API side is proven against the real
Keycloak in tests/integration/test_registration_reaper.py."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest
from realm_sync import __main__ as cli
from realm_sync.admin import Admin, SyncError
from realm_sync.reaper import (
    USED_ATTRIBUTE,
    RealmClients,
    Reaper,
    Rules,
    Tally,
    forever,
    is_registration,
    read_realm,
)

from tests.unit.realm_profile import rendered

NOW = 1_800_000_000.0
HOUR = 3600
DAY = 86400
CIMD = "https://cimd.localhost/agents/demo/metadata.json"


class FakeKeycloak(Admin):
    """The parts of the admin API the reaper uses, for realm `mcp`, in memory. Reads answer from
    `clients` (by internal id), `events`, `sessions` and `config`; writes are recorded in `sent`
    and applied. Another realm does not exist (404)."""

    def __init__(self) -> None:
        super().__init__(None, "http://keycloak:8080", "sandbox-admin", "secret")  # type: ignore[arg-type]
        self.config: dict[str, Any] = {"eventsEnabled": True, "eventsExpiration": DAY, "enabledEventTypes": []}
        self.clients: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.sessions: dict[str, tuple[int, int]] = {}
        self.sent: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.broken: set[str] = set()  # paths that answer 500
        self.now = NOW
        self.refuse_put = False

    def register(self, *, age: float | None = 2 * HOUR, name: str = "MCP Inspector", client_id: str | None = None,
                 attributes: dict[str, str] | None = None) -> str:
        """A client as anonymous DCR makes it (clientId = its id), its CLIENT_REGISTER event `age`
        seconds ago (None: the event has expired)."""
        internal = str(uuid.uuid4())
        client_id = client_id or internal
        self.clients[internal] = {"id": internal, "clientId": client_id, "name": name, "publicClient": True,
                                  "redirectUris": ["http://127.0.0.1:8976/callback"], "attributes": dict(attributes or {}),
                                  "protocolMappers": [{"name": "m", "protocol": "openid-connect"}]}
        if age is not None:
            self.event("CLIENT_REGISTER", client_id, age)
        return client_id

    def event(self, kind: str, client_id: str, age: float) -> None:
        self.events.append({"type": kind, "clientId": client_id, "time": int((self.now - age) * 1000)})

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        params = kwargs.get("params") or {}
        pairs = list(params.items()) if isinstance(params, dict) else list(params)
        query = dict(pairs)
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if method == "GET":
            self.reads.append("/".join(parts[1:]))
        else:
            self.sent.append((method, "/".join(parts[1:])))
        match method, parts:
            case "GET", ["mcp", "events", "config"]:
                return httpx2.Response(200, json=self.config)
            case "GET", ["mcp", "clients"]:
                if "clientId" in query:
                    return httpx2.Response(200, json=[c for c in self.clients.values() if c["clientId"] == query["clientId"]])
                ordered = sorted(self.clients.values(), key=lambda c: c["clientId"])
                first, most = int(query.get("first", 0)), int(query.get("max", 100))
                return httpx2.Response(200, json=ordered[first:first + most])
            case "GET", ["mcp", "clients", internal]:
                client = self.clients.get(internal)
                return httpx2.Response(200, json={**client, "access": {"view": True}}) if client else httpx2.Response(404)
            case "PUT", ["mcp", "clients", internal]:
                if self.refuse_put:
                    raise SyncError(f"PUT /admin/realms{path}: HTTP 400: Request not allowed")
                self.clients[internal] = kwargs["json"]
            case "DELETE", ["mcp", "clients", internal]:
                if internal not in self.clients:
                    raise SyncError(f"DELETE /admin/realms{path}: HTTP 404: Could not find client")
                del self.clients[internal]
            case "GET", ["mcp", "clients", internal, kind]:
                if internal not in self.clients:
                    return httpx2.Response(404)
                user, offline = self.sessions.get(internal, (0, 0))
                return httpx2.Response(200, json={"count": user if kind == "session-count" else offline})
            case "GET", ["mcp", "events"]:
                if "/mcp/events" in self.broken:
                    return httpx2.Response(500)
                types = {value for key, value in pairs if key == "type"}
                found = sorted((e for e in self.events if e["clientId"] == query.get("client") and e["type"] in types),
                               key=lambda e: -e["time"])
                return httpx2.Response(200, json=found[:int(query.get("max", 100))])
            case "GET", _:
                return httpx2.Response(404)
            case _:
                raise AssertionError(f"unexpected {method} {path}")
        return httpx2.Response(204)


def declared(*client_ids: str) -> RealmClients:
    return RealmClients("mcp", frozenset(client_ids))


def reap(keycloak: FakeKeycloak, realm: RealmClients | None = None, **rules: Any) -> Tally:
    return Reaper(keycloak, realm or declared("mcp-agent"), Rules(**rules), clock=lambda: NOW).run()


def deleted(keycloak: FakeKeycloak) -> list[str]:
    return [path.rsplit("/", 1)[1] for method, path in keycloak.sent if method == "DELETE"]


# Which clients


def test_a_registration_is_a_client_whose_client_id_is_its_own_uuid_and_that_no_file_declares():
    ident = str(uuid.uuid4())
    assert is_registration({"id": ident, "clientId": ident}, frozenset())
    # Declared (even in the UUID form), named by the admin API, CIMD, upper-case, not a UUID: never.
    assert not is_registration({"id": ident, "clientId": ident}, frozenset({ident}))
    assert not is_registration({"id": ident, "clientId": "mcp-agent"}, frozenset())
    assert not is_registration({"id": ident, "clientId": CIMD}, frozenset())
    assert not is_registration({"id": ident.upper(), "clientId": ident.upper()}, frozenset())
    assert not is_registration({"id": "admin-cli", "clientId": "admin-cli"}, frozenset())
    assert not is_registration({"id": ident, "clientId": str(uuid.uuid4())}, frozenset())
    assert not is_registration({"clientId": ident}, frozenset())


def test_the_declared_clients_come_from_the_rendered_realm_files_with_only_client_id_placeholders_filled(tmp_path: Path):
    for name, realm in rendered("sandbox").items():
        (tmp_path / name).write_text(json.dumps(realm))
    # The reaper gets no secret but the admin client's: the files' passwords stay unfilled.
    values = {"MCP_RESOURCE_URL": "https://mcp.localhost/mcp", "API_URL": "https://api.localhost"}
    mcp = read_realm(tmp_path / "mcp-realm.json", values)
    assert mcp.realm == "mcp"
    assert {"mcp-agent", "mcp-machine-agent", "mcp-agent-confidential", "https://mcp.localhost/mcp",
            "https://api.localhost"} <= mcp.declared
    assert read_realm(tmp_path / "other-realm.json", values).realm == "other"
    with pytest.raises(Exception, match=r"placeholder \$\{MCP_RESOURCE_URL\} is not set"):
        read_realm(tmp_path / "mcp-realm.json", {})


def test_declared_cimd_and_admin_made_clients_are_never_touched_however_old_and_unused():
    keycloak = FakeKeycloak()
    keycloak.register(client_id="mcp-agent")
    keycloak.register(client_id=CIMD)
    keycloak.register(client_id="made-by-an-admin", age=None)
    uuid_declared = str(uuid.uuid4())
    keycloak.clients[uuid_declared] = {"id": uuid_declared, "clientId": uuid_declared, "attributes": {}}
    tally = reap(keycloak, declared("mcp-agent", uuid_declared), older_than=0)
    assert (tally.clients, tally.registrations, tally.reaped) == (4, 0, 0)
    assert keycloak.sent == []
    # Nothing about them was even read: no events, no sessions.
    assert "events" not in keycloak.reads


# When: the age


def test_an_unused_registration_older_than_the_limit_is_deleted_a_younger_one_kept(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    old = keycloak.register(age=2 * HOUR, name="old one")
    young = keycloak.register(age=HOUR - 60, name="young one")
    tally = reap(keycloak, older_than=HOUR)
    assert deleted(keycloak) == [old]
    assert young in keycloak.clients
    assert (tally.reaped, tally.young, tally.in_use) == (1, 1, 0)
    out = capsys.readouterr().out
    assert f'realm-sync reap: mcp: reaped {old} "old one" (registered 2 h 0 min ago; no login, no session)' in out
    assert "realm-sync reap: mcp: 1 reaped, 0 in use, 1 younger than 60 min (of 2 anonymous registration(s) among 2" in out


def test_no_register_event_means_as_old_as_the_events_kept_not_unknown():
    keycloak = FakeKeycloak()
    expired = keycloak.register(age=None)
    # Kept a day: older than an hour, so reaped ...
    assert reap(keycloak, older_than=HOUR).reaped == 1
    assert deleted(keycloak) == [expired]
    # ... but a limit past the retention cannot be told from a missing event: kept.
    keycloak = FakeKeycloak()
    keycloak.register(age=None)
    assert reap(keycloak, older_than=2 * DAY).young == 1
    # Events kept forever (no eventsExpiration): no event means it came before the events.
    keycloak = FakeKeycloak()
    del keycloak.config["eventsExpiration"]
    keycloak.register(age=None)
    assert reap(keycloak, older_than=30 * DAY).reaped == 1


@pytest.mark.parametrize("config", [{"eventsEnabled": False}, {"eventsEnabled": True, "enabledEventTypes": ["LOGIN"]},
                                    {"eventsEnabled": True, "enabledEventTypes": ["CLIENT_REGISTER", "LOGIN"]}],
                         ids=["events-off", "no-register-events", "no-code-to-token-events"])
def test_a_realm_whose_events_cannot_tell_age_and_use_is_left_alone(config: dict[str, Any],
                                                                    capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    keycloak.config = config
    keycloak.register(age=None)
    tally = reap(keycloak, older_than=0)
    assert tally.reaped == 0
    assert keycloak.sent == []
    assert "1 registration(s) left alone: the realm" in capsys.readouterr().out


# Used: events, sessions, and what is remembered


@pytest.mark.parametrize("kind", ["LOGIN", "CODE_TO_TOKEN"])
def test_a_login_event_keeps_the_registration_and_is_remembered_in_the_client(kind: str):
    keycloak = FakeKeycloak()
    used = keycloak.register(age=20 * HOUR)
    keycloak.event(kind, used, age=19 * HOUR)
    tally = reap(keycloak, older_than=HOUR)
    assert (tally.reaped, tally.in_use, tally.remembered) == (0, 1, 1)
    assert keycloak.sent == [("PUT", f"clients/{used}")]
    client = keycloak.clients[used]
    assert client["attributes"][USED_ATTRIBUTE] == "2027-01-15T08:00:00+00:00"
    # PUT carried the representation as GET returned it, the attribute added: nothing else lost.
    assert client["redirectUris"] == ["http://127.0.0.1:8976/callback"]
    assert client["protocolMappers"] == [{"name": "m", "protocol": "openid-connect"}]


def test_use_is_remembered_as_soon_as_it_is_seen_even_while_the_registration_is_young():
    keycloak = FakeKeycloak()
    used = keycloak.register(age=60)
    keycloak.event("LOGIN", used, age=30)
    assert reap(keycloak, older_than=HOUR).remembered == 1
    assert USED_ATTRIBUTE in keycloak.clients[used]["attributes"]


@pytest.mark.parametrize("sessions", [(1, 0), (0, 2)], ids=["user-session", "offline-session"])
def test_a_session_keeps_an_old_registration_whose_login_events_have_expired(sessions: tuple[int, int]):
    keycloak = FakeKeycloak()
    used = keycloak.register(age=None)
    internal = next(c["id"] for c in keycloak.clients.values() if c["clientId"] == used)
    keycloak.sessions[internal] = sessions
    tally = reap(keycloak, older_than=HOUR)
    assert (tally.reaped, tally.remembered) == (0, 1)
    assert USED_ATTRIBUTE in keycloak.clients[internal]["attributes"]


def test_a_remembered_registration_is_kept_forever_without_asking_keycloak_again():
    keycloak = FakeKeycloak()
    kept = keycloak.register(age=None, attributes={USED_ATTRIBUTE: "2026-01-01T00:00:00+00:00"})
    tally = reap(keycloak, older_than=0)
    assert (tally.reaped, tally.in_use, tally.remembered) == (0, 1, 0)
    assert kept in keycloak.clients
    assert keycloak.sent == []
    assert keycloak.reads == ["events/config", "clients"]


def test_a_client_that_cannot_be_remembered_is_still_kept_and_said_so(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    used = keycloak.register(age=2 * HOUR)
    keycloak.event("LOGIN", used, age=HOUR)
    keycloak.refuse_put = True
    tally = reap(keycloak, older_than=HOUR)
    assert tally.reaped == 0
    assert used in keycloak.clients
    assert "is used (LOGIN event) but could not be remembered: PUT" in capsys.readouterr().out


# Bounded, dry, robust


def test_at_most_max_deletions_a_round_the_rest_waits(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    for _ in range(5):
        keycloak.register(age=2 * HOUR)
    tally = reap(keycloak, older_than=HOUR, max_deletions=2)
    assert (tally.reaped, tally.not_examined) == (2, 3)
    assert len(keycloak.clients) == 3
    assert "3 left for the next round (at most 2 deletions a round)" in capsys.readouterr().out
    assert reap(keycloak, older_than=HOUR, max_deletions=2).reaped == 2
    assert reap(keycloak, older_than=HOUR, max_deletions=2).reaped == 1


def test_every_page_of_clients_is_listed_before_the_first_deletion():
    keycloak = FakeKeycloak()
    for _ in range(250):
        keycloak.register(age=2 * HOUR)
    assert reap(keycloak, older_than=HOUR).reaped == 250
    assert keycloak.clients == {}


def test_the_dry_run_writes_nothing_and_says_what_it_would_do(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    old = keycloak.register(age=2 * HOUR)
    used = keycloak.register(age=2 * HOUR)
    keycloak.event("CODE_TO_TOKEN", used, age=HOUR)
    tally = reap(keycloak, older_than=HOUR, check=True)
    assert (tally.reaped, tally.remembered, tally.writes) == (1, 1, 2)
    assert keycloak.sent == []
    assert USED_ATTRIBUTE not in keycloak.clients[used]["attributes"]
    out = capsys.readouterr().out
    assert f"would reap {old} " in out
    assert f"would remember {used} " in out
    assert "1 would be reaped, 1 in use (1 newly seen)" in out


def test_a_registration_deleted_meanwhile_is_counted_not_an_error():
    keycloak = FakeKeycloak()
    gone = keycloak.register(age=2 * HOUR)
    listed = Reaper(keycloak, declared(), Rules(older_than=HOUR), clock=lambda: NOW)
    original = keycloak.request

    def racing(method: str, path: str, **kwargs: Any) -> httpx2.Response:
        if method == "DELETE":
            keycloak.clients.pop(gone, None)  # its owner deleted it (RFC 7592) a moment before
        return original(method, path, **kwargs)

    keycloak.request = racing  # type: ignore[method-assign]
    tally = listed.run()
    assert (tally.reaped, tally.gone) == (0, 1)


def test_an_admin_api_failure_stops_the_round_and_deletes_nothing():
    keycloak = FakeKeycloak()
    keycloak.register(age=2 * HOUR)
    keycloak.broken.add("/mcp/events")
    with pytest.raises(SyncError, match=r"GET /admin/realms/mcp/events: HTTP 500"):
        reap(keycloak, older_than=HOUR)
    assert keycloak.sent == []


def test_only_looks_at_the_named_clients_and_the_rule_still_decides():
    keycloak = FakeKeycloak()
    mine, theirs = keycloak.register(age=2 * HOUR), keycloak.register(age=2 * HOUR)
    keycloak.register(client_id="mcp-agent")
    tally = Reaper(keycloak, declared("mcp-agent"), Rules(older_than=0), only=[mine, "mcp-agent", "missing"],
                   clock=lambda: NOW).run()
    assert (tally.clients, tally.registrations, tally.reaped) == (2, 1, 1)
    assert deleted(keycloak) == [mine]
    assert theirs in keycloak.clients


def test_a_registrants_client_name_cannot_forge_log_lines(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    keycloak.register(age=2 * HOUR, name="x\nrealm-sync reap: mcp: 0 reaped\x1b[2J" + "y" * 200)
    reap(keycloak, older_than=HOUR)
    reaped = [line for line in capsys.readouterr().out.splitlines() if " reaped " in line and "(registered" in line]
    assert len(reaped) == 1
    assert '"x\\nrealm-sync reap: mcp: 0 reaped\\u001b[2J' in reaped[0]
    assert "y" * 80 not in reaped[0]


def test_a_realm_that_does_not_exist_is_said_once():
    keycloak = FakeKeycloak()
    tally = Reaper(keycloak, RealmClients("other", frozenset()), Rules(), clock=lambda: NOW).run()
    assert tally.skipped == "no such realm"


def test_the_long_running_loop_repeats_summaries_only_when_they_change(capsys: pytest.CaptureFixture[str]):
    keycloak = FakeKeycloak()
    keycloak.register(age=60)
    summaries: dict[str, str] = {}
    for _ in range(3):
        Reaper(keycloak, declared(), Rules(older_than=HOUR), clock=lambda: NOW, summaries=summaries).run()
    assert capsys.readouterr().out.count("realm-sync reap: mcp: 0 reaped") == 1


# The long-running service


class Stop(Exception):
    pass


def test_forever_logs_a_failed_round_in_one_line_retries_soon_and_beats_after_a_good_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    outcomes: list[Exception | None] = [SyncError("GET http://keycloak:8080/x: Keycloak unreachable for 60 s\nmore"),
                                        None, RuntimeError()]
    sleeps: list[float] = []
    heartbeat = tmp_path / "alive"

    def round_() -> None:
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if not outcomes:
            raise Stop

    with pytest.raises(Stop):
        forever(round_, 300, heartbeat=heartbeat, sleep=sleep, clock=lambda: NOW)
    assert sleeps == [30, 300, 30]
    assert float(heartbeat.read_text()) == NOW + 2 * 300 + 60
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["realm-sync reap: round failed, next in 30 s: SyncError: GET http://keycloak:8080/x: "
                     "Keycloak unreachable for 60 s",
                     "realm-sync reap: round failed, next in 30 s: RuntimeError"]


# The command line


@pytest.fixture
def cli_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeKeycloak, list[str]]:
    keycloak = FakeKeycloak()
    monkeypatch.setattr(cli, "Admin", lambda *args, **kwargs: keycloak)
    keycloak.now = time.time()  # the command line's reaper goes by the real clock
    (tmp_path / "mcp-realm.json").write_text(json.dumps({"realm": "mcp", "clients": [{"clientId": "mcp-agent"}]}))
    (tmp_path / "secret").write_text("s3cret\n")
    monkeypatch.delenv("KEYCLOAK_ADMIN_CLIENT_SECRET", raising=False)
    return keycloak, [str(tmp_path / "mcp-realm.json"), "--secret-file", str(tmp_path / "secret"),
                      "--secrets-dir", str(tmp_path / "none")]


def test_reap_is_a_subcommand_with_check_exiting_1_when_something_would_be_reaped(
        cli_setup: tuple[FakeKeycloak, list[str]], capsys: pytest.CaptureFixture[str]):
    keycloak, args = cli_setup
    old = keycloak.register(age=2 * HOUR)
    assert cli.main(["reap", "--check", *args]) == 1
    assert old in keycloak.clients
    assert cli.main(["reap", *args]) == 0
    assert old not in keycloak.clients
    assert cli.main(["reap", "--check", *args]) == 0
    assert f"reaped {old}" in capsys.readouterr().out


def test_reap_fails_with_exit_2_and_one_line_when_the_admin_api_does(cli_setup: tuple[FakeKeycloak, list[str]],
                                                                     capsys: pytest.CaptureFixture[str]):
    keycloak, args = cli_setup
    keycloak.register(age=2 * HOUR)
    keycloak.broken.add("/mcp/events")
    assert cli.main(["reap", *args]) == 2
    assert capsys.readouterr().err == "realm-sync reap: GET /admin/realms/mcp/events: HTTP 500\n"


@pytest.mark.parametrize("argv", [["reap", "--older-than", "-1"], ["reap", "--every", "0"],
                                  ["reap", "--max-deletions", "0"]])
def test_reap_refuses_meaningless_numbers(argv: list[str]):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2


def test_the_sync_command_line_is_unchanged(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    usage = capsys.readouterr().out
    assert usage.startswith("usage: realm-sync [-h] [--check] [--server SERVER]")
    assert "[paths ...]" in usage
    assert "realm-sync [--check] [PATH ...]: apply realm files to a running Keycloak." in usage
