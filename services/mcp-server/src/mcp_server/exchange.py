"""RFC 8693 token exchange: a token for a downstream API, on behalf of the calling user.

MCP forbids passing the token a client sent to this server on to another API (the token-passthrough
rule, RS13): that token's audience is this server. To call an API as the user, this server asks
the authorization server for a new token — the user's token as `subject_token`, the API as
`audience`, only the scope the tool needs as `scope` — authenticated as its own confidential client
(`private_key_jwt`, client_auth.py). Keycloak's standard token exchange ("V2") issues it only if
this server's client may exchange (a client attribute), this server is in the subject token's
`aud`, the scope is one of its client's scopes, and the user holds the role that grants it.

- Exchanged tokens are cached per (SHA-256 of the subject token, audience, scope) — never the
  token itself as a key — until `margin` seconds before they expire, and never past the subject
  token's own `exp`. Bounded (least recently used out). No refresh token is asked for (the
  default `requested_token_type` is an access token) and any that came is dropped.
- `Refused`: the authorization server answered and said no (the user lacks the permission, the
  scope is not allowed, the subject token is no longer valid). The tool tells the caller.
- `Unavailable`: no usable answer (unreachable, slow past `timeout`, an error status, this
  server's own client refused, an answer that is not a token). The tool says try again later.
  A failed connection, a 502/503/504 or no answer within half the `timeout` is retried once
  first, within the same `timeout`: with several AS nodes behind a load balancer, the second
  attempt reaches a node that works.
Neither message, nor any log line, holds a token.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp.server.auth.provider import AccessToken

from .client_auth import ClientKeyError, PrivateKeyJWT
from .discovery import AuthorizationServerMetadata

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105  (RFC 8693 §3: a URN, not a secret)
CACHE_SIZE = 1024
# RFC 6749 §5.2 error codes that mean "this server's own client is the problem": configuration,
# not the user. Anything else in a 400 is the AS refusing this exchange for this user.
CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
# Answers of a load balancer or AS node in trouble (no node, node stopping, node timed out): worth
# one more attempt, which may reach another node. A 500 is the AS's own error: not retried.
RETRY_STATUSES = frozenset({502, 503, 504})


class Refused(Exception):
    """The AS refused the exchange; the message is its reason (no token material)."""


class Unavailable(Exception):
    """No usable answer from the AS; the message is the cause (no token material)."""


class SenderConstrained(Exception):
    """The caller's token is sender-constrained (DPoP, `cnf`): Keycloak's standard token exchange
    refuses such a subject token from any client but the one it was issued to (checked before
    audience and permissions, whatever proof comes with it; keycloak#51205). Not asked at all."""


@dataclass(frozen=True)
class Exchanged:
    token: str = field(repr=False)
    reuse_until: float
    scopes: frozenset[str]


class TokenExchange:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        client: PrivateKeyJWT,
        metadata: AuthorizationServerMetadata,
        endpoint: str | None,
        timeout: float,
        margin: float = 30.0,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._client = client
        self._metadata = metadata
        self._endpoint = endpoint
        self._timeout = timeout
        self._margin = margin
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[tuple[bytes, str, str], Exchanged] = OrderedDict()
        self.exchanges = 0  # requests that reached the AS (the tests and the benchmark count them)

    @property
    def cached(self) -> int:
        return len(self._cache)

    async def token_for(self, subject: AccessToken, *, audience: str, scope: str) -> str:
        """An access token for `audience` with `scope`, on behalf of `subject`'s user."""
        if (subject.claims or {}).get("cnf") is not None:
            raise SenderConstrained("the caller's token is DPoP-bound")
        key = (hashlib.sha256(subject.token.encode()).digest(), audience, scope)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit.reuse_until > now:
            self._cache.move_to_end(key)
            return hit.token
        self._cache.pop(key, None)
        exchanged = await self._exchange(subject, audience=audience, scope=scope, now=now)
        if exchanged.reuse_until > now:
            self._cache[key] = exchanged
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return exchanged.token

    async def _exchange(self, subject: AccessToken, *, audience: str, scope: str, now: float) -> Exchanged:
        form = {
            "grant_type": GRANT_TYPE,
            "subject_token": subject.token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            # An access token, never a refresh token: the exchange is repeated when it expires.
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
            # Only what the tool needs (least privilege), never the subject token's scopes.
            "scope": scope,
        }
        try:
            # One deadline for the metadata lookup and every attempt: a slow AS is a tool error, not a hang.
            with anyio.fail_after(self._timeout):
                endpoint = self._endpoint or await self._metadata.endpoint("token_endpoint")
                # The first attempt may use half the deadline: a node that is stopping, or just
                # started and still cold, can take seconds to answer, and the second attempt must
                # have time left to reach another one.
                response = await self._post(endpoint, form, budget=self._timeout / 2)
                if response is None or response.status_code in RETRY_STATUSES:
                    # One retry: behind a load balancer with several AS nodes (TOPOLOGY=ha, the AWS
                    # template) a node that is stopping or cold may drop the connection, answer
                    # 502/503 or be slow while the others are fine, and the next request goes to
                    # another node. Asking again at worst has a second token issued, never used
                    # (with a new client assertion: the AS takes each assertion's jti once, RFC 7523 §3).
                    log.info("token exchange attempt failed (%s); retrying once",
                             "no answer" if response is None else f"HTTP {response.status_code}")
                    response = await self._post(endpoint, form, budget=self._timeout, last=True)
        except TimeoutError:
            raise _unavailable(f"no answer within {self._timeout:g} s") from None
        except ClientKeyError as exc:
            raise _unavailable(f"this server's client key: {exc}") from None
        except Exception as exc:  # whatever went wrong; the cause without a traceback
            raise _unavailable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        assert response is not None
        answer = _json(response)
        if response.status_code != 200:
            return _refusal(response.status_code, answer)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token:
            raise _unavailable("the answer holds no access_token")
        # RFC 8693 §2.2.1: issued_token_type is required; an access token is what was asked for.
        if answer.get("issued_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise _unavailable("the answer's issued_token_type is not an access token")
        if str(answer.get("token_type", "")).lower() != "bearer":
            raise _unavailable("the answer's token_type is not Bearer")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not math.isfinite(expires_in) \
                or expires_in <= 0:
            raise _unavailable("the answer has no positive expires_in")
        # RFC 8693 §2.2.1: `scope` may be left out only if it is what was requested.
        granted = frozenset(str(answer.get("scope", scope)).split())
        if scope not in granted:
            raise Refused(f"the token it issued lacks the scope {scope}")
        reuse_until = min(now + float(expires_in) - self._margin, float(subject.expires_at or math.inf))
        return Exchanged(token=token, reuse_until=reuse_until, scopes=granted)


    async def _post(self, endpoint: str, form: dict[str, str], *, budget: float,
                    last: bool = False) -> httpx2.Response | None:
        """One attempt with a fresh client assertion; None if the connection failed or no answer
        came within `budget` seconds (raised instead on the `last` attempt)."""
        attempt = {**form, **self._client.form_fields()}
        self.exchanges += 1
        if last:  # bounded by the caller's deadline
            return await self._http.post(endpoint, data=attempt, headers={"accept": "application/json"},
                                         timeout=budget)
        with anyio.move_on_after(budget):  # the whole attempt, whatever the transport
            try:
                return await self._http.post(endpoint, data=attempt, headers={"accept": "application/json"},
                                             timeout=budget)
            except httpx2.TransportError:
                return None
        return None


def _json(response: httpx2.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _refusal(status: int, answer: dict[str, Any]) -> Exchanged:
    error = answer.get("error")
    description = answer.get("error_description")
    reason = f"{error}: {description}" if isinstance(error, str) and isinstance(description, str) else str(error or "")
    if status in (400, 403) and isinstance(error, str) and error not in CLIENT_ERRORS:
        # RFC 6749 §5.2 / RFC 8693 §2.2.2: the AS said no to this exchange (the user's permission,
        # the scope, the subject token).
        log.info("token exchange refused: %s", reason)
        raise Refused(reason)
    hint = " (this server's client authentication or its token-exchange permission was refused)" \
        if status in (400, 401) else ""
    raise _unavailable(f"HTTP {status}{' ' + reason if reason else ''}{hint}")


def _unavailable(cause: str) -> Unavailable:
    log.warning("token exchange failed: %s", cause)
    return Unavailable(cause)
