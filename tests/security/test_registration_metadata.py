"""Anonymous registration asks for more than a user-facing client: a malicious DCR client wants
a machine client (client credentials), the password or implicit grant, another grant Keycloak
knows (device, CIBA, token exchange, JWT bearer, UMA), a secret or keys, or it sends something
that is not client metadata at all. The registration guard (services/registration-guard) refuses
each at the edge with 400 invalid_client_metadata and the reason, and nothing reaches Keycloak:
no client is created. RFC 7592 updates through the registration access token are held to the
same rules, so a public client cannot make itself confidential afterwards.

The refused registrations come from a throwaway container on the edge network (its own
per-source budget; the host's belongs to the rest of the suite); the host sends one registration,
the MCP Inspector's, which still gets 201.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from testcontainers.compose import DockerCompose

from tests.support.dcr import INSPECTOR, registered
from tests.support.edge import GUARD, Request, Source, edge_sources, guard_log, registration_limit, send
from tests.support.keycloak import kcadm, kcadm_json
from tests.support.logs import current
from tests.support.secrets import remember
from tests.support.stack import Stack

AUTH_METHOD = ('token_endpoint_auth_method must be "none": anonymous registration creates public clients only; '
               "use a Client ID Metadata Document for a client with keys")
ONLY_CODE_AND_REFRESH = 'anonymous registration allows only "authorization_code" and "refresh_token"'
NOT_AVAILABLE = "not available to anonymous registration"
IMPLICIT = "implicit flow: removed by OAuth 2.1; tokens in URLs"
SECRET = "s3cret-the-client-chose-" + secrets.token_hex(8)  # must never reach a log (test_logs.py)
remember(SECRET)


def grant(name: str, why: str) -> str:
    return f'grant type "{name}" is not allowed ({why}); {ONLY_CODE_AND_REFRESH}'


def member(name: str) -> str:
    return (f"{name} is not allowed: anonymous registration creates public clients only, without secrets or keys; "
            "use a Client ID Metadata Document for a client with keys")


def response_type(name: str, why: str) -> str:
    return f'response type "{name}" is not allowed ({why}); anonymous registration allows only "code" (and "none")'


CLIENT_CREDENTIALS = grant("client_credentials", "no user: machine clients are pre-registered by an administrator")

# Each case: what the Inspector's registration is changed into, and the guard's exact reason.
METADATA: dict[str, tuple[dict, str]] = {
    "client_credentials": ({"grant_types": ["client_credentials"]}, CLIENT_CREDENTIALS),
    "password": ({"grant_types": ["authorization_code", "password"]}, grant("password", "removed by OAuth 2.1")),
    "implicit": ({"grant_types": ["implicit"]}, grant("implicit", "removed by OAuth 2.1; tokens in URLs")),
    **{name: ({"grant_types": ["authorization_code", urn]}, grant(urn, NOT_AVAILABLE)) for name, urn in {
        "device_code": "urn:ietf:params:oauth:grant-type:device_code",
        "ciba": "urn:openid:params:grant-type:ciba",
        "token_exchange": "urn:ietf:params:oauth:grant-type:token-exchange",
        "jwt_bearer": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "uma_ticket": "urn:ietf:params:oauth:grant-type:uma-ticket",
        "unknown_grant": "urn:example:params:grant-type:custom",
    }.items()},
    "no_auth_method": ({"token_endpoint_auth_method": None}, AUTH_METHOD),  # RFC 7591 default: client_secret_basic
    **{method: ({"token_endpoint_auth_method": method}, AUTH_METHOD) for method in
       ("client_secret_basic", "client_secret_post", "client_secret_jwt", "tls_client_auth")},
    "private_key_jwt": ({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://cimd.localhost/agents/demo/jwks.json"},
                        AUTH_METHOD),
    "client_secret": ({"client_secret": SECRET}, member("client_secret")),
    "client_secret_expires_at": ({"client_secret_expires_at": 0}, member("client_secret_expires_at")),
    "jwks": ({"jwks": {"keys": []}}, member("jwks")),
    "jwks_uri": ({"jwks_uri": "https://cimd.localhost/agents/demo/jwks.json"}, member("jwks_uri")),
    "response_type_token": ({"response_types": ["token"]}, response_type("token", IMPLICIT)),
    "response_type_id_token": ({"response_types": ["id_token"]}, response_type("id_token", IMPLICIT)),
    "hybrid_response_type": ({"response_types": ["code id_token"]}, response_type("code id_token", IMPLICIT)),
}


@dataclass(frozen=True)
class Case:
    request: Request
    status: int
    error: str
    reason: str


def cases(stack: Stack, tag: str) -> dict[str, Case]:
    endpoint = f"{stack.issuer}/clients-registrations/openid-connect"
    found = {}
    for name, (change, reason) in METADATA.items():
        body = {k: v for k, v in {**INSPECTOR, "client_name": f"{tag}-{name}", **change}.items() if v is not None}
        found[name] = Case(Request.json("POST", endpoint, body), 400, "invalid_client_metadata", reason)
    evil = {**INSPECTOR, "client_name": f"{tag}-evil", "grant_types": ["client_credentials"]}

    def raw(body: str) -> Request:
        return Request("POST", endpoint, body.encode(), {"Content-Type": "application/json"})

    found |= {
        "not_json": Case(Request("POST", endpoint, b"token_endpoint_auth_method=none",
                                 {"Content-Type": "application/x-www-form-urlencoded"}), 400, "invalid_client_metadata",
                         "the request body is not valid JSON: client metadata is sent as a JSON object (RFC 7591 section 3.1)"),
        "json_array": Case(raw(json.dumps([INSPECTOR])), 400, "invalid_client_metadata",
                           "the request body is an array, not a JSON object of client metadata (RFC 7591 section 3.1)"),
        # Two parsers may each pick another of the two: the guard refuses rather than guesses.
        "member_given_twice": Case(raw(json.dumps(evil)[:-1] + ', "grant_types": ["authorization_code"]}'), 400,
                                   "invalid_client_metadata", 'member "grant_types" appears more than once in the request body'),
        # Past Caddy's request_body bound (16 KiB), before anything buffers it.
        "body_too_large": Case(Request.json("POST", endpoint, {**INSPECTOR, "client_name": "x" * 17_000}), 413,
                               "invalid_client_metadata",
                               "the request body is larger than 16384 bytes; client metadata takes a few hundred"),
        # A body of the client's own in the header the guard reads: Caddy replaces it with the real one.
        "forged_body_header": Case(Request.json("POST", endpoint, evil, {
            "X-Registration-Body": "eyJ0b2tlbl9lbmRwb2ludF9hdXRoX21ldGhvZCI6ICJub25lIn0="}), 400, "invalid_client_metadata",
            CLIENT_CREDENTIALS),
        # POST in lower case, and a path with an empty and a dot segment: Caddy matches the method
        # in any case and the cleaned path, as Keycloak would read it.
        "lower_case_method": Case(Request("post", endpoint, json.dumps(evil).encode(), {"Content-Type": "application/json"}),
                                  400, "invalid_client_metadata", CLIENT_CREDENTIALS),
        "unclean_path": Case(Request.json("POST", endpoint.replace("/clients-registrations/", "/./clients-registrations//"),
                                          evil), 400, "invalid_client_metadata", CLIENT_CREDENTIALS),
        # Keycloak's `default` provider takes its own representation: none of these rules would apply.
        "default_provider": Case(Request.json("POST", f"{stack.issuer}/clients-registrations/default", {
            "clientId": f"{tag}-default", "name": f"{tag}-default", "publicClient": False, "serviceAccountsEnabled": True,
            "redirectUris": INSPECTOR["redirect_uris"]}), 400, "invalid_request",
            'anonymous registration is open only at clients-registrations/openid-connect (RFC 7591); provider "default" is not'),
    }
    return found


@dataclass
class Refused:
    tag: str
    cases: dict[str, Case]
    answers: dict[str, dict]
    sources: list[Source]
    client_names: set[str]  # every client of realm mcp, after all were sent
    since: datetime


def delete_by_name(compose: DockerCompose, stack: Stack, tag: str) -> None:
    for client in kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "id,name,clientId"):
        if (client.get("name") or "").startswith(tag) or client["clientId"].startswith(tag):
            kcadm(compose, stack, "delete", f"clients/{client['id']}", "-r", "mcp")


@pytest.fixture(scope="module")
def refused(compose: DockerCompose, stack: Stack) -> Iterator[Refused]:
    """Every case, sent once from edge containers (as many as the rate limit needs: each source
    stays within its budget), then one look at the realm's clients through the admin API."""
    limit = registration_limit(compose)
    tag = f"guard-metadata-{secrets.token_hex(4)}"
    chosen = cases(stack, tag)
    names = list(chosen)
    since = datetime.now(UTC)
    answers: dict[str, dict] = {}
    used: list[Source] = []
    try:
        with edge_sources(compose, stack) as start:
            for first in range(0, len(names), limit.requests):
                batch = names[first:first + limit.requests]
                used.append(start())
                answers |= dict(zip(batch, send(stack, used[-1], [chosen[n].request for n in batch]), strict=True))
        for answer in answers.values():
            if answer["status"] == 201:
                remember(json.loads(answer["body"])["registration_access_token"])
        clients = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "--fields", "name,clientId")
        yield Refused(tag, chosen, answers, used, {c.get("name") or c["clientId"] for c in clients}, since)
    finally:
        delete_by_name(compose, stack, tag)


