"""A compromised agent key: the operator publishes a JWKS without it and makes Keycloak forget
the keys it cached; from then on assertions signed with it are refused.

Keycloak caches a client's public keys and fetches the JWKS again only for an unknown `kid`, so
removing a key from the JWKS alone does not revoke it (the key stays usable until the cache
expires). Revocation therefore has two steps (docs/security.md, "Compromised agent key"); this
test proves both are needed and together enough. It uses a throwaway client and throwaway keys.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from testcontainers.compose import DockerCompose

from tests.support.cimd import authorize_url, document, publisher
from tests.support.keycloak import delete_clients, nodes
from tests.support.keys import forget_keys
from tests.support.stack import Stack

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Key:
    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex[:12]
        self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict:
        return {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key())), "kid": self.kid,
                "use": "sig", "alg": "ES256"}

    def assertion(self, client_id: str, audience: str) -> str:
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        now = int(time.time())
        return jwt.encode({"iss": client_id, "sub": client_id, "aud": audience, "jti": str(uuid.uuid4()),
                           "iat": now, "exp": now + 60}, pem, algorithm="ES256", headers={"kid": self.kid})


def test_a_revoked_key_is_refused_once_keycloak_forgets_it(stack: Stack, compose: DockerCompose):
    old, new = Key(), Key()
    with publisher(stack) as pub, stack.client() as http:
        jwks_path = pub.publish("jwks", {"keys": [old.jwk()]})
        client_id = pub.publish("client", document(stack, pub.url("client"), jwks_uri=jwks_path))
        assert http.get(authorize_url(stack, client_id)).status_code == 200  # Keycloak creates the client

        def authenticate(key: Key) -> str:
            """The token endpoint's verdict on client authentication alone: a bogus code is
            `invalid_grant` once the client is authenticated, `invalid_client` before."""
            response = http.post(stack.token_endpoint(), data={
                "grant_type": "authorization_code", "code": "bogus", "redirect_uri": stack.callback_url, "client_id": client_id,
                "code_verifier": "v" * 64, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": key.assertion(client_id, stack.token_endpoint())})
            return response.json()["error"]

        assert authenticate(old) == "invalid_grant"
        pub.publish("jwks", {"keys": [new.jwk()]})  # step 1: the compromised key is unpublished
        if len(nodes(compose)) == 1:
            # ... but Keycloak still holds it in its cache. (With two nodes behind the front, the
            # request may reach the node that never cached it, which fetches the new set.)
            assert authenticate(old) == "invalid_grant"
        forget_keys()  # step 2: every node forgets the cached keys (make rotate-keys does this too)
        assert authenticate(old) == "invalid_client"
        assert authenticate(new) == "invalid_grant"  # the agent's new key works
        assert delete_clients(compose, stack, pub.prefix) == 1
