"""The resource server over real HTTP on loopback: status codes, challenges, PRM, tools."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from mcp_server.app import transport_app
from mcp_server.config import Settings
from tests.support import jose
from tests.support.authorization_server import RunningServer, make_settings
from tests.support.bad_tokens import BAD_TOKENS


def _params(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def _prm_url(running: RunningServer) -> str:
    return f"{running.url}/.well-known/oauth-protected-resource/mcp"


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_every_bad_token_gets_401_with_a_challenge(running: RunningServer, case: str):
    """RS10: invalid or expired -> 401; RS3/RS4: the challenge names the metadata and scope."""
    factory, reason = BAD_TOKENS[case]
    token = factory(running.fake, running.resource_url)
    response = running.call(token or None, params=_params("get_time"), **({} if token else {"authorization": "Bearer"}))
    assert response.status_code == 401
    if token:  # the refusal is for the reason under test, not a side effect
        assert reason in response.json()["error_description"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    assert f'resource_metadata="{_prm_url(running)}"' in challenge
    assert 'scope="mcp:connect mcp:tools"' in challenge


def test_no_token_gets_401_without_error_code(running: RunningServer):
    response = running.call(None, params=_params("get_time"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:connect mcp:tools", resource_metadata="{_prm_url(running)}"'
    )


def test_valid_token_calls_get_time_and_whoami(running: RunningServer):
    token = running.token()
    response = running.call(token, params=_params("get_time", timezone="UTC"))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["isError"] is False
    whoami = running.call(token, params=_params("whoami")).json()["result"]["structuredContent"]
    assert whoami["subject"] == "user-123"
    assert whoami["client_id"] == "test-client"
    assert whoami["audience"] == [running.resource_url]


def test_privileged_tool_without_its_scope_is_a_403_step_up_challenge(running: RunningServer):
    """RS15-RS17: 403 insufficient_scope, every needed scope in one challenge, plus metadata (and
    the audience scope, so the stepped-up token still names this server)."""
    response = running.call(running.token(scope="mcp:connect mcp:tools"), params=_params("server_stats"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="This call needs scope mcp:tools mcp:admin", '
        f'scope="mcp:connect mcp:tools mcp:admin", resource_metadata="{_prm_url(running)}"'
    )


def test_privileged_tool_with_its_scope_succeeds(running: RunningServer):
    response = running.call(running.token(scope="mcp:admin"), params=_params("server_stats"))
    assert response.status_code == 200
    assert "tool_calls" in response.json()["result"]["structuredContent"]


def test_token_without_base_scope_is_403(running: RunningServer):
    response = running.call(running.token(scope="profile"), method="tools/list")
    assert response.status_code == 403
    assert 'scope="mcp:connect mcp:tools"' in response.headers["www-authenticate"]


def test_tools_list_names_every_tool(running: RunningServer):
    response = running.call(running.token(), method="tools/list")
    names = {t["name"] for t in response.json()["result"]["tools"]}
    assert names == {"get_time", "whoami", "server_stats", "recent_calls"}


def test_protected_resource_metadata_at_both_well_known_urls(running: RunningServer):
    """RS1-RS3a, RS7."""
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        metadata = running.client.get(path).json()
        assert metadata["resource"] == running.resource_url
        assert metadata["authorization_servers"] == ["https://auth.test/realms/mcp"]
        assert metadata["scopes_supported"] == ["mcp:connect", "mcp:tools", "mcp:admin", "mcp:audit"]
        assert metadata["resource_name"] == "MCP auth sandbox"


def test_foreign_origin_is_refused(running: RunningServer):
    """RS20: DNS-rebinding protection stays on: a foreign Origin gets 403."""
    response = running.call(running.token(), method="tools/list", origin="https://evil.example")
    assert response.status_code == 403


def test_foreign_host_is_refused(running: RunningServer):
    response = running.call(running.token(), method="tools/list", host="evil.example")
    assert response.status_code == 421


def test_malformed_json_with_a_valid_token_is_400(running: RunningServer):
    """RS14: malformed request -> 400."""
    response = running.client.post(
        running.resource_url,
        content=b"{not json",
        headers={
            "authorization": f"Bearer {running.token()}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
    )
    assert response.status_code == 400


def test_jwks_is_not_fetched_per_request(running: RunningServer):
    before = running.fake.fetches
    token = running.token()
    for _ in range(20):
        assert running.call(token, method="tools/list").status_code == 200
    assert running.fake.fetches - before == 0


def test_health_endpoints_need_no_token(running: RunningServer):
    for path in ("/livez", "/readyz", "/healthz"):
        assert running.client.get(path).json()["status"] == "ok", path


def test_responses_carry_a_request_id(running: RunningServer):
    first, second = (running.call(None, method="tools/list").headers["x-request-id"] for _ in range(2))
    assert len(first) == 32
    assert first != second
    # A caller's own id (up to 64 characters) is kept, for correlation across its logs and ours.
    assert running.call(None, method="tools/list", **{"x-request-id": "trace-42"}).headers["x-request-id"] == "trace-42"
    too_long = running.call(None, method="tools/list", **{"x-request-id": "x" * 65}).headers["x-request-id"]
    assert too_long != "x" * 65
    assert len(too_long) == 32


header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300),
    st.builds(lambda s: "Bearer " + s, st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E))),
    st.builds(
        lambda parts: "Bearer " + ".".join(parts),
        st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80),
                 min_size=1, max_size=5),
    ),
    st.builds(lambda b: "Bearer " + b.decode("latin-1"), st.binary(max_size=200).filter(
        lambda b: all(0x20 <= c < 0x7F for c in b))),
).filter(lambda v: v == v.strip())  # HTTP strips surrounding whitespace; httpx2 refuses to send it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=header_values)
def test_fuzzed_authorization_header_never_causes_a_server_error(running: RunningServer, value: str):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    response = running.client.post(
        running.resource_url,
        content=body,
        headers={
            "authorization": value,
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
    )
    assert response.status_code in (401, 403), (value, response.status_code)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_header_and_claims_never_cause_a_server_error_nor_fail_the_next_caller(running: RunningServer,
                                                                                    data: st.DataObject):
    """Through the SDK's bearer middleware and the gate: a token with any JOSE header and claims
    is answered 200, 401 or 403 — never a 5xx, after which uvicorn closes the keep-alive connection
    a proxy reuses for someone else's request — and the next caller on the connection is served."""
    token = data.draw(jose.tokens(running.fake.key, running.resource_url))
    response = running.call(token, method="tools/list")
    assert response.status_code in (200, 401, 403), (token, response.status_code, response.text)
    assert "could not be verified" not in response.text  # a refusal for a reason, not the verifier's backstop
    assert running.call(running.token(), method="tools/list").status_code == 200


