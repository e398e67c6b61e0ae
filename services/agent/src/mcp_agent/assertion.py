"""RFC 7523 §2.2 client assertions (`private_key_jwt`), signed with the agent's current key.

The SDK's SignedJWTParameters cannot set a `kid` header; Keycloak (and any AS holding several
keys during a rotation) needs it to pick the verification key, so the assertion is built here.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME_SECONDS = 60  # Keycloak refuses assertions older than 60 s; jti makes them single-use.


# The key directory's layout, defined here only (cimd-host writes it, the agent reads it):
#   <kid>.pem   EC P-256 private key (PKCS#8, mode 0600)
#   current     the kid that signs new client assertions
KEY_SUFFIX = ".pem"
CURRENT_FILE = "current"


def key_path(directory: Path, kid: str) -> Path:
    return directory / f"{kid}{KEY_SUFFIX}"


class KeyFile:
    """The agent's key directory (layout above)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def current(self) -> tuple[str, bytes]:
        try:
            kid = (self.directory / CURRENT_FILE).read_text().strip()
            return kid, key_path(self.directory, kid).read_bytes()
        except OSError as exc:
            raise FileNotFoundError(
                f"no signing key in {self.directory} ({exc.strerror}); run `make up` to create the keys"
            ) from None


def client_assertion(
    *,
    client_id: str,
    audience: str,
    key_id: str,
    private_key_pem: bytes,
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
    return jwt.encode(claims, private_key_pem, algorithm=algorithm, headers={"kid": key_id, "typ": "JWT"})


def form_fields(assertion: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
