"""Access-token validation: a JWT profile after RFC 9068 and RFC 8725, for Keycloak's tokens.

Each check cites what it enforces. A rejected token yields None (the SDK answers 401, RS10) and
the reason is logged — never the token itself.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from . import request
from .config import Settings
from .jwks import JWKSCache, UnknownKey

log = logging.getLogger(__name__)


# RFC 8725 §3.1: never `none`, never a symmetric algorithm for tokens signed by the AS's key.
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
# RFC 9068 §2.1 header `typ`; Keycloak uses plain "JWT" unless at+jwt is switched on per client.
ACCEPTED_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
# Keycloak's `typ` claim distinguishes access ("Bearer") from ID ("ID") and refresh tokens.
ACCESS_TOKEN_TYP_CLAIM = "Bearer"  # noqa: S105  (a claim value, not a secret)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# Verified tokens remembered so an agent's repeated calls skip signature verification.
CACHE_SIZE = 4096


class TokenRejected(Exception):
    """A token failed a check; the message is the reason (safe to log, no token material)."""


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    scopes: frozenset[str]
    audience: str  # the `aud` value equal to this resource server


class AccessTokenVerifier(TokenVerifier):
    def __init__(self, settings: Settings, keys: JWKSCache, *, clock: Callable[[], float] = time.time) -> None:
        forbidden = FORBIDDEN_ALGORITHMS & set(settings.algorithms)
        if forbidden:
            raise ValueError(f"refusing to accept tokens signed with {sorted(forbidden)}")
        self._settings = settings
        self.keys = keys
        self._algorithms = list(settings.algorithms)
        self._clock = clock
        # digest of the token -> (keys generation, result). Only successes are cached; expiry is
        # re-checked on every hit, and a change of the key set (rotation) empties it.
        self._verified: OrderedDict[bytes, tuple[int, Verified]] = OrderedDict()

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            verified = await self.verify(token)
        except TokenRejected as exc:
            request.record_rejection(str(exc))
            log.info("token rejected: %s", exc)
            return None
        claims = verified.claims
        return AccessToken(
            token=token,
            client_id=str(claims.get("azp") or claims.get("client_id") or ""),
            scopes=sorted(verified.scopes),
            expires_at=int(claims["exp"]),
            # The `aud` entry that matched, so the SDK's own resource check tests the token itself.
            resource=verified.audience,
            subject=str(claims["sub"]),
            claims=claims,
        )

    async def verify(self, token: str) -> Verified:
        s = self._settings
        if len(token) > s.max_token_bytes:
            raise TokenRejected(f"token larger than {s.max_token_bytes} bytes")
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(digest)
        if hit is not None and hit[0] == self.keys.generation:
            if hit[1].claims["exp"] <= self._clock():
                del self._verified[digest]
                raise TokenRejected("expired")
            self._verified.move_to_end(digest)
            return hit[1]
        verified = await self._verify_uncached(token)
        self._verified[digest] = (self.keys.generation, verified)
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified

    async def _verify_uncached(self, token: str) -> Verified:
        s = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenRejected("not a JWS compact token") from None

        alg = header.get("alg")
        # RFC 8725 §3.1: the algorithm comes from our allow-list, never from the token alone.
        if alg not in self._algorithms:
            raise TokenRejected(f"algorithm {alg!r} not allowed")
        typ = header.get("typ")
        if typ is not None and str(typ).lower() not in ACCEPTED_HEADER_TYPES:
            raise TokenRejected(f"header typ {typ!r} is not an access token type")  # RFC 9068 §4
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("no kid in header")
        try:
            key = await self.keys.get(kid)
        except UnknownKey:
            raise TokenRejected("signing key unknown to the authorization server") from None

        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                # RS9/RS12, RFC 8707 §2: the audience must be this resource server.
                audience=s.resource_url,
                # RFC 9068 §4: the issuer must match exactly.
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "verify_iat": True, "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("not yet valid (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("audience is not this resource server") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("issuer is not the configured authorization server") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"missing claim {exc.claim!r}") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"invalid token: {type(exc).__name__}") from None

        # RFC 7519 §4.1.4: exp is exact — the leeway is for nbf/iat skew only, and the SDK's bearer
        # check (which ends streams, see authorization.py) stops accepting the token at exp too.
        if claims["exp"] <= self._clock():
            raise TokenRejected("expired")
        # Keycloak marks ID tokens typ=ID and refresh tokens typ=Refresh; only access tokens pass.
        if claims.get("typ", ACCESS_TOKEN_TYP_CLAIM) != ACCESS_TOKEN_TYP_CLAIM:
            raise TokenRejected(f"token typ {claims.get('typ')!r} is not an access token")
        granted = str(claims.get("scope", "")).split()
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        (audience,) = {a for a in audiences if a == s.resource_url}  # PyJWT guaranteed one matches
        return Verified(claims=claims, scopes=s.scope_policy.expand(granted), audience=audience)
