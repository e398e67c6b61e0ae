"""RFC 8693 token exchange for a downstream API (exchange.py): what is asked (the user's token as
subject, the API as audience, only the tool's scope, this server's private_key_jwt), the cache
(per subject digest, audience and scope; until shortly before expiry; never past the subject's
exp; bounded), and every failure as Refused or Unavailable — never a token in a log line."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import httpx2
import pytest
from mcp.server.auth.provider import AccessToken

from mcp_server.client_auth import PrivateKeyJWT
from mcp_server.discovery import AuthorizationServerMetadata
from mcp_server.exchange import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    Exchanged,
    Refused,
    SenderConstrained,
    TokenExchange,
    Unavailable,
)
from tests.support.authorization_server import ISSUER, FakeAuthorizationServer, claims_for, mint
from tests.support.clock import Clock
from tests.support.token_exchange import TOKEN_URL, ExchangingAuthorizationServer

MCP = "https://mcp.test/mcp"  # the MCP server's resource URL and client id
API = "https://api.test"


def authorization_server(**overrides) -> ExchangingAuthorizationServer:
    return ExchangingAuthorizationServer(FakeAuthorizationServer(), {API: {"notes:read", "notes:write"}},
                                         permitted={"alice"}, **overrides)


def exchange(server: ExchangingAuthorizationServer, key_dir: Path, *, clock: Clock | None = None,
             http: httpx2.AsyncClient | None = None, endpoint: str | None = None, timeout: float = 3.0,
             cache_size: int = 1024) -> TokenExchange:
    http = http or server.http()
    client = PrivateKeyJWT(client_id=MCP, key_dir=server.fake.write_client_key(key_dir), audience=ISSUER)
    return TokenExchange(http, client=client, metadata=AuthorizationServerMetadata(http, ISSUER), endpoint=endpoint,
                         timeout=timeout, margin=30, cache_size=cache_size, clock=clock or time.time)


def subject(server: ExchangingAuthorizationServer, sub: str = "alice", **overrides) -> AccessToken:
    claims = claims_for(MCP, sub=sub, azp="https://cimd.test/agents/demo/metadata.json", **overrides)
    return AccessToken(token=mint(server.fake.key, claims), client_id=claims["azp"], scopes=["mcp:tools"],
                       expires_at=claims["exp"], subject=sub, claims=claims)


def now_clock() -> Clock:
    clock = Clock()
    clock.now = time.time()
    return clock


# --- what is asked ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_request_names_the_subject_the_api_and_only_the_tools_scope_as_this_servers_client(tmp_path: Path):
    server = authorization_server()
    user = subject(server)
    token = await exchange(server, tmp_path).token_for(user, audience=API, scope="notes:read")
    (form,) = server.forms
    assert form["grant_type"] == GRANT_TYPE
    assert (form["subject_token"], form["subject_token_type"]) == (user.token, ACCESS_TOKEN_TYPE)
    assert form["requested_token_type"] == ACCESS_TOKEN_TYPE  # never a refresh token
    assert (form["audience"], form["scope"]) == (API, "notes:read")
    # A private_key_jwt assertion the AS accepted (so a replay of it is not).
    assert server.fake.authenticate(form) is None
    assert token == server.issued[-1]
    assert token != user.token


@pytest.mark.anyio
async def test_a_dpop_bound_subject_token_is_not_exchanged_at_all(tmp_path: Path):
    """Keycloak 26.7.3 refuses it from any client but its own (tests/integration/test_dpop.py
    pins that): asking would only cost a round trip and an opaque refusal."""
    server = authorization_server()
    exchanges = exchange(server, tmp_path)
    bound = subject(server, typ="DPoP", cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    with pytest.raises(SenderConstrained):
        await exchanges.token_for(bound, audience=API, scope="notes:read")
    assert exchanges.exchanges == 0
    assert server.forms == []


# --- the cache ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_one_exchange_per_subject_audience_and_scope_within_the_tokens_life(tmp_path: Path):
    server, clock = authorization_server(), now_clock()
    exchanges, alice = exchange(server, tmp_path, clock=clock), subject(server)
    first = {await exchanges.token_for(alice, audience=API, scope="notes:read") for _ in range(10)}
    assert len(first) == 1
    assert exchanges.exchanges == 1
    await exchanges.token_for(alice, audience=API, scope="notes:write")  # another scope: another token
    await exchanges.token_for(subject(server), audience=API, scope="notes:read")  # another subject token
    assert exchanges.exchanges == 3


@pytest.mark.anyio
async def test_an_exchanged_token_is_reused_until_shortly_before_it_expires(tmp_path: Path):
    server, clock = authorization_server(lifetime=300), now_clock()
    exchanges, alice = exchange(server, tmp_path, clock=clock), subject(server, exp=int(clock.now) + 3600)
    await exchanges.token_for(alice, audience=API, scope="notes:read")
    clock.now += 300 - 30 - 1  # the margin: 30 s before the exchanged token's exp
    await exchanges.token_for(alice, audience=API, scope="notes:read")
    assert exchanges.exchanges == 1
    clock.now += 2
    await exchanges.token_for(alice, audience=API, scope="notes:read")
    assert exchanges.exchanges == 2


@pytest.mark.anyio
async def test_an_exchanged_token_is_never_reused_past_the_subject_tokens_exp(tmp_path: Path):
    server, clock = authorization_server(lifetime=300), now_clock()
    exchanges = exchange(server, tmp_path, clock=clock)
    alice = subject(server, exp=int(clock.now) + 60)
    await exchanges.token_for(alice, audience=API, scope="notes:read")
    clock.now = alice.expires_at + 0.5  # type: ignore[operator]
    await exchanges.token_for(alice, audience=API, scope="notes:read")
    assert exchanges.exchanges == 2


@pytest.mark.anyio
async def test_the_cache_is_bounded(tmp_path: Path):
    server = authorization_server()
    exchanges = exchange(server, tmp_path, cache_size=2)
    users = [subject(server) for _ in range(3)]
    for user in users:
        await exchanges.token_for(user, audience=API, scope="notes:read")
    assert exchanges.cached == 2
    await exchanges.token_for(users[0], audience=API, scope="notes:read")  # the oldest was dropped
    assert exchanges.exchanges == 4


# --- refusals and failures ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_user_without_the_permission_is_refused_and_the_refusal_is_not_cached(tmp_path: Path):
    server = authorization_server()
    exchanges, ada = exchange(server, tmp_path), subject(server, sub="ada")
    for _ in range(2):
        with pytest.raises(Refused, match="Requested audience not available"):
            await exchanges.token_for(ada, audience=API, scope="notes:read")
    assert exchanges.exchanges == 2
    server.permitted.add("ada")  # granted the role: the next call works at once
    await exchanges.token_for(ada, audience=API, scope="notes:read")


@pytest.mark.anyio
async def test_a_scope_beyond_the_requesters_is_refused(tmp_path: Path):
    server = authorization_server()
    with pytest.raises(Refused, match="invalid_scope"):
        await exchange(server, tmp_path).token_for(subject(server), audience=API, scope="notes:read mcp:admin")


@pytest.mark.anyio
async def test_a_token_without_the_asked_scope_is_refused(tmp_path: Path):
    """An AS that silently drops the scope (RFC 8693 §2.2.1 lets it narrow) gives the tool nothing to use."""
    server = authorization_server()

    def narrowing(request: httpx2.Request) -> httpx2.Response:
        response = server.handler(request)
        if str(request.url) == TOKEN_URL and response.status_code == 200:
            return httpx2.Response(200, json={**response.json(), "scope": "profile"})
        return response

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(narrowing))
    with pytest.raises(Refused, match="lacks the scope notes:write"):
        await exchange(server, tmp_path, http=http).token_for(subject(server), audience=API, scope="notes:write")


@pytest.mark.anyio
async def test_this_servers_client_refused_is_unavailable_not_the_users_fault(tmp_path: Path):
    server = authorization_server()
    exchanges = exchange(server, tmp_path)
    server.fake.client_kid = "another-key"  # the AS no longer knows this server's key
    with pytest.raises(Unavailable, match=r"HTTP 401 invalid_client.*client authentication"):
        await exchanges.token_for(subject(server), audience=API, scope="notes:read")


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_an_authorization_server_in_trouble_is_unavailable(tmp_path: Path, status: int):
    server = authorization_server(status=status)
    with pytest.raises(Unavailable, match=f"HTTP {status}"):
        await exchange(server, tmp_path).token_for(subject(server), audience=API, scope="notes:read")


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["drop", 502, 503, 504])
async def test_a_node_failing_once_is_retried_once_with_a_fresh_client_assertion(tmp_path: Path, failure: int | str):
    """Several AS nodes behind a load balancer: the second attempt reaches one that works."""
    server = authorization_server(failures=[failure])
    token = await exchange(server, tmp_path).token_for(subject(server), audience=API, scope="notes:read")
    assert token == server.issued[-1]
    first, second = server.forms
    assert first["client_assertion"] != second["client_assertion"]  # each assertion is used once


@pytest.mark.anyio
async def test_a_node_that_does_not_answer_within_half_the_deadline_is_left_for_another(tmp_path: Path):
    """A stopping or cold node that accepts the request and goes quiet: after half the deadline
    the second attempt goes out (to another node behind the balancer) and its answer is used."""
    server = authorization_server(failures=["hang"])
    exchanges = exchange(server, tmp_path, timeout=0.4)
    started = time.monotonic()
    token = await exchanges.token_for(subject(server), audience=API, scope="notes:read")
    assert token == server.issued[-1]
    assert len(server.forms) == 2
    assert time.monotonic() - started < 0.4  # half the deadline, then the answer of the second


@pytest.mark.anyio
@pytest.mark.parametrize("failures", [["drop", "drop"], [503, 503], ["drop", 502], ["hang", 503]])
async def test_two_failed_attempts_are_unavailable_and_there_is_no_third(tmp_path: Path, failures: list):
    server = authorization_server(failures=[*failures, 503])
    exchanges = exchange(server, tmp_path)
    with pytest.raises(Unavailable):
        await exchanges.token_for(subject(server), audience=API, scope="notes:read")
    assert (len(server.forms), exchanges.exchanges) == (2, 2)
    assert server.failures == [503]


@pytest.mark.anyio
async def test_the_authorization_servers_own_error_and_refusals_are_not_retried(tmp_path: Path):
    server = authorization_server(failures=[500])
    with pytest.raises(Unavailable, match="HTTP 500"):
        await exchange(server, tmp_path).token_for(subject(server), audience=API, scope="notes:read")
    refused = authorization_server()
    with pytest.raises(Refused):
        await exchange(refused, tmp_path).token_for(subject(refused, sub="ada"), audience=API, scope="notes:read")
    assert len(server.forms) == len(refused.forms) == 1


@pytest.mark.anyio
async def test_the_retry_stays_within_the_one_deadline(tmp_path: Path):
    """A first attempt that hangs leaves no time for a second: the tool error comes at `timeout`."""
    server = authorization_server()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/token"
        async with httpx2.AsyncClient() as http:
            exchanges = exchange(server, tmp_path, http=http, endpoint=endpoint, timeout=0.3)
            started = time.monotonic()
            with pytest.raises(Unavailable, match=r"no answer within 0\.3 s"):
                await exchanges.token_for(subject(server), audience=API, scope="notes:read")
            assert time.monotonic() - started < 2


@pytest.mark.anyio
async def test_an_unreachable_authorization_server_is_unavailable(tmp_path: Path):
    server = authorization_server()
    server.fake.down = True  # metadata and token endpoint answer 503
    with pytest.raises(Unavailable):
        await exchange(server, tmp_path).token_for(subject(server), audience=API, scope="notes:read")


@pytest.mark.anyio
async def test_a_hanging_authorization_server_is_unavailable_within_the_timeout(tmp_path: Path):
    server = authorization_server()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/token"
        async with httpx2.AsyncClient() as http:
            exchanges = exchange(server, tmp_path, http=http, endpoint=endpoint, timeout=0.3)
            started = time.monotonic()
            with pytest.raises(Unavailable, match=r"no answer within 0\.3 s|Timeout"):
                await exchanges.token_for(subject(server), audience=API, scope="notes:read")
            assert time.monotonic() - started < 2


@pytest.mark.anyio
@pytest.mark.parametrize(("answer", "error"), [
    ({"token_type": "Bearer", "expires_in": 60}, "no access_token"),
    ({"access_token": "x", "token_type": "N_A", "expires_in": 60}, "not Bearer"),
    ({"access_token": "x", "token_type": "Bearer", "expires_in": 60,
      "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "not an access token"),
    ({"access_token": "x", "token_type": "Bearer"}, "expires_in"),
    ({"access_token": "x", "token_type": "Bearer", "expires_in": True}, "expires_in"),
])
async def test_an_answer_that_is_not_a_usable_access_token_is_unavailable(tmp_path: Path, answer: dict, error: str):
    server = authorization_server()

    def odd(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=answer) if str(request.url) == TOKEN_URL else server.handler(request)

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(odd))
    with pytest.raises(Unavailable, match=error):
        await exchange(server, tmp_path, http=http).token_for(subject(server), audience=API, scope="notes:read")


@pytest.mark.anyio
async def test_neither_token_reaches_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    server = authorization_server()
    exchanges, alice, ada = exchange(server, tmp_path), subject(server), subject(server, sub="ada")
    await exchanges.token_for(alice, audience=API, scope="notes:read")
    with pytest.raises(Refused):
        await exchanges.token_for(ada, audience=API, scope="notes:read")
    server.status = 503
    with pytest.raises(Unavailable):
        await exchanges.token_for(alice, audience=API, scope="notes:write")
    assert caplog.records
    secrets = [alice.token, ada.token, *server.issued]
    for record in caplog.records:
        text = record.getMessage() + str(vars(record))
        assert not any(secret in text or secret.split(".")[2] in text for secret in secrets)
    assert "a-token" not in repr(Exchanged(token="a-token", reuse_until=0, scopes=frozenset()))
