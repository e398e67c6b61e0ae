"""CORS for clients that run in a browser page: the allow-list, the preflight before the bearer
check, the readable challenge, and the Origin check that stays on for everyone else."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from mcp_server.config import Settings
from tests.support.authorization_server import RunningServer

PAGE = "http://localhost:5173"


def preflight(running: RunningServer, origin: str, headers: str = "authorization,content-type,mcp-protocol-version"):
    return running.client.options(running.resource_url, headers={
        "origin": origin, "access-control-request-method": "POST", "access-control-request-headers": headers})


def test_preflight_from_a_loopback_page_is_answered_before_the_bearer_check(running: RunningServer):
    response = preflight(running, PAGE)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "access-control-allow-credentials" not in response.headers
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version", "mcp-session-id"} <= allowed


def test_preflight_from_an_origin_not_on_the_list_gets_no_allow_origin(running: RunningServer):
    response = preflight(running, "https://evil.example")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_the_challenge_is_readable_by_an_allowed_page(running: RunningServer):
    response = running.call(None, method="tools/list", origin=PAGE)
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "www-authenticate" in response.headers["access-control-expose-headers"]


def test_an_allowed_page_with_a_token_passes_the_origin_check(running: RunningServer):
    response = running.call(running.token(), method="tools/list", origin=PAGE)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == PAGE


def test_answers_vary_by_origin_with_or_without_one(running: RunningServer):
    """A cache must not hand a page's answer (with Access-Control-Allow-Origin) to another caller,
    nor the reverse: every answer says it varies by Origin, also to clients that send none."""
    for headers in ({}, {"origin": PAGE}, {"origin": "https://evil.example"}):
        response = running.call(running.token(), method="tools/list", **headers)
        assert [v.strip() for v in response.headers.get_list("vary", split_commas=True)] == ["Origin"], headers


def test_a_lookalike_origin_is_neither_allowed_nor_passed(running: RunningServer):
    for origin in ("http://localhost.evil.example:5173", "http://localhost", "https://localhost:5173"):
        response = running.call(running.token(), method="tools/list", origin=origin)
        assert "access-control-allow-origin" not in response.headers, origin
        assert response.status_code == 403, origin  # the SDK's Origin check (RS20)


@pytest.mark.parametrize("value", ["*", "null", "http://a.example/path", "http://*.example", "example.com", "ftp://a.example"])
def test_anything_but_origins_is_refused_at_startup(value: str):
    with pytest.raises(ValueError, match="MCP_CORS_ALLOWED_ORIGINS"):
        _ = Settings(cors_allowed_origins=value).cors_origins


def test_the_allow_list_as_a_regular_expression():
    regex = re.compile(Settings(cors_allowed_origins="https://app.example http://127.0.0.1:*").cors_origin_regex)
    assert regex.fullmatch("https://app.example")
    assert regex.fullmatch("http://127.0.0.1:8080")
    assert not regex.fullmatch("https://app.example:8443")
    assert not regex.fullmatch("http://127.0.0.1")
    assert not regex.fullmatch("http://127.0.0.10:8080")
    assert not regex.fullmatch("http://127.0.0.1:8080.evil")
    assert not re.fullmatch(Settings(cors_allowed_origins="").cors_origin_regex, "http://localhost:1")


def test_settings_are_frozen_so_the_list_cannot_change_under_a_running_server():
    with pytest.raises(ValidationError):
        Settings().cors_allowed_origins = "*"  # type: ignore[misc]
