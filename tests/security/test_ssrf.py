"""SSRF through the authorization server (MCP AS6, C32; CIMD -02 security considerations).

Keycloak fetches URLs its clients choose: the CIMD document at the client_id URL, and the
jwks_uri inside it. Its only gate, the executor's trusted-domain list, cannot tell redirect URIs
(where loopback belongs) from jwks_uri (where it must never be), and ignores ports. So every
fetch goes through the egress proxy, which allows HTTPS to the sandbox's HTTPS port on public
addresses and the TLS front only. Each test asserts the refusal seen by the caller and, in the
proxy's decision log, that nothing was let through to the target.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from testcontainers.compose import DockerCompose

from tests.support import egress
from tests.support.cimd import Publisher, authorize_url, document, publisher
from tests.support.keycloak import delete_clients
from tests.support.stack import Stack

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def docs(stack: Stack, compose: DockerCompose):
    with publisher(stack) as pub:
        yield pub
        delete_clients(compose, stack, pub.prefix)


def assertion_for(stack: Stack, client_id: str) -> str:
    """A well-formed private_key_jwt assertion; its key is nowhere, so Keycloak must fetch keys."""
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": stack.token_endpoint(), "jti": str(uuid.uuid4()),
              "iat": now, "exp": now + 60}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "attacker-key"})


def refused_everywhere(decisions: list[egress.Decision], host: str) -> None:
    """The proxy was asked for `host` and allowed none of the requests: no connection was made."""
    assert decisions, f"Keycloak never asked the egress proxy for {host}: did a fetch bypass it?"
    assert not any(d.allow for d in decisions), decisions


# The review's vector first: a document on the trusted host whose jwks_uri is Keycloak's own
# management port. Loopback must stay in the trusted-domain list (the agent's redirect URIs are
# loopback), so Keycloak accepts the document; the proxy refuses the fetch.
JWKS_VECTORS = {
    "jwks_uri_plain_http_to_the_management_port": ("http://127.0.0.1:9000/metrics", "127.0.0.1:9000"),
    "jwks_uri_https_to_a_loopback_name_on_another_port": ("https://localhost:9000/metrics", "localhost:9000"),
    "jwks_uri_https_to_a_loopback_name_on_443": ("https://localhost/realms/master", "localhost:443"),
    "jwks_uri_https_to_a_loopback_ip_literal": ("https://127.0.0.1/metrics", "127.0.0.1:443"),
}


@pytest.mark.parametrize("attack", JWKS_VECTORS)
def test_jwks_uri_aimed_at_keycloak_itself_is_never_fetched(attack: str, stack: Stack, compose: DockerCompose,
                                                            docs: Publisher):
    jwks_uri, host = JWKS_VECTORS[attack]
    client_id = docs.publish(attack, document(stack, docs.url(attack), jwks_uri=jwks_uri))
    with stack.client() as http:
        assert http.get(authorize_url(stack, client_id)).status_code == 200  # document accepted
        since = egress.now()
        response = http.post(stack.token_endpoint(), data={
            "grant_type": "authorization_code", "code": "unused", "redirect_uri": stack.callback_url, "client_id": client_id,
            "code_verifier": "v" * 64, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion_for(stack, client_id)})
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"
    # What the caller learns is the proxy's refusal, never what the target would have said.
    description = response.json()["error_description"]
    assert "status code: 407" in description  # the proxy's refusal
    for leaked in ("# HELP", "# TYPE", "jvm_", "vendor_", '"status"'):  # metrics or health output
        assert leaked not in description
    refused_everywhere(egress.wait_for(compose, since, host), host)


def authorize_and_watch(stack: Stack, client_id: str) -> tuple[str, datetime]:
    """An authorization request for `client_id`: Keycloak's 400 page text, and the log marker."""
    since = egress.now()
    with stack.client() as http:
        response = http.get(authorize_url(stack, client_id))
    assert response.status_code == 400
    return response.text, since


@pytest.mark.parametrize("port", ["9000", "8080", "22"])
def test_client_id_on_the_trusted_host_but_another_port_is_never_fetched(port: str, stack: Stack,
                                                                         compose: DockerCompose):
    """The trusted-domain check ignores the port (https://cimd.localhost:9000/... passes it)."""
    page, since = authorize_and_watch(stack, f"https://cimd.localhost:{port}/security/{uuid.uuid4().hex}.json")
    assert "Client Metadata fetch failed" in page
    host = f"cimd.localhost:{port}"
    decisions = egress.wait_for(compose, since, host)
    refused_everywhere(decisions, host)
    assert all("Client role cannot be determined" in d.reason for d in decisions)  # refused on the port, pre-DNS


@pytest.mark.parametrize(("attack", "client_id"), [
    ("client_id_with_the_http_scheme", "http://cimd.localhost/security/x.json"),
    ("client_id_on_an_untrusted_host", "https://attacker.example/client.json"),
    ("client_id_on_the_loopback_address", "https://127.0.0.1/client.json"),
    ("client_id_on_the_ipv6_loopback", "https://[::1]/client.json"),
    ("client_id_on_the_metadata_address", "https://169.254.169.254/latest/meta-data/"),
])
def test_client_id_outside_the_trusted_cimd_host_is_not_fetched(attack: str, client_id: str, stack: Stack,
                                                                compose: DockerCompose):
    """Not an https client_id on the trusted host: not a metadata document, not a client."""
    page, since = authorize_and_watch(stack, client_id)
    assert "Client not found" in page
    # Refused by Keycloak before any fetch: the proxy was not even asked.
    assert egress.settled(compose, since) == []


