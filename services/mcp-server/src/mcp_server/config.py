"""Typed configuration, read from MCP_* environment variables (names match compose.yaml)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .scopes import ScopePolicy

DEFAULT_PORTS = {"https": 443, "http": 80}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCP_", frozen=True)

    # The authorization server's issuer, compared exactly with the token's `iss` (RFC 8414 §3.3).
    issuer: str = "https://auth.localhost/realms/mcp"
    # The canonical URL of this MCP server: PRM `resource` and the required token audience.
    resource_url: str = "https://mcp.localhost/mcp"
    resource_name: str = "MCP auth sandbox"
    # Where to fetch the signing keys. Unset: discovered from the issuer's RFC 8414 metadata.
    jwks_url: str | None = None
    # Extra CA bundle for outgoing HTTPS (the sandbox's local CA). Unset: system trust store.
    ca_bundle: Path | None = None
    # Scope names at the authorization server for the two roles tools declare (scopes.py).
    tools_scope: str = "mcp:tools"
    admin_scope: str = "mcp:admin"
    # What Keycloak signs access tokens with; never `none` or HMAC (RFC 8725 §3.1).
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    leeway_seconds: int = 10
    max_token_bytes: int = 8192
    # Largest request body the scope gate reads (and so the largest the server accepts): 413 above.
    max_body_bytes: int = 1024 * 1024
    # An unknown `kid` triggers at most one JWKS refresh per this interval.
    jwks_min_refresh_seconds: float = 30.0
    # Cached keys are refreshed in the background of a request after this age; if the
    # refresh fails (Keycloak down) the cached keys keep working.
    jwks_max_age_seconds: float = 3600.0
    # How long a token with an unknown `kid` may wait for the refresh it triggers (known kids never wait).
    jwks_unknown_kid_wait_seconds: float = 3.0
    # Browser origins allowed to call this server cross-origin (CORS) and past the Origin check
    # (RS20), space-separated: exact origins, or `scheme://host:*` for any port of that host.
    # Never `*`: a page's origin is the only thing that tells the server which site is calling.
    cors_allowed_origins: str = "http://localhost:* http://127.0.0.1:* http://[::1]:*"
    # Proxies whose X-Forwarded-* headers are believed (the Caddy front's address).
    trusted_proxies: str = "127.0.0.1"
    # On SIGTERM, fail /healthz and keep serving this long before stopping, so the load balancer
    # takes the replica out of rotation first (mcp_server/shutdown.py). 0: stop at once.
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=300)
    # How long an idle kept-alive connection stays open. Longer than any proxy in front keeps
    # one idle (Caddy: 2 min; the AWS template's ALB: 300 s), so the proxy closes an idle
    # connection, never this server. Otherwise a request sent just as the server closes the
    # connection fails, and a proxy does not retry a POST: a 502 for a tool call that never ran.
    keep_alive_seconds: int = Field(default=310, ge=1)
    host: str = "0.0.0.0"  # noqa: S104  (inside its container, reached only through the TLS front)
    port: int = 8000
    log_level: str = "INFO"

    @cached_property
    def scope_policy(self) -> ScopePolicy:
        return ScopePolicy(tools_scope=self.tools_scope, admin_scope=self.admin_scope)

    @cached_property
    def public_hosts(self) -> list[str]:
        """Host header values naming this server (RS20): with and without the default port,
        which are the same origin (RFC 9110 §4.2.3)."""
        parts = urlsplit(self.resource_url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        if port == DEFAULT_PORTS[parts.scheme]:
            return [host, f"{host}:{port}"]
        return [f"{host}:{port}"]

    @cached_property
    def public_origins(self) -> list[str]:
        scheme = urlsplit(self.resource_url).scheme
        return [f"{scheme}://{h}" for h in self.public_hosts]

    @cached_property
    def cors_origins(self) -> list[str]:
        origins = self.cors_allowed_origins.split()
        for origin in origins:
            base = origin.removesuffix(":*")
            parts = urlsplit(base)
            is_origin = parts.scheme in ("http", "https") and parts.hostname and not (parts.path or parts.query)
            if not is_origin or "*" in base:
                raise ValueError(f"MCP_CORS_ALLOWED_ORIGINS: {origin!r} is not an origin (scheme://host[:port]) "
                                 "or scheme://host:* ; `*` is never allowed")
        return origins

    @cached_property
    def cors_origin_regex(self) -> str:
        """The allow-list as one regular expression (full match), `:*` meaning any port."""
        alternatives = [
            re.escape(o.removesuffix(":*")) + r":\d{1,5}" if o.endswith(":*") else re.escape(o) for o in self.cors_origins
        ]
        return "|".join(alternatives) or "(?!)"

    @cached_property
    def mcp_path(self) -> str:
        return urlsplit(self.resource_url).path or "/"
