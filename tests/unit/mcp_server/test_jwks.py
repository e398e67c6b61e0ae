"""The JWKS cache: no fetch per request, rate-limited refresh on unknown kid, survives AS outages,
and never makes a request with a known kid wait on the network."""

from __future__ import annotations

import json
import os
import signal
import time

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

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
    attempts = fake.attempts
    assert (await keys.get(KID)).key_id == KID
    assert fake.attempts == attempts + 1  # the failed refresh did run
    assert keys.kids == {KID}


@pytest.mark.anyio
async def test_a_failed_background_refresh_keeps_the_cached_keys():
    """In the server: past max_age a request starts a refresh in the background; it fails (the AS
    answers 503), and the keys it would have replaced keep verifying."""
    fake, clock = FakeAuthorizationServer(), Clock()
    async with cache(fake, clock, max_age=60).running() as keys:
        await keys.warm()
        generation = keys.generation
        fake.down = True
        clock.now += 61
        attempts = fake.attempts
        assert (await keys.get(KID)).key_id == KID  # served at once, refresh started
        await keys.settle()
        assert fake.attempts == attempts + 1  # it ran, and failed
        assert keys.kids == {KID}
        assert keys.generation == generation
        assert (await keys.get(KID)).key_id == KID


def _jwks_with(fake: FakeAuthorizationServer, **members: object) -> dict:
    jwk = {**fake.jwks()["keys"][0], **members}
    return {"keys": [{k: v for k, v in jwk.items() if v is not None}]}


def _serving(document: dict) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(lambda request: httpx2.Response(200, json=document)))


def _keys_from(document: dict, algorithms: list[str]) -> JWKSCache:
    return JWKSCache(_serving(document), issuer=ISSUER, jwks_url=JWKS_URL, algorithms=algorithms, min_refresh=30,
                     max_age=300)


@pytest.mark.anyio
@pytest.mark.parametrize("members", [
    {"use": "enc"},  # RFC 7517 §4.2: an encryption key, as Keycloak publishes one
    {"use": "enc", "alg": "RSA-OAEP"},
    {"key_ops": ["encrypt", "wrapKey"]},  # RFC 7517 §4.3: not for verifying
    {"key_ops": "verify"},  # not a list
    {"alg": "PS256"},  # an algorithm not allowed here
    {"kid": None},
], ids=["use enc", "use enc with its alg", "key_ops without verify", "key_ops a string", "alg not allowed", "no kid"])
async def test_keys_not_for_verifying_allowed_signatures_are_never_used(members: dict):
    fake = FakeAuthorizationServer()
    keys = _keys_from(_jwks_with(fake, **members), ["RS256"])
    with pytest.raises(UnknownKey):
        await keys.get(KID)
    assert keys.kids == frozenset()


@pytest.mark.anyio
async def test_a_signing_key_with_key_ops_verify_is_used():
    fake = FakeAuthorizationServer()
    keys = _keys_from(_jwks_with(fake, key_ops=["verify"]), ["RS256"])
    assert (await keys.get(KID)).for_algorithm("RS256") is not None


@pytest.mark.anyio
async def test_a_key_without_alg_serves_the_allowed_algorithms_its_type_fits():
    """RFC 7517 §4.4 makes `alg` optional (Entra ID publishes none): an RSA key serves every allowed
    RSA algorithm, and no other."""
    fake = FakeAuthorizationServer()
    keys = _keys_from(_jwks_with(fake, alg=None), ["RS256", "PS256", "ES256"])
    key = await keys.get(KID)
    assert sorted(key.verifiers) == ["PS256", "RS256"]
    assert key.for_algorithm("ES256") is None


@pytest.mark.anyio
async def test_a_key_with_alg_serves_that_algorithm_only():
    fake = FakeAuthorizationServer()
    keys = _keys_from(_jwks_with(fake, alg="RS256"), ["RS256", "PS256"])
    assert sorted((await keys.get(KID)).verifiers) == ["RS256"]


@pytest.mark.anyio
@pytest.mark.parametrize(("curve", "allowed", "usable"), [
    (ec.SECP256R1(), ["ES256"], ["ES256"]),
    (ec.SECP384R1(), ["ES384", "ES256"], ["ES384"]),
    (ec.SECP384R1(), ["ES256", "RS256"], []),  # the curve fits no allowed algorithm
])
async def test_an_ec_key_without_alg_is_used_by_its_curve(curve: ec.EllipticCurve, allowed: list[str], usable: list[str]):
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(curve).public_key()))
    keys = _keys_from({"keys": [{**jwk, "kid": "ec", "use": "sig"}]}, allowed)
    if usable:
        assert sorted((await keys.get("ec")).verifiers) == usable
    else:
        with pytest.raises(UnknownKey):
            await keys.get("ec")


