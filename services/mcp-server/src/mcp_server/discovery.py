"""The authorization server's RFC 8414 metadata: where its keys and endpoints are.

Fetched once, when first needed (the JWKS URL, the introspection endpoint), and kept: the
document names endpoints, which do not move under a running server. A failed fetch is not kept,
so the next caller tries again.
"""

from __future__ import annotations

from typing import Any

import httpx2


class AuthorizationServerMetadata:
    def __init__(self, http: httpx2.AsyncClient, issuer: str) -> None:
        self._http = http
        self._issuer = issuer
        self._document: dict[str, Any] | None = None

    async def endpoint(self, name: str) -> str:
        """The URL the metadata gives for `name` (`jwks_uri`, `introspection_endpoint`, …)."""
        if self._document is None:
            self._document = await self._fetch()
        value = self._document.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"AS metadata has no {name}")
        return value

    async def _fetch(self) -> dict[str, Any]:
        # RFC 8414 §3: the path-inserted well-known URL; §3.3: the issuer in it must match exactly.
        scheme, rest = self._issuer.split("://", 1)
        host, _, path = rest.partition("/")
        url = f"{scheme}://{host}/.well-known/oauth-authorization-server/{path}".rstrip("/")
        response = await self._http.get(url)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict) or document.get("issuer") != self._issuer:
            issuer = document.get("issuer") if isinstance(document, dict) else None
            raise ValueError(f"AS metadata issuer {issuer!r} is not {self._issuer!r}")
        return document
