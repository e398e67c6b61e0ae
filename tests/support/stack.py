"""What `make up`/`make test` generated for this checkout: URLs, CA, keys, secrets."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import httpx2

from mcp_agent.localhost import async_transport, sync_transport

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local"
COMPOSE_DIR = ROOT / "compose"


def read_env(path: Path = COMPOSE_DIR / ".env") -> dict[str, str]:
    """compose/.env as env.sh writes it: KEY=VALUE lines, no expansion; a value with spaces is
    in single quotes, literal for both readers of the file (docker compose and
    compose/scripts/with-env.sh, which sources it)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run the tests with `make test` (it prepares the checkout)")
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            env[key] = value
    return env


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]

    @property
    def auth_origin(self) -> str:
        return self.env["AUTH_ORIGIN"]

    @property
    def issuer(self) -> str:
        return f"{self.auth_origin}/realms/mcp"

    def realm_url(self, realm: str) -> str:
        return f"{self.auth_origin}/realms/{realm}"

    def token_endpoint(self, realm: str = "mcp") -> str:
        return f"{self.realm_url(realm)}/protocol/openid-connect/token"

    @property
    def resource_url(self) -> str:
        return self.env["MCP_RESOURCE_URL"]

    @property
    def mcp_origin(self) -> str:
        return self.resource_url.rsplit("/", 1)[0]

    @property
    def cimd_origin(self) -> str:
        return self.env["CIMD_ORIGIN"]

    @property
    def callback_port(self) -> int:
        return int(self.env["AGENT_CALLBACK_PORT"])

    @property
    def callback_url(self) -> str:
        """The agent's loopback redirect URI, as the realm and the CIMD document register it."""
        return f"http://127.0.0.1:{self.callback_port}/callback"

    @property
    def ca_file(self) -> Path:
        return STATE / "ca" / "ca.pem"

    def key_dir(self, agent: str) -> Path:
        return STATE / "keys" / agent

    def secret(self, name: str) -> str:
        return self.secret_file(name).read_text().strip()

    def secret_file(self, name: str) -> Path:
        return STATE / "secrets" / name

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        # Only the sandbox CA: proves the certificates chain to it, not to some system root.
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, **kwargs) -> httpx2.Client:
        return httpx2.Client(transport=sync_transport(self.ssl_context), timeout=30.0, **kwargs)

    def async_client(self, **kwargs) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=async_transport(self.ssl_context), timeout=30.0, **kwargs)
