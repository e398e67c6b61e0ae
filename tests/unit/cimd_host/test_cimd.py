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
    # RFC 9449 §5.2: the demo agent's own identity requires DPoP-bound tokens.
    assert document["dpop_bound_access_tokens"] is True


def test_the_bearer_twin_is_the_demo_document_without_required_dpop():
    """The sandbox's Bearer-allowed twin (for Bearer-only test clients): its own URL, the same key,
    redirect URIs and scopes, and no `dpop_bound_access_tokens`."""
    demo = cimd.demo_agent_document(ORIGIN, 8976)
    twin_url = cimd.metadata_url(ORIGIN, cimd.BEARER_TWIN)
    twin = json.loads(cimd.validate(twin_url, cimd.demo_agent_document(ORIGIN, 8976, require_dpop=False)))
    assert twin["client_id"] == twin_url != demo["client_id"]
    assert "dpop_bound_access_tokens" not in twin
    same = {key for key in demo if key not in ("client_id", "client_name", "dpop_bound_access_tokens")}
    assert {key: twin[key] for key in same} == {key: demo[key] for key in same}
    assert twin["jwks_uri"] == cimd.jwks_url(ORIGIN, "demo")


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


# --- third-party documents (cimd-host/clients/*.json) ---

INSPECTOR = {"client_name": "MCP Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"],
             "grant_types": ["authorization_code"], "response_types": ["code"], "token_endpoint_auth_method": "none",
             "scope": "mcp:tools offline_access"}


def test_every_published_client_file_is_valid():
    from cimd_host.__main__ import CLIENTS_DIR

    files = sorted(CLIENTS_DIR.glob("*.json"))
    assert [f.stem for f in files] == ["mcp-inspector"]
    for file in files:
        url = cimd.client_url("https://cimd.localhost", file.stem)
        body = cimd.validate(url, cimd.third_party_document("https://cimd.localhost", file.stem, json.loads(file.read_text())))
        assert json.loads(body)["client_id"] == url


@pytest.mark.parametrize(("change", "reason"), [
    ({"token_endpoint_auth_method": "private_key_jwt"}, "public clients"),
    ({"jwks_uri": "https://cimd.localhost/x.json"}, "public clients"),
    ({"redirect_uris": ["https://app.example/callback"]}, "exact loopback"),
    ({"redirect_uris": ["http://evil.example/callback"]}, "exact loopback"),
    ({"redirect_uris": ["http://localhost:6274/*"]}, "exact loopback"),
    ({"redirect_uris": ["http://localhost:6274/cb#frag"]}, "exact loopback"),
    ({"redirect_uris": ["http://localhost.evil.example/cb"]}, "exact loopback"),
    ({"redirect_uris": ["com.example.app:/cb"]}, "exact loopback"),
    ({"redirect_uris": []}, "non-empty"),
    ({"scope": "mcp:tools openid email"}, "not offered"),
    ({"client_id": "https://cimd.localhost/clients/x/metadata.json"}, "no client_id"),
])
def test_third_party_documents_are_held_to_the_dcr_rules(change: dict, reason: str):
    with pytest.raises(ValueError, match=reason):
        cimd.third_party_document("https://cimd.localhost", "x", {**INSPECTOR, **change})


def test_third_party_file_names_are_plain():
    with pytest.raises(ValueError, match="file names"):
        cimd.third_party_document("https://cimd.localhost", "../agents/demo", INSPECTOR)


def test_ipv6_loopback_redirects_are_loopback():
    doc = cimd.third_party_document("https://cimd.localhost", "x", {**INSPECTOR, "redirect_uris": ["http://[::1]:6274/cb"]})
    assert doc["redirect_uris"] == ["http://[::1]:6274/cb"]
