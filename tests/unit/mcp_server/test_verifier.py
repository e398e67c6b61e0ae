"""Every way a bearer token can be wrong is refused with 401, and the right one passes (RS8-RS12)."""

from __future__ import annotations

import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings

from mcp_server import request
from mcp_server.jwks import UnknownKey
from mcp_server.verifier import AccessTokenVerifier, TokenRejected
from tests.support import jose
from tests.support.authorization_server import (
    ISSUER,
    FakeAuthorizationServer,
    claims_for,
    make_settings,
    make_verifier,
    mint,
)
from tests.support.bad_tokens import BAD_TOKENS
from tests.support.clock import Clock

RESOURCE = "http://127.0.0.1:8000/mcp"


@pytest.fixture
def verifier():
    fake = FakeAuthorizationServer()
    verifier, keys = make_verifier(fake, make_settings(RESOURCE))
    return fake, verifier, keys


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_is_rejected_with_its_reason(verifier, case):
    fake, verifier, _ = verifier
    factory, reason = BAD_TOKENS[case]
    with pytest.raises(TokenRejected, match=reason):
        await verifier.verify(factory(fake, RESOURCE))
    assert await verifier.verify_token(factory(fake, RESOURCE)) is None


@pytest.mark.anyio
async def test_valid_token_yields_subject_client_scopes_and_resource(verifier):
    fake, verifier, _ = verifier
    token = await verifier.verify_token(mint(fake.key, claims_for(RESOURCE, scope="mcp:admin")))
    assert token is not None
    assert token.subject == "user-123"
    assert token.client_id == "test-client"
    # RS19: mcp:admin implies mcp:tools.
    assert token.scopes == ["mcp:admin", "mcp:tools"]
    assert token.resource == RESOURCE
    assert token.claims["iss"] == ISSUER


@pytest.mark.anyio
async def test_audience_list_containing_the_resource_is_accepted(verifier):
    fake, verifier, _ = verifier
    token = mint(fake.key, claims_for(RESOURCE, aud=["account", RESOURCE]))
    assert await verifier.verify_token(token) is not None


@pytest.mark.anyio
async def test_small_clock_skew_is_tolerated(verifier):
    fake, verifier, _ = verifier
    skewed = int(time.time()) + 5  # within the 10 s leeway
    assert await verifier.verify_token(mint(fake.key, claims_for(RESOURCE, iat=skewed, nbf=skewed))) is not None


def test_symmetric_or_none_algorithms_cannot_be_configured():
    fake = FakeAuthorizationServer()
    settings = make_settings(RESOURCE).model_copy(update={"algorithms": ["RS256", "HS256"]})
    with pytest.raises(ValueError, match="HS256"):
        make_verifier(fake, settings)


@pytest.mark.anyio
async def test_a_cached_token_still_expires():
    fake, now = FakeAuthorizationServer(), [time.time()]
    settings = make_settings(RESOURCE)
    _, keys = make_verifier(fake, settings)
    verifier = AccessTokenVerifier(settings, keys, clock=lambda: now[0])
    exp = int(now[0]) + 60
    token = mint(fake.key, claims_for(RESOURCE, exp=exp))
    assert await verifier.verify_token(token) is not None
    now[0] = exp + settings.leeway_seconds + 1
    with pytest.raises(TokenRejected, match="expired"):
        await verifier.verify(token)


@pytest.mark.anyio
async def test_key_rotation_empties_the_cache_of_verified_tokens():
    fake, clock = FakeAuthorizationServer(), Clock()
    settings = make_settings(RESOURCE)
    verifier, keys = make_verifier(fake, settings, clock)
    token = mint(fake.key, claims_for(RESOURCE))
    assert await verifier.verify_token(token) is not None
    fake.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # old key withdrawn, same kid
    clock.now += 31
    with pytest.raises(UnknownKey):
        await keys.get("a-kid-that-triggers-a-refresh")
    with pytest.raises(TokenRejected, match="signature"):
        await verifier.verify(token)