@pytest.mark.parametrize(("attack", "jwks_uri"), [
    ("jwks_uri_on_the_ipv6_loopback", "https://[::1]/jwks.json"),
    ("jwks_uri_on_the_metadata_address", "https://169.254.169.254/latest/meta-data/"),
    ("jwks_uri_on_an_internal_service_name", "https://keycloak:9000/metrics"),
])
def test_document_with_jwks_uri_outside_the_trusted_domains_is_refused(attack: str, jwks_uri: str, stack: Stack,
                                                                      compose: DockerCompose, docs: Publisher):
    client_id = docs.publish(attack, document(stack, docs.url(attack), jwks_uri=jwks_uri))
    since = egress.now()
    with stack.client() as http:
        response = http.get(authorize_url(stack, client_id))
    assert response.status_code == 400
    assert "domain not allowed" in response.text
    # Keycloak fetched the document through the proxy (a new tunnel or a pooled one) and asked
    # for nothing else.
    front = f"cimd.localhost:{stack.env['HTTPS_PORT']}"
    assert all(d.requested_host == front and d.allow for d in egress.settled(compose, since))


# The network layer on its own: each forbidden range, reached by a name that resolves to it
# (ssrf.test names live only in the proxy's /etc/hosts, see compose.yaml), IPv4 and IPv6.
FORBIDDEN = {
    "loopback4.ssrf.test": "Not Global Unicast",
    "loopback6.ssrf.test": "Not Global Unicast",
    "unspecified.ssrf.test": "Not Global Unicast",
    "private10.ssrf.test": "Private Range",
    "private172.ssrf.test": "Private Range",
    "private192.ssrf.test": "Private Range",
    "metadata.ssrf.test": "Not Global Unicast",
    "cgnat.ssrf.test": "User Configured",
    "linklocal6.ssrf.test": "Not Global Unicast",
    "ula6.ssrf.test": "Private Range",
    "mapped6.ssrf.test": "Not Global Unicast",
    "nat64.ssrf.test": "User Configured",
    "sixtofour.ssrf.test": "User Configured",
    "teredo.ssrf.test": "User Configured",
    "keycloak": "Private Range",  # an internal service by its compose name
}

@pytest.mark.parametrize("name", FORBIDDEN)
def test_egress_refuses_a_name_resolving_to_a_forbidden_range(compose: DockerCompose, name: str):
    target = f"{name}:443"
    since = egress.now()
    answer = egress.connect(compose, target)[target]
    assert " 200 " not in answer, answer
    decisions = egress.wait_for(compose, since, target)
    refused_everywhere(decisions, target)
    assert any(f"Deny: {FORBIDDEN[name]}" in d.reason for d in decisions), decisions


def test_egress_allows_the_cimd_host_through_the_front_only_on_the_https_port(stack: Stack, compose: DockerCompose):
    port = stack.env["HTTPS_PORT"]
    since = egress.now()
    answers = egress.connect(compose, f"cimd.localhost:{port}", "cimd-host:8080", "caddy:2019")
    assert " 200 " in answers[f"cimd.localhost:{port}"]
    assert " 200 " not in answers["cimd-host:8080"]
    assert " 200 " not in answers["caddy:2019"]
    refused_everywhere(egress.wait_for(compose, since, "caddy:2019"), "caddy:2019")


def test_egress_refuses_plain_http_even_to_the_front(compose: DockerCompose):
    since = egress.now()
    (answer,) = egress.ask(compose, "GET http://cimd.localhost/agents/demo/metadata.json HTTP/1.1\r\n"
                                    "Host: cimd.localhost\r\n\r\n")
    assert " 200 " not in answer, answer
    decisions = egress.wait_for(compose, since, "cimd.localhost")
    refused_everywhere(decisions, "cimd.localhost")
    assert decisions[0].proxy_type == "http"


def test_egress_refuses_a_client_chosen_next_hop(stack: Stack, compose: DockerCompose):
    """smokescreen dials a next hop named in X-Upstream-Https-Proxy without checking its address;
    the proxy's own rule refuses any request carrying it, even to the one allowed destination."""
    front = f"cimd.localhost:{stack.env['HTTPS_PORT']}"
    since = egress.now()
    (answer,) = egress.ask(compose, f"CONNECT {front} HTTP/1.1\r\nHost: {front}\r\n"
                                    "X-Upstream-Https-Proxy: http://keycloak:9000\r\n\r\n")
    assert " 200 " not in answer, answer
    refused_everywhere(egress.wait_for(compose, since, front), front)


KEYCLOAK_DIRECT = """
for target in cimd-host/8080 mcp-server/8000 egress/4750 pypi.org/443 1.1.1.1/443; do
  if timeout 3 bash -c "exec 3<>/dev/tcp/${target}" 2>/dev/null; then echo "open ${target}"; else echo "closed ${target}"; fi
done
"""


def test_keycloak_has_no_route_around_the_proxy(compose: DockerCompose):
    """A fetch path that ignored the proxy settings would find nothing to connect to: Keycloak
    sits on an internal network whose only other members are the front and the proxy."""
    stdout, stderr, code = compose.exec_in_container(["bash", "-c", KEYCLOAK_DIRECT], service_name="keycloak")
    assert code == 0, stderr
    state = dict(line.split(" ")[::-1] for line in stdout.splitlines())
    assert state == {"cimd-host/8080": "closed", "mcp-server/8000": "closed", "egress/4750": "open",
                     "pypi.org/443": "closed", "1.1.1.1/443": "closed"}
