"""`realm-sync reap`: delete anonymous registrations nobody ever logged in with.

Anonymous dynamic client registration (RFC 7591) needs no credential, and every client it makes
counts against the realm's client cap (its Max Clients Limit policy). A per-source rate limit at
the edge slows a flood down; this takes back the space of registrations that were never used.

Which clients. Keycloak keeps no "registered anonymously" marker on a client (the registration's
kind lives only in its registration access token). What tells a DCR client apart is its clientId:
DCR never lets the caller choose one, so Keycloak gives the client its internal id, a UUID, as
clientId. A client is a *registration* when
- its `clientId` equals its internal `id` and is a UUID, and
- no realm file realm-sync applies declares that clientId.
CIMD clients (their clientId is the document's URL) and the declared clients never match, so they
are never touched. (A client an administrator made through the admin API without a clientId, or
one registered with an initial access token, matches too: the reaper cannot tell those from
anonymous ones, and reaps them on the same terms.)

When. A registration is reaped when both hold:
- it is older than `older_than` seconds. Its age comes from Keycloak's stored `CLIENT_REGISTER`
  event for that clientId. Events are kept `eventsExpiration` seconds (a day in realm `mcp`): no
  event means the registration is at least that old (or, with events kept forever, that it came
  before events were kept);
- nothing shows a completed user login through it: no `LOGIN` or `CODE_TO_TOKEN` event for its
  clientId, no user session and no offline session (`/clients/{id}/session-count`,
  `/offline-session-count`).
Use, once seen, is remembered in the client itself: the attribute `reaper.used-at` (the time it was
first seen used, ISO 8601), written with `PUT /clients/{id}` carrying the representation as `GET`
returned it plus the attribute. The events that proved the use expire after a day and sessions
end; the attribute does not, so a client used once is never reaped later. Keycloak has nothing
native for this: it stores no "last used" time for a client, and its workflows (feature
`workflows`) see `client-authenticated` only for the client-credentials grant, never a user's
login through a client.

A realm whose events are off, or that does not keep `CLIENT_REGISTER` or both login events
(`enabledEventTypes`), is left alone: the reaper cannot tell a registration's age there. Any
answer of the admin API other than the expected one stops the round: not knowing is never a
reason to delete.

Bounded work: the clients are listed page by page before anything is deleted (a deletion would
shift the pages), and at most `max_deletions` are deleted per round; the rest waits for the next.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from realm_sync.admin import Admin, SyncError
from realm_sync.realm import RealmFileError, fill, read

__all__ = ["LOGIN_EVENTS", "USED_ATTRIBUTE", "RealmClients", "Reaper", "Rules", "Tally", "forever", "is_registration",
           "read_realm"]

PREFIX = "realm-sync reap"
# Remembered use: set on a registration the first time a login through it is seen.
USED_ATTRIBUTE = "reaper.used-at"
REGISTER_EVENT = "CLIENT_REGISTER"
# A completed user login through the client: the login itself, or its code redeemed for tokens.
LOGIN_EVENTS = ("LOGIN", "CODE_TO_TOKEN")
# Keycloak's ids: KeycloakModelUtils.generateId(), a random UUID in its canonical, lower-case form.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PAGE_SIZE = 100
MAX_PAGES = 1000  # 100 000 clients: far past any realm's cap; a bound, not a limit anyone meets
# After a failed round the next comes sooner than `every`, but not in a tight loop.
RETRY_SECONDS = 30


def is_registration(client: Mapping[str, Any], declared: frozenset[str]) -> bool:
    """The rule (module docstring): clientId == internal id, a UUID, and not declared in a realm file."""
    client_id = client.get("clientId")
    return (isinstance(client_id, str) and client_id == client.get("id") and UUID.fullmatch(client_id) is not None
            and client_id not in declared)


@dataclass(frozen=True)
class RealmClients:
    """What the reaper needs of one realm file: the realm's name, and the clientIds it declares."""

    realm: str
    declared: frozenset[str]


def read_realm(path: Path, values: Mapping[str, str]) -> RealmClients:
    """The realm's name and declared clientIds, placeholders filled (the MCP server's client is
    `${MCP_RESOURCE_URL}`). Only clientIds are filled: the reaper needs no other secret of the file."""
    realm = read(path)
    clients = realm.get("clients", [])
    if not isinstance(clients, list) or not all(isinstance(c, dict) and isinstance(c.get("clientId"), str) for c in clients):
        raise RealmFileError(f"{path}: clients is a list of objects with a \"clientId\"")
    return RealmClients(realm["realm"], frozenset(fill(c["clientId"], values, f"{path}: clients") for c in clients))


@dataclass(frozen=True)
class Rules:
    older_than: float = 3600
    max_deletions: int = 500
    check: bool = False  # print what would be done, write nothing


