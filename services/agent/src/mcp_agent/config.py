"""Typed agent configuration from AGENT_* variables (names match compose.yaml) and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

Registration = Literal["auto", "cimd", "preregistered", "dcr"]


def read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty (expected a client secret)")
    return secret


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_")

    server_url: str = "https://mcp.localhost/mcp"
    # Extra CA file (the sandbox's local CA). Unset: the system trust store.
    ca_bundle: Path | None = None
    # Tokens and client registrations, one file per MCP server (mode 0600).
    state_dir: Path = Path.home() / ".local" / "state" / "mcp-agent"

    # How the agent identifies itself (MCP C10/C11); `auto` = CIMD if the AS supports it,
    # else the pre-registered client if one is configured, else dynamic registration.
    registration: Registration = "auto"
    client_metadata_url: str | None = "https://cimd.localhost/agents/demo/metadata.json"
    # The CIMD identity's signing key for private_key_jwt: a private JWK (RFC 7517) with its kid,
    # which cimd-host keeps current (.local/keys/demo/signing.jwk).
    key_file: Path | None = None
    preregistered_client_id: str | None = None
    # A pre-registered *confidential* client: its secret, read from this file (never an
    # environment value), sent as HTTP Basic at the token endpoint (client_secret_basic).
    # Unset: the pre-registered client is public (PKCE only).
    preregistered_client_secret_file: Path | None = None
    # The loopback redirect's port: AGENT_CALLBACK_PORT, chosen in compose/.env (make), where the
    # CIMD document, the realm's pre-registered client and the published port read it too.
    callback_port: int
    callback_bind: str = "127.0.0.1"
    client_name: str = "MCP sandbox demo agent"

    # Machine mode: client credentials with a private_key_jwt assertion (pre-registered client).
    machine_client_id: str = "mcp-machine-agent"
    machine_key_file: Path | None = None
    # The AS the machine client is registered with (the SDK only mints assertions for it).
    machine_issuer: str | None = "https://auth.localhost/realms/mcp"
    machine_scope: str | None = "mcp:tools"
    # Client credentials with a shared secret (client_secret_basic) instead of a key: the
    # secret's file. Unset: private_key_jwt with the key in machine_key_file.
    machine_client_secret_file: Path | None = None

    # DPoP (RFC 9449): proofs at the token endpoint and on every MCP request, with the agent's
    # own key (dpop.jwk in state_dir). Off: Bearer tokens, for comparing the two.
    dpop: bool = True

    # `chat`: the model, at any OpenAI-compatible chat-completions endpoint (chat_completions.py).
    # The API key only from a file, like every secret here; unset for endpoints that need none.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key_file: Path | None = None
    llm_timeout_seconds: float = 120.0
    # Model steps (each a completion, its tool calls run) per user message before the agent stops.
    chat_max_steps: int = 8

    open_browser: bool = True
    login_timeout_seconds: float = 300.0

    def preregistered_client_secret(self) -> str | None:
        return read_secret(self.preregistered_client_secret_file)

    def machine_client_secret(self) -> str | None:
        return read_secret(self.machine_client_secret_file)

    @property
    def dpop_key_file(self) -> Path:
        return self.state_dir / "dpop.jwk"

    @property
    def redirect_uri(self) -> str:
        """RFC 8252 §7.3: loopback IP literal, the registered port, one path."""
        return f"http://127.0.0.1:{self.callback_port}/callback"
