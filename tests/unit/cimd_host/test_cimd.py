"""The Client ID Metadata Document rules (CIMD -02, Keycloak's strict parser)."""

import json

import pytest

from cimd_host import cimd

ORIGIN = "https://cimd.localhost"
URL = cimd.metadata_url(ORIGIN, "demo")


def test_demo_document_is_valid_small_and_self_referencing():
    body = cimd.validate(URL, cimd.demo_agent_document(ORIGIN, 8976))
    document = json.loads(body)
    assert document["client_id"] == URL
    assert document["token_endpoint_auth_method"] == "private_key_jwt"
    assert document["jwks_uri"] == cimd.jwks_url(ORIGIN, "demo")
    assert all(u.startswith("http://127.0.0.1:") or u.startswith("http://localhost:") for u in document["redirect_uris"])
    assert len(body) < cimd.MAX_BYTES


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://cimd.localhost/agents/demo/metadata.json", "https URL"),
        ("https://cimd.localhost/", "with a path"),
        ("https://cimd.localhost/agents/demo/metadata.json?v=1", "no query"),
        ("https://cimd.localhost/agents/demo/metadata.json#x", "no query, fragment"),
        ("https://user@cimd.localhost/agents/demo/metadata.json", "or userinfo"),
        ("https://cimd.localhost/agents/../demo/metadata.json", "dot segments"),
    ],
)
def test_bad_client_id_urls_are_refused(url, reason):
    with pytest.raises(ValueError, match=reason):
        cimd.validate(url, {**cimd.demo_agent_document(ORIGIN, 8976), "client_id": url})


def test_client_id_must_equal_the_url():
    with pytest.raises(ValueError, match="equal"):
        cimd.validate(URL, {**cimd.demo_agent_document(ORIGIN, 8976), "client_id": URL + "x"})


def test_fields_keycloak_would_reject_are_refused():
    with pytest.raises(ValueError, match="logo"):
        cimd.validate(URL, {**cimd.demo_agent_document(ORIGIN, 8976), "logo": "x"})


def test_secrets_are_refused():
    with pytest.raises(ValueError, match="client_secret"):
        cimd.validate(URL, {**cimd.demo_agent_document(ORIGIN, 8976), "client_secret": "s"})


def test_oversized_document_is_refused():
    document = {**cimd.demo_agent_document(ORIGIN, 8976), "client_name": "x" * 6000}
    with pytest.raises(ValueError, match="bytes"):
        cimd.validate(URL, document)
