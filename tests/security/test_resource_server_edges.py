"""Malformed and oversized requests and tokens, Host forms, tool names and long-lived streams
against the real resource server behind Caddy."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import jwt

from tests.support.mcp import rpc
from tests.support.stack import Stack
from tests.support.tokens import token

MAX_BODY = 1024 * 1024  # MCP_MAX_BODY_BYTES default


def post(stack: Stack, body: bytes, *, access_token: str, **headers: str) -> httpx2.Response:
    with stack.client() as http:
        return http.post(stack.resource_url, content=body, headers={
            "authorization": f"Bearer {access_token}", "content-type": "application/json",
            "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25", **headers})


def call(name: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": name, "arguments": {}}}).encode()


def test_deeply_nested_json_is_a_parse_error_not_a_crash(stack: Stack):
    response = post(stack, b"[" * 100_000 + b"]" * 100_000, access_token=token(stack))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_a_body_one_byte_over_the_limit_is_refused_and_the_limit_itself_is_served(stack: Stack):
    access_token = token(stack)
    body = call("get_time")
    assert post(stack, body + b" " * (MAX_BODY - len(body)), access_token=access_token).status_code == 200
    assert post(stack, body + b" " * (MAX_BODY + 1 - len(body)), access_token=access_token).status_code == 413


def test_a_tool_without_a_scope_declaration_is_refused(stack: Stack):
    response = post(stack, call("undeclared_tool"), access_token=token(stack, scope="mcp:tools mcp:admin"))
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


def test_the_explicit_default_port_in_host_is_the_same_origin(stack: Stack):
    """RS20 stays on, but `Host: mcp.localhost:443` (or :8443 on another port) is this server."""
    host = f"mcp.localhost:{stack.env['HTTPS_PORT']}"
    response = post(stack, call("get_time"), access_token=token(stack), host=host)
    assert response.status_code == 200, response.text
    assert post(stack, call("get_time"), access_token=token(stack), host="evil.localhost").status_code == 421


def test_an_event_stream_does_not_outlive_its_token(stack: Stack):
    """A GET stream opened with a 1-second token ends at the token's expiry."""
    access_token = token(stack, client_id="mcp-machine-agent-short-lived")
    expires = jwt.decode(access_token, options={"verify_signature": False})["exp"]
    headers = {"authorization": f"Bearer {access_token}", "accept": "text/event-stream",
               "mcp-protocol-version": "2025-11-25"}
    with stack.client() as http, http.stream("GET", stack.resource_url, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        for _ in response.iter_bytes():
            pass
    assert time.time() < expires + 5


def _with_header(real: str, header: bytes) -> str:
    """The real token's claims and signature under another JOSE header (raw JSON text)."""
    _, payload, signature = real.split(".")
    return ".".join([base64.urlsafe_b64encode(header).rstrip(b"=").decode(), payload, signature])


# JOSE headers PyJWT's own header checks refuse with exceptions the verifier once let through
# (a 500, and uvicorn closing the keep-alive connection Caddy then reused: 502s for others).
MALFORMED_HEADERS = [
    b'{"alg":"RS256","typ":"JWT","kid":5}',
    b'{"alg":"RS256","typ":"JWT","kid":{"kid":"x"}}',
    b'{"alg":"RS256","typ":"JWT","kid":"x","crit":["exp"]}',
    b'{"alg":"RS256","typ":"JWT","kid":"x","crit":["b64"],"b64":true}',
    b'{"alg":"RS256","typ":"JWT","kid":"x","crit":[]}',
    b'{"alg":["RS256"],"typ":"JWT","kid":"x"}',
    b'{"alg":"RS256","typ":5,"kid":"x"}',
    b"[1]",
    b"[" * 1500 + b"]" * 1500,
    b"\xff\xfe",
]


def test_malformed_tokens_interleaved_with_valid_ones_never_fail_the_valid_ones(stack: Stack):
    """40 requests with malformed tokens and 40 with a valid one, on 8 threads through Caddy: every
    valid one 200, every malformed one 401 invalid_token, none a 5xx."""
    real = token(stack)
    malformed = [_with_header(real, MALFORMED_HEADERS[i % len(MALFORMED_HEADERS)]) for i in range(40)]
    requests = [item for pair in zip([real] * 40, malformed, strict=True) for item in pair]

    def send(access_token: str) -> tuple[bool, httpx2.Response]:
        return access_token == real, rpc(stack, f"Bearer {access_token}")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, requests))
    assert [r.status_code for _, r in answers if r.status_code >= 500] == []
    assert [r.status_code for valid, r in answers if valid] == [200] * 40
    for valid, response in answers:
        if not valid:
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