def test_no_session_handle_is_issued(running: RunningServer):
    """RS21: stateless — a 2025-11-25 initialize creates no Mcp-Session-Id to stand in for auth."""
    response = running.call(
        running.token(),
        method="initialize",
        params={"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    )
    assert response.status_code == 200
    assert "mcp-session-id" not in response.headers


def _raw_call(running: RunningServer, token: str, body: bytes):
    return running.client.post(
        running.resource_url,
        content=body,
        headers={
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        },
    )


def test_a_body_too_large_to_inspect_never_reaches_a_tool(running: RunningServer):
    """The per-tool gate must not be skipped by padding the request past what it reads."""
    padding = "x" * (Settings().max_body_bytes + 10)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "server_stats", "arguments": {"pad": padding}}}).encode()
    response = _raw_call(running, running.token(scope="mcp:tools"), body)
    assert response.status_code == 413


def _duplicate_name_call(first: str, second: str) -> bytes:
    return ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
            f'"params": {{"name": "{first}", "name": "{second}", "arguments": {{}}}}}}').encode()


def test_duplicate_keys_cannot_smuggle_a_privileged_tool_past_the_gate(running: RunningServer):
    """The gate and the transport both take the last duplicate: the tool checked is the tool run."""
    token = running.token(scope="mcp:tools")
    ran = _raw_call(running, token, _duplicate_name_call("server_stats", "get_time"))
    assert ran.status_code == 200
    assert "tool_calls" not in ran.text  # get_time ran, not server_stats
    assert _raw_call(running, token, _duplicate_name_call("get_time", "server_stats")).status_code == 403


def test_batched_messages_are_all_checked(running: RunningServer):
    token = running.token(scope="mcp:tools")
    body = json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_time", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "server_stats", "arguments": {}}},
    ]).encode()
    response = _raw_call(running, token, body)
    assert response.status_code == 403
    assert 'scope="mcp:connect mcp:tools mcp:admin"' in response.headers["www-authenticate"]


def test_a_tool_with_no_scope_declaration_is_refused(running: RunningServer):
    response = running.call(running.token(scope="mcp:admin"), params=_params("not_declared_anywhere"))
    assert response.status_code == 403
    assert response.json() == {"error": "access_denied",
                               "error_description": "no scope policy for tool not_declared_anywhere"}


def test_deeply_nested_json_is_a_parse_error_not_a_server_error(running: RunningServer):
    body = b"[" * 100_000 + b"]" * 100_000
    response = _raw_call(running, running.token(), body)
    assert response.status_code == 400
    assert response.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}


def _padded_call(size: int) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_time", "arguments": {}}})
    return body.encode() + b" " * (size - len(body))


def test_body_limit_is_exact(running: RunningServer):
    """MCP_MAX_BODY_BYTES (1 MiB): a body of exactly the limit is served, one byte more is 413."""
    limit = Settings().max_body_bytes
    assert limit == 1024 * 1024
    token = running.token()
    at_limit = _raw_call(running, token, _padded_call(limit))
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["result"]["isError"] is False
    assert _raw_call(running, token, _padded_call(limit + 1)).status_code == 413


def test_an_event_stream_ends_when_its_token_expires(running: RunningServer):
    """A GET stream opened with a token is closed at the token's expiry."""
    import time

    token = running.token(exp=int(time.time()) + 2)
    started = time.monotonic()
    headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream", "mcp-protocol-version": "2025-11-25"}
    with running.client.stream("GET", running.resource_url, headers=headers, timeout=15) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for _ in response.iter_bytes():
            pass  # until the server ends the stream
    assert 1 < time.monotonic() - started < 5


def test_the_sdk_transport_app_is_one_route_and_its_session_manager():
    """app.py serves the route of the SDK's streamable-HTTP app in its own Starlette app, behind its
    own layers, and runs that app's lifespan — the transport's session manager — in its own
    lifespan. Middleware, routes or lifespan work the SDK added to that app would be left out
    silently: this fails instead, naming what changed, so app.py can compose it."""
    server = MCPServer(name="pin")
    sdk = transport_app(server, make_settings())
    assert sdk.user_middleware == [], f"the SDK's transport app now has middleware {sdk.user_middleware}: add it in app.py"
    paths = [getattr(route, "path", route) for route in sdk.routes]
    assert paths == ["/mcp"], f"the SDK's transport app now serves {paths}: serve the new ones in app.py"
    lifespan = sdk.router.lifespan_context(sdk)
    assert getattr(lifespan, "func", None) is StreamableHTTPSessionManager.run.__wrapped__, (
        f"the SDK's transport app's lifespan is now {lifespan!r}, not its session manager's run(): enter it in app.py")
    assert lifespan.args == (server.session_manager,)  # type: ignore[attr-defined]
