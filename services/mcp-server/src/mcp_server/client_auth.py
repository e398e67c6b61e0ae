"""This server's own client authentication at the authorization server: `private_key_jwt`
(RFC 7523 §2.2, OpenID Connect Core §9), used for token introspection (introspection.py).

The key directory has the layout cimd-host writes for every key it manages (.local/keys/<name>/):

    <kid>.pem   EC P-256 private key (PKCS#8)
    current     the kid that signs

It is read for every assertion (two small files, at most one assertion per token per cache
window), so a rotation — a new key, `current` switched — needs no restart. Platforms that pass
secrets as variables (ECS from Secrets Manager, the AWS template) give the key itself instead:
MCP_CLIENT_KEY_ID and MCP_CLIENT_KEY_PEM; a rotation there is a new secret version and a redeploy.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
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
    # RFC 7523 §3: the assertion's `aud` identifies the AS; Keycloak accepts its issuer URL.
    audience: str
    key_dir: Path | None = None
    # Or the key itself: (kid, PEM). Never printed (repr=False).
    key: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return str(self.key_dir) if self.key is None else "MCP_CLIENT_KEY_PEM"

    def signing_key(self) -> tuple[str, bytes]:
        if self.key is not None:
            return self.key[0], self.key[1].encode()
        if self.key_dir is None:
            raise ClientKeyError("no client signing key: set MCP_CLIENT_KEY_DIR, or MCP_CLIENT_KEY_ID and MCP_CLIENT_KEY_PEM")
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
            raise ClientKeyError(f"{self.where}: key {kid} is not an EC P-256 private key") from None
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
