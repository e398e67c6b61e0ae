"""DPoP proofs (RFC 9449): checking the proof a client sends with a DPoP-bound access token.

A DPoP-bound token names a key in its `cnf.jkt` (the key's RFC 7638 thumbprint); every request
with it carries a `DPoP` header, a JWT signed with that key, which says which request it is for
(`htm`, `htu`), when it was made (`iat`), that it is new (`jti`), and which token it goes with
(`ath`). Someone who copied the token alone cannot make one.

`ProofChecker.check` runs the checks of RFC 9449 §4.3 that concern the proof itself, in its order,
with PyJWT doing the JOSE work (header parsing, the key from the `jwk` header, the signature). What
it returns (`Proof`) is matched against the token by the caller (§7.1: `cnf.jkt` equals
`Proof.thumbprint`), and only then, once the token is known to be good, is `jti` recorded
(`ReplayCache.first_use`): a proof that fails a later check is not remembered, so nobody without
a valid token can fill the replay cache.

What a proof's header decides (`typ`, `alg`, the key and its thumbprint) is the same for every
proof a client makes with one key, so it is checked once per distinct header and remembered
(`ProofChecker.keys`, bounded): the next proof with that header skips parsing the key again, and
still has its signature verified, over that very header, by PyJWT.

Server nonces (§8, §9): `NonceSource` makes nonces any replica can check without shared state —
an HMAC of a time step under a secret the replicas share — so a nonce from one replica is good
at another for the step it was made in and the next.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import jwt
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier

from . import request
from .config import Settings

# RFC 9449 §4.2: the proof's `typ`.
PROOF_TYPE = "dpop+jwt"
# RFC 9449 §4.2: an asymmetric algorithm, never `none` nor a MAC. Offered in the challenge's
# `algs` and PRM's `dpop_signing_alg_values_supported`.
DEFAULT_ALGORITHMS = ("ES256", "ES384", "PS256", "RS256", "EdDSA")
SYMMETRIC = frozenset({"none", "HS256", "HS384", "HS512"})
# RFC 7517/7518: the members that only a private (or symmetric) key has. A `jwk` header holding
# any of them is refused (§4.3 step 7: "does not contain a private key").
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 §3.2: the required members, per key type, that a thumbprint hashes.
THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
DPOP_HEADER = b"dpop"  # ASGI header names are lowercase
MAX_PROOF_BYTES = 8192
MAX_JTI_CHARS = 256
# Distinct proof headers (one per client key and algorithm) whose checks are remembered; least
# recently used first out. A header is at most MAX_PROOF_BYTES, so this bounds memory to ~8 MiB.
KEY_CACHE_SIZE = 1024


class ProofRejected(Exception):
    """The proof failed a check; the message is the reason (safe to log: no key or token material)."""


class NonceRequired(ProofRejected):
    """The proof carries no nonce, or one this server no longer accepts: answer `use_dpop_nonce`
    with a fresh `DPoP-Nonce` (RFC 9449 §9)."""


@dataclass(frozen=True)
class Proof:
    thumbprint: str  # RFC 7638 SHA-256 thumbprint of the proof's key, base64url
    jti: str
    iat: float


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the key's required members as JSON, sorted, without whitespace."""
    members = THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise ProofRejected("the proof's jwk is not an RSA, EC or OKP public key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the token's ASCII bytes (the token comes from
    a header decoded as Latin-1, which gives a valid token's ASCII bytes back)."""
    return b64url(hashlib.sha256(token.encode("latin-1", "replace")).digest())


@lru_cache(maxsize=256)  # the server's own URI and its clients' htu: a few strings, seen on every request
def normalize_uri(uri: str) -> str:
    """RFC 9449 §4.3 step 9, after RFC 3986 §6.2.2-6.2.3: scheme and host compared without case,
    the scheme's default port dropped, an empty path is `/`; query and fragment ignored."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise ProofRejected("htu is not a URI") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        raise ProofRejected("htu is not an http(s) URI")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


class ReplayCache:
    """The `jti`s of accepted proofs, each kept while a proof with it could still be accepted
    (RFC 9449 §11.1). Keyed by the key's thumbprint and `jti`, so one client's choice of `jti`
    cannot block another's proofs. Bounded: when full of live entries, a new proof is refused
    rather than an entry forgotten (forgetting one would let that proof be replayed). Per
    process: with several replicas, a proof replayed to another replica is not caught here —
    docs/resource-server.md says what bounds that."""

    def __init__(self, max_entries: int = 65536, *, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # key -> when it may be forgotten

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, proof: Proof, *, keep_until: float) -> None:
        """Record the proof's `jti`; ProofRejected if it was seen (a replay) or there is no room."""
        self._expire()
        key = hashlib.sha256(f"{proof.thumbprint}\0{proof.jti}".encode()).digest()
        if key in self._seen:
            raise ProofRejected("proof replayed: its jti was already used")
        if len(self._seen) >= self.max_entries:
            raise ProofRejected("too many recent proofs to remember; try again shortly")
        # Callers pass now + a fixed span (ProofChecker.keep_until), so insertion order is expiry order.
        self._seen[key] = keep_until

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            key, until = next(iter(self._seen.items()))
            if until > now:
                break
            del self._seen[key]


class NonceSource:
    """Server-provided nonces (RFC 9449 §9) that need no shared store: base64url(step || MAC),
    the MAC an HMAC-SHA256 of the time step under `secret`. A nonce is accepted in the step it
    was made in and the next one, so it lives between one and two steps."""

    def __init__(self, secret: bytes, *, step_seconds: int = 60, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 32:
            raise ValueError("the DPoP nonce secret must be at least 32 bytes")
        self._secret = secret
        self.step_seconds = step_seconds
        self._clock = clock

    def _make(self, step: int) -> str:
        packed = struct.pack(">Q", step)
        return b64url(packed + hmac.new(self._secret, packed, hashlib.sha256).digest()[:16])

    def current(self) -> str:
        return self._make(int(self._clock() // self.step_seconds))

    def accepts(self, nonce: str) -> bool:
        step = int(self._clock() // self.step_seconds)
        return any(hmac.compare_digest(nonce, self._make(s)) for s in (step, step - 1))


class ProofChecker:
    def __init__(
        self,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        max_age_seconds: float = 60,
        leeway_seconds: float = 5,
        nonces: NonceSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithms = tuple(algorithms)
        if not self.algorithms or SYMMETRIC & set(self.algorithms):
            raise ValueError(f"DPoP proofs need asymmetric algorithms, not {sorted(SYMMETRIC & set(self.algorithms))}")
        self.max_age_seconds = max_age_seconds
        self.leeway_seconds = leeway_seconds
        self.nonces = nonces
        self._clock = clock
        # header segment -> (alg, key, thumbprint), for headers that passed steps 3-5 and 7.
        self.keys: OrderedDict[str, tuple[str, jwt.PyJWK, str]] = OrderedDict()
        self._jws = jwt.PyJWS()

    @property
    def window_seconds(self) -> float:
        """How long an accepted proof's `jti` must be remembered: as long as its `iat` is accepted."""
        return self.max_age_seconds + 2 * self.leeway_seconds

    def check(self, proof: str, *, method: str, uri: str, access_token: str | None) -> Proof:
        """RFC 9449 §4.3 steps 2-12 for one proof (step 1, one `DPoP` header, is the caller's)."""
        if len(proof) > MAX_PROOF_BYTES:
            raise ProofRejected(f"proof larger than {MAX_PROOF_BYTES} bytes")
        alg, key, key_thumbprint = self._key(proof)
        # Step 6: the signature, with that key — PyJWT's JWS layer (the compact form, the header,
        # the signature). Not its JWT layer: the claims a proof has are checked below, on this
        # checker's clock, and PyJWT's generic claim checks would only run a second time over them
        # (a proof is a new JWT on every request, so this is per-call cost; benchmark.md).
        try:
            payload = self._jws.decode_complete(proof, key.key, algorithms=[alg])["payload"]
        except jwt.InvalidSignatureError:
            raise ProofRejected("proof signature does not verify with its jwk") from None
        except jwt.PyJWTError:
            raise ProofRejected("proof is not a well-formed JWT") from None
        try:
            claims = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
            claims = None
        if not isinstance(claims, dict):
            raise ProofRejected("proof payload is not a JSON object")
        # Step 3: the claims every proof has, with their types.
        jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
            raise ProofRejected("proof jti is missing or not a string of 1-256 characters")
        if not isinstance(htm, str) or not isinstance(htu, str):
            raise ProofRejected("proof htm or htu is missing or not a string")
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise ProofRejected("proof iat is missing or not a number")
        # Steps 8-9: this request's method and URI.
        if htm != method:
            raise ProofRejected(f"proof htm {htm!r} is not this request's method")
        if normalize_uri(htu) != normalize_uri(uri):
            raise ProofRejected("proof htu is not this request's URI")
        # Step 10: the server's nonce, when it asks for one.
        if self.nonces is not None:
            nonce = claims.get("nonce")
            if not isinstance(nonce, str) or not self.nonces.accepts(nonce):
                raise NonceRequired("proof nonce is missing or no longer accepted")
        # Step 11: made recently, not in the future.
        now = self._clock()
        if iat > now + self.leeway_seconds:
            raise ProofRejected("proof iat is in the future")
        if iat < now - self.max_age_seconds - self.leeway_seconds:
            raise ProofRejected("proof iat is too old")
        # Step 12: bound to the token it comes with.
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
                raise ProofRejected("proof ath does not match the access token")
        return Proof(thumbprint=key_thumbprint, jti=jti, iat=float(iat))

    def _key(self, proof: str) -> tuple[str, jwt.PyJWK, str]:
        """Steps 2-5 and 7 — what the proof's header alone decides: its algorithm, its key and the
        key's thumbprint. Remembered per header segment (the exact bytes the signature covers, so a
        proof cannot pair a remembered header with anything but itself); only headers that passed."""
        segment = proof.partition(".")[0]
        known = self.keys.get(segment)
        if known is not None:
            self.keys.move_to_end(segment)
            return known
        # Step 2: a well-formed JWT.
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise ProofRejected("proof is not a well-formed JWT") from None
        # Steps 3-5: typ, an allowed asymmetric algorithm, a public key in `jwk`.
        if header.get("typ") != PROOF_TYPE:
            raise ProofRejected(f"proof header typ is not {PROOF_TYPE}")
        if "crit" in header:
            raise ProofRejected("proof header carries crit parameters this server does not understand")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise ProofRejected(f"proof algorithm {alg!r} is not one of {' '.join(self.algorithms)}")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise ProofRejected("proof header has no jwk object")
        if PRIVATE_MEMBERS & jwk.keys():  # step 7
            raise ProofRejected("proof jwk holds private or symmetric key material")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise ProofRejected(f"proof jwk is not a usable {alg} public key") from None
        checked = (alg, key, thumbprint(jwk))
        self.keys[segment] = checked
        if len(self.keys) > KEY_CACHE_SIZE:
            self.keys.popitem(last=False)
        return checked

    def keep_until(self) -> float:
        """When a proof accepted now may be forgotten: its `iat` is at most `leeway` ahead, so it is
        too old to be accepted `window_seconds` from now. The same span for every proof keeps the
        replay cache in expiry order."""
        return self._clock() + self.window_seconds


# --- the resource server's side: a request with `Authorization: DPoP <token>` --------------------


class DPoPRejected(Exception):
    """Why a DPoP request (or a bound token sent as Bearer) is refused: the challenge's `error`
    (RFC 9449 §7.1: `invalid_token`, `invalid_dpop_proof`, `use_dpop_nonce`), the reason, and for
    `use_dpop_nonce` the nonce to send (`DPoP-Nonce`)."""

    def __init__(self, error: str, reason: str, *, nonce: str | None = None, scheme: str = "DPoP") -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.nonce = nonce
        self.scheme = scheme


def proof_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    return [value for name, value in headers if name == DPOP_HEADER]


def binding(access: AccessToken) -> str | None:
    """The thumbprint a token is bound to (`cnf.jkt`, RFC 9449 §6.1); None for an unbound token.
    A `cnf` this server cannot check (another confirmation method, a malformed one) is refused:
    the token is bound to something, and accepting it without the check would drop the binding."""
    cnf = (access.claims or {}).get("cnf")
    if cnf is None:
        return None
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jkt"), str) or not cnf["jkt"]:
        raise DPoPRejected("invalid_token", "token carries a cnf confirmation this server cannot check",
                           scheme="Bearer")
    return str(cnf["jkt"])


class ProofOfPossession:
    """The DPoP mode of the server (MCP_DPOP) and what a DPoP request needs checked."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.mode = settings.dpop
        nonces = None
        if settings.dpop_nonce_secret_file is not None:
            nonces = NonceSource(settings.dpop_nonce_secret_file.read_bytes().strip(), clock=clock)
        self.checker = ProofChecker(algorithms=settings.dpop_algorithms, max_age_seconds=settings.dpop_proof_max_age_seconds,
                                    leeway_seconds=settings.leeway_seconds, nonces=nonces, clock=clock)
        self.replay = ReplayCache(settings.dpop_replay_cache_size, clock=clock)
        # htu (§4.3 step 9): the MCP endpoint as clients address it, not as the proxy forwards it.
        self.uri = settings.resource_url
        self.algs = " ".join(settings.dpop_algorithms)

    def accepts(self, authorization: bytes) -> bool:
        """Whether the request uses the DPoP scheme (case-insensitive) and this server takes it."""
        return self.mode != "off" and authorization[:5].lower() == b"dpop "

    async def authenticate(self, verifier: TokenVerifier, authorization: bytes, proofs: list[bytes],
                           method: str) -> AuthenticatedUser:
        """RFC 9449 §7.1: the token (as any bearer token), then its one proof, bound to it."""
        if len(proofs) != 1:
            raise DPoPRejected("invalid_dpop_proof", "no DPoP proof header" if not proofs
                               else "more than one DPoP proof header")
        token = authorization[5:].decode("latin-1").strip(" ")
        access = await verifier.verify_token(token)
        if access is None or (access.expires_at and access.expires_at < int(time.time())):
            raise DPoPRejected("invalid_token", f"Token rejected: {request.rejection() or 'expired'}")
        jkt = binding(access)
        if jkt is None:
            raise DPoPRejected("invalid_token", "token is not DPoP-bound (no cnf.jkt): send it as a Bearer token")
        try:
            proof = self.checker.check(proofs[0].decode("latin-1"), method=method, uri=self.uri, access_token=token)
        except NonceRequired as exc:
            assert self.checker.nonces is not None  # NonceRequired comes only with nonces
            raise DPoPRejected("use_dpop_nonce", str(exc), nonce=self.checker.nonces.current()) from None
        except ProofRejected as exc:
            raise DPoPRejected("invalid_dpop_proof", str(exc)) from None
        if not hmac.compare_digest(proof.thumbprint, jkt):  # §7.1: the proof's key is the token's key
            raise DPoPRejected("invalid_dpop_proof", "proof key is not the key the token is bound to (cnf.jkt)")
        try:
            self.replay.first_use(proof, keep_until=self.checker.keep_until())
        except ProofRejected as exc:
            raise DPoPRejected("invalid_dpop_proof", str(exc)) from None
        return AuthenticatedUser(access)

    def check_bearer(self, access: AccessToken) -> None:
        """A token that arrived as `Bearer`: refused if it is DPoP-bound (a downgrade: a stolen bound
        token must not work without its key, RFC 9449 §7.2), or if this server requires DPoP."""
        if binding(access) is not None:
            raise DPoPRejected("invalid_token", "token is DPoP-bound: present it with the DPoP scheme and a proof",
                               scheme="DPoP" if self.mode != "off" else "Bearer")
        if self.mode == "required":
            raise DPoPRejected("invalid_token", "this server requires DPoP-bound tokens (RFC 9449)")
