"""Privileged tools see revocation (RFC 7662): the token must still be active at the authorization
server, asked as this server's own client (private_key_jwt, RFC 7523), cached within a bound,
and refused when the AS does not answer. Ordinary tools never wait on the AS."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp.server.auth.provider import AccessToken

from mcp_server import __main__ as entrypoint
from mcp_server.app import create_app
from mcp_server.client_auth import PrivateKeyJWT
from mcp_server.config import ConfigurationError
from mcp_server.discovery import AuthorizationServerMetadata
from mcp_server.introspection import INACTIVE, Inactive, Introspection, Unavailable
from tests.support.authorization_server import (
    INTROSPECTION_URL,
    ISSUER,
    FakeAuthorizationServer,
    RunningServer,
    claims_for,
    make_settings,
    mint,
    running_server,
)
from tests.support.clock import Clock

RESOURCE = "http://127.0.0.1:8000/mcp"
REVOKED = f"Token rejected: {INACTIVE}"


def _params(name: str) -> dict:
    return {"name": name, "arguments": {}}


# --- the introspection itself -------------------------------------------------------------------


def introspection(fake: FakeAuthorizationServer, key_dir: Path, *, clock: Clock | None = None, cache_seconds: float = 5.0,
                  endpoint: str | None = INTROSPECTION_URL, http: httpx2.AsyncClient | None = None,
                  timeout: float = 3.0) -> Introspection:
    http = http or fake.http()
    client = PrivateKeyJWT(client_id=RESOURCE, key_dir=fake.write_client_key(key_dir), audience=ISSUER)
    return Introspection(http, client=client, metadata=AuthorizationServerMetadata(http, ISSUER), endpoint=endpoint,
                         cache_seconds=cache_seconds, timeout=timeout, clock=clock or time.time)


def access_token(fake: FakeAuthorizationServer, **overrides) -> AccessToken:
    claims = claims_for(RESOURCE, **overrides)
    return AccessToken(token=mint(fake.key, claims), client_id=claims["azp"], scopes=["mcp:admin"],
                       expires_at=claims["exp"], subject=claims["sub"], claims=claims)


def now_clock() -> Clock:
    clock = Clock()
    clock.now = time.time()
    return clock


@pytest.mark.anyio
async def test_an_active_token_is_asked_once_per_cache_window(tmp_path: Path):
    fake, clock = FakeAuthorizationServer(), now_clock()
    checks, token = introspection(fake, tmp_path, clock=clock), access_token(fake)
    for _ in range(10):
        await checks.check(token)
    assert fake.introspections == 1
    clock.now += 5.01
    await checks.check(token)
    assert fake.introspections == 2


@pytest.mark.anyio
async def test_a_revoked_token_is_refused_once_the_cached_answer_ends(tmp_path: Path):
    fake, clock = FakeAuthorizationServer(), now_clock()
    checks, token = introspection(fake, tmp_path, clock=clock), access_token(fake)
    await checks.check(token)
    fake.revoke(token.token)
    clock.now += 4.9
    await checks.check(token)  # within the bound: the cached answer
    clock.now += 0.2
    with pytest.raises(Inactive, match="revoked or signed out"):
        await checks.check(token)


@pytest.mark.anyio
async def test_an_inactive_answer_is_cached_too(tmp_path: Path):
    fake = FakeAuthorizationServer()
    checks, token = introspection(fake, tmp_path), access_token(fake)
    fake.revoke(token.token)
    for _ in range(3):
        with pytest.raises(Inactive):
            await checks.check(token)
    assert fake.introspections == 1


@pytest.mark.anyio
async def test_an_answer_is_never_reused_past_the_tokens_exp(tmp_path: Path):
    fake, clock = FakeAuthorizationServer(), now_clock()
    checks = introspection(fake, tmp_path, clock=clock, cache_seconds=60)
    token = access_token(fake, exp=int(clock.now) + 2)
    await checks.check(token)
    clock.now = token.expires_at + 0.5
    await checks.check(token)  # asked again (the fake's own clock still finds it active)
    assert fake.introspections == 2


@pytest.mark.anyio
async def test_no_cache_means_every_privileged_call_asks(tmp_path: Path):
    fake = FakeAuthorizationServer()
    checks, token = introspection(fake, tmp_path, cache_seconds=0), access_token(fake)
    for _ in range(3):
        await checks.check(token)
    assert fake.introspections == 3


@pytest.mark.anyio
async def test_failures_are_not_cached(tmp_path: Path):
    fake = FakeAuthorizationServer()
    checks, token = introspection(fake, tmp_path), access_token(fake)
    fake.down = True
    with pytest.raises(Unavailable, match="HTTP 503"):
        await checks.check(token)
    fake.down = False
    await checks.check(token)
    assert fake.introspections == 1


@pytest.mark.anyio
@pytest.mark.parametrize("overrides", [{"sub": "someone-else"}, {"client_id": "another-client"}, {"client_id": None},
                                       {"active": "true"}])
async def test_an_answer_that_is_not_about_this_token_is_no_answer(tmp_path: Path, overrides: dict):
    """The answer must describe the token sent: its `sub` and `client_id`, and a boolean `active`."""
    fake = FakeAuthorizationServer(answer_overrides=overrides)
    with pytest.raises(Unavailable):
        await introspection(fake, tmp_path).check(access_token(fake))


@pytest.mark.anyio
async def test_the_client_authenticates_with_a_fresh_signed_assertion_each_time(tmp_path: Path):
    """private_key_jwt: ES256, kid, iss = sub = the client id, aud = the issuer, single-use jti
    (the fake AS checks each, against the registered public key)."""
    fake = FakeAuthorizationServer()
    checks = introspection(fake, tmp_path, cache_seconds=0)
    await checks.check(access_token(fake))
    await checks.check(access_token(fake))
    assert (fake.introspections, fake.refused_clients) == (2, 0)
    assert fake.introspected_by == RESOURCE
    assert len(fake.assertion_ids) == 2


@pytest.mark.anyio
async def test_a_client_key_the_authorization_server_does_not_know_fails_closed(tmp_path: Path,
                                                                               caplog: pytest.LogCaptureFixture):
    fake = FakeAuthorizationServer()
    checks = introspection(fake, tmp_path)
    fake.client_key = ec.generate_private_key(ec.SECP256R1())  # the AS now holds another key
    with pytest.raises(Unavailable, match="HTTP 401"):
        await checks.check(access_token(fake))
    assert fake.refused_clients == 1
    assert "client authentication was refused" in caplog.text


@pytest.mark.anyio
async def test_a_rotated_client_key_is_used_without_a_restart(tmp_path: Path):
    fake = FakeAuthorizationServer()
    checks = introspection(fake, tmp_path, cache_seconds=0)
    await checks.check(access_token(fake))
    fake.client_key, fake.client_kid = ec.generate_private_key(ec.SECP256R1()), "key-2"
    fake.write_client_key(tmp_path)  # new <kid>.pem, `current` switched
    await checks.check(access_token(fake))
    assert (fake.introspections, fake.refused_clients) == (2, 0)


@pytest.mark.anyio
async def test_the_endpoint_is_discovered_from_the_authorization_server_metadata(tmp_path: Path):
    fake = FakeAuthorizationServer()
    await introspection(fake, tmp_path, endpoint=None).check(access_token(fake))
    assert fake.introspections == 1


@pytest.mark.anyio
async def test_a_hanging_authorization_server_fails_closed_within_the_timeout(tmp_path: Path):
    fake = FakeAuthorizationServer()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/introspect"
        async with httpx2.AsyncClient() as http:
            checks = introspection(fake, tmp_path, endpoint=endpoint, http=http, timeout=0.3)
            started = time.monotonic()
            with pytest.raises(Unavailable, match="Timeout"):
                await checks.check(access_token(fake))
            assert time.monotonic() - started < 2


@pytest.mark.anyio
async def test_the_token_never_reaches_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    fake = FakeAuthorizationServer()
    checks, token = introspection(fake, tmp_path, cache_seconds=0), access_token(fake)
    fake.down = True
    with pytest.raises(Unavailable):
        await checks.check(token)
    fake.down = False
    fake.revoke(token.token)
    with pytest.raises(Inactive):
        await checks.check(token)
    assert caplog.records
    for record in caplog.records:
        assert token.token not in record.getMessage()
        assert token.token not in str(vars(record))  # the extra fields too


# --- over HTTP ------------------------------------------------------------------------------------


def test_a_privileged_tool_runs_when_the_token_is_active(running: RunningServer):
    before = running.fake.introspections
    response = running.call(running.token(scope="mcp:admin"), params=_params("server_stats"))
    assert response.status_code == 200, response.text
    assert running.fake.introspections == before + 1
    assert running.fake.introspected_by == running.resource_url  # MCP_CLIENT_ID defaults to the resource URL


def test_ordinary_tools_never_introspect(running: RunningServer):
    before = running.fake.introspections
    token = running.token(scope="mcp:tools mcp:audit")
    for _ in range(5):
        for tool in ("get_time", "whoami", "recent_calls"):
            assert running.call(token, params=_params(tool)).status_code == 200
        assert running.call(token, method="tools/list").status_code == 200
    assert running.fake.introspections == before


def test_privileged_calls_within_the_cache_window_cost_one_introspection(running: RunningServer):
    before = running.fake.introspections
    token = running.token(scope="mcp:admin")
    for _ in range(10):
        assert running.call(token, params=_params("server_stats")).status_code == 200
    assert running.fake.introspections == before + 1


def test_the_authorization_server_down_fails_closed_with_503(running: RunningServer):
    token = running.token(scope="mcp:admin")
    running.fake.down = True
    try:
        response = running.call(token, params=_params("server_stats"))
        ordinary = running.call(token, params=_params("get_time"))
    finally:
        running.fake.down = False
    assert response.status_code == 503
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "server_stats could not be authorized: the authorization server did not answer the "
                             "token introspection. Try again later.",
    }
    assert ordinary.status_code == 200  # local validation only: the keys are cached
    assert running.call(token, params=_params("server_stats")).status_code == 200  # and back


def test_a_revoked_session_gets_an_invalid_token_challenge(tmp_path: Path):
    """Through HTTP, the answer once the AS says the session ended (no cache window here: the bound
    it sets is proven on a fake clock, test_a_revoked_token_is_refused_once_the_cached_answer_ends)."""
    with running_server(FakeAuthorizationServer(), tmp_path, introspection_cache_seconds=0) as server:
        token = server.token(scope="mcp:admin")
        assert server.call(token, params=_params("server_stats")).status_code == 200
        server.fake.revoke(token)
        response = server.call(token, params=_params("server_stats"))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == (
            f'Bearer error="invalid_token", error_description="{REVOKED}", scope="mcp:connect mcp:tools", '
            f'resource_metadata="{server.url}/.well-known/oauth-protected-resource/mcp"')
        assert response.json() == {"error": "invalid_token", "error_description": REVOKED}
        # Ordinary tools trust the signature until `exp`: the price of never waiting on the AS.
        assert server.call(token, params=_params("get_time")).status_code == 200


def test_introspection_can_be_switched_off(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """MCP_INTROSPECT_PRIVILEGED=false: a revoked session reaches privileged tools until `exp`."""
    fake = FakeAuthorizationServer()
    with running_server(fake, None, introspect_privileged=False) as server:
        token = server.token(scope="mcp:admin")
        fake.revoke(token)
        assert server.call(token, params=_params("server_stats")).status_code == 200
    assert fake.introspections == 0
    assert "MCP_INTROSPECT_PRIVILEGED=false" in caplog.text


# --- startup ----------------------------------------------------------------------------------------


def test_a_privileged_tool_without_a_client_key_refuses_to_start():
    fake = FakeAuthorizationServer()
    with pytest.raises(ConfigurationError, match=r"server_stats.*set MCP_CLIENT_KEY_DIR.*MCP_INTROSPECT_PRIVILEGED=false"):
        create_app(make_settings(), http=fake.http())


def test_an_empty_key_directory_refuses_to_start(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="client key: no client signing key in"):
        create_app(make_settings(client_key_dir=tmp_path), http=FakeAuthorizationServer().http())


@pytest.mark.anyio
async def test_the_key_given_as_variables_signs_as_the_key_directory_does(tmp_path: Path):
    """MCP_CLIENT_KEY_ID and MCP_CLIENT_KEY_PEM (secrets passed as variables, the AWS template)."""
    fake = FakeAuthorizationServer()
    key_dir = fake.write_client_key(tmp_path)
    pem = (key_dir / f"{fake.client_kid}.pem").read_text()
    client = PrivateKeyJWT(client_id=RESOURCE, key=(fake.client_kid, pem), audience=ISSUER)
    assert pem not in repr(client)
    http = fake.http()
    checks = Introspection(http, client=client, metadata=AuthorizationServerMetadata(http, ISSUER),
                           endpoint=INTROSPECTION_URL, cache_seconds=5.0, timeout=3.0)
    await checks.check(access_token(fake))
    assert fake.introspections == 1


def test_a_key_pem_without_its_kid_refuses_to_start():
    with pytest.raises(ConfigurationError, match="set MCP_CLIENT_KEY_ID"):
        create_app(make_settings(client_key_pem="-----BEGIN PRIVATE KEY-----"), http=FakeAuthorizationServer().http())


def test_a_key_that_cannot_sign_es256_refuses_to_start(tmp_path: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "k1.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    (tmp_path / "current").write_text("k1\n")
    with pytest.raises(ConfigurationError, match="not an EC P-256 private key"):
        create_app(make_settings(client_key_dir=tmp_path), http=FakeAuthorizationServer().http())


def test_the_refusal_to_start_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.delenv("MCP_CLIENT_KEY_DIR", raising=False)
    monkeypatch.delenv("MCP_INTROSPECT_PRIVILEGED", raising=False)
    monkeypatch.setattr(entrypoint.logs, "configure", lambda level: None)  # keep pytest's log capture
    assert entrypoint.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mcp-server: invalid configuration: privileged tools (server_stats)")
    assert "Traceback" not in err
