"""DPoP proof checks (RFC 9449 §4.3), one test per way a proof can be wrong, on a fake clock.

Proofs are made with PyJWT from real keys (EC P-256, RSA, Ed25519), as a client would."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_server.dpop import (
    NonceRequired,
    NonceSource,
    Proof,
    ProofChecker,
    ProofRejected,
    ReplayCache,
    access_token_hash,
    normalize_uri,
    thumbprint,
)

NOW = 1_800_000_000.0
URI = "https://mcp.localhost/mcp"
TOKEN = "eyJ.token.value"  # an opaque stand-in: only its hash goes in the proof


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def public_jwk(key: Any) -> dict[str, Any]:
    algorithm: Any = (jwt.algorithms.ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey)
                      else jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey)
                      else jwt.algorithms.OKPAlgorithm)
    return json.loads(algorithm.to_jwk(key.public_key()))


def private_jwk(key: Any) -> dict[str, Any]:
    return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))


EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def proof(key: Any = EC_KEY, *, alg: str = "ES256", header: dict[str, Any] | None = None, drop: tuple[str, ...] = (),
          **claims: Any) -> str:
    body = {"jti": "jti-1", "htm": "POST", "htu": URI, "iat": int(NOW), "ath": access_token_hash(TOKEN), **claims}
    for name in drop:
        body.pop(name)
    headers = {"typ": "dpop+jwt", "jwk": public_jwk(key), **(header or {})}
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def checker(clock: Clock | None = None, **kwargs: Any) -> ProofChecker:
    return ProofChecker(clock=clock or Clock(), **kwargs)


def check(value: str, *, method: str = "POST", uri: str = URI, token: str | None = TOKEN, **kwargs: Any) -> Proof:
    return checker(**kwargs).check(value, method=method, uri=uri, access_token=token)


def refused(value: str, reason: str, **kwargs: Any) -> None:
    with pytest.raises(ProofRejected, match=reason):
        check(value, **kwargs)


@pytest.mark.parametrize(("key", "alg"), [(EC_KEY, "ES256"), (rsa.generate_private_key(65537, 2048), "PS256"),
                                          (rsa.generate_private_key(65537, 2048), "RS256"),
                                          (ed25519.Ed25519PrivateKey.generate(), "EdDSA")])
def test_a_proof_for_this_request_and_token_is_accepted_with_its_key_thumbprint(key: Any, alg: str):
    accepted = check(proof(key, alg=alg))
    assert accepted == Proof(thumbprint=thumbprint(public_jwk(key)), jti="jti-1", iat=NOW)


def test_the_thumbprint_is_rfc_7638s():
    # RFC 7638 §3.1, the worked example.
    example = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
               "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
                    "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnY"
                    "b9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0"
                    "Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_token_without_a_proof_is_not_this_modules_case_but_a_proof_without_ath_is_fine_without_a_token():
    assert check(proof(drop=("ath",)), token=None).jti == "jti-1"


@pytest.mark.parametrize("value", ["", "not-a-jwt", "a.b.c", "x" * 9000])
def test_a_malformed_proof_is_refused(value: str):
    refused(value, "well-formed|larger than")


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", "DPOP+JWT "])
def test_a_proof_whose_typ_is_not_dpop_jwt_is_refused(typ: str | None):
    refused(proof(header={"typ": typ}), "typ is not dpop\\+jwt")


def test_a_proof_with_crit_parameters_is_refused():
    # PyJWT refuses a crit it does not know while parsing; either way, never accepted.
    refused(proof(header={"crit": ["exp"], "exp": 1}), "crit|well-formed")


def test_a_proof_signed_with_a_shared_secret_is_refused():
    secret = b"s" * 32
    forged = jwt.encode({"jti": "j", "htm": "POST", "htu": URI, "iat": int(NOW)}, secret, algorithm="HS256",
                        headers={"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": "c2VjcmV0"}})
    refused(forged, "algorithm 'HS256' is not one of")


def test_a_proof_with_alg_none_is_refused():
    unsigned = jwt.encode({"jti": "j", "htm": "POST", "htu": URI, "iat": int(NOW)}, None, algorithm="none",
                          headers={"typ": "dpop+jwt", "jwk": public_jwk(EC_KEY)})
    refused(unsigned, "algorithm 'none' is not one of")


def test_an_algorithm_outside_the_allow_list_is_refused():
    refused(proof(), "algorithm 'ES256' is not one of PS256", algorithms=["PS256"])


@pytest.mark.parametrize("algorithms", [["HS256"], ["ES256", "none"], []])
def test_the_checker_refuses_symmetric_or_no_algorithms(algorithms: list[str]):
    with pytest.raises(ValueError, match="asymmetric"):
        ProofChecker(algorithms=algorithms)


def test_a_proof_without_a_jwk_is_refused():
    headers = {"typ": "dpop+jwt", "kid": "some-key"}
    refused(jwt.encode({"jti": "j", "htm": "POST", "htu": URI, "iat": int(NOW)}, EC_KEY, algorithm="ES256",
                       headers=headers), "no jwk")


def test_a_proof_whose_jwk_holds_the_private_key_is_refused():
    refused(proof(header={"jwk": private_jwk(EC_KEY)}), "private or symmetric key material")


def test_a_proof_whose_jwk_does_not_fit_its_algorithm_is_refused():
    refused(proof(header={"jwk": public_jwk(rsa.generate_private_key(65537, 2048))}), "not a usable ES256 public key")


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused():
    refused(proof(OTHER_EC_KEY, header={"jwk": public_jwk(EC_KEY)}), "signature does not verify")


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"a string"', b"not json", b"\xff\xfe", b"",
                                     b"[" * 2800 + b"]" * 2800])  # deeper than json's recursion limit, under the size cap
def test_a_signed_proof_whose_payload_is_not_a_json_object_is_refused(payload: bytes):
    # The JWS layer checks the signature; that the payload is a claims object is ours to check.
    signed = jwt.PyJWS().encode(payload, EC_KEY, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": public_jwk(EC_KEY)})
    refused(signed, "payload is not a JSON object")


def test_a_proof_whose_header_nests_past_the_parsers_depth_is_refused():
    header = base64.urlsafe_b64encode(b'{"typ":"dpop+jwt","alg":"ES256","x":' + b"[" * 2800 + b"]" * 2800 + b"}")
    refused(f"{header.rstrip(b'=').decode()}.e30.AAAA", "well-formed")


def test_a_proof_with_a_non_string_jti_is_refused():
    refused(proof(jti=5), "jti is missing or not a string")


def test_a_remembered_header_still_has_each_proofs_signature_checked():
    # The header's checks are remembered per header segment; the signature never is: a proof
    # with the same header but a body signed by another key is refused after a good one passed.
    checks = checker()
    good = proof(jti="first")
    assert checks.check(good, method="POST", uri=URI, access_token=TOKEN).jti == "first"
    assert len(checks.keys) == 1
    header = good.split(".")[0]
    _, body, signature = proof(OTHER_EC_KEY, header={"jwk": public_jwk(EC_KEY)}, jti="second").split(".")
    with pytest.raises(ProofRejected, match="signature does not verify"):
        checks.check(f"{header}.{body}.{signature}", method="POST", uri=URI, access_token=TOKEN)
    # And a tampered body under the remembered header and the good signature: refused too.
    with pytest.raises(ProofRejected, match="signature does not verify"):
        checks.check(f"{header}.{body}.{good.split('.')[2]}", method="POST", uri=URI, access_token=TOKEN)


def test_a_refused_header_is_not_remembered_and_the_remembered_ones_are_bounded(monkeypatch: pytest.MonkeyPatch):
    checks = checker()
    with pytest.raises(ProofRejected, match="private or symmetric key material"):
        checks.check(proof(header={"jwk": private_jwk(EC_KEY)}), method="POST", uri=URI, access_token=TOKEN)
    assert len(checks.keys) == 0
    monkeypatch.setattr("mcp_server.dpop.KEY_CACHE_SIZE", 2)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    for key in keys:
        checks.check(proof(key), method="POST", uri=URI, access_token=TOKEN)
    assert len(checks.keys) == 2  # the least recently used went first
    assert proof(keys[0]).split(".")[0] not in checks.keys


@pytest.mark.parametrize("missing", ["jti", "htm", "htu", "iat"])
def test_a_proof_missing_a_required_claim_is_refused(missing: str):
    refused(proof(drop=(missing,)), f"{missing}|htm or htu")


@pytest.mark.parametrize(("claim", "value"), [("jti", 5), ("jti", ""), ("jti", "j" * 257), ("htm", ["POST"]),
                                              ("htu", {"u": URI}), ("iat", "1800000000"), ("iat", True)])
def test_a_claim_of_the_wrong_type_is_refused(claim: str, value: Any):
    refused(proof(**{claim: value}), f"{claim}|JWT ID")


def test_a_proof_for_another_method_is_refused():
    refused(proof(htm="GET"), "htm 'GET' is not this request's method")


@pytest.mark.parametrize("htu", ["https://evil.localhost/mcp", "https://mcp.localhost/other", "http://mcp.localhost/mcp",
                                 "https://mcp.localhost:8443/mcp", "https://mcp.localhost/mcp/"])
def test_a_proof_for_another_uri_is_refused(htu: str):
    refused(proof(htu=htu), "htu is not this request's URI")


@pytest.mark.parametrize("htu", ["https://MCP.localhost/mcp", "HTTPS://mcp.localhost:443/mcp",
                                 "https://mcp.localhost/mcp?x=1", "https://mcp.localhost/mcp#frag"])
def test_the_uri_is_compared_as_rfc_3986_normalizes_it_without_query_or_fragment(htu: str):
    assert check(proof(htu=htu)).jti == "jti-1"


@pytest.mark.parametrize("uri", ["ftp://host/x", "https://user@host/x", "https://[::1/x", "mcp.localhost/mcp"])
def test_a_uri_that_is_not_plain_http_is_refused(uri: str):
    with pytest.raises(ProofRejected, match="htu is not"):
        normalize_uri(uri)


def test_iat_is_accepted_within_the_window_and_leeway_and_refused_outside():
    clock = Clock()
    make = ProofChecker(clock=clock, max_age_seconds=60, leeway_seconds=5)
    for iat in (NOW - 65, NOW, NOW + 5):
        assert make.check(proof(iat=iat), method="POST", uri=URI, access_token=TOKEN).iat == iat
    for iat, reason in ((NOW - 66, "too old"), (NOW + 6, "in the future")):
        with pytest.raises(ProofRejected, match=reason):
            make.check(proof(iat=iat), method="POST", uri=URI, access_token=TOKEN)


def test_a_proof_for_another_token_or_without_ath_is_refused():
    refused(proof(), "ath does not match", token="another.token.value")
    refused(proof(drop=("ath",)), "ath does not match")


def test_a_proof_is_used_once_within_its_window_then_forgotten():
    clock = Clock()
    checks = ProofChecker(clock=clock, max_age_seconds=60, leeway_seconds=5)
    replay = ReplayCache(clock=clock)
    accepted = checks.check(proof(), method="POST", uri=URI, access_token=TOKEN)
    replay.first_use(accepted, keep_until=checks.keep_until())
    with pytest.raises(ProofRejected, match="replayed"):
        replay.first_use(accepted, keep_until=checks.keep_until())
    # The same jti from another key is another proof.
    replay.first_use(checks.check(proof(OTHER_EC_KEY), method="POST", uri=URI, access_token=TOKEN),
                     keep_until=checks.keep_until())
    # Forgotten only once no check would accept the proof any more.
    clock.now += checks.window_seconds - 1
    with pytest.raises(ProofRejected, match="replayed"):
        replay.first_use(accepted, keep_until=checks.keep_until())
    with pytest.raises(ProofRejected, match="too old"):
        checks.check(proof(), method="POST", uri=URI, access_token=TOKEN)
    clock.now += 1
    assert len(replay) == 2
    replay.first_use(Proof(thumbprint="t", jti="new", iat=clock.now), keep_until=checks.keep_until())
    assert len(replay) == 1  # both expired entries went


def test_a_full_replay_cache_refuses_rather_than_forgets():
    clock = Clock()
    replay = ReplayCache(max_entries=2, clock=clock)
    for jti in ("a", "b"):
        replay.first_use(Proof(thumbprint="t", jti=jti, iat=NOW), keep_until=NOW + 70)
    with pytest.raises(ProofRejected, match="too many recent proofs"):
        replay.first_use(Proof(thumbprint="t", jti="c", iat=NOW), keep_until=NOW + 70)
    with pytest.raises(ProofRejected, match="replayed"):
        replay.first_use(Proof(thumbprint="t", jti="a", iat=NOW), keep_until=NOW + 70)
    clock.now += 70
    replay.first_use(Proof(thumbprint="t", jti="c", iat=clock.now), keep_until=clock.now + 70)


def test_with_nonces_a_proof_needs_a_current_one():
    clock = Clock()
    nonces = NonceSource(b"k" * 32, step_seconds=60, clock=clock)
    checks = ProofChecker(clock=clock, nonces=nonces)
    with pytest.raises(NonceRequired):
        checks.check(proof(), method="POST", uri=URI, access_token=TOKEN)
    nonce = nonces.current()
    assert checks.check(proof(nonce=nonce), method="POST", uri=URI, access_token=TOKEN).jti == "jti-1"
    # Another deployment's nonce, or one made up, is not accepted.
    for other in (NonceSource(b"o" * 32, clock=clock).current(), "made-up", ""):
        with pytest.raises(NonceRequired):
            checks.check(proof(nonce=other), method="POST", uri=URI, access_token=TOKEN)
    # Good for the step it was made in and the next one, then stale.
    clock.now += 60
    assert nonces.accepts(nonce)
    clock.now += 60
    assert not nonces.accepts(nonce)
    with pytest.raises(NonceRequired):
        checks.check(proof(nonce=nonce, iat=clock.now), method="POST", uri=URI, access_token=TOKEN)


def test_a_nonce_made_by_one_replica_is_accepted_by_another_with_the_same_secret():
    clock = Clock()
    assert NonceSource(b"s" * 32, clock=clock).accepts(NonceSource(b"s" * 32, clock=clock).current())


def test_a_short_nonce_secret_is_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        NonceSource(b"short")


def test_reasons_carry_no_key_or_token_material():
    for value, kwargs in ((proof(header={"jwk": private_jwk(EC_KEY)}), {}), (proof(), {"token": "other.token"}),
                          (proof(OTHER_EC_KEY, header={"jwk": public_jwk(EC_KEY)}), {})):
        with pytest.raises(ProofRejected) as caught:
            check(value, **kwargs)
        jwk = private_jwk(EC_KEY)
        assert not {jwk["d"], jwk["x"], TOKEN, "other.token", value} & set(str(caught.value).split())
