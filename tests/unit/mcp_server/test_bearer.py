"""bearer.py against the SDK it stands in for: the gate authenticates with the SDK's decision, and
the SDK still builds its own bearer authentication from the pieces the gate reuses.

If a test here fails after an SDK upgrade, the SDK changed how it authenticates bearer tokens:
read the new `MCPServer.streamable_http_app` / `BearerAuthBackend`, port the change to bearer.py
or authorization.py, and update these tests."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.settings import AuthSettings
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.routing import Route

from mcp_server.bearer import MoreThanOneCredential, authenticate, credential
from tests.support.authorization_server import FakeAuthorizationServer, claims_for, make_settings, make_verifier, mint
from tests.support.bad_tokens import BAD_TOKENS

FAKE = FakeAuthorizationServer()
SETTINGS = make_settings()


def test_the_sdk_still_authenticates_with_the_layers_the_gate_replaces():
    """What the SDK wraps its transport in when given a token verifier: Starlette's
    AuthenticationMiddleware with BearerAuthBackend, then AuthContextMiddleware, then
    RequireAuthMiddleware on the MCP route. The gate does the first (bearer.authenticate), hands
    over to the second, and answers what the third would refuse itself (401/403 with challenges)."""
    verifier, _ = make_verifier(FAKE, SETTINGS)
    server = MCPServer(name="pin", token_verifier=verifier, auth=AuthSettings(
        issuer_url=SETTINGS.issuer, resource_server_url=SETTINGS.resource_url,  # type: ignore[arg-type]
        required_scopes=["mcp:tools"], validate_token_resource=False))
    app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True)
    layers = [(m.cls, type(m.kwargs.get("backend"))) for m in app.user_middleware]
    assert layers == [(AuthenticationMiddleware, BearerAuthBackend), (AuthContextMiddleware, type(None))], (
        f"the SDK's bearer authentication is now {layers}: port the change to bearer.py / the gate")
    (mcp_route,) = [r for r in app.routes if isinstance(r, Route) and r.path == "/mcp"]
    assert isinstance(mcp_route.app, RequireAuthMiddleware), (
        f"the SDK's MCP route is now wrapped in {type(mcp_route.app).__name__}: check what it checks")


def _values(fake: FakeAuthorizationServer, resource: str) -> list[bytes]:
    valid = mint(fake.key, claims_for(resource))
    bad = [factory(fake, resource) for factory, _ in BAD_TOKENS.values()]
    return [
        f"Bearer {valid}".encode(), f"bearer {valid}".encode(), f"BEARER {valid}".encode(),
        f"Bearer  {valid}".encode(), f"Bearer {valid} ".encode(), valid.encode(), f"Basic {valid}".encode(),
        b"Bearer", b"Bearer ", b"", b"Bearer\t" + valid.encode(),
        *(b"Bearer " + token.encode() for token in bad if token),
    ]


async def _decisions(values: list[bytes | None]) -> list[tuple[object, object]]:
    verifier, _ = make_verifier(FAKE, SETTINGS)
    sdk = BearerAuthBackend(verifier)
    pairs = []
    for value in values:
        headers = [] if value is None else [(b"authorization", value)]
        ours = await authenticate(verifier, credential(headers))
        theirs = await sdk.authenticate(HTTPConnection({"type": "http", "headers": headers}))
        pairs.append((
            ours.access_token if ours else None,
            theirs[1].access_token if theirs else None,  # (AuthCredentials, AuthenticatedUser)
        ))
    return pairs


def test_the_gate_accepts_and_refuses_what_the_sdk_backend_does():
    values: list[bytes | None] = [None, *_values(FAKE, SETTINGS.resource_url)]
    decisions = anyio.run(_decisions, values)
    for value, (ours, theirs) in zip(values, decisions, strict=True):
        assert ours == theirs, value
    assert decisions[1][0] is not None  # the valid token is accepted by both, not refused by both


header_values = st.one_of(
    st.binary(max_size=120),
    st.builds(lambda scheme, rest: scheme + rest, st.sampled_from([b"Bearer ", b"bearer ", b"BeArEr ", b"Bearer"]),
              st.binary(max_size=80)),
)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(header_values, min_size=1, max_size=8))
def test_fuzzed_authorization_values_get_the_sdk_backends_decision(values: list[bytes]):
    for ours, theirs in anyio.run(_decisions, values):
        assert ours == theirs


def test_one_authorization_header_is_the_credential():
    assert credential([(b"host", b"a"), (b"authorization", b"Bearer x")]) == b"Bearer x"
    assert credential([(b"host", b"a")]) is None


@pytest.mark.parametrize("second", [b"Bearer x", b"Bearer y", b""])
def test_two_authorization_headers_are_refused_whatever_they_hold(second: bytes):
    with pytest.raises(MoreThanOneCredential):
        credential([(b"authorization", b"Bearer x"), (b"accept", b"*/*"), (b"authorization", second)])