@dataclass
class Tally:
    """One realm's round: how many clients, how many registrations among them, what became of them."""

    realm: str
    clients: int = 0
    registrations: int = 0
    reaped: int = 0          # with `check`: would be reaped
    in_use: int = 0          # remembered, or seen used this round
    remembered: int = 0      # seen used this round (with `check`: would be remembered)
    young: int = 0
    gone: int = 0            # deleted by someone else while the round ran
    not_examined: int = 0    # the deletion cap was reached: left for the next round
    skipped: str = ""        # why the realm's registrations were left alone

    @property
    def writes(self) -> int:
        return self.reaped + self.remembered


class _Gone(Exception):
    """The client was deleted while the round looked at it."""


def duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "forever"
    whole = int(max(seconds, 0))
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    if whole < 2 * 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def label(client: Mapping[str, Any]) -> str:
    """`<clientId> "<client_name>"`. The name is the registrant's text: quoted and escaped as JSON
    (no control characters, no forged log lines) and cut to 80 characters."""
    return f"{client.get('clientId')} {json.dumps(str(client.get('name') or '')[:80])}"


class Reaper:
    """One realm's registrations, judged and (unless `rules.check`) reaped or remembered."""

    def __init__(self, admin: Admin, realm: RealmClients, rules: Rules, *, only: Sequence[str] = (),
                 clock: Callable[[], float] = time.time, summaries: dict[str, str] | None = None) -> None:
        self.admin, self.realm, self.rules, self.only, self.clock = admin, realm, rules, tuple(only), clock
        self.base = f"/{quote(realm.realm, safe='')}"
        # Long-running: a realm's summary is printed only when it differs from the last round's.
        self.summaries = summaries

    def say(self, text: str) -> None:
        print(f"{PREFIX}: {self.realm.realm}: {text}", flush=True)

    def run(self) -> Tally:
        tally = Tally(self.realm.realm)
        config = self.admin.get(f"{self.base}/events/config")
        if config is None:
            tally.skipped = "no such realm"
        else:
            clients = self.clients()
            registrations = [client for client in clients if is_registration(client, self.realm.declared)]
            tally.clients, tally.registrations = len(clients), len(registrations)
            tally.skipped = unusable_events(config) if registrations else ""
            if not tally.skipped:
                retention = config.get("eventsExpiration")
                # No CLIENT_REGISTER event: at least as old as the events kept (forever: older than all).
                unknown_age = float(retention) if isinstance(retention, int | float) and retention > 0 else math.inf
                now = self.clock()
                for index, client in enumerate(registrations):
                    if tally.reaped >= self.rules.max_deletions:
                        tally.not_examined = len(registrations) - index
                        break
                    try:
                        self.judge(client, now, unknown_age, tally)
                    except _Gone:
                        tally.gone += 1
        self.summary(tally)
        return tally

    def summary(self, tally: Tally) -> None:
        if tally.skipped:
            text = (f"{tally.registrations} registration(s) left alone: {tally.skipped}" if tally.registrations
                    else tally.skipped)
        else:
            text = (f"{tally.reaped} {'would be reaped' if self.rules.check else 'reaped'}, {tally.in_use} in use"
                    f"{f' ({tally.remembered} newly seen)' if tally.remembered else ''}, "
                    f"{tally.young} younger than {duration(self.rules.older_than)}"
                    f"{f', {tally.gone} deleted meanwhile' if tally.gone else ''}"
                    f" (of {tally.registrations} anonymous registration(s) among {tally.clients} client(s))")
            if tally.not_examined:
                text += (f"; {tally.not_examined} left for the next round "
                         f"(at most {self.rules.max_deletions} deletions a round)")
        if self.summaries is not None:
            if self.summaries.get(self.realm.realm) == text and not tally.writes:
                return
            self.summaries[self.realm.realm] = text
        self.say(text)

    # What the realm has
    def clients(self) -> list[dict[str, Any]]:
        """Every client of the realm (or those `only` names), listed in full before any deletion."""
        if self.only:
            found: list[dict[str, Any]] = []
            for client_id in self.only:
                found += self.admin.get(f"{self.base}/clients", clientId=client_id) or []
            return found
        clients: list[dict[str, Any]] = []
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            batch = self.admin.get(f"{self.base}/clients", first=str(page * PAGE_SIZE), max=str(PAGE_SIZE))
            if not isinstance(batch, list):
                raise SyncError(f"GET /admin/realms{self.base}/clients: not a list of clients")
            clients += [client for client in batch if client.get("id") not in seen]
            seen.update(client.get("id") for client in batch)
            if len(batch) < PAGE_SIZE:
                break
        return clients

    def json(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        """A read the verdict depends on: anything but 200 stops the round (404: the client is gone)."""
        response = self.admin.request("GET", path, params=params or [])
        if response.status_code == 404:
            raise _Gone(path)
        if response.status_code != 200:
            raise SyncError(f"GET /admin/realms{path}: HTTP {response.status_code}")
        return response.json()

    def events(self, client: Mapping[str, Any], *types: str) -> list[dict[str, Any]]:
        """The newest stored event of these types for the client (a list of at most one)."""
        found = self.json(f"{self.base}/events", [("client", str(client["clientId"])), *(("type", t) for t in types),
                                                  ("max", "1")])
        if not isinstance(found, list):
            raise SyncError(f"GET /admin/realms{self.base}/events: not a list of events")
        return found

    def sessions(self, client: Mapping[str, Any]) -> int:
        owner = f"{self.base}/clients/{quote(str(client['id']), safe='')}"
        return sum(int(self.json(f"{owner}/{kind}")["count"]) for kind in ("session-count", "offline-session-count"))

    # The verdict
    def judge(self, client: Mapping[str, Any], now: float, unknown_age: float, tally: Tally) -> None:
        if (client.get("attributes") or {}).get(USED_ATTRIBUTE):
            tally.in_use += 1
            return
        login = self.events(client, *LOGIN_EVENTS)
        if login:
            self.remember(client, f"{login[0].get('type', 'LOGIN')} event", now, tally)
            return
        registered = self.events(client, REGISTER_EVENT)
        age = max(now - float(registered[0]["time"]) / 1000, 0.0) if registered else unknown_age
        if age < self.rules.older_than:
            tally.young += 1
            return
        # Old enough: a session whose login event has expired still counts (offline sessions last).
        sessions = self.sessions(client)
        if sessions:
            self.remember(client, f"{sessions} session(s)", now, tally)
            return
        when = (f"registered {duration(age)} ago" if registered
                else "registered before the events kept" if math.isinf(age)
                else f"registered over {duration(age)} ago: its {REGISTER_EVENT} event has expired")
        self.reap(client, f"{when}; no login, no session", tally)

    def remember(self, client: Mapping[str, Any], evidence: str, now: float, tally: Tally) -> None:
        tally.in_use += 1
        tally.remembered += 1
        if self.rules.check:
            self.say(f"would remember {label(client)} as used ({evidence}): {USED_ATTRIBUTE}")
            return
        path = f"{self.base}/clients/{quote(str(client['id']), safe='')}"
        # The representation as GET returns it, the attribute added: PUT takes a client as a whole.
        current = self.json(path)
        attributes = dict(current.get("attributes") or {})
        attributes[USED_ATTRIBUTE] = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        try:
            self.admin.request("PUT", path, json={**current, "attributes": attributes})
        except SyncError as error:
            if self.admin.get(path) is None:
                raise _Gone(path) from None
            # Kept all the same (it is in use); the next round sees the evidence and tries again.
            self.say(f"{label(client)} is used ({evidence}) but could not be remembered: {error}")
            return
        self.say(f"{label(client)} is used ({evidence}): remembered as {USED_ATTRIBUTE}")

    def reap(self, client: Mapping[str, Any], why: str, tally: Tally) -> None:
        if self.rules.check:
            tally.reaped += 1
            self.say(f"would reap {label(client)} ({why})")
            return
        path = f"{self.base}/clients/{quote(str(client['id']), safe='')}"
        try:
            self.admin.request("DELETE", path)
        except SyncError:
            if self.admin.get(path) is None:  # deleted meanwhile (RFC 7592, an operator)
                raise _Gone(path) from None
            raise
        tally.reaped += 1
        self.say(f"reaped {label(client)} ({why})")


def unusable_events(config: Mapping[str, Any]) -> str:
    """Why the realm's stored events cannot tell a registration's age or use ('' if they can)."""
    if not config.get("eventsEnabled"):
        return "the realm keeps no events (eventsEnabled), so no registration's age can be told"
    kept = set(config.get("enabledEventTypes") or [])  # empty: Keycloak's defaults, which keep all three
    if kept and REGISTER_EVENT not in kept:
        return f"the realm does not keep {REGISTER_EVENT} events (enabledEventTypes)"
    if kept and not kept >= set(LOGIN_EVENTS):
        return f"the realm does not keep {' and '.join(LOGIN_EVENTS)} events (enabledEventTypes)"
    return ""


def forever(round_: Callable[[], object], every: float, *, heartbeat: Path | None = None,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> NoReturn:
    """Run `round_` every `every` seconds, for good. A failed round (Keycloak restarting, the admin
    API refusing) is one line in the log, and the next comes after at most RETRY_SECONDS: never a
    traceback, never an exit for a restart policy to loop on. After each round that completes,
    `heartbeat` gets the time until which the service counts as healthy: two periods and a minute
    on, so a single failed round does not make it unhealthy, a reaper that stopped working does."""
    while True:
        try:
            round_()
        except Exception as error:  # a long-running service: log and go on
            detail = str(error).splitlines()[0] if str(error) else ""
            print(f"{PREFIX}: round failed, next in {duration(min(every, RETRY_SECONDS))}: "
                  f"{error.__class__.__name__}{': ' + detail if detail else ''}", flush=True)
            delay = min(every, RETRY_SECONDS)
        else:
            if heartbeat is not None:
                try:
                    heartbeat.write_text(str(clock() + 2 * every + 60))
                except OSError as error:
                    print(f"{PREFIX}: cannot write the heartbeat {heartbeat}: {error}", flush=True)
            delay = every
        sleep(delay)
