"""RFC 6750 bearer authentication: the request's one credential, verified.

The SDK authenticates with three ASGI layers (Starlette's `AuthenticationMiddleware` running the
SDK's `BearerAuthBackend`, then `AuthContextMiddleware`). The scope gate (authorization.py) has to
sit between authentication and the transport, so it authenticates itself, with this function —
the SDK backend's decision, made in one call from the ASGI headers (no `Request` object, no header
decoding of the whole request) — and then hands the request to the SDK's `AuthContextMiddleware`,
which makes the token available to the tools (`get_access_token()`).

`test_bearer.py` holds this to the SDK: for the same Authorization values and tokens, the SDK's
`BearerAuthBackend` and `authenticate` accept and refuse the same requests, and the SDK still
builds its bearer authentication from the same pieces. If the SDK changes either, that test fails
and says what to port.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from operator import itemgetter

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import TokenVerifier

AUTHORIZATION = b"authorization"  # ASGI header names are lowercase


class MoreThanOneCredential(Exception):
    """The request carries more than one Authorization header."""


def credential(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The request's Authorization header value; None without one.

    RFC 6750 §2.1 (one method, one token) and RFC 9110 §5.3 (a field that is not a list, such as
    Authorization, appears once): with two, the SDK would take the first while a proxy or a log
    might read another — which one counts is not for the server to guess (MoreThanOneCredential)."""
    headers = list(headers)
    # Counted and looked up by built-ins: this runs on every request.
    if list(map(itemgetter(0), headers)).count(AUTHORIZATION) > 1:
        raise MoreThanOneCredential
    return dict(headers).get(AUTHORIZATION)


async def authenticate(verifier: TokenVerifier, authorization: bytes | None) -> AuthenticatedUser | None:
    """The caller, if `authorization` is `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1)
    and the verifier accepts the token; else None (the gate answers 401, RS10)."""
    if authorization is None or authorization[:7].lower() != b"bearer ":
        return None
    access = await verifier.verify_token(authorization[7:].decode("latin-1"))
    if access is None:
        return None
    # The SDK backend's own expiry check, kept: our verifier already refuses a token at its `exp`
    # on every call, cached or not (verifier.py), but another TokenVerifier might not.
    if access.expires_at and access.expires_at < int(time.time()):
        return None
    return AuthenticatedUser(access)