@pytest.mark.parametrize("case", [*METADATA, "not_json", "json_array", "member_given_twice", "body_too_large",
                                  "forged_body_header", "lower_case_method", "unclean_path", "default_provider"])
def test_anonymous_registration_asking_for_more_than_a_public_client_is_refused_with_the_reason(
        case: str, refused: Refused):
    expected, answer = refused.cases[case], refused.answers[case]
    assert answer["status"] == expected.status, answer
    assert json.loads(answer["body"]) == {"error": expected.error, "error_description": expected.reason}
    assert answer["headers"].get("Content-Type") == "application/json"
    assert answer["headers"].get("Cache-Control") == "no-store"
    # Nothing was created: no client of the realm carries the case's name.
    assert not {n for n in refused.client_names if n.startswith(f"{refused.tag}-{case}")}


def test_nothing_the_refused_registrations_asked_for_was_created(refused: Refused):
    assert not {n for n in refused.client_names if n.startswith(refused.tag)}


def test_each_refusal_is_logged_once_with_its_reason_and_without_the_secret(refused: Refused, compose: DockerCompose):
    addresses = {s.address for s in refused.sources}
    lines = [e for e in guard_log(compose, "refused metadata", refused.since) if e.get("address") in addresses]
    assert sorted(e["reason"] for e in lines) == sorted(c.reason for c in refused.cases.values())
    assert SECRET not in current(compose, GUARD)


