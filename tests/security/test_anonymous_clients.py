"""What Keycloak itself refuses to a client nobody authenticated (docs/authorization.md).

The edge refuses anonymous registrations that ask for more than a user-facing client needs
(services/registration-guard, tests/security/test_registration_metadata.py). Keycloak refuses the
same again, as code in the realm, for every client created without authentication: anonymous
DCR and CIMD alike (its client policies cannot tell them apart). CIMD clients are made at
/authorize, never through the edge's registration route, so documents on the trusted CIMD host
are how these tests reach Keycloak's own layer:

- device, CIBA, token-exchange and JWT-bearer grants are refused once the client exists, and the
  creation is rolled back (policies `anonymous-no-*`, mode STRICT);
- `client_credentials` works only for the machine clients the realm file declares (attribute
  `mcp.machine-client`): a registered confidential client that enabled service accounts gets no
  token (policy `client-credentials-for-machine-clients-only`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from testcontainers.compose import DockerCompose

from cimd_host.keys import current_key
from mcp_agent.assertion import client_assertion, form_fields
from tests.support.cimd import Publisher, authorize_url, document, publisher
from tests.support.keycloak import delete_clients, events, kcadm_json
from tests.support.stack import Stack
from tests.support.tokens import request_token


@pytest.fixture
def docs(stack: Stack, compose: DockerCompose) -> Iterator[Publisher]:
    with publisher(stack) as pub:
        yield pub
        delete_clients(compose, stack, pub.prefix)


def clients_named(compose: DockerCompose, stack: Stack, client_id: str) -> list[dict]:
    return kcadm_json(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={client_id}", "--fields", "clientId")


# Keycloak's reject-request executor, as its error page shows it.
REFUSED_BY_POLICY = '<p class="instruction">Request not allowed</p>'

GRANTS = {
    "device_grant": "urn:ietf:params:oauth:grant-type:device_code",
    "ciba": "urn:openid:params:grant-type:ciba",
}


@pytest.mark.parametrize("grant", GRANTS)
def test_a_client_nobody_authenticated_may_not_enable_a_grant_without_a_redirect(
        grant: str, stack: Stack, compose: DockerCompose, docs: Publisher):
    """A public document asking for the device grant or CIBA: refused, and no client remains."""
    client_id = docs.publish(grant, document(stack, docs.url(grant), token_endpoint_auth_method="none",
                                             grant_types=["authorization_code", GRANTS[grant]]))
    since = datetime.now(UTC)
    with stack.client() as http:
        response = http.get(authorize_url(stack, client_id))
    assert response.status_code == 400, response.text[:300]
    assert REFUSED_BY_POLICY in response.text  # the reject-request executor of the anonymous-no-* policy
    assert clients_named(compose, stack, client_id) == []  # rolled back
    assert any(e.get("error") == "invalid_request" for e in events(compose, since)), events(compose, since)


def test_token_exchange_for_a_confidential_client_nobody_authenticated_is_refused(
        stack: Stack, compose: DockerCompose, docs: Publisher):
    """A private_key_jwt document may not switch on standard token exchange (RFC 8693) for itself."""
    client_id = docs.publish("token-exchange", document(
        stack, docs.url("token-exchange"), jwks_uri=f"{stack.cimd_origin}/agents/demo/jwks.json",
        grant_types=["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]))
    with stack.client() as http:
        response = http.get(authorize_url(stack, client_id))
    assert response.status_code == 400, response.text[:300]
    assert REFUSED_BY_POLICY in response.text  # policy anonymous-no-token-exchange, not a parse error
    assert clients_named(compose, stack, client_id) == []


def test_client_credentials_only_for_the_declared_machine_clients(stack: Stack, compose: DockerCompose, docs: Publisher):
    """A confidential client made from a document (private_key_jwt, the demo agent's keys) that lists
    client_credentials: Keycloak creates it with a service account — and refuses it any token for it.
    The declared machine client, same grant, same kind of assertion: a token."""
    client_id = docs.publish("machine", document(
        stack, docs.url("machine"), jwks_uri=f"{stack.cimd_origin}/agents/demo/jwks.json",
        grant_types=["authorization_code", "client_credentials"]))
    with stack.client() as http:
        assert http.get(authorize_url(stack, client_id)).status_code == 200  # the client now exists
        kid, pem = current_key(stack.key_dir("demo"))
        assertion = client_assertion(client_id=client_id, audience=stack.token_endpoint(), key_id=kid, private_key=pem)
        response = http.post(stack.token_endpoint(), data={"grant_type": "client_credentials", "scope": "mcp:tools",
                                                           **form_fields(assertion)})
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_request", "error_description": "Request not allowed"}
    assert request_token(stack).status_code == 200
