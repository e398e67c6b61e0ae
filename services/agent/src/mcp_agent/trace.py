"""--trace: print every HTTP exchange of the OAuth dance, in order, with secrets masked.

Hooked into httpx2's event hooks, so it sees exactly what the SDK sends: discovery (PRM, AS
metadata), registration, the token requests, and the MCP calls.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx2

# Every parameter that proves or grants something: the authorization code and its state (RFC 6749
# §4.1), the PKCE verifier (RFC 7636), client credentials and assertions (RFC 6749 §2.3, RFC 7523),
# tokens in any position (RFC 6749 §5.1, RFC 7009 `token`, RFC 8693 `subject_token`, OIDC
# `id_token_hint`).
SECRET_PARAMS = frozenset({
    "code", "state", "code_verifier", "client_secret", "client_assertion", "assertion", "password",
    "access_token", "refresh_token", "id_token", "id_token_hint", "token", "subject_token", "actor_token",
})
SHOWN_HEADERS = ("www-authenticate", "location", "content-type", "dpop-nonce")


def mask(value: str) -> str:
    return value[:6] + "…" if len(value) > 10 else "…"


def _mask_query(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query and not parts.fragment:
        return url
    # The fragment too: an implicit or form_post-style answer would carry tokens there.
    return urlunsplit(parts._replace(query=_masked_pairs(parts.query), fragment=_masked_pairs(parts.fragment)))


def _masked_pairs(encoded: str) -> str:
    # Decoded for reading (this is a trace for people, not a URL to reuse).
    pairs = parse_qsl(encoded, keep_blank_values=True)
    return "&".join(f"{k}={mask(v) if k in SECRET_PARAMS else v}" for k, v in pairs)


class Tracer:
    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.step = 0

    async def on_request(self, request: httpx2.Request) -> None:
        self.step += 1
        print(f"\n[{self.step}] → {request.method} {_mask_query(str(request.url))}", file=self.out)
        auth = request.headers.get("authorization")
        if auth:
            scheme, _, credential = auth.partition(" ")
            print(f"      authorization: {scheme} {mask(credential)}", file=self.out)
        if "dpop" in request.headers:
            # RFC 9449 proof: no secret in it, but masked like the token it goes with.
            print(f"      dpop: {mask(request.headers['dpop'])}", file=self.out)
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            print(f"      form: {_masked_pairs(request.content.decode('latin-1'))}", file=self.out)
        for name in ("mcp-protocol-version", "mcp-method", "mcp-name"):
            if name in request.headers:
                print(f"      {name}: {request.headers[name]}", file=self.out)

    async def on_response(self, response: httpx2.Response) -> None:
        print(f"    ← {response.status_code} {response.reason_phrase}", file=self.out)
        for name in SHOWN_HEADERS:
            if name in response.headers:
                print(f"      {name}: {_mask_query(response.headers[name])}", file=self.out)

    def hooks(self) -> dict[str, list[Callable[..., Any]]]:
        return {"request": [self.on_request], "response": [self.on_response]}


def redact_tokens(text: str) -> str:
    """Mask anything that looks like a JWT in free text (used for error messages)."""
    return re.sub(r"eyJ[\w-]+\.[\w-]+\.[\w-]*", "eyJ…", text)
