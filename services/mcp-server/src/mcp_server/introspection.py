"""RFC 7662 token introspection before privileged tools: is this token still active?

A JWT access token verifies locally until its `exp`, even after the user signed out or an admin
revoked the session; only the authorization server knows. So a tool declared privileged
(tools.py) runs only after the AS confirms the token is active. Ordinary tools keep local
validation only: no network on their path.

- The request (§2.1) is authenticated as this server's own confidential client, `private_key_jwt`
  (client_auth.py); the endpoint is MCP_INTROSPECTION_URL or the AS metadata's
  `introspection_endpoint` (RFC 8414).
- `active: false` (§2.2) -> `Inactive`: the gate answers 401 invalid_token.
- No usable answer — the AS unreachable, slow, an error status, no boolean `active`, or an answer
  about another token (its `sub` or `client_id` not the token's) -> `Unavailable`: the gate
  refuses (503). Fail closed: a privileged tool never runs on a guess.
- Answers are cached per token digest (SHA-256, never the token) for `cache_seconds`, and never
  past the token's `exp`: revocation reaches privileged tools within that bound, and an agent's
  burst of calls costs one round trip. Inactive answers are cached the same way (a revoked token
  does not become active again). Failures are not cached.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx2
from mcp.server.auth.provider import AccessToken

from .client_auth import PrivateKeyJWT
from .discovery import AuthorizationServerMetadata

log = logging.getLogger(__name__)

INACTIVE = "no longer active at the authorization server (revoked or signed out)"
CACHE_SIZE = 4096


class Inactive(Exception):
    """The AS says the token is not active (RFC 7662 §2.2)."""


class Unavailable(Exception):
    """No usable answer from the AS; the message is the cause (safe to log, no token material)."""


class Introspection:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        client: PrivateKeyJWT,
        metadata: AuthorizationServerMetadata,
        endpoint: str | None,
        cache_seconds: float,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._client = client
        self._metadata = metadata
        self._endpoint = endpoint
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._clock = clock
        # digest of the token -> (reuse until, active)
        self._answers: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()

    async def check(self, token: AccessToken) -> None:
        """Return if the token is active at the AS; raise Inactive or Unavailable otherwise."""
        digest = hashlib.sha256(token.token.encode()).digest()
        now = self._clock()
        hit = self._answers.get(digest)
        if hit is not None and hit[0] > now:
            active = hit[1]
        else:
            self._answers.pop(digest, None)
            active = await self._ask(token)
            until = min(now + self._cache_seconds, token.expires_at or now)
            if until > now:
                self._answers[digest] = (until, active)
                if len(self._answers) > CACHE_SIZE:
                    self._answers.popitem(last=False)
        if not active:
            raise Inactive(INACTIVE)

    async def _ask(self, token: AccessToken) -> bool:
        try:
            endpoint = self._endpoint or await self._metadata.endpoint("introspection_endpoint")
            response = await self._http.post(
                endpoint,
                data={"token": token.token, "token_type_hint": "access_token", **self._client.form_fields()},
                headers={"accept": "application/json"},
                timeout=self._timeout,
            )
        except Exception as exc:  # fail closed whatever went wrong; the cause without a traceback
            raise _unavailable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        if response.status_code != 200:
            hint = " (this server's client authentication was refused: MCP_CLIENT_ID, its key)" \
                if response.status_code in (400, 401) else ""
            raise _unavailable(f"HTTP {response.status_code}{hint}")
        try:
            answer = response.json()
        except ValueError:
            raise _unavailable("answer is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise _unavailable("answer has no boolean `active`")
        if answer["active"]:
            _about_this_token(answer, token)
        else:
            log.info("token no longer active at the authorization server", extra={"subject": token.subject})
        return bool(answer["active"])


def _about_this_token(answer: dict[str, Any], token: AccessToken) -> None:
    """The answer must describe the token we sent (RFC 7662 §2.2 `sub`, `client_id`): anything
    else (a misrouted or replayed response) is no answer at all."""
    for claim, expected in (("sub", token.subject), ("client_id", token.client_id or None)):
        if answer.get(claim) != expected:
            raise _unavailable(f"answer's {claim} is not the token's")


def _unavailable(cause: str) -> Unavailable:
    log.warning("token introspection failed, privileged call refused: %s", cause)
    return Unavailable(cause)
