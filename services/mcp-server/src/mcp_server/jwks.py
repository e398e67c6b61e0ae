"""The authorization server's signing keys, cached.

Never a JWKS fetch per request: keys are fetched once (at startup if the AS answers), served
from memory, refreshed when they are older than `max_age`, and an unknown `kid` (key rotation)
triggers at most one refresh per `min_refresh` seconds so that a stream of forged kids cannot
turn the server into a JWKS-fetching amplifier. If a refresh fails, the keys already cached
keep working (the AS being down must not take the resource server down with it), and the next
attempt waits only `retry_after_failure` seconds (a server that started before the AS was up
must not refuse every token for a whole refresh interval).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import anyio
import httpx2
import jwt

log = logging.getLogger(__name__)


class UnknownKey(Exception):
    """No key with this kid, even after a (rate-limited) refresh."""


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._algorithms = set(algorithms)
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._retry_after_failure = retry_after_failure
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_attempt_failed = False
        self._lock = anyio.Lock()
        self.fetches = 0
        # Bumped whenever the set of keys changes; caches of verified tokens key on it.
        self.generation = 0
        self._fingerprint = ""

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def get(self, kid: str) -> jwt.PyJWK:
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        await self._refresh_if_allowed()
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(kid) from None

    async def warm(self) -> None:
        """Fetch the keys once at startup; failure is logged, not fatal."""
        await self._refresh_if_allowed()

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._max_age

    async def _refresh_if_allowed(self) -> None:
        async with self._lock:
            now = self._clock()
            wait = self._retry_after_failure if self._last_attempt_failed else self._min_refresh
            if self._attempted_at is not None and now - self._attempted_at < wait:
                return  # someone refreshed (or tried) just now
            self._attempted_at = now
            try:
                keys, fingerprint = await self._fetch()
                if fingerprint != self._fingerprint:
                    self.generation += 1
                    self._fingerprint = fingerprint
                self._keys = keys
                self._fetched_at = now
                self._last_attempt_failed = False
            except Exception as exc:  # keep the cached keys whatever went wrong
                self._last_attempt_failed = True
                log.warning("jwks refresh failed, keeping %d cached keys: %s", len(self._keys), exc)

    async def _discover_jwks_url(self) -> str:
        # RFC 8414 §3: path-inserted well-known URL; §3.3: the issuer in it must match exactly.
        scheme, rest = self._issuer.split("://", 1)
        host, _, path = rest.partition("/")
        url = f"{scheme}://{host}/.well-known/oauth-authorization-server/{path}".rstrip("/")
        response = await self._http.get(url)
        response.raise_for_status()
        metadata = response.json()
        if metadata.get("issuer") != self._issuer:
            raise ValueError(f"AS metadata issuer {metadata.get('issuer')!r} is not {self._issuer!r}")
        return metadata["jwks_uri"]

    async def _fetch(self) -> tuple[dict[str, jwt.PyJWK], str]:
        if self._jwks_url is None:
            self._jwks_url = await self._discover_jwks_url()
        response = await self._http.get(self._jwks_url)
        response.raise_for_status()
        self.fetches += 1
        keys: dict[str, jwt.PyJWK] = {}
        usable: list[dict] = []
        for data in response.json().get("keys", []):
            # Only signing keys for an allowed algorithm; Keycloak also publishes encryption keys.
            if data.get("use", "sig") != "sig" or data.get("alg") not in self._algorithms or "kid" not in data:
                continue
            try:
                keys[data["kid"]] = jwt.PyJWK(data)
                usable.append(data)
            except jwt.PyJWKError as exc:
                log.warning("ignoring unusable JWK %s: %s", data.get("kid"), exc)
        if not keys:
            raise ValueError("JWKS holds no usable signing key")
        log.info("jwks refreshed: %d signing keys", len(keys))
        return keys, json.dumps(sorted(usable, key=lambda d: d["kid"]), sort_keys=True)