@pytest.mark.anyio
async def test_an_unexpected_error_in_verification_is_a_refusal_logged_with_its_traceback(
    verifier, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """The backstop: should a bug raise anything but TokenRejected, the SDK gets None (a 401), not
    an exception (a 500, and a closed keep-alive connection shared with other callers)."""
    fake, verifier, _ = verifier

    async def broken(token: str):
        raise RuntimeError("a bug")

    monkeypatch.setattr(verifier, "_verify_uncached", broken)
    with caplog.at_level(logging.ERROR, logger="mcp_server.verifier"):
        assert await verifier.verify_token(mint(fake.key, claims_for(RESOURCE))) is None
    assert caplog.records[-1].exc_info is not None
    assert request.rejection() == "could not be verified"


FUZZ_AS = FakeAuthorizationServer()
FUZZ_VERIFIER, _ = make_verifier(FUZZ_AS, make_settings(RESOURCE))


@pytest.mark.anyio
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=jose.tokens(FUZZ_AS.key, RESOURCE))
async def test_any_header_and_claims_are_refused_with_a_reason_never_an_error(token: str):
    """Whatever the JOSE header and the claims hold (any JSON type, size, nesting), the verifier
    either accepts the token or raises TokenRejected; never another exception, which the SDK's
    middleware would turn into a 500. The reason goes into a response header: short printable ASCII."""
    try:
        verified = await FUZZ_VERIFIER.verify(token)
    except TokenRejected as exc:
        reason = str(exc)
        assert 0 < len(reason) <= 200, reason
        assert reason.isascii(), reason
        assert reason.isprintable(), reason
        assert await FUZZ_VERIFIER.verify_token(token) is None
        return
    # Accepted: every claim the server reads has the type it reads it as.
    claims = verified.claims
    assert type(claims["exp"]) in (int, float)
    assert all(isinstance(claims[name], str) for name in ("iss", "sub", "azp") if name in claims)
    # The scope claim: a string, or a list of single scope tokens (Okta's shape).
    scope = claims.get("scope", "")
    assert isinstance(scope, str) or all(isinstance(s, str) and s and " " not in s for s in scope)
    assert all(isinstance(s, str) for s in verified.scopes)
    access = await FUZZ_VERIFIER.verify_token(token)
    assert access is not None
    assert access.resource == RESOURCE


@pytest.mark.anyio
async def test_expiry_is_exact_for_new_and_remembered_tokens():
    """RFC 7519 §4.1.4: not accepted at `exp` itself, and no leeway on `exp` — neither when the
    token is first verified nor when the verifier remembers it (the re-check on every cache hit)."""
    fake, clock = FakeAuthorizationServer(), Clock()
    settings = make_settings(RESOURCE)
    _, keys = make_verifier(fake, settings, clock)
    remembered = AccessTokenVerifier(settings, keys, clock=clock)
    exp = int(clock.now) + 60
    token = mint(fake.key, claims_for(RESOURCE, iat=int(clock.now), exp=exp))
    assert await remembered.verify_token(token) is not None
    clock.now = exp - 0.5
    assert await remembered.verify_token(token) is not None  # a cache hit, just before exp
    clock.now = exp
    with pytest.raises(TokenRejected, match="expired"):
        await remembered.verify(token)  # the cache hit at exp
    fresh = AccessTokenVerifier(settings, keys, clock=clock)
    with pytest.raises(TokenRejected, match="expired"):
        await fresh.verify(token)  # first seen at exp


def _withdraw_and_publish(fake: FakeAuthorizationServer, new_kid: str) -> rsa.RSAPrivateKey:
    """The AS withdraws its signing key and signs with a new one from now on."""
    old = fake.key
    fake.key, fake.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), new_kid
    return old