def test_the_inspectors_registration_still_passes_the_guard(stack: Stack, compose: DockerCompose):
    """The one registration this module sends from the host."""
    with registered(stack, {**INSPECTOR, "client_name": f"guard-inspector-{secrets.token_hex(4)}"}) as response:
        assert response.status_code == 201, response.text
        client = response.json()
        remember(client["registration_access_token"])
        assert client["token_endpoint_auth_method"] == "none"
        (stored,) = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client['client_id']}")
        assert stored["publicClient"] is True


def test_an_update_through_the_registration_access_token_cannot_make_the_client_confidential(
        stack: Stack, compose: DockerCompose):
    """RFC 7592: the registration access token anonymous registration handed out lets its holder
    PUT new metadata. Asking there for client credentials, a secret (or, by leaving the method
    out, client_secret_basic), or going through Keycloak's `default` provider is refused like a
    registration; an update that keeps the client public passes."""
    tag = f"guard-update-{secrets.token_hex(4)}"
    endpoint = f"{stack.issuer}/clients-registrations/openid-connect"
    try:
        with edge_sources(compose, stack) as start:
            source = start()
            (created,) = send(stack, source, [Request.json("POST", endpoint, {**INSPECTOR, "client_name": tag})])
            assert created["status"] == 201, created
            client = json.loads(created["body"])
            token = client["registration_access_token"]
            remember(token)
            # What an RFC 7592 client sends back: its metadata with client_id, without the
            # registration's own members.
            current_metadata = {k: v for k, v in client.items() if k not in (
                "registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at")}
            bearer = {"Authorization": f"Bearer {token}"}
            uri = client["registration_client_uri"]
            updates = [
                Request.json("PUT", uri, {**current_metadata, "grant_types": [*current_metadata["grant_types"],
                                                                              "client_credentials"]}, bearer),
                Request.json("PUT", uri, {**current_metadata, "token_endpoint_auth_method": "client_secret_basic"}, bearer),
                Request.json("PUT", uri, {k: v for k, v in current_metadata.items() if k != "token_endpoint_auth_method"},
                             bearer),
                Request.json("PUT", uri.replace("/clients-registrations/openid-connect/", "/clients-registrations/default/"),
                             {"clientId": client["client_id"], "publicClient": False, "serviceAccountsEnabled": True}, bearer),
                Request.json("PUT", uri, {**current_metadata, "client_name": f"{tag}-renamed"}, bearer),
            ]
            answers = send(stack, source, updates)
        for answer in answers:
            if answer["status"] == 200:
                token = json.loads(answer["body"]).get("registration_access_token", token)
                remember(token)
        assert [a["status"] for a in answers] == [400, 400, 400, 400, 200], answers
        assert [json.loads(a["body"])["error_description"] for a in answers[:4]] == [
            CLIENT_CREDENTIALS, AUTH_METHOD, AUTH_METHOD,
            'anonymous registration is open only at clients-registrations/openid-connect (RFC 7591); '
            'provider "default" is not']
        assert json.loads(answers[4]["body"])["client_name"] == f"{tag}-renamed"
        (stored,) = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client['client_id']}")
        assert stored["publicClient"] is True
        assert stored["serviceAccountsEnabled"] is False
    finally:
        delete_by_name(compose, stack, tag)
