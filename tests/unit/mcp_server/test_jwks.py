"""The JWKS cache: no fetch per request, rate-limited refresh on unknown kid, survives AS outages."""

from __future__ import annotations

import pytest
from mcp_server.jwks import JWKSCache, UnknownKey

from .conftest import ISSUER, JWKS_URL, KID, FakeAuthorizationServer, make_keys, make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
    import httpx2

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