@pytest.mark.anyio
async def test_a_withdrawn_key_is_trusted_at_most_the_jwks_max_age():
    """The bound, measured on a fake clock, in the server's mode (refreshes in the background): a
    token whose key the AS withdrew keeps passing until the keys are older than
    MCP_JWKS_MAX_AGE_SECONDS; the request that notices is still answered from the cache and
    starts the refresh; from its end on, the token is refused. The token is remembered by the
    verifier all along (a cache hit never looks at the keys otherwise)."""
    fake, clock = FakeAuthorizationServer(), Clock()
    settings = make_settings(RESOURCE)
    max_age = settings.jwks_max_age_seconds
    assert max_age == 300  # the documented default
    _, keys = make_verifier(fake, settings, clock)
    verifier = AccessTokenVerifier(settings, keys, clock=lambda: time.time())
    token = mint(fake.key, claims_for(RESOURCE))
    async with keys.running():
        await keys.warm()
        fetched_at = clock.now
        assert await verifier.verify_token(token) is not None
        _withdraw_and_publish(fake, "kid-after-withdrawal")
        clock.now = fetched_at + max_age  # at the bound: still trusted, no refresh yet
        assert await verifier.verify_token(token) is not None
        assert fake.fetches == 1
        clock.now = fetched_at + max_age + 0.001  # past it: answered from the cache, refresh started
        assert await verifier.verify_token(token) is not None
        await keys.settle()
        assert fake.fetches == 2
        with pytest.raises(TokenRejected, match="signing key unknown"):
            await verifier.verify(token)


@pytest.mark.anyio
async def test_withdrawing_one_key_drops_only_the_tokens_it_verified():
    fake, clock = FakeAuthorizationServer(), Clock()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    published = {"kid-a": fake.key, "kid-b": other}

    def jwks() -> dict:
        return {"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid, "use": "sig",
                          "alg": "RS256"} for kid, k in published.items()]}

    fake.jwks = jwks  # type: ignore[method-assign]
    settings = make_settings(RESOURCE)
    verifier, keys = make_verifier(fake, settings, clock)
    token_a = mint(fake.key, claims_for(RESOURCE), kid="kid-a")
    token_b = mint(other, claims_for(RESOURCE), kid="kid-b")
    await verifier.verify(token_a)
    remembered_b = await verifier.verify(token_b)
    del published["kid-a"]
    assert await keys.reload()  # the operator's path: SIGHUP
    with pytest.raises(TokenRejected, match="signing key unknown"):
        await verifier.verify(token_a)
    assert await verifier.verify(token_b) is remembered_b  # still remembered: not verified again


@pytest.mark.anyio
async def test_a_key_replaced_under_the_same_kid_stops_verifying_at_the_reload():
    fake, clock = FakeAuthorizationServer(), Clock()
    settings = make_settings(RESOURCE)
    verifier, keys = make_verifier(fake, settings, clock)
    token = mint(fake.key, claims_for(RESOURCE))
    await verifier.verify(token)
    fake.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # same kid, new key
    assert await keys.reload()
    with pytest.raises(TokenRejected, match="signature"):
        await verifier.verify(token)


@pytest.mark.anyio
async def test_a_token_must_use_an_algorithm_its_key_is_for():
    """RFC 7517 §4.4, RFC 8725 §3.1: with RS256 and PS256 both allowed, a key published for RS256
    does not verify a PS256 signature — even a valid one by the same RSA key."""
    fake = FakeAuthorizationServer()
    settings = make_settings(RESOURCE, algorithms=["RS256", "PS256"])
    verifier, _ = make_verifier(fake, settings)
    token = mint(fake.key, claims_for(RESOURCE), alg="PS256")
    with pytest.raises(TokenRejected, match="not for algorithm 'PS256'"):
        await verifier.verify(token)
    assert await verifier.verify(mint(fake.key, claims_for(RESOURCE), alg="RS256"))
