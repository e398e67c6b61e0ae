"""The JWKS cache: no fetch per request, rate-limited refresh on unknown kid, survives AS outages,
and never makes a request with a known kid wait on the network."""

from __future__ import annotations

import time

import httpx2
import pytest

from mcp_server.jwks import JWKSCache, UnknownKey
from tests.support.authorization_server import ISSUER, JWKS_URL, KID, FakeAuthorizationServer, make_keys, make_settings
from tests.support.clock import Clock


def cache(fake: FakeAuthorizationServer, clock: Clock, **kwargs) -> JWKSCache:
    settings = make_settings().model_copy(
        update={"jwks_min_refresh_seconds": kwargs.get("min_refresh", 30.0), "jwks_max_age_seconds": kwargs.get("max_age", 3600.0)}
    )
    return make_keys(fake, settings, clock)


@pytest.mark.anyio
async def test_keys_are_fetched_once_for_many_lookups():
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    for _ in range(100):
        await keys.get(KID)
    assert fake.fetches == 1


@pytest.mark.anyio
async def test_unknown_kids_trigger_at_most_one_refresh_per_interval():
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    await keys.get(KID)
    clock.now += 31
    for i in range(50):
        with pytest.raises(UnknownKey):
            await keys.get(f"forged-{i}")
    assert fake.fetches == 2  # the first lookup plus one refresh for all 50 forged kids


@pytest.mark.anyio
async def test_a_rotated_key_is_picked_up_after_the_interval():
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    await keys.get(KID)
    fake.kid = "kid-next"
    clock.now += 31
    assert (await keys.get("kid-next")).key_id == "kid-next"


@pytest.mark.anyio
async def test_cached_keys_keep_working_while_the_authorization_server_is_down():
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock, max_age=60)
    await keys.get(KID)
    fake.down = True
    clock.now += 3600  # long past max_age: a refresh is attempted and fails
    assert (await keys.get(KID)).key_id == KID


@pytest.mark.anyio
async def test_discovery_requires_the_exact_issuer():
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"issuer": ISSUER + "/", "jwks_uri": JWKS_URL})

    keys = JWKSCache(
        httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        issuer=ISSUER,
        jwks_url=None,
        algorithms=["RS256"],
        min_refresh=30,
        max_age=3600,
    )
    with pytest.raises(UnknownKey):
        await keys.get(KID)
    assert keys.fetches == 0


@pytest.mark.anyio
async def test_a_failed_first_fetch_is_retried_soon_not_after_the_full_interval():
    """The resource server often starts before Keycloak is ready."""
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    fake.down = True
    await keys.warm()
    fake.down = False
    with pytest.raises(UnknownKey):
        await keys.get(KID)  # within the short retry delay: no new attempt
    clock.now += 2.5
    assert (await keys.get(KID)).key_id == KID
    assert fake.fetches == 1


@pytest.mark.anyio
async def test_a_down_authorization_server_is_not_hammered():
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    fake.down = True
    for _ in range(100):
        with pytest.raises(UnknownKey):
            await keys.get(KID)
    assert fake.attempts == 1


class HangingAuthorizationServer(FakeAuthorizationServer):
    """Answers until `hang` is set, then never answers (a hung AS, not a failing one)."""

    hang: bool = False

    async def async_handler(self, request: httpx2.Request) -> httpx2.Response:
        import anyio

        if self.hang:
            self.attempts += 1
            await anyio.sleep_forever()
        return self.handler(request)

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.async_handler))


@pytest.mark.anyio
async def test_known_kids_never_wait_on_a_hanging_authorization_server():
    """20 concurrent requests with a cached kid, keys past max_age, AS hanging: each < 100 ms,
    and one background refresh for all of them."""
    import anyio

    fake, clock = HangingAuthorizationServer(), Clock()
    async with cache(fake, clock, max_age=60).running() as keys:
        await keys.get(KID)
        fake.hang = True
        before = fake.attempts
        clock.now += 3600
        durations: list[float] = []

        async def one() -> None:
            started = time.perf_counter()
            assert (await keys.get(KID)).key_id == KID
            durations.append(time.perf_counter() - started)

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(one)
        assert len(durations) == 20
        assert max(durations) < 0.1, durations
        await anyio.sleep(0.05)
        assert fake.attempts - before == 1  # one background refresh, still hanging


@pytest.mark.anyio
async def test_an_unknown_kid_waits_at_most_the_bound():
    fake, clock = HangingAuthorizationServer(), Clock()
    keys = make_keys(fake, make_settings(), clock)
    keys._unknown_kid_wait = 0.3
    async with keys.running():
        await keys.get(KID)
        fake.hang = True
        clock.now += 31
        started = time.perf_counter()
        with pytest.raises(UnknownKey):
            await keys.get("rotated-kid")
        assert 0.25 < time.perf_counter() - started < 1.0


@pytest.mark.anyio
async def test_the_retry_window_counts_from_the_end_of_a_failed_attempt():
    """An attempt that took longer than the retry delay is not retried the moment it fails."""
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)

    def slow_failure(request: httpx2.Request) -> httpx2.Response:
        fake.attempts += 1
        clock.now += 10  # the attempt "takes" 10 s, then fails
        return httpx2.Response(503)

    keys._http = httpx2.AsyncClient(transport=httpx2.MockTransport(slow_failure))
    with pytest.raises(UnknownKey):
        await keys.get(KID)
    clock.now += 1  # 1 s after the failure ended (11 s after it started)
    with pytest.raises(UnknownKey):
        await keys.get(KID)
    assert fake.attempts == 1
    clock.now += 1.5
    with pytest.raises(UnknownKey):
        await keys.get(KID)
    assert fake.attempts == 2
