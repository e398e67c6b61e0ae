"""The authorization server's signing keys, cached.

Never a JWKS fetch per request, and never a request waiting on the network for a key it has:
keys are fetched once (at startup if the AS answers) and served from memory. When they are older
than `max_age`, the request that notices starts one refresh in the background and is answered
with the cached key at once — even if the AS hangs. Only a token with an unknown `kid` (a key
rotation) waits for a refresh, and at most `unknown_kid_wait` seconds.

Refreshes are single-flight and rate-limited: after a success the next one may start
`min_refresh` seconds later (a stream of forged kids cannot turn the server into a JWKS-fetching
amplifier); after a failure, `retry_after_failure` seconds after the failed attempt *ended* (a
server that started before the AS was up must not refuse every token for a whole interval, and a
hanging AS is not asked again the moment it times out). If a refresh fails, the cached keys keep
working: the AS being down must not take the resource server down with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import jwt
from anyio.abc import TaskGroup

from .discovery import AuthorizationServerMetadata

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
        unknown_kid_wait: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        metadata: AuthorizationServerMetadata | None = None,
    ) -> None:
        self._http = http
        # Shared with the introspection (app.py), so the AS metadata is fetched once.
        self._metadata = metadata or AuthorizationServerMetadata(http, issuer)
        self._jwks_url = jwks_url
        self._algorithms = set(algorithms)
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._retry_after_failure = retry_after_failure
        self._unknown_kid_wait = unknown_kid_wait
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._next_attempt_at = float("-inf")
        self._refreshing: anyio.Event | None = None
        self._tasks: TaskGroup | None = None
        self.fetches = 0
        # Bumped whenever the set of keys changes; caches of verified tokens key on it.
        self.generation = 0
        self._fingerprint = ""

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JWKSCache]:
        """The task group background refreshes run in (the server's lifespan). Outside it (scripts,
        tests) a refresh runs inline in the request that needs it."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                yield self
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()

    async def get(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None:
            if self._stale() and self._tasks is not None:
                self._start_refresh()  # in the background; this request does not wait
            return key
        refreshing = self._start_refresh()
        if refreshing is not None and self._tasks is None:
            await self._refresh()  # outside a server (scripts, tests): inline
        elif refreshing is not None:
            with anyio.move_on_after(self._unknown_kid_wait):
                await refreshing.wait()
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(kid) from None

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

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._max_age

    def _start_refresh(self) -> anyio.Event | None:
        """The refresh in flight, or a new one if the rate limit allows; None if neither."""
        if self._refreshing is not None:
            return self._refreshing
        if self._clock() < self._next_attempt_at:
            return None
        self._refreshing = anyio.Event()
        if self._tasks is not None:
            self._tasks.start_soon(self._refresh)
        return self._refreshing

    async def _refresh(self) -> None:
        try:
            keys, fingerprint = await self._fetch()
            if fingerprint != self._fingerprint:
                self.generation += 1
                self._fingerprint = fingerprint
            self._keys = keys
            self._fetched_at = self._clock()
            self._next_attempt_at = self._fetched_at + self._min_refresh
        except Exception as exc:  # keep the cached keys whatever went wrong
            # Counted from the end of the failed attempt, not its start.
            self._next_attempt_at = self._clock() + self._retry_after_failure
            log.warning("jwks refresh failed, keeping %d cached keys: %s", len(self._keys), exc)
        finally:
            refreshing, self._refreshing = self._refreshing, None
            if refreshing is not None:
                refreshing.set()

    async def _fetch(self) -> tuple[dict[str, jwt.PyJWK], str]:
        if self._jwks_url is None:
            self._jwks_url = await self._metadata.endpoint("jwks_uri")
        response = await self._http.get(self._jwks_url)
        response.raise_for_status()
        self.fetches += 1
        keys: dict[str, jwt.PyJWK] = {}
        usable: list[dict[str, Any]] = []
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
