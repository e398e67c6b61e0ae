"""MCP_GENERIC_ERRORS (production): every error answer says generic words — the same for every
reason behind one error code — and the precise reason goes to the access log, without the token.
Off (the sandbox's default), the answers name the reason. Each place that writes an
`error_description` is covered: the 401 and 403 challenges, the 400 for two credentials, the
introspection's 401 and 503, the 403 for a tool without a scope declaration."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import httpx2
import pytest

from mcp_server.challenge import GENERIC_DESCRIPTIONS
from tests.support.authorization_server import FakeAuthorizationServer, RunningServer, running_server

EXPIRED = {"exp": 1_000_000_000, "iat": 999_999_000}


@pytest.fixture(scope="module")
def generic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(FakeAuthorizationServer(), tmp_path_factory.mktemp("key"), generic_errors=True,
                        introspection_cache_seconds=0) as server:
        yield server


def _params(name: str) -> dict:
    return {"name": name, "arguments": {}}


def _description(response) -> str:
    return response.json()["error_description"]


class AccessLines(logging.Handler):
    """The access log's lines, as the server thread writes them: it writes a request's line after
    the answer is sent, so a test waits for it (a condition, not a sleep), and picks its own
    request's line by the X-Request-Id of the answer — a line of an earlier test's request may
    still arrive meanwhile on a busy machine."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def line(self, response: httpx2.Response) -> logging.LogRecord:
        wanted = response.headers["x-request-id"]

        def found() -> list[logging.LogRecord]:
            return [r for r in self.records if getattr(r, "request_id", None) == wanted]

        with self.changed:
            assert self.changed.wait_for(found, timeout=10), f"no access log line for request {wanted}"
            (record,) = found()
        return record


@pytest.fixture
def access() -> Iterator[AccessLines]:
    lines, logger = AccessLines(), logging.getLogger("mcp_server.access")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


@pytest.mark.parametrize(("claims", "reason"), [
    (EXPIRED, "expired"),
    ({"aud": "https://elsewhere.example/mcp"}, "audience is not this resource server"),
    ({"iss": "https://auth.test/realms/other"}, "issuer is not the configured authorization server"),
])
def test_a_refused_token_gets_the_same_generic_words_and_the_log_the_reason(
    generic: RunningServer, caplog: pytest.LogCaptureFixture, access: AccessLines, claims: dict, reason: str
):
    token = generic.token(**claims)
    with caplog.at_level(logging.INFO):
        response = generic.call(token, params=_params("get_time"))
    assert response.status_code == 401
    words = GENERIC_DESCRIPTIONS["invalid_token"]
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{words}", scope="mcp:connect mcp:tools", '
        f'resource_metadata="{generic.url}/.well-known/oauth-protected-resource/mcp"')
    assert response.json() == {"error": "invalid_token", "error_description": words}
    assert "Token rejected" not in response.text
    line = access.line(response)
    assert line.reason == reason
    assert all(token not in r.getMessage() and token not in str(vars(r)) for r in [*caplog.records, line])


def test_without_the_setting_the_answer_names_the_reason(running: RunningServer):
    response = running.call(running.token(**EXPIRED), params=_params("get_time"))
    assert _description(response) == "Token rejected: expired"


def test_insufficient_scope_keeps_its_scope_parameter_and_logs_what_was_needed(
    generic: RunningServer, caplog: pytest.LogCaptureFixture, access: AccessLines
):
    with caplog.at_level(logging.INFO):
        response = generic.call(generic.token(scope="mcp:tools"), params=_params("server_stats"))
    assert response.status_code == 403
    # RS16: the scope parameter still names what the call needs; clients step up on it.
    assert 'scope="mcp:connect mcp:tools mcp:admin"' in response.headers["www-authenticate"]
    assert _description(response) == GENERIC_DESCRIPTIONS["insufficient_scope"]
    assert access.line(response).reason == "This call needs scope mcp:tools mcp:admin"


def test_two_credentials_get_generic_words(generic: RunningServer, caplog: pytest.LogCaptureFixture, access: AccessLines):
    token = generic.token()
    with caplog.at_level(logging.INFO):
        response = generic.client.post(
            generic.resource_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers=[("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}"),
                     ("accept", "application/json, text/event-stream")])
    assert response.status_code == 400
    assert _description(response) == GENERIC_DESCRIPTIONS["invalid_request"]
    assert GENERIC_DESCRIPTIONS["invalid_request"] in response.headers["www-authenticate"]
    assert access.line(response).reason == "more than one Authorization header"


def test_a_revoked_session_gets_generic_words(generic: RunningServer, caplog: pytest.LogCaptureFixture, access: AccessLines):
    token = generic.token(scope="mcp:admin")
    generic.fake.revoke(token)
    with caplog.at_level(logging.INFO):
        response = generic.call(token, params=_params("server_stats"))
    assert response.status_code == 401
    assert _description(response) == GENERIC_DESCRIPTIONS["invalid_token"]
    assert "no longer active" in access.line(response).reason


def test_an_unanswered_introspection_gets_generic_words(
    generic: RunningServer, caplog: pytest.LogCaptureFixture, access: AccessLines
):
    generic.fake.down = True
    try:
        with caplog.at_level(logging.INFO):
            response = generic.call(generic.token(scope="mcp:admin"), params=_params("server_stats"))
    finally:
        generic.fake.down = False
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable",
                               "error_description": GENERIC_DESCRIPTIONS["temporarily_unavailable"]}
    assert "server_stats" not in response.text
    assert access.line(response).reason.startswith("introspection failed: HTTP 503")


def test_an_undeclared_tool_gets_generic_words(generic: RunningServer, caplog: pytest.LogCaptureFixture, access: AccessLines):
    with caplog.at_level(logging.INFO):
        response = generic.call(generic.token(), params=_params("no_such_tool"))
    assert response.status_code == 403
    assert response.json() == {"error": "access_denied", "error_description": GENERIC_DESCRIPTIONS["access_denied"]}
    assert "no_such_tool" in access.line(response).reason


def test_the_generic_words_are_one_per_error_code():
    """Nothing in them varies with the request: no reason, no tool, no scope."""
    assert len(set(GENERIC_DESCRIPTIONS.values())) == len(GENERIC_DESCRIPTIONS)
    assert not any("{" in words for words in GENERIC_DESCRIPTIONS.values())
