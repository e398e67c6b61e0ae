"""The loopback listener: only the answer carrying this login's state counts (C26); errors are
trusted only with that state and the right iss (RFC 9207)."""

import urllib.error
import urllib.request

import anyio
import pytest
from mcp.client.auth import OAuthFlowError
from mcp.shared.auth import OAuthMetadata

from mcp_agent.callback import AuthorizationDenied, CallbackListener, state_of
from tests.support.net import free_port

METADATA = OAuthMetadata(
    issuer="https://auth.localhost/realms/mcp",
    authorization_endpoint="https://auth.localhost/realms/mcp/protocol/openid-connect/auth",
    token_endpoint="https://auth.localhost/realms/mcp/protocol/openid-connect/token",
)
ISS = "iss=https%3A%2F%2Fauth.localhost%2Frealms%2Fmcp"
STATE = "s3cr3t-state-of-this-login"


def get(port: int, query: str) -> int:
    """Deliver a redirect as a browser would; urlopen returns once the listener has answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/callback?{query}") as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def deliver(*queries: str, expect: list[int] | None = None) -> object:
    """Send the redirects in order, then collect what the listener hands to the SDK. Each request
    is answered before the next is sent, so no timing is involved: the listener has decided about
    every one of them before `wait` runs (its timeout only bounds a broken test)."""
    port = free_port()
    with CallbackListener(port, state=STATE) as listener:
        statuses = [get(port, query) for query in queries]
        if expect is not None:
            assert statuses == expect
        return anyio.run(listener.wait, 10, METADATA)


def test_code_state_and_iss_are_returned():
    result = deliver(f"code=c&state={STATE}&{ISS}", expect=[200])
    assert (result.code, result.state, result.iss) == ("c", STATE, "https://auth.localhost/realms/mcp")


def test_denied_consent_is_reported_plainly():
    with pytest.raises(AuthorizationDenied, match="consent denied"):
        deliver(f"error=access_denied&state={STATE}&{ISS}")


def test_an_error_from_another_issuer_is_not_believed():
    with pytest.raises(OAuthFlowError, match="expected"):
        deliver(f"error=access_denied&state={STATE}&iss=https%3A%2F%2Fevil.example")


@pytest.mark.parametrize("forged", [
    f"error=access_denied&state=guessed&{ISS}",       # right (public) iss, wrong state
    f"error=server_error&{ISS}",                       # no state at all
    "code=attacker-code&state=guessed",                # a code injected under another state
    f"code=attacker-code&state=&{ISS}",                # empty state
    f"error=access_denied&state={STATE}x&{ISS}",       # a prefix of the state is not the state
])
def test_a_response_without_this_logins_state_is_ignored_and_the_login_goes_on(forged):
    result = deliver(forged, f"code=real&state={STATE}&{ISS}", expect=[400, 200])
    assert (result.code, result.state) == ("real", STATE)


def test_after_the_answer_the_listener_takes_no_more():
    port = free_port()
    with CallbackListener(port, state=STATE) as listener:
        assert get(port, f"code=real&state={STATE}&{ISS}") == 200
        assert get(port, f"code=second&state={STATE}&{ISS}") == 404
        assert anyio.run(listener.wait, 10, METADATA).code == "real"


def test_a_wait_ends_when_the_listener_is_closed():
    listener = CallbackListener(free_port(), state=STATE).start()
    listener.stop()
    with pytest.raises(OAuthFlowError, match="closed"):
        anyio.run(listener.wait, 10, METADATA)


def test_the_state_comes_from_the_authorization_request():
    assert state_of(f"https://auth.localhost/auth?client_id=x&state={STATE}&code_challenge=y") == STATE
    with pytest.raises(OAuthFlowError, match="no state"):
        state_of("https://auth.localhost/auth?client_id=x")
