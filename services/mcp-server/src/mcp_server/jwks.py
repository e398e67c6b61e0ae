"""The authorization server's signing keys, cached.

Never a JWKS fetch per request, and never a request waiting on the network for a key it has:
keys are fetched once (at startup if the AS answers) and served from memory. When they are older
than `max_age`, the request that notices starts one refresh in the background and is answered
with the cached key at once — even if the AS hangs. Only a token with an unknown `kid` (a key
rotation) waits for a refresh, and at most `unknown_kid_wait` seconds.

A key the AS withdrew is therefore trusted until the first successful refresh after it was
withdrawn: at most `max_age` after the previous fetch, plus the duration of the refresh the next
request starts. `reload()` fetches at once, whatever the rate limit: the operator's path after
withdrawing a compromised key, reached by a signal to the process (`running(reload_signal=...)`;
SIGHUP in the server), never over the network.

Refreshes are single-flight and rate-limited: an unknown kid may start a refresh at most once per
`min_refresh` seconds (a stream of forged kids cannot turn the server into a JWKS-fetching
amplifier), and a refresh for age or at startup at most `min_refresh` after the last fetch. The
two limits are separate: a refresh for age that ran just before the AS rotated its key (and so
missed the new one) does not block the first token signed by the new key for `min_refresh`
seconds — at most one fetch per `min_refresh` comes from kids, whatever came before. After a
failure, nothing for `retry_after_failure` seconds after the failed attempt *ended* (a
server that started before the AS was up must not refuse every token for a whole interval, and a
hanging AS is not asked again the moment it times out). If a refresh fails, the cached keys keep
working: the AS being down must not take the resource server down with it.

Which keys are used (RFC 7517 §4): signing keys only (`use` absent or `sig`; `key_ops`, if
present, including `verify`), with a `kid`, for an allowed algorithm — the JWK's `alg` where it
has one, otherwise every allowed algorithm its key type fits (`alg` is optional; Entra ID omits
it). A key is bound to each algorithm it serves: a token's `alg` must be one of them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import jwt
from anyio.abc import TaskGroup, TaskStatus

from .discovery import AuthorizationServerMetadata

log = logging.getLogger(__name__)

# RFC 7518 §3.1, RFC 8037 §3.1: the key type (and curve) each JWS algorithm signs with. An `alg`-less
# JWK serves the allowed algorithms its type fits; HMAC (`oct`) never, as configuration refuses it.
KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


class UnknownKey(Exception):
    """No key with this kid, even after a (rate-limited) refresh."""


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One signing key of the AS, bound to the algorithms it may verify. The same object stands
    for the key across refreshes while the AS publishes it unchanged: a cache of verified tokens
    tells by identity whether the key that verified a token is still trusted."""

    kid: str
    jwk: Mapping[str, Any]
    verifiers: Mapping[str, jwt.PyJWK]  # algorithm -> the key bound to it

    @property
    def key_id(self) -> str:
        return self.kid

    def for_algorithm(self, alg: str) -> jwt.PyJWK | None:
        return self.verifiers.get(alg)


def signing_key(data: Any, algorithms: frozenset[str]) -> SigningKey | None:
    """The JWK as a SigningKey, or None if this server must not verify with it."""
    if not isinstance(data, dict):
        return None
    kid = data.get("kid")
    # RFC 7517 §4.2: `use` "enc" is an encryption key (Keycloak publishes one); never a verifier.
    if not isinstance(kid, str) or not kid or data.get("use", "sig") != "sig":
        return None
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):  # RFC 7517 §4.3
        return None
    alg = data.get("alg")
    if alg is not None:
        candidates = [alg] if alg in algorithms else []  # RFC 7517 §4.4: the key is for this alg only
    else:
        candidates = [a for a in sorted(algorithms) if _fits(a, data.get("kty"), data.get("crv"))]
    verifiers: dict[str, jwt.PyJWK] = {}
    for candidate in candidates:
        try:
            verifiers[candidate] = jwt.PyJWK(data, algorithm=candidate)
        except jwt.PyJWTError as exc:
            log.warning("ignoring unusable JWK %s for %s: %s", kid, candidate, exc)
    return SigningKey(kid, dict(data), verifiers) if verifiers else None


def _fits(alg: str, kty: Any, crv: Any) -> bool:
    """Whether a key of this type (and curve) can sign with `alg` (KEY_TYPES)."""
    if alg not in KEY_TYPES:
        return False
    key_type, curves = KEY_TYPES[alg]
    return kty == key_type and (curves is None or crv in curves)


