"""RFC 7523 §2.2 client assertions (`private_key_jwt`), signed with the agent's current key.

The SDK's SignedJWTParameters cannot set a `kid` header; Keycloak (and any AS holding several
keys during a rotation) needs it to pick the verification key, so the assertion is built here.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME_SECONDS = 60  # Keycloak refuses assertions older than 60 s; jti makes them single-use.


class KeyFileError(Exception):
    """The signing key file is missing or not a usable private JWK."""


class SigningKeyFile:
    """The agent's signing key: one private JWK (RFC 7517 §4; `kid` and `alg` included) in a file.

    A standard format that carries its own `kid`, so the agent needs nothing of how the keys are
    kept: cimd-host owns the key directory and replaces this file atomically when it rotates the
    key. The file is read for every assertion, so a rotation applies without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def current(self) -> jwt.PyJWK:
        try:
            data = json.loads(self.path.read_text())
        except OSError as exc:
            raise KeyFileError(f"no signing key at {self.path} ({exc.strerror}); run `make up` to create the keys") from None
        except ValueError:
            raise KeyFileError(f"{self.path} is not a JSON Web Key") from None
        if not isinstance(data, dict) or "d" not in data or not data.get("kid"):
            raise KeyFileError(f"{self.path} is not a private JWK with a kid")
        try:
            return jwt.PyJWK(data)
        except jwt.PyJWTError as exc:
            raise KeyFileError(f"{self.path}: {exc}") from None


def client_assertion(
    *,
    client_id: str,
    audience: str,
    key_id: str,
    private_key: Any,
    algorithm: str = "ES256",
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        # RFC 7523 §3: the token endpoint (Keycloak also accepts the issuer URL).
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "exp": issued + LIFETIME_SECONDS,
    }
    # private_key: a PEM or a key object (a PyJWK's .key)
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": key_id, "typ": "JWT"})


def form_fields(assertion: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
