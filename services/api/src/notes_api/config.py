"""Typed configuration, read from API_* environment variables (names match compose.yaml).

Token validation is the MCP server's own verifier (mcp_server.verifier, mcp_server.jwks): this
API is a second resource server of the same authorization server, so it takes the same checks
and the same settings, with its own audience. `verifier_settings` is that one translation.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_server.config import Settings as VerifierSettings

# What each route needs (RFC 6750 §3.1 insufficient_scope names them). Keycloak grants them only
# to holders of the realm role notes-user (services/keycloak/realm/mcp-realm.json), and only in
# tokens whose audience is this API.
READ = "notes:read"
WRITE = "notes:write"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", frozen=True)

    # The authorization server's issuer, compared exactly with the token's `iss`.
    issuer: str = "https://auth.localhost/realms/mcp"
    # This API's public URL: its Keycloak client id and so the `aud` its tokens must carry.
    url: str = "https://api.localhost"
    # Where to fetch the signing keys. Unset: discovered from the issuer's RFC 8414 metadata.
    jwks_url: str | None = None
    # Extra CA bundle for outgoing HTTPS (the sandbox's local CA). Unset: system trust store.
    ca_bundle: Path | None = None
    # Where the notes live (store.py). Unset database_url: the SQLite file `database` (on a named
    # volume in compose, so a restart keeps them; one API container). Set, a PostgreSQL URL
    # without a password (postgresql://notes@postgres:5432/notes, TOPOLOGY=ha): the notes are
    # shared by every replica (postgres.py); the password comes from database_password_file.
    database: Path = Path("/data/notes.sqlite3")
    # No password in the URL, ever; the user in it, or in database_user.
    database_url: str | None = Field(default=None, pattern=r"^postgres(ql)?://([^:@/]+@)?[^@]*$")
    database_password_file: Path | None = None
    # Where the platform hands secrets over as environment variables (ECS task secrets, the AWS
    # template: API_DATABASE_USER / API_DATABASE_PASSWORD from Secrets Manager), not files.
    database_user: str | None = None
    database_password: SecretStr | None = None
    # Notes per user, and characters per note: a caller cannot fill the disk.
    max_notes_per_user: int = Field(default=200, ge=1)
    max_note_chars: int = Field(default=2000, ge=1)
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    leeway_seconds: int = 10
    max_token_bytes: int = 8192
    jwks_min_refresh_seconds: float = 30.0
    jwks_max_age_seconds: float = Field(default=300.0, gt=0, le=86400)
    jwks_unknown_kid_wait_seconds: float = 3.0
    # Proxies whose X-Forwarded-* headers are believed (the Caddy front's address).
    trusted_proxies: str = "127.0.0.1"
    host: str = "0.0.0.0"  # noqa: S104  (inside its container, reached only through the TLS front)
    port: int = 8000
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _database_credentials(self) -> Settings:
        if self.database_url:
            if "@" not in self.database_url and not self.database_user:
                raise ValueError("API_DATABASE_URL names no user: put it in the URL or set API_DATABASE_USER")
            if self.database_password_file is not None and self.database_password is not None:
                raise ValueError("set API_DATABASE_PASSWORD_FILE or API_DATABASE_PASSWORD, not both")
        return self

    @cached_property
    def verifier_settings(self) -> VerifierSettings:
        """The MCP server's verifier settings, aimed at this API: the same issuer, algorithms,
        size and time bounds and key-cache policy; `aud` must be this API's URL (RFC 8707 §2),
        and no MCP scope vocabulary is advertised (audience_scope empty)."""
        return VerifierSettings(
            issuer=self.issuer,
            resource_url=self.url,
            audience=None,
            scope_claim="scope",
            audience_scope="",
            jwks_url=self.jwks_url,
            ca_bundle=self.ca_bundle,
            algorithms=self.algorithms,
            leeway_seconds=self.leeway_seconds,
            max_token_bytes=self.max_token_bytes,
            jwks_min_refresh_seconds=self.jwks_min_refresh_seconds,
            jwks_max_age_seconds=self.jwks_max_age_seconds,
            jwks_unknown_kid_wait_seconds=self.jwks_unknown_kid_wait_seconds,
            introspect_privileged=False,
        )

    @cached_property
    def metadata_url(self) -> str:
        """RFC 9728 §3: this API's protected resource metadata (its URL has no path)."""
        return self.url.rstrip("/") + "/.well-known/oauth-protected-resource"
