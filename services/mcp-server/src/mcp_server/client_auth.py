"""This server's own client authentication at the authorization server: `private_key_jwt`
(RFC 7523 §2.2, OpenID Connect Core §9), used for token introspection (introspection.py).

The key directory has the layout cimd-host writes for every key it manages (.local/keys/<name>/):

    <kid>.pem   EC P-256 private key (PKCS#8)
    current     the kid that signs

It is read for every assertion (two small files, at most one assertion per token per cache
window), so a rotation — a new key, `current` switched — needs no restart.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
ALGORITHM = "ES256"
# Keycloak refuses assertions older than 60 s; the random jti makes each one single-use.
LIFETIME_SECONDS = 60
CURRENT_FILE = "current"
KEY_SUFFIX = ".pem"


class ClientKeyError(Exception):
    """The key directory holds no usable signing key (the message says why; no key material)."""


@dataclass(frozen=True)
class PrivateKeyJWT:
    client_id: str
    key_dir: Path
    # RFC 7523 §3: the assertion's `aud` identifies the AS; Keycloak accepts its issuer URL.
    audience: str

    def signing_key(self) -> tuple[str, bytes]:
        try:
            kid = (self.key_dir / CURRENT_FILE).read_text().strip()
            if not kid or Path(kid).name != kid:
                raise ClientKeyError(f"{self.key_dir / CURRENT_FILE} does not name a key")
            return kid, (self.key_dir / f"{kid}{KEY_SUFFIX}").read_bytes()
        except OSError as exc:
            raise ClientKeyError(f"no client signing key in {self.key_dir} ({exc.strerror}: {exc.filename})") from None

    def form_fields(self) -> dict[str, str]:
        """The token-endpoint-style client authentication parameters, with a fresh assertion."""
        kid, pem = self.signing_key()
        issued = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "exp": issued + LIFETIME_SECONDS,
        }
        try:
            # The `kid` lets the AS pick the key while a rotation publishes two.
            assertion = jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})
        except (ValueError, TypeError, jwt.PyJWTError):
            raise ClientKeyError(f"{self.key_dir / (kid + KEY_SUFFIX)} is not an EC P-256 private key") from None
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
