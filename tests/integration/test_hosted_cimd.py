"""Claude's and ChatGPT's Client ID Metadata Documents against this realm on Keycloak 26.7.3
(docs/flows.md, "Claude's and ChatGPT's CIMD documents").

tests/integration/hosted_cimd/*.json are the documents as their publishers serve them (sources in
that folder's README). Each test serves a copy on the real CIMD host with `client_id` set to the
copy's own URL (CIMD -02 §3: it must equal the URL it is fetched from; the sandbox cannot serve
claude.ai or chatgpt.com), every other field as published or changed in one named way, and sends
the authorization request a connector would send. Observed with 26.7.3:

- as published, each is refused: Claude's for its URLs on claude.ai (not a permitted domain of
  the realm's CIMD executor), ChatGPT's before any check, because Keycloak cannot parse it
  (`token_endpoint_auth_methods_supported`, keycloak#51039 / #51236);
- with their URLs on permitted hosts, each is still refused for its known trip alone — Claude's
  for listing the JWT-bearer grant on a public client (keycloak#50362, an executor option in 26.8),
  ChatGPT's for the unknown property — and accepted once that one thing is taken out;
- their https redirect URIs would also meet the realm's loopback-only redirect policy for
  clients nobody authenticated (docs/decisions.md, "Anonymous DCR").
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from testcontainers.compose import DockerCompose

from tests.support.cimd import authorize_url
from tests.support.keycloak import delete_clients, events, kcadm_json, warnings
from tests.support.stack import STATE, Stack

PUBLISHED = Path(__file__).parent / "hosted_cimd"
CHATGPT = ["chatgpt", "chatgpt-platform"]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
RP_METADATA_CHOICES = "token_endpoint_auth_methods_supported"  # OpenID Connect RP Metadata Choices 1.0
LOGIN_PAGE = "<title>Sign in to MCP sandbox</title>"

# What Keycloak 26.7.3's error page and error event say (client_policy_error_detail), per cause.
UNTRUSTED_URL = "Invalid Client ID: domain not allowed."  # any URL of the document, not only client_id
UNPARSABLE = "Client Metadata fetch failed"  # the fetch succeeded; Jackson refused an unknown property
PUBLIC_WITH_JWT_BEARER = "invalid request"  # DescriptionConverter's refusal, summarised (its log has it)
NOT_LOOPBACK = "Invalid Redirect Uri: invalid uri"  # policy anonymous-dcr, secure-redirect-uris-enforcer


def published(name: str) -> dict[str, Any]:
    return json.loads((PUBLISHED / f"{name}.json").read_text())


Serve = Callable[[str, dict[str, Any]], str]


@pytest.fixture
def serve(stack: Stack, compose: DockerCompose) -> Iterator[Serve]:
    """Put a document on the CIMD host under a fresh path, its client_id set to its URL there.
    Fresh per test: Keycloak caches a fetched document for at least five minutes."""
    run = secrets.token_hex(6)
    folder = STATE / "cimd-public" / "tests" / "hosted" / run
    prefix = f"{stack.cimd_origin}/tests/hosted/{run}/"

    def write(name: str, document: dict[str, Any]) -> str:
        url = f"{prefix}{name}.json"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.json"
        path.write_text(json.dumps({**document, "client_id": url}))
        path.chmod(0o644)
        return url

    try:
        yield write
    finally:
        delete_clients(compose, stack, prefix)
        shutil.rmtree(folder, ignore_errors=True)


def on_permitted_hosts(stack: Stack, document: dict[str, Any]) -> dict[str, Any]:
    """The same document with every URL Keycloak host-checks moved onto the realm's permitted
    domains (redirect to the test's loopback callback, jwks_uri to a key set the CIMD host serves),
    so that whatever is still refused is refused for something else."""
    moved = {**document, "redirect_uris": [stack.callback_url]}
    if "client_uri" in moved:
        moved["client_uri"] = f"{stack.cimd_origin}/"
    if "jwks_uri" in moved:
        moved["jwks_uri"] = f"{stack.cimd_origin}/agents/demo/jwks.json"
    return moved


def without_the_trip(document: dict[str, Any]) -> dict[str, Any]:
    """The document minus what Keycloak 26.7.3 trips on: the JWT-bearer grant (Claude's), the RP
    Metadata Choices list (ChatGPT's)."""
    kept = {k: v for k, v in document.items() if k != RP_METADATA_CHOICES}
    kept["grant_types"] = [g for g in document["grant_types"] if g != JWT_BEARER]
    return kept


def authorize(stack: Stack, client_id: str, redirect_uri: str) -> tuple[int, str]:
    with stack.client() as http:
        response = http.get(authorize_url(stack, client_id, redirect_uri))
    assert "location" not in response.headers, response.headers  # never a redirect: no code, no error sent back
    return response.status_code, response.text


def assert_refused(stack: Stack, compose: DockerCompose, client_id: str, redirect_uri: str, detail: str) -> str:
    """400 on Keycloak's own error page naming `detail`, the same detail in its error event, and no
    client made of the document. Returns Keycloak's warnings about it: the cause, in its words."""
    since = datetime.now(UTC)
    status, page = authorize(stack, client_id, redirect_uri)
    assert status == 400, page[:300]
    shown = re.search(r'<p class="instruction">(.*?)</p>', page)
    assert shown is not None, page[:300]
    assert shown.group(1) == detail
    details = [e.get("client_policy_error_detail") for e in events(compose, since)]
    assert detail in details, details
    assert client(compose, stack, client_id) is None
    return warnings(compose, since)


def client(compose: DockerCompose, stack: Stack, client_id: str) -> dict[str, Any] | None:
    found = kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client_id}")
    return found[0] if found else None


def test_the_metadata_makes_the_hosted_connectors_try_cimd(stack: Stack):
    """Claude uses its document only with an AS whose RFC 8414 metadata says
    `client_id_metadata_document_supported` and lists `none` among the token endpoint's methods
    (otherwise it falls back to DCR); Keycloak 26.7.3 with CIMD on says both, so the documents
    below are what a connector presents here."""
    with stack.client() as http:
        metadata = http.get(f"{stack.auth_origin}/.well-known/oauth-authorization-server/realms/mcp").json()
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]


@pytest.mark.parametrize(("name", "detail"), [
    ("claude", UNTRUSTED_URL),  # client_uri and redirect_uris on claude.ai
    ("chatgpt", UNPARSABLE),  # refused while parsing, before its chatgpt.com URLs are looked at
    ("chatgpt-platform", UNPARSABLE),
])
def test_the_published_document_is_refused_at_the_authorization_request(
        name: str, detail: str, stack: Stack, compose: DockerCompose, serve: Serve):
    """The document as published (client_id aside), with the redirect URI the connector sends."""
    document = published(name)
    assert_refused(stack, compose, serve(name, document), document["redirect_uris"][0], detail)


def test_claude_is_refused_for_the_jwt_bearer_grant_of_a_public_client(
        stack: Stack, compose: DockerCompose, serve: Serve):
    """keycloak#50362: `token_endpoint_auth_method: none` with the JWT-bearer grant (RFC 7523
    §2.1) is refused outright — the grant is for confidential clients in Keycloak 26.7.3, and its
    CIMD executor has no option to drop it (26.8 adds one). Without that one grant the same
    document makes a public client and reaches the login page."""
    document = on_permitted_hosts(stack, published("claude"))
    assert JWT_BEARER in document["grant_types"]
    assert document["token_endpoint_auth_method"] == "none"
    logged = assert_refused(stack, compose, serve("claude", document), stack.callback_url, PUBLIC_WITH_JWT_BEARER)
    assert "JWT authorization grant cannot be enabled in a public client" in logged, logged

    url = serve("claude-without-jwt-bearer", without_the_trip(document))
    status, page = authorize(stack, url, stack.callback_url)
    assert status == 200, page[:300]
    assert LOGIN_PAGE in page
    made = client(compose, stack, url)
    assert made is not None
    assert made["publicClient"] is True


@pytest.mark.parametrize("name", CHATGPT)
def test_chatgpt_is_refused_for_its_rp_metadata_choices_property(
        name: str, stack: Stack, compose: DockerCompose, serve: Serve):
    """keycloak#51039 / #51236: `token_endpoint_auth_methods_supported` is not a property of
    Keycloak's client representation, and 26.7.3 parses the document strictly, so the fetch
    "fails" — although CIMD -02 §4.1 allows additional properties and RFC 7591 §2 says to ignore
    unknown ones. Without it the same document makes a confidential `private_key_jwt` client with
    its JWKS URL and reaches the login page."""
    document = on_permitted_hosts(stack, published(name))
    logged = assert_refused(stack, compose, serve(name, document), stack.callback_url, UNPARSABLE)
    assert f'Unrecognized field "{RP_METADATA_CHOICES}"' in logged, logged

    url = serve(f"{name}-without-choices", without_the_trip(document))
    status, page = authorize(stack, url, stack.callback_url)
    assert status == 200, page[:300]
    assert LOGIN_PAGE in page
    made = client(compose, stack, url)
    assert made is not None
    assert made["publicClient"] is False
    assert made["clientAuthenticatorType"] == "client-jwt"
    assert made["attributes"]["jwks.url"] == document["jwks_uri"]


@pytest.mark.parametrize("name", ["claude", *CHATGPT])
def test_an_https_redirect_uri_is_refused_for_a_client_nobody_authenticated(
        name: str, stack: Stack, compose: DockerCompose, serve: Serve):
    """Even parsed and on a permitted host, a hosted connector's redirect URI is https on a web
    host, and the realm lets clients nobody authenticated (CIMD included) redirect to loopback only
    (RFC 8252 §7.3; policy anonymous-dcr). Admitting Claude or ChatGPT needs this policy and the
    executor's permitted domains changed on purpose, not only a newer Keycloak."""
    document = {**without_the_trip(on_permitted_hosts(stack, published(name))),
                "redirect_uris": [f"{stack.cimd_origin}/connector/callback"]}
    assert_refused(stack, compose, serve(name, document), document["redirect_uris"][0], NOT_LOOPBACK)


def test_keycloak_has_no_executor_option_for_public_clients_with_confidential_only_grants(
        stack: Stack, compose: DockerCompose):
    """What the realm could set for Claude's document, asked of the running server: 26.7.3's CIMD
    executor offers no `accept-public-client-with-confidential-client-only-grant` (26.8.0,
    keycloak#50362) and nothing about unknown properties. When an upgrade adds the option this
    test fails: set it in the realm (services/keycloak/realm/mcp-realm.json) and revisit the others."""
    info = kcadm_json(compose, stack, "get", "serverinfo")
    executors = info["componentTypes"]["org.keycloak.services.clientpolicy.executor.ClientPolicyExecutorProvider"]
    (cimd,) = [e for e in executors if e["id"] == "client-id-metadata-document"]
    assert sorted(p["name"] for p in cimd["properties"]) == [
        "cimd-allow-http-scheme", "cimd-allow-permitted-domains", "cimd-required-properties",
        "cimd-restrict-same-domain", "only-allow-confidential-client"]
