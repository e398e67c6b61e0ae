"""Tokens built from raw JSON text, for what `jwt.encode` refuses to produce: a JOSE header or a
claims set of any JSON type, size and nesting (a `kid` that is a number, a `crit` list, `NaN`, an
integer past any float, arrays nested past the parser's recursion limit), RS256-signed with the
fake authorization server's key so the checks behind the signature are reached too.

`tokens` is the Hypothesis strategy the verifier's fuzz tests draw from: the header and the claims
of a valid token, each as it is or with up to three members removed, replaced or added (or, one in
ten, replaced by a value that is not an object), and a signature that is valid, garbage or missing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import strategies as st

from tests.support.authorization_server import KID, claims_for


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_object(members: Mapping[str, str]) -> bytes:
    """A JSON object from member names and their values as raw JSON text."""
    return ("{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in members.items()) + "}").encode()


def sign(key: rsa.RSAPrivateKey, header: bytes, claims: bytes) -> str:
    """The JWS compact serialization of raw header and claims text, RS256 (RFC 7515 §7.1)."""
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def signed(key: rsa.RSAPrivateKey, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """`sign` for Python values (json.dumps writes NaN and Infinity as Python's json reads them)."""
    return sign(key, json.dumps(header).encode(), json.dumps(claims).encode())


def _nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _digits(count: int) -> str:
    return "9" * count


def _long_string(length: int) -> str:
    return json.dumps("x" * length)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Any JSON value, as raw text.
raw_values: st.SearchStrategy[str] = st.one_of(
    _values.map(json.dumps),  # every JSON type; floats include NaN and ±Infinity
    st.integers(1, 2500).map(_nested_arrays),  # past the JSON parser's recursion limit
    st.integers(1, 1200).map(_nested_objects),
    st.integers(20, 1000).map(_digits),  # an integer no float can hold
    st.integers(0, 7000).map(_long_string),  # up to past the token size cap
    st.sampled_from([
        '"RS256"', '"none"', '"HS256"', '"ES256"', '"JWT"', '"at+jwt"', '"dpop+jwt"', json.dumps(KID), '"b64"',
        '["b64"]', '["exp"]', '[]', '[5]', '""', "true", "false", "null", "0", "-1", "1.5", "1e308", "-1e308",
        '"1700000000"', '"Bearer"', '"ID"', '"mcp:tools"', '"mcp:admin mcp:audit"', '["mcp:admin"]',
        '"caf\\u00e9"', '"line\\nbreak"', '"quote\\"d"', '"\\u0000"', '"\\ud800"',
    ]),
)

HEADER_NAMES = ["alg", "typ", "kid", "crit", "b64", "jku", "jwk", "x5u", "x5c", "cty", "zip", "enc"]
CLAIM_NAMES = ["exp", "iat", "nbf", "iss", "aud", "sub", "azp", "client_id", "typ", "scope", "jti", "preferred_username"]


def _edits(names: list[str]) -> st.SearchStrategy[dict[str, str | None]]:
    """Up to three members removed (None), replaced by any value, or added."""
    return st.dictionaries(st.sampled_from(names) | st.text(max_size=8), st.none() | raw_values, max_size=3)


_header_edits = _edits(HEADER_NAMES)
_claims_edits = _edits(CLAIM_NAMES)


def _apply(base: dict[str, str], edits: dict[str, str | None]) -> bytes:
    members = dict(base)
    for name, value in edits.items():
        if value is None:
            members.pop(name, None)
        else:
            members[name] = value
    return json_object(members)


@st.composite
def tokens(draw: st.DrawFn, key: rsa.RSAPrivateKey, resource: str) -> str:
    # Half the headers are left as the AS writes them, so the claims behind them are reached;
    # one header and one claims set in ten are not objects at all.
    header_shape, claims_shape = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    header_base = {"alg": '"RS256"', "typ": '"JWT"', "kid": json.dumps(KID)}
    header = (draw(raw_values).encode() if header_shape == 9 else
              _apply(header_base, draw(_header_edits) if header_shape >= 5 else {}))
    # Made now, so an unedited `exp` is in the future whenever the example runs.
    claims_base = {k: json.dumps(v) for k, v in claims_for(resource).items()}
    claims = (draw(raw_values).encode() if claims_shape == 9 else
              _apply(claims_base, draw(_claims_edits) if claims_shape >= 2 else {}))
    token = sign(key, header, claims)
    ending = draw(st.sampled_from(["valid", "valid", "valid", "garbage", "missing"]))
    if ending == "garbage":
        return token.rsplit(".", 1)[0] + ".AAAA"
    if ending == "missing":
        return token.rsplit(".", 1)[0] + "."
    return token
