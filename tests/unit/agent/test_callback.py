"""The loopback listener: code/state/iss handed over; errors only trusted with the right iss."""

import threading
import urllib.request

import anyio
import pytest
from mcp.client.auth import OAuthFlowError
from mcp.shared.auth import OAuthMetadata

from mcp_agent.callback import AuthorizationDenied, CallbackListener
from tests.support.net import free_port

METADATA = OAuthMetadata(
    issuer="https://auth.localhost/realms/mcp",
    authorization_endpoint="https://auth.localhost/realms/mcp/protocol/openid-connect/auth",
    token_endpoint="https://auth.localhost/realms/mcp/protocol/openid-connect/token",
)


def deliver(query: str) -> object:
    port = free_port()
    with CallbackListener(port) as listener:
        threading.Thread(target=lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/callback?{query}")).start()
        return anyio.run(listener.wait, 10, METADATA)


def test_code_state_and_iss_are_returned():
    result = deliver("code=c&state=s&iss=https%3A%2F%2Fauth.localhost%2Frealms%2Fmcp")
    assert (result.code, result.state, result.iss) == ("c", "s", "https://auth.localhost/realms/mcp")


def test_denied_consent_is_reported_plainly():
    with pytest.raises(AuthorizationDenied, match="consent denied"):
        deliver("error=access_denied&state=s&iss=https%3A%2F%2Fauth.localhost%2Frealms%2Fmcp")


def test_an_error_from_another_issuer_is_not_believed():
    with pytest.raises(OAuthFlowError, match="expected"):
        deliver("error=access_denied&state=s&iss=https%3A%2F%2Fevil.example")
