"""Access-token validation: a JWT profile after RFC 9068 and RFC 8725, for Keycloak's tokens and
those of other authorization servers (the scope claim, the audience and the algorithms are settings).

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

import httpx2
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from . import request
from .config import Settings
from .discovery import AuthorizationServerMetadata
from .jwks import JWKSCache, SigningKey, UnknownKey
from .scopes import SCOPE_TOKEN

log = logging.getLogger(__name__)


# RFC 8725 §3.1: never `none`, never a symmetric algorithm for tokens signed by the AS's key.
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
# RFC 9068 §2.1 header `typ`; Keycloak uses plain "JWT" unless at+jwt is switched on per client.
ACCEPTED_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
# Keycloak's `typ` claim distinguishes access ("Bearer") from ID ("ID") and refresh tokens.
ACCESS_TOKEN_TYP_CLAIM = "Bearer"  # noqa: S105  (a claim value, not a secret)
# A DPoP-bound access token (RFC 9449) is typ "DPoP" at Keycloak; it must carry its binding.
DPOP_TOKEN_TYP_CLAIM = "DPoP"  # noqa: S105  (a claim value, not a secret)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# Claims this server reads besides those PyJWT checks and the scope claim: each, when present,
# must be a string.
STRING_CLAIMS = ("azp", "client_id", "cid", "preferred_username")
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


def verifier_for(settings: Settings, http: httpx2.AsyncClient,
                 metadata: AuthorizationServerMetadata | None = None) -> AccessTokenVerifier:
    """The verifier and its key cache as `settings` say, fetching through `http` (the JWKS URL from
    `metadata`, the AS's discovery document, unless MCP_JWKS_URL names it). Both resource servers
    of the stack, the MCP server and the notes API, build theirs here."""
    keys = JWKSCache(
        http,
        issuer=settings.issuer,
        jwks_url=settings.jwks_url,
        algorithms=settings.algorithms,
        min_refresh=settings.jwks_min_refresh_seconds,
        max_age=settings.jwks_max_age_seconds,
        unknown_kid_wait=settings.jwks_unknown_kid_wait_seconds,
        metadata=metadata or AuthorizationServerMetadata(http, settings.issuer),
    )
    return AccessTokenVerifier(settings, keys)


class AccessTokenVerifier(TokenVerifier):
    def __init__(self, settings: Settings, keys: JWKSCache, *, clock: Callable[[], float] = time.time) -> None:
        forbidden = FORBIDDEN_ALGORITHMS & set(settings.algorithms)
        if forbidden:
            raise ValueError(f"refusing to accept tokens signed with {sorted(forbidden)}")
        self._settings = settings
        self.keys = keys
        self._algorithms = list(settings.algorithms)
        self._clock = clock
        # digest of the token -> (the key that verified it, result). Only successes are cached;
        # expiry is re-checked on every hit, and what a withdrawn key verified is dropped.
        self._verified: OrderedDict[bytes, tuple[SigningKey, Verified]] = OrderedDict()
        self._generation = keys.generation  # of the key set the cache was last swept against

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
        if hit is not None:
            # A remembered token uses its key as much as a new one: past the JWKS max age this
            # starts the refresh that notices a withdrawn key (jwks.py), whose tokens are dropped.
            await self.keys.freshen()
            if self._generation != self.keys.generation:
                self._drop_withdrawn()
                hit = self._verified.get(digest)
        if hit is not None:
            # RFC 7519 §4.1.4, strictly (as below): not at `exp`, and no leeway.
            if hit[1].claims["exp"] <= self._clock():
                del self._verified[digest]
                raise TokenRejected("expired")
            self._verified.move_to_end(digest)
            return hit[1]
        key, verified = await self._verify_uncached(token)
        self._verified[digest] = (key, verified)
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified

    def _drop_withdrawn(self) -> None:
        """Forget every token verified by a key the AS no longer publishes (or replaced)."""
        self._generation = self.keys.generation
        withdrawn = [d for d, (key, _) in self._verified.items() if self.keys.current(key.kid) is not key]
        for digest in withdrawn:
            del self._verified[digest]
        if withdrawn:
            log.info("dropped %d verified tokens of withdrawn signing keys", len(withdrawn))

    async def _verify_uncached(self, token: str) -> tuple[SigningKey, Verified]:
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
            signing_key = await self.keys.get(kid)
        except UnknownKey:
            raise TokenRejected("signing key unknown to the authorization server") from None
        # RFC 7517 §4.4, RFC 8725 §3.1: the key must be for this algorithm (its JWK `alg`, or its
        # key type when the AS publishes none), not only the algorithm be on the allow-list.
        key = signing_key.for_algorithm(alg)
        if key is None:
            raise TokenRejected(f"signing key {_shown(kid)} is not for algorithm {_shown(alg)}")

        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                # RS9/RS12, RFC 8707 §2: the audience must be this resource server (its URL, or
                # the identifier the AS knows it by: MCP_AUDIENCE).
                audience=s.expected_audience,
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
        if typ_claim not in (ACCESS_TOKEN_TYP_CLAIM, DPOP_TOKEN_TYP_CLAIM):
            raise TokenRejected(f"token typ {_shown(typ_claim)} is not an access token")
        # Checked with its proof by the gate (dpop.py); without `cnf` it would pass as a bearer token.
        if typ_claim == DPOP_TOKEN_TYP_CLAIM and "cnf" not in claims:
            raise TokenRejected("token typ 'DPoP' carries no cnf binding")
        # The other claims this server reads (the AccessToken, audit, whoami) must be strings.
        for name in STRING_CLAIMS:
            if name in claims and not isinstance(claims[name], str):
                raise TokenRejected(f"claim {name!r} is not a string")
        granted = _scopes(claims, s.scope_claim)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        (audience,) = {a for a in audiences if a == s.expected_audience}  # PyJWT guaranteed one matches
        scopes = s.scope_policy.expand(granted)
        access = AccessToken(
            token=token,
            # RFC 9068 §2.2 `client_id`; Keycloak, Auth0 and Entra ID name the client `azp`, Okta `cid`.
            client_id=str(claims.get("azp") or claims.get("client_id") or claims.get("cid") or ""),
            scopes=sorted(scopes),
            expires_at=int(claims["exp"]),
            # The `aud` entry that matched, so the SDK's own resource check tests the token itself.
            resource=audience,
            subject=str(claims["sub"]),
            claims=claims,
        )
        return signing_key, Verified(claims=claims, scopes=scopes, audience=audience, access=access)


def _scopes(claims: dict[str, Any], name: str) -> list[str]:
    """The scopes granted, from the configured claim (MCP_SCOPE_CLAIM): a space-separated string
    (RFC 9068 §2.2.3 `scope`; Entra ID's `scp`) or a list of scope tokens (Okta's `scp`). Anything
    else is refused, never stringified: a list of non-strings, or an entry that is not one scope
    (RFC 6749 §3.3), could smuggle in a scope nobody granted."""
    value = claims.get(name, "")
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) and SCOPE_TOKEN.fullmatch(v) for v in value):
        return list(value)
    raise TokenRejected(f"claim {name!r} is neither a space-separated string nor a list of scopes")


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