class JWKSCache:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        issuer: str,
        jwks_url: str | None,
        algorithms: list[str],
        min_refresh: float,
        max_age: float,
        retry_after_failure: float = 2.0,
        unknown_kid_wait: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        metadata: AuthorizationServerMetadata | None = None,
    ) -> None:
        self._http = http
        # Shared with the introspection (app.py), so the AS metadata is fetched once.
        self._metadata = metadata or AuthorizationServerMetadata(http, issuer)
        self._jwks_url = jwks_url
        self._algorithms = frozenset(algorithms)
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._retry_after_failure = retry_after_failure
        self._unknown_kid_wait = unknown_kid_wait
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._next_attempt_at = float("-inf")  # any refresh: after a failure, or for age/startup
        self._next_kid_attempt_at = float("-inf")  # a refresh for an unknown kid
        self._refreshing: anyio.Event | None = None
        self._tasks: TaskGroup | None = None
        self.fetches = 0
        # Bumped whenever a key is withdrawn, replaced or added; caches of verified tokens look at
        # it to drop what a withdrawn key verified.
        self.generation = 0

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def current(self, kid: str) -> SigningKey | None:
        """The key trusted under this kid now (no refresh)."""
        return self._keys.get(kid)

    @asynccontextmanager
    async def running(self, *, reload_signal: signal.Signals | None = None) -> AsyncIterator[JWKSCache]:
        """The task group background refreshes run in (the server's lifespan). Outside it (scripts,
        tests) a refresh runs inline in the request that needs it. With `reload_signal`, that
        signal to the process reloads the keys at once (`reload`); signals reach the main thread
        only, so elsewhere it is logged and not listened for."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                if reload_signal is not None:
                    if threading.current_thread() is threading.main_thread():
                        await tasks.start(self._reload_on, reload_signal)
                    else:
                        log.warning("not the main thread: %s will not reload the signing keys", reload_signal.name)
                yield self
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()

    async def get(self, kid: str) -> SigningKey:
        key = self._keys.get(kid)
        if key is not None:
            await self.freshen()
            return key
        refreshing = self._start_refresh(for_unknown_kid=True)
        if refreshing is not None and self._tasks is None:
            await self._refresh()  # outside a server (scripts, tests): inline
        elif refreshing is not None:
            with anyio.move_on_after(self._unknown_kid_wait):
                await refreshing.wait()
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(kid) from None

    async def freshen(self) -> None:
        """Past `max_age`, start a refresh: in the background in a server (the request using a
        cached key does not wait), inline outside one. Every use of a cached key — a verified
        token remembered by the verifier included — calls this, so a withdrawn key is dropped
        within the bound however the tokens it signed keep coming."""
        if self._stale():
            refreshing = self._start_refresh()
            if refreshing is not None and self._tasks is None:
                await self._refresh()

    def refresh_if_empty(self) -> None:
        """Start a background refresh if no key is held yet (rate-limited like any refresh; inside
        `running()` only). The readiness check calls it: a replica that started before the AS
        answered is out of the balancers' rotation, so no token would ever ask for the keys."""
        if not self._keys and self._tasks is not None:
            self._start_refresh()

    async def warm(self) -> None:
        """Fetch the keys once at startup; failure is logged, not fatal."""
        refreshing = self._start_refresh()
        if refreshing is not None and self._tasks is None:
            await self._refresh()
        elif refreshing is not None:
            await refreshing.wait()

    async def settle(self) -> None:
        """Return once no refresh is in flight."""
        while self._refreshing is not None:
            await self._refreshing.wait()

    async def reload(self) -> bool:
        """Fetch the keys now, bypassing the rate limit; True if the AS answered. A refresh in
        flight may have started before the key was withdrawn: it is waited for, then a new one
        runs. On failure the cached keys stay (as for any failed refresh) and it says so."""
        await self.settle()
        self._refreshing = anyio.Event()
        return await self._refresh()

    async def _reload_on(self, signum: signal.Signals, *, task_status: TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signum) as signals:
            task_status.started()
            async for _ in signals:
                before = self.kids
                if await self.reload():
                    log.info("%s: signing keys reloaded: %d held, %d withdrawn", signum.name, len(self._keys),
                             len(before - self.kids))
                else:
                    log.error("%s: signing keys NOT reloaded (the JWKS could not be fetched); the %d cached keys "
                              "stay trusted — send it again once the authorization server answers", signum.name,
                              len(self._keys))

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._max_age

    def _start_refresh(self, *, for_unknown_kid: bool = False) -> anyio.Event | None:
        """The refresh in flight, or a new one if the rate limit allows; None if neither."""
        if self._refreshing is not None:
            return self._refreshing
        now = self._clock()
        if for_unknown_kid:
            if now < self._next_kid_attempt_at:
                return None
            self._next_kid_attempt_at = now + self._min_refresh
        elif now < self._next_attempt_at:
            return None
        self._refreshing = anyio.Event()
        if self._tasks is not None:
            self._tasks.start_soon(self._refresh)
        return self._refreshing

    async def _refresh(self) -> bool:
        try:
            keys = await self._fetch()
            if keys.keys() != self._keys.keys() or any(keys[kid] is not self._keys[kid] for kid in keys):
                self.generation += 1
            self._keys = keys
            self._fetched_at = self._clock()
            self._next_attempt_at = self._fetched_at + self._min_refresh
            return True
        except Exception as exc:  # keep the cached keys whatever went wrong
            # Counted from the end of the failed attempt, not its start.
            # Both kinds: an AS that fails is not asked again sooner, whatever asks.
            self._next_attempt_at = self._next_kid_attempt_at = self._clock() + self._retry_after_failure
            log.warning("jwks refresh failed, keeping %d cached keys: %s", len(self._keys), exc)
            return False
        finally:
            refreshing, self._refreshing = self._refreshing, None
            if refreshing is not None:
                refreshing.set()

    async def _fetch(self) -> dict[str, SigningKey]:
        if self._jwks_url is None:
            self._jwks_url = await self._metadata.endpoint("jwks_uri")
        response = await self._http.get(self._jwks_url)
        response.raise_for_status()
        self.fetches += 1
        published = response.json().get("keys", [])
        keys: dict[str, SigningKey] = {}
        for data in published if isinstance(published, list) else []:
            key = signing_key(data, self._algorithms)
            if key is None or key.kid in keys:  # a kid names one key (RFC 7517 §4.5): the first counts
                continue
            known = self._keys.get(key.kid)
            # Unchanged: the same object, so what it verified stays cached (SigningKey).
            keys[key.kid] = known if known is not None and known.jwk == key.jwk else key
        if not keys:
            raise ValueError("JWKS holds no usable signing key")
        log.info("jwks refreshed: %d signing keys", len(keys))
        return keys
