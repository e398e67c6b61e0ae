"""Typed configuration, read from MCP_* environment variables (names match compose.yaml)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import tools
from .scopes import ScopePolicy, scope_token

DEFAULT_PORTS = {"https": 443, "http": 80}


class ConfigurationError(Exception):
    """The settings do not fit together (found while building the app); one line, no traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCP_", frozen=True)

    # The authorization server's issuer, compared exactly with the token's `iss` (RFC 8414 §3.3).
    issuer: str = "https://auth.localhost/realms/mcp"
    # The canonical URL of this MCP server: PRM `resource` and the required token audience.
    resource_url: str = "https://mcp.localhost/mcp"
    # The `aud` a token must carry, where the AS names this server otherwise than by its URL
    # (Entra ID's v2 tokens: the application's client id). Unset: MCP_RESOURCE_URL.
    audience: str | None = None
    # The claim that carries the granted scopes: `scope` (RFC 9068; Keycloak, Auth0, WorkOS) or
    # `scp` (Entra ID, Okta); a space-separated string or a JSON list of scopes.
    scope_claim: str = Field(default="scope", min_length=1)
    resource_name: str = "MCP auth sandbox"
    # Where to fetch the signing keys. Unset: discovered from the issuer's RFC 8414 metadata.
    jwks_url: str | None = None
    # Extra CA bundle for outgoing HTTPS (the sandbox's local CA). Unset: system trust store.
    ca_bundle: Path | None = None
    # The authorization server's names for scopes tools.py declares, where they differ: a JSON
    # object, declared name -> AS name (e.g. {"mcp:tools": "api://mcp/tools"}). Default: none.
    scope_names: dict[str, str] = Field(default_factory=dict)
    # The AS's scope that puts this server into the token's `aud` (advertised, never required);
    # empty: the AS needs none (advertise none).
    audience_scope: str = tools.SCOPES.audience
    # This server's own confidential client at the AS, for token introspection (RFC 7662) before
    # privileged tools. Unset: the resource URL (one `aud` serves both roles at Keycloak).
    client_id: str | None = None
    # Its private_key_jwt key directory: <kid>.pem files and `current` naming the kid that signs.
    client_key_dir: Path | None = None
    # Or the key itself, where secrets arrive as variables (the AWS template): its kid and PEM.
    client_key_id: str | None = None
    client_key_pem: SecretStr | None = None
    # Off: privileged tools trust the token alone, so a revoked session reaches them until `exp`.
    introspect_privileged: bool = True
    # Unset: the `introspection_endpoint` of the AS's RFC 8414 metadata.
    introspection_url: str | None = None
    # How long an introspection answer is reused per token (never past the token's `exp`).
    introspection_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # How long a privileged call waits for the AS before it is refused (503, fail closed).
    introspection_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # The notes API (services/api) the notes tools call as their user; unset: no notes tools. Its
    # URL is also its client id at the AS, the `audience` of the token exchange (RFC 8693).
    notes_api_url: str | None = None
    # The notes API's client id at the AS, the exchange's `audience` (and the `aud` the API
    # requires), when the server reaches the API at another address than its public URL (on AWS:
    # http://api.<stack>.internal:8000 through Cloud Map). Unset: MCP_NOTES_API_URL.
    notes_api_audience: str | None = None
    # How long a token exchange may take (metadata and request together) before the tool says so.
    # Half of it for the first attempt, the rest for one retry (exchange.py).
    exchange_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # An exchanged token is reused until this long before it expires (exchange.py).
    exchange_margin_seconds: float = Field(default=30.0, ge=0, le=600)
    # How long a call to the notes API may take before the tool says so.
    notes_api_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # What Keycloak signs access tokens with; never `none` or HMAC (RFC 8725 §3.1).
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    leeway_seconds: int = 10
    max_token_bytes: int = 8192
    # Largest request body the scope gate reads (and so the largest the server accepts): 413 above.
    max_body_bytes: int = 1024 * 1024
    # An unknown `kid` triggers at most one JWKS refresh per this interval.
    jwks_min_refresh_seconds: float = 30.0
    # Cached keys are refreshed in the background of a request after this age, so a key the AS
    # withdrew is trusted at most this long (plus the refresh); SIGHUP reloads at once. If the
    # refresh fails (Keycloak down) the cached keys keep working.
    jwks_max_age_seconds: float = Field(default=300.0, gt=0, le=86400)
    # How long a token with an unknown `kid` may wait for the refresh it triggers (known kids never wait).
    jwks_unknown_kid_wait_seconds: float = 3.0
    # Browser origins allowed to call this server cross-origin (CORS) and past the Origin check
    # (RS20), space-separated: exact origins, or `scheme://host:*` for any port of that host.
    # Never `*`: a page's origin is the only thing that tells the server which site is calling.
    cors_allowed_origins: str = "http://localhost:* http://127.0.0.1:* http://[::1]:*"
    # Proxies whose X-Forwarded-* headers are believed (the Caddy front's address).
    trusted_proxies: str = "127.0.0.1"
    # On SIGTERM, fail /readyz and keep serving this long before stopping, so the load balancer
    # takes the replica out of rotation first (mcp_server/shutdown.py). 0: stop at once.
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=300)
    # How long an idle kept-alive connection stays open. Longer than any proxy in front keeps
    # one idle (Caddy: 2 min; the AWS template's ALB: 300 s), so the proxy closes an idle
    # connection, never this server. Otherwise a request sent just as the server closes the
    # connection fails, and a proxy does not retry a POST: a 502 for a tool call that never ran.
    keep_alive_seconds: int = Field(default=310, ge=1)
    # Production: every error answer carries a generic `error_description` (the same for every
    # reason); the precise reason goes to the access log only. Off (the sandbox): the answer says it.
    generic_errors: bool = False
    # DPoP (RFC 9449, dpop.py): `allowed` takes DPoP-bound tokens with proofs and plain bearer
    # tokens; `required` only DPoP (PRM says dpop_bound_access_tokens_required); `off` only Bearer.
    # In every mode a DPoP-bound token presented as Bearer is refused (no downgrade).
    dpop: Literal["allowed", "required", "off"] = "allowed"
    # Asymmetric only (RFC 9449 §4.2); PRM's dpop_signing_alg_values_supported and the challenge's `algs`.
    dpop_algorithms: list[str] = Field(default_factory=lambda: ["ES256", "ES384", "PS256", "RS256", "EdDSA"])
    # A proof's `iat` may be this old (plus MCP_LEEWAY_SECONDS either way); its `jti` is kept as long.
    dpop_proof_max_age_seconds: float = Field(default=60.0, gt=0, le=600)
    # Proofs remembered against replay, per replica (a full cache refuses new proofs: never forgets early).
    dpop_replay_cache_size: int = Field(default=65536, ge=16)
    # Server nonces (RFC 9449 §9), required in every proof when set: a file holding the secret (at
    # least 32 bytes) that every replica shares, so a nonce from one is good at another.
    dpop_nonce_secret_file: Path | None = None
    host: str = "0.0.0.0"  # noqa: S104  (inside its container, reached only through the TLS front)
    port: int = 8000
    log_level: str = "INFO"

    @field_validator("scope_names")
    @classmethod
    def _scope_names(cls, names: dict[str, str]) -> dict[str, str]:
        for declared, renamed in names.items():
            scope_token(declared, "MCP_SCOPE_NAMES")
            scope_token(renamed, "MCP_SCOPE_NAMES")
        return names

    @model_validator(mode="after")
    def _jwks_bound(self) -> Settings:
        # The max age is the documented bound on trusting a withdrawn key; a refresh never starts
        # sooner than the min interval, which would silently become the bound.
        if self.jwks_max_age_seconds < self.jwks_min_refresh_seconds:
            raise ValueError("MCP_JWKS_MAX_AGE_SECONDS must not be below MCP_JWKS_MIN_REFRESH_SECONDS")
        return self

    @field_validator("dpop_algorithms")
    @classmethod
    def _dpop_algorithms(cls, algorithms: list[str]) -> list[str]:
        symmetric = sorted({"none", "HS256", "HS384", "HS512"} & set(algorithms))
        if symmetric or not algorithms:
            raise ValueError(f"MCP_DPOP_ALGORITHMS must be asymmetric algorithms, not {symmetric or 'none at all'}")
        return algorithms

    @field_validator("audience_scope")
    @classmethod
    def _audience_scope(cls, value: str) -> str:
        return scope_token(value, "MCP_AUDIENCE_SCOPE") if value else value

    @cached_property
    def scope_policy(self) -> ScopePolicy:
        """The declared scope vocabulary in the AS's names; `with_tools` adds the tools' needs."""
        return ScopePolicy(tools.SCOPES, audience=self.audience_scope or None, names=self.scope_names)

    @cached_property
    def expected_audience(self) -> str:
        return self.audience or self.resource_url

    @cached_property
    def own_client_id(self) -> str:
        return self.client_id or self.resource_url

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
