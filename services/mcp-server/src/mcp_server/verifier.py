"""Access-token validation: a JWT profile after RFC 9068 and RFC 8725, for Keycloak's tokens.

Each check cites what it enforces. A rejected token yields None (the SDK answers 401, RS10) and
the reason is logged — never the token itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
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
# Claims this server reads besides those PyJWT checks: each, when present, must be a string.
STRING_CLAIMS = ("scope", "azp", "client_id", "preferred_username")
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")  # RFC 7515 §2: base64url, no padding
JSON_TYPES = {str: "string", bool: "boolean", int: "number", float: "number", list: "array", dict: "object",
              type(None): "null"}
# Verified tokens remembered so an agent's repeated calls skip signature verification.
CACHE_SIZE = 4096


class TokenRejected(Exception):
    """A token failed a check; the message is the reason (safe to log, no token material)."""


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    scopes: frozenset[str]
    audience: str  # the `aud` value equal to this resource server
    # What the SDK is handed, built once per token: a cache hit returns it as is (read-only).
    access: AccessToken


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
        except Exception:
            # `verify` raises nothing but TokenRejected (the fuzz test in test_verifier.py holds it to
            # that). Should a bug slip through anyway, the token is refused (401) and logged with its
            # traceback: an exception here would be a 500 from the SDK's middleware, after which
            # uvicorn closes the keep-alive connection a proxy then reuses for other callers (502s).
            log.exception("token verification failed unexpectedly; refused")
            request.record_rejection("could not be verified")
            return None
        return verified.access

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
        header = _jose_header(token)

        alg = header.get("alg")
        if not isinstance(alg, str):
            raise TokenRejected("header alg missing or not a string")
        # RFC 8725 §3.1: the algorithm comes from our allow-list, never from the token alone.
        if alg not in self._algorithms:
            raise TokenRejected(f"algorithm {_shown(alg)} not allowed")
        # RFC 7515 §4.1.11: a recipient must reject a JWS whose `crit` names an extension it does
        # not understand. This server understands none (Keycloak never sends `crit`), so any
        # `crit` — even `b64`, which PyJWT would accept — refuses the token.
        if "crit" in header:
            raise TokenRejected("header crit names extensions this server does not understand (RFC 7515, 4.1.11)")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_HEADER_TYPES):
            raise TokenRejected(f"header typ {_shown(typ)} is not an access token type")  # RFC 9068 §4
        kid = header.get("kid")
        if kid is None:
            raise TokenRejected("no kid in header")
        if not isinstance(kid, str):
            raise TokenRejected("header kid is not a string")  # RFC 7515 §4.1.4
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
                # The times are checked below, by type first and on this verifier's clock.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        # PyJWT's exception classes nest (InvalidSignatureError is a DecodeError): specific first.
        except jwt.InvalidSignatureError:
            raise TokenRejected("signature does not verify") from None
        except jwt.DecodeError:
            # The header parsed (above), so the payload or signature segment is not base64url, or
            # the payload is not a JSON object (RFC 7519 §7.2).
            raise TokenRejected("malformed payload or signature: claims must be a base64url JSON object") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("audience is not this resource server") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("issuer is not the configured authorization server") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"missing claim {exc.claim!r}") from None
        except jwt.exceptions.InvalidSubjectError:
            raise TokenRejected("claim 'sub' is not a string") from None  # RFC 7519 §4.1.2
        except jwt.exceptions.InvalidJTIError:
            raise TokenRejected("claim 'jti' is not a string") from None  # RFC 7519 §4.1.7
        except jwt.PyJWTError as exc:  # every other refusal PyJWT has, by its class name
            raise TokenRejected(f"invalid token: {type(exc).__name__}") from None

        now = self._clock()
        # RFC 7519 §4.1.4: exp is exact — the leeway is for nbf/iat skew only, and the SDK's bearer
        # check stops accepting the token at exp too.
        if _numeric_date(claims, "exp") <= now:
            raise TokenRejected("expired")
        for name in ("nbf", "iat"):  # RFC 7519 §4.1.5, §4.1.6
            if name in claims and _numeric_date(claims, name) > now + s.leeway_seconds:
                raise TokenRejected("not yet valid (nbf/iat in the future)")
        # Keycloak marks ID tokens typ=ID and refresh tokens typ=Refresh; only access tokens pass.
        typ_claim = claims.get("typ", ACCESS_TOKEN_TYP_CLAIM)
        if typ_claim != ACCESS_TOKEN_TYP_CLAIM:
            raise TokenRejected(f"token typ {_shown(typ_claim)} is not an access token")
        # The other claims this server reads (the AccessToken, audit, whoami) must be strings:
        # `scope` is a space-separated string (RFC 9068 §2.2.3, RFC 8693 §4.2), not a list.
        for name in STRING_CLAIMS:
            if name in claims and not isinstance(claims[name], str):
                raise TokenRejected(f"claim {name!r} is not a string")
        granted = claims.get("scope", "").split()
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        (audience,) = {a for a in audiences if a == s.resource_url}  # PyJWT guaranteed one matches
        scopes = s.scope_policy.expand(granted)
        access = AccessToken(
            token=token,
            client_id=str(claims.get("azp") or claims.get("client_id") or ""),
            scopes=sorted(scopes),
            expires_at=int(claims["exp"]),
            # The `aud` entry that matched, so the SDK's own resource check tests the token itself.
            resource=audience,
            subject=str(claims["sub"]),
            claims=claims,
        )
        return Verified(claims=claims, scopes=scopes, audience=audience, access=access)


def _jose_header(token: str) -> dict[str, Any]:
    """The JOSE header, decoded but not yet trusted (RFC 7515 §7.1: three base64url segments,
    the first a JSON object). Read here rather than by PyJWT, whose header checks raise before
    ours could name the member at fault."""
    segments = token.split(".")
    if len(segments) != 3 or not BASE64URL.fullmatch(segments[0]):
        raise TokenRejected("not a JWS compact token")
    try:
        header = json.loads(base64.urlsafe_b64decode(segments[0] + "=" * (-len(segments[0]) % 4)))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise TokenRejected("not a JWS compact token") from None
    if not isinstance(header, dict):
        raise TokenRejected("not a JWS compact token: the JOSE header is not a JSON object")
    return header


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    """RFC 7519 §2: a NumericDate is a JSON number — not a string, a boolean, NaN or ±Infinity
    (which Python's json reads), nor an integer past any float (the expiry becomes a deadline)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"claim {name!r} is not a NumericDate")
    try:
        number = float(value)
    except OverflowError:
        raise TokenRejected(f"claim {name!r} is not a NumericDate") from None
    if not math.isfinite(number):
        raise TokenRejected(f"claim {name!r} is not a NumericDate")
    return number


def _shown(value: Any) -> str:
    """A header or claim value as a refusal may quote it. The reason goes into a response header
    and the log: an attacker's value appears only if short printable ASCII, otherwise its type."""
    if isinstance(value, str) and len(value) <= 40 and value.isascii() and value.isprintable():
        return repr(value)
    return f"(a JSON {JSON_TYPES.get(type(value), 'value')})"
