"""Client ID Metadata Documents published for a test on the real CIMD host (.local/cimd-public
is what https://cimd.localhost serves). Each document has a unique URL, since Keycloak caches
fetched documents for at least five minutes."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from tests.support.stack import STATE, Stack


def document(stack: Stack, client_id: str, **fields: object) -> dict[str, object]:
    """A document Keycloak accepts (the demo agent's shape), with `fields` overriding."""
    base: dict[str, object] = {
        "client_id": client_id,
        "client_name": "security test client",
        "redirect_uris": [stack.callback_url],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "scope": "mcp:tools",
    }
    return {**base, **fields}


@contextmanager
def publisher(stack: Stack) -> Iterator[Publisher]:
    run = secrets.token_hex(6)
    pub = Publisher(stack, run)
    try:
        yield pub
    finally:
        shutil.rmtree(STATE / "cimd-public" / "security" / run, ignore_errors=True)


class Publisher:
    def __init__(self, stack: Stack, run: str) -> None:
        self.stack = stack
        self.run = run

    @property
    def prefix(self) -> str:
        """Every URL this publisher serves starts with it (and so every client Keycloak made of them)."""
        return f"{self.stack.cimd_origin}/security/{self.run}/"

    def url(self, name: str) -> str:
        return f"{self.prefix}{name}.json"

    def publish(self, name: str, body: dict[str, object]) -> str:
        path = STATE / "cimd-public" / "security" / self.run / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body))
        return self.url(name)


def authorize_url(stack: Stack, client_id: str, redirect_uri: str | None = None, **extra: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": client_id, "redirect_uri": redirect_uri or stack.callback_url,
        "response_type": "code", "scope": "openid mcp:tools",
        "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256", **extra,
    }
    return f"{stack.issuer}/protocol/openid-connect/auth?{urlencode(query)}"
