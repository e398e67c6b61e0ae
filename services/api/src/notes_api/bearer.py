"""RFC 6750 bearer authentication and scope checks for the notes API, with the MCP server's code.

The token is verified by the MCP server's verifier (mcp_server.verifier.AccessTokenVerifier, same
checks, same key cache), configured with this API's audience (config.verifier_settings); the
one-credential rule is mcp_server.bearer's, the challenges mcp_server.challenge's. What is this
API's own:

- Sole audience. The token's `aud` must be this API and nothing else. A token that also names
  the MCP server could be one the MCP server received and passed on, which MCP forbids (its
  token-passthrough rule, RS13 in docs/requirements.md): only a token the MCP server obtained for
  this API by token exchange (RFC 8693, audience-restricted to it) is accepted.
- Per-route scopes: 403 insufficient_scope naming the scope (RFC 6750 §3.1).

`Caller` is what the API saw of a token: non-secret claims only, logged on every request and
echoed to the caller (the tests read it to prove what reached the API). Never the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mcp_server import bearer, challenge
from mcp_server.verifier import AccessTokenVerifier, TokenRejected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    subject: str
    claims: dict[str, Any]
    scopes: frozenset[str]

    def seen(self) -> dict[str, Any]:
        """The claims worth showing: who (sub, username), for whom (aud), by whom (azp, act), what (scope)."""
        aud = self.claims.get("aud")
        return {
            "sub": self.subject,
            "preferred_username": self.claims.get("preferred_username"),
            "aud": aud if isinstance(aud, list) else [aud],
            "azp": self.claims.get("azp"),
            "scope": sorted(self.scopes),
            **({"act": self.claims["act"]} if isinstance(self.claims.get("act"), dict) else {}),
        }


class Refusal(Exception):
    """A request refused before it reaches a route: the answer to send."""

    def __init__(self, response: Response, reason: str) -> None:
        super().__init__(reason)
        self.response = response


class Guard:
    def __init__(self, verifier: AccessTokenVerifier, *, audience: str, metadata_url: str) -> None:
        self._verifier = verifier
        self._audience = audience
        self._metadata_url = metadata_url

    def _challenge(self, status: int, *, error: str | None, description: str | None,
                   scope: str | None = None) -> Refusal:
        status, headers, body = challenge.response(status, resource_metadata=self._metadata_url, scope=scope,
                                                   error=error, description=description)
        response = Response(body, status_code=status,
                            headers={k.decode(): v.decode() for k, v in headers if k != b"content-length"})
        return Refusal(response, description or "no credentials")

    async def caller(self, request: Request, needed: str) -> Caller:
        """The verified caller holding `needed`; Refusal (the 400/401/403 to send) otherwise."""
        try:
            authorization = bearer.credential(request.scope["headers"])
        except bearer.MoreThanOneCredential:
            raise self._challenge(400, error="invalid_request", description="more than one Authorization header") from None
        # RFC 6750 §2.1: the header, scheme case-insensitive; §3.1: no error code without credentials.
        if authorization is None or authorization[:7].lower() != b"bearer ":
            raise self._challenge(401, error=None, description=None, scope=needed)
        try:
            verified = await self._verifier.verify(authorization[7:].decode("latin-1"))
        except TokenRejected as exc:
            raise self._challenge(401, error="invalid_token", description=f"Token rejected: {exc}", scope=needed) from None
        audiences = verified.claims["aud"] if isinstance(verified.claims["aud"], list) else [verified.claims["aud"]]
        others = sorted({a for a in audiences if a != self._audience}, key=str)
        if others:
            # RS13 (no token passthrough): a token valid elsewhere too is not a token made for this API.
            raise self._challenge(401, error="invalid_token", scope=needed,
                                  description=f"Token rejected: its audience also names {', '.join(map(str, others))}; "
                                              "this API accepts only tokens issued for it alone (token exchange)")
        caller = Caller(subject=str(verified.claims["sub"]), claims=verified.claims, scopes=verified.scopes)
        if needed not in caller.scopes:
            raise self._challenge(403, error="insufficient_scope", scope=needed,
                                  description=f"this call needs the scope {needed}")
        return caller
