"""DPoP at the MCP endpoint (RFC 9449 §7), over real HTTP on loopback: the server with the fake
authorization server's tokens, bound to a client key by `cnf.jkt` as Keycloak binds them, and
proofs made with PyJWT as a client makes them. One test per attack of the DPoP issue, and the
three modes (MCP_DPOP)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_server.dpop import access_token_hash, thumbprint
from tests.support.authorization_server import FakeAuthorizationServer, RunningServer, running_server

CLIENT_KEY = ec.generate_private_key(ec.SECP256R1())
THIEF_KEY = ec.generate_private_key(ec.SECP256R1())
ALGS = "ES256 ES384 PS256 RS256 EdDSA"
GET_TIME = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_time", "arguments": {}}}


def jwk_of(key: Any) -> dict[str, Any]:
    return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))


def bound_token(running: RunningServer, key: Any = CLIENT_KEY, **overrides: Any) -> str:
    return running.token(cnf={"jkt": thumbprint(jwk_of(key))}, **overrides)


def proof(running: RunningServer, token: str | None, key: Any = CLIENT_KEY, *, alg: str = "ES256",
          header: dict[str, Any] | None = None, **claims: Any) -> str:
    body = {"jti": secrets.token_urlsafe(12), "htm": "POST", "htu": running.resource_url, "iat": int(time.time()),
            **({"ath": access_token_hash(token)} if token else {}), **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk_of(key), **(header or {})})


def send(running: RunningServer, token: str | None, *proofs: str, scheme: str = "DPoP") -> httpx2.Response:
    headers = [("accept", "application/json, text/event-stream"), ("mcp-protocol-version", "2025-11-25")]
    if token is not None:
        headers.append(("authorization", f"{scheme} {token}"))
    headers += [("dpop", p) for p in proofs]
    return running.client.post(running.resource_url, json=GET_TIME, headers=headers)


def refused(response: httpx2.Response, error: str, reason: str, *, scheme: str = "DPoP") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'{scheme} error="{error}"'), challenge
    assert reason in response.json()["error_description"], response.json()
    if scheme == "DPoP":
        assert f'algs="{ALGS}"' in challenge
    assert "resource_metadata=" in challenge


@pytest.fixture(scope="module")
def fake() -> FakeAuthorizationServer:
    return FakeAuthorizationServer()


@pytest.fixture(scope="module")
def server(fake: FakeAuthorizationServer) -> Iterator[RunningServer]:
    """The default mode, `allowed`: DPoP or Bearer."""
    with running_server(fake, None, introspect_privileged=False) as running:
        yield running


def test_a_bound_token_with_its_proof_calls_a_tool(server: RunningServer):
    token = bound_token(server)
    response = send(server, token, proof(server, token))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["isError"] is False


def test_the_scheme_name_is_case_insensitive(server: RunningServer):
    token = bound_token(server)
    assert send(server, token, proof(server, token), scheme="dpop").status_code == 200


def test_a_plain_bearer_token_still_works_in_the_default_mode(server: RunningServer):
    assert send(server, server.token(), scheme="Bearer").status_code == 200


def test_a_stolen_bound_token_with_a_proof_from_another_key_is_refused(server: RunningServer):
    token = bound_token(server)
    refused(send(server, token, proof(server, token, THIEF_KEY)), "invalid_dpop_proof",
            "not the key the token is bound to")


def test_a_bound_token_without_a_proof_is_refused(server: RunningServer):
    refused(send(server, bound_token(server)), "invalid_dpop_proof", "no DPoP proof header")


def test_a_bound_token_presented_as_bearer_is_refused(server: RunningServer):
    refused(send(server, bound_token(server), scheme="Bearer"), "invalid_token", "token is DPoP-bound")


def test_two_proofs_are_refused(server: RunningServer):
    token = bound_token(server)
    refused(send(server, token, proof(server, token), proof(server, token)), "invalid_dpop_proof",
            "more than one DPoP proof header")


def test_a_replayed_proof_is_refused(server: RunningServer):
    token = bound_token(server)
    once = proof(server, token)
    assert send(server, token, once).status_code == 200
    refused(send(server, token, once), "invalid_dpop_proof", "replayed")


@pytest.mark.parametrize(("claims", "reason"), [
    ({"htm": "GET"}, "htm 'GET' is not this request's method"),
    ({"htu": "https://evil.localhost/mcp"}, "htu is not this request's URI"),
    ({"ath": access_token_hash("another.token.value")}, "ath does not match"),
    ({"iat": int(time.time()) - 3600}, "iat is too old"),
    ({"iat": int(time.time()) + 3600}, "iat is in the future"),
])
def test_a_proof_for_another_request_token_or_time_is_refused(server: RunningServer, claims: dict[str, Any],
                                                               reason: str):
    token = bound_token(server)
    refused(send(server, token, proof(server, token, **claims)), "invalid_dpop_proof", reason)


def test_a_proof_signed_with_a_shared_secret_or_none_is_refused(server: RunningServer):
    token = bound_token(server)
    body = {"jti": "j", "htm": "POST", "htu": server.resource_url, "iat": int(time.time()), "ath": access_token_hash(token)}
    for alg, key in (("HS256", b"k" * 32), ("none", None)):
        forged = jwt.encode(body, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk_of(CLIENT_KEY)})
        refused(send(server, token, forged), "invalid_dpop_proof", f"algorithm '{alg}' is not one of")


def test_a_proof_carrying_the_private_key_is_refused(server: RunningServer):
    token = bound_token(server)
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(CLIENT_KEY))
    refused(send(server, token, proof(server, token, header={"jwk": private})), "invalid_dpop_proof",
            "private or symmetric key material")


def test_a_signed_proof_nested_past_the_json_parsers_depth_is_a_401_not_a_500(server: RunningServer):
    # The token's own holder can sign anything: the proof's payload is the client's to choose.
    token = bound_token(server)
    deep = jwt.PyJWS().encode(b"[" * 2800 + b"]" * 2800, CLIENT_KEY, algorithm="ES256",
                              headers={"typ": "dpop+jwt", "jwk": jwk_of(CLIENT_KEY)})
    refused(send(server, token, deep), "invalid_dpop_proof", "payload is not a JSON object")


def test_a_token_bound_to_another_key_is_refused(server: RunningServer):
    token = bound_token(server, THIEF_KEY)  # cnf.jkt names a key the proof is not signed with
    refused(send(server, token, proof(server, token)), "invalid_dpop_proof", "not the key the token is bound to")


def test_an_unbound_token_with_the_dpop_scheme_is_refused(server: RunningServer):
    token = server.token()
    refused(send(server, token, proof(server, token)), "invalid_token", "not DPoP-bound")


def test_an_invalid_token_with_the_dpop_scheme_is_invalid_token(server: RunningServer):
    token = bound_token(server, exp=int(time.time()) - 10)
    refused(send(server, token, proof(server, token)), "invalid_token", "Token rejected")


@pytest.mark.parametrize("cnf", [{"x5t#S256": "abc"}, {"jkt": 5}, "jkt", {"jkt": ""}])
def test_a_binding_this_server_cannot_check_is_refused_in_both_schemes(server: RunningServer, cnf: Any):
    token = server.token(cnf=cnf)
    refused(send(server, token, scheme="Bearer"), "invalid_token", "cnf confirmation", scheme="Bearer")
    refused(send(server, token, proof(server, token)), "invalid_token", "cnf confirmation", scheme="Bearer")


def test_prm_advertises_the_proof_algorithms_and_not_a_requirement(server: RunningServer):
    document = server.client.get("/.well-known/oauth-protected-resource/mcp").json()
    assert document["dpop_signing_alg_values_supported"] == ALGS.split()
    assert "dpop_bound_access_tokens_required" not in document
    assert server.client.get("/.well-known/oauth-protected-resource").json() == document


def test_required_mode_refuses_bearer_and_says_so_in_challenge_and_metadata(fake: FakeAuthorizationServer):
    with running_server(fake, None, introspect_privileged=False, dpop="required") as running:
        refused(send(running, running.token(), scheme="Bearer"), "invalid_token", "requires DPoP-bound tokens")
        anonymous = send(running, None)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("DPoP scope=")
        assert f'algs="{ALGS}"' in anonymous.headers["www-authenticate"]
        assert running.client.get("/.well-known/oauth-protected-resource").json()["dpop_bound_access_tokens_required"]
        token = bound_token(running)
        assert send(running, token, proof(running, token)).status_code == 200


def test_off_mode_takes_only_bearer_and_still_refuses_a_bound_token(fake: FakeAuthorizationServer):
    with running_server(fake, None, introspect_privileged=False, dpop="off") as running:
        token = bound_token(running)
        refused(send(running, token, proof(running, token)), "invalid_token", "not a bearer token", scheme="Bearer")
        refused(send(running, token, scheme="Bearer"), "invalid_token", "token is DPoP-bound", scheme="Bearer")
        assert send(running, running.token(), scheme="Bearer").status_code == 200
        assert "dpop_signing_alg_values_supported" not in running.client.get(
            "/.well-known/oauth-protected-resource").json()


def test_with_nonces_a_proof_without_the_servers_nonce_gets_one_and_the_retry_succeeds(
        fake: FakeAuthorizationServer, tmp_path: Path):
    secret = tmp_path / "dpop-nonce-secret"
    secret.write_bytes(secrets.token_bytes(32).hex().encode())
    with running_server(fake, None, introspect_privileged=False, dpop_nonce_secret_file=secret) as running:
        token = bound_token(running)
        first = send(running, token, proof(running, token))
        refused(first, "use_dpop_nonce", "nonce is missing")
        nonce = first.headers["dpop-nonce"]
        refused(send(running, token, proof(running, token, nonce="stale-or-made-up")), "use_dpop_nonce", "nonce")
        assert send(running, token, proof(running, token, nonce=nonce)).status_code == 200


def test_a_missing_nonce_secret_file_stops_the_start_in_one_line(fake: FakeAuthorizationServer, tmp_path: Path):
    from mcp_server.app import ConfigurationError, create_app
    from tests.support.authorization_server import make_settings

    settings = make_settings(introspect_privileged=False, dpop_nonce_secret_file=tmp_path / "absent")
    with pytest.raises(ConfigurationError, match="MCP_DPOP_NONCE_SECRET_FILE"):
        create_app(settings, http=fake.http())


def test_keycloaks_dpop_typed_token_works_with_its_proof_and_not_without_its_binding(server: RunningServer):
    """Keycloak marks a bound access token `typ: DPoP` (and adds `kc-jkt-type` to `cnf`)."""
    token = server.token(typ="DPoP", cnf={"jkt": thumbprint(jwk_of(CLIENT_KEY)), "kc-jkt-type": "DPoP"})
    assert send(server, token, proof(server, token)).status_code == 200
    refused(send(server, token, scheme="Bearer"), "invalid_token", "token is DPoP-bound")
    unbound = server.token(typ="DPoP")
    refused(send(server, unbound, scheme="Bearer"), "invalid_token", "typ 'DPoP' carries no cnf binding", scheme="Bearer")