@pytest.mark.anyio
async def test_an_unchanged_key_stays_the_same_key_across_refreshes():
    """What the verifier remembers stays valid while the AS publishes the key unchanged."""
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock, max_age=60)
    first = await keys.get(KID)
    generation = keys.generation
    clock.now += 61
    await keys.freshen()
    assert fake.fetches == 2
    assert keys.current(KID) is first
    assert keys.generation == generation


@pytest.mark.anyio
async def test_reload_fetches_at_once_whatever_the_rate_limit():
    """The operator's path after withdrawing a key (SIGHUP): no waiting for max_age or min_refresh."""
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    await keys.get(KID)
    fake.kid = "kid-next"  # the old key withdrawn, a new one published
    assert await keys.reload()
    assert keys.kids == {"kid-next"}
    assert fake.fetches == 2


@pytest.mark.anyio
async def test_a_failed_reload_says_so_and_keeps_the_keys():
    fake, clock = FakeAuthorizationServer(), Clock()
    keys = cache(fake, clock)
    await keys.get(KID)
    fake.down = True
    assert not await keys.reload()
    assert keys.kids == {KID}


@pytest.mark.anyio
async def test_sighup_reloads_the_keys():
    """`kill -HUP` (docker compose kill -s SIGHUP mcp-server): the running server drops a withdrawn
    key at once. Signals reach the main thread, where pytest runs this test's event loop."""
    fake, clock = FakeAuthorizationServer(), Clock()
    fetched = anyio.Event()
    serve = fake.handler

    def handler(request: httpx2.Request) -> httpx2.Response:
        response = serve(request)
        if fake.fetches == 2:
            fetched.set()
        return response

    keys = cache(fake, clock)
    keys._http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    unheard: list[int] = []
    # Should the cache not listen, the signal lands here (and the wait below times out) instead
    # of ending the test run: SIGHUP's default action terminates the process.
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: unheard.append(signum))
    try:
        async with keys.running(reload_signal=signal.SIGHUP):
            await keys.warm()
            fake.kid = "kid-next"
            os.kill(os.getpid(), signal.SIGHUP)
            with anyio.fail_after(5):
                await fetched.wait()
                await keys.settle()
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert not unheard
    assert keys.kids == {"kid-next"}


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
    hung: anyio.Event | None = None  # set when a request starts hanging

    async def async_handler(self, request: httpx2.Request) -> httpx2.Response:
        if self.hang:
            self.attempts += 1
            if self.hung is not None:
                self.hung.set()
            await anyio.sleep_forever()
        return self.handler(request)

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.async_handler))


@pytest.mark.anyio
async def test_known_kids_never_wait_on_a_hanging_authorization_server():
    """20 concurrent requests with a cached kid, keys past max_age, AS hanging: each < 100 ms,
    and one background refresh for all of them."""
    fake, clock = HangingAuthorizationServer(), Clock()
    async with cache(fake, clock, max_age=60).running() as keys:
        await keys.get(KID)
        fake.hang, fake.hung = True, anyio.Event()
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
        with anyio.fail_after(5):
            await fake.hung.wait()  # the background refresh reached the AS
        assert fake.attempts - before == 1  # one refresh for all 20, still hanging


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


@pytest.mark.anyio
async def test_a_refresh_for_age_just_before_a_rotation_does_not_hold_up_the_new_key():
    """Found by the HA chaos run: past max_age a request refreshed the keys in the background; the
    AS rotated its key a few seconds later, and for min_refresh seconds every token signed by the
    new key was refused. Age and unknown kids are limited separately: the new kid refreshes at once."""
    fake, clock = FakeAuthorizationServer(), Clock()
    async with cache(fake, clock, max_age=60).running() as keys:
        await keys.warm()
        clock.now += 61
        await keys.get(KID)  # stale: a refresh for age starts in the background
        await keys.settle()
        assert fake.fetches == 2
        fake.kid = "kid-next"  # the rotation, 5 s after that refresh
        clock.now += 5
        assert (await keys.get("kid-next")).key_id == "kid-next"
        assert fake.fetches == 3
        # Still one refresh per interval for unknown kids: forged ones right after are refused.
        for i in range(20):
            with pytest.raises(UnknownKey):
                await keys.get(f"forged-{i}")
        assert fake.fetches == 3
