"""Agent signing keys: one directory per agent under .local/keys/, private keys never leave it.

This module owns the directory's layout; nothing else writes it:

    <kid>.pem     EC P-256 private key (PKCS#8), one per published key; kid = RFC 7638 thumbprint
    current       the kid that signs new client assertions
    signing.jwk   the current key again, as a private JWK (RFC 7517) carrying its kid

Readers need only `signing.jwk`, a standard format: the demo agent is given that file
(AGENT_KEY_FILE) and knows nothing of the rest. The MCP server's own client key is read from
`current` and `<kid>.pem` (services/mcp-server, client_auth.py).

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

ALGORITHM = "ES256"
KEY_SUFFIX = ".pem"
CURRENT_FILE = "current"
SIGNING_JWK = "signing.jwk"


def key_path(directory: Path, kid: str) -> Path:
    return directory / f"{kid}{KEY_SUFFIX}"


def signing_jwk_path(directory: Path) -> Path:
    return directory / SIGNING_JWK


def current_key(directory: Path) -> tuple[str, bytes]:
    """(kid, PEM) of the key that signs now; for readers that want the PEM (the tests)."""
    key = KeyDirectory(directory).current()
    return key.kid, key.private_pem


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

    def private_jwk(self) -> dict[str, str]:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"key {self.kid} is not an EC key")
        jwk = json.loads(ECAlgorithm.to_jwk(key))
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
        try:
            kid = (self.path / CURRENT_FILE).read_text().strip()
            return SigningKey(kid, key_path(self.path, kid).read_bytes())
        except OSError as exc:
            raise FileNotFoundError(
                f"no signing key in {self.path} ({exc.strerror}); run `make up` to create the keys"
            ) from None

    def ensure(self) -> SigningKey:
        """Return the signing key, creating the first one if the agent has none."""
        if (self.path / CURRENT_FILE).is_file():
            current = self.current()
            if not signing_jwk_path(self.path).is_file():  # a directory made before signing.jwk existed
                self._write_signing_jwk(current)
            return current
        return self.rotate()

    def _write_signing_jwk(self, key: SigningKey) -> None:
        # Replaced atomically: an agent reading it for an assertion sees the old key or the new one.
        tmp = self.path / f".{SIGNING_JWK}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
        with os.fdopen(fd, "w") as f:
            json.dump(key.private_jwk(), f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, self.file_mode)
        os.replace(tmp, signing_jwk_path(self.path))

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
        new = SigningKey(kid, pem)
        self._write_signing_jwk(new)
        by_age = sorted(self.path.glob(f"*{KEY_SUFFIX}"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in by_age[max(keep, 1):]:
            old.unlink()
        return new

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every key, the signing key first: a client that signs without `kid` (the TypeScript
        SDK's PrivateKeyJwtProvider) is verified by Keycloak against the first key it finds."""
        current = self.current().kid
        return {"keys": [k.public_jwk() for k in sorted(self.keys(), key=lambda k: k.kid != current)]}
