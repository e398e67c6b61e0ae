"""RFC 7523 client assertions: claims, kid, lifetime."""

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_agent.assertion import ASSERTION_TYPE, LIFETIME_SECONDS, client_assertion, form_fields


def test_assertion_names_client_audience_and_key():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    token = client_assertion(client_id="https://cimd.localhost/agents/demo/metadata.json",
                             audience="https://auth.localhost/realms/mcp", key_id="k1", private_key=pem, now=1000)
    assert jwt.get_unverified_header(token)["kid"] == "k1"
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"], audience="https://auth.localhost/realms/mcp",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == claims["sub"] == "https://cimd.localhost/agents/demo/metadata.json"
    assert claims["exp"] - claims["iat"] == LIFETIME_SECONDS
    assert claims["jti"]
    second = client_assertion(client_id="c", audience="a", key_id="k1", private_key=pem, now=1000)
    assert jwt.decode(second, options={"verify_signature": False})["jti"] != claims["jti"]  # single-use ids
    assert form_fields(token) == {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token}
