"""Agent signing keys: one directory per agent under .local/keys/, private keys never leave it.

The directory's layout is the agent's (``mcp_agent.assertion``: ``<kid>.pem`` files and
``current``), defined there once: the agent reads what this writes.

Every key present is published in the JWKS, so rotation (add a key, switch ``current``) keeps
assertions signed with the old key valid until it is removed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from mcp_agent.assertion import CURRENT_FILE, KEY_SUFFIX, KeyFile, key_path

ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes

    def public_jwk(self) -> dict[str, str]:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"key {self.kid} is not an EC key")
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


def _thumbprint_kid(public_key: ec.EllipticCurvePublicKey) -> str:
    # RFC 7638 JWK thumbprint: a kid derived from the key, stable and collision-free.
    jwk = json.loads(ECAlgorithm.to_jwk(public_key))
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class KeyDirectory:
    """`readable_in_container`: a service container (the MCP server, which runs as its own uid)
    reads the key through a bind mount, so the directory and files are world-readable as the
    secrets of .local/secrets are; the parent directory (.local/keys, 0700) keeps other host users
    out. Agents' keys stay 0700/0600 (the agent container runs as the host user)."""

    def __init__(self, path: Path, *, readable_in_container: bool = False) -> None:
        self.path = path
        self.dir_mode, self.file_mode = (0o755, 0o644) if readable_in_container else (0o700, 0o600)

    def keys(self) -> list[SigningKey]:
        if not self.path.is_dir():
            return []
        return [SigningKey(p.stem, p.read_bytes()) for p in sorted(self.path.glob(f"*{KEY_SUFFIX}"))]

    def current(self) -> SigningKey:
        return SigningKey(*KeyFile(self.path).current())

    def ensure(self) -> SigningKey:
        """Return the signing key, creating the first one if the agent has none."""
        if (self.path / CURRENT_FILE).is_file():
            return self.current()
        return self.rotate()

    def rotate(self, keep: int = 2) -> SigningKey:
        """Add a new key and make it the signing key. The newest `keep` keys stay published
        (so assertions signed just before the switch still verify); older ones are deleted."""
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        os.chmod(self.path, self.dir_mode)
        private = ec.generate_private_key(ec.SECP256R1())
        kid = _thumbprint_kid(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        target = key_path(self.path, kid)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        (self.path / CURRENT_FILE).write_text(kid + "\n")
        os.chmod(self.path / CURRENT_FILE, self.file_mode)
        by_age = sorted(self.path.glob(f"*{KEY_SUFFIX}"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in by_age[max(keep, 1):]:
            old.unlink()
        return SigningKey(kid, pem)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every key, the signing key first: a client that signs without `kid` (the TypeScript
        SDK's PrivateKeyJwtProvider) is verified by Keycloak against the first key it finds."""
        current = self.current().kid
        return {"keys": [k.public_jwk() for k in sorted(self.keys(), key=lambda k: k.kid != current)]}
