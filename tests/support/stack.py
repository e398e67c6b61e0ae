"""What `make up`/`make test` generated for this checkout: URLs, CA, keys, secrets — or, for
`make test-remote`, what the environment says about a deployment this checkout did not start."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest

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


# `make test-remote`: everything the black-box tests know about the deployment under test.
REMOTE_VARIABLES = {
    "MCP_TEST_ISSUER": "the authorization server's issuer, https://<auth host>/realms/mcp",
    "MCP_TEST_RESOURCE_URL": "the MCP server's URL, https://<mcp host>/mcp",
    "MCP_TEST_CIMD_ORIGIN": "the CIMD host's origin, https://<cimd host>",
    "MCP_TEST_PASSWORD_FILE": "a file holding the password of the realm's test user alice",
    "MCP_TEST_MACHINE_KEY_DIR": "the machine client's key directory (<kid>.pem files and `current`)",
}
# The only parts of .local a remote run has: (kind, name) -> the variable naming it.
REMOTE_FILES = {("keys", "machine"): "MCP_TEST_MACHINE_KEY_DIR", ("secrets", "demo-user-password"): "MCP_TEST_PASSWORD_FILE"}
OPTIONAL_REMOTE_VARIABLES = {
    "MCP_TEST_CA_BUNDLE": "a CA file to trust (default: the system trust store)",
    "MCP_TEST_CALLBACK_PORT": "the loopback port of the pre-registered clients' redirect URIs (default 8976)",
    "MCP_TEST_API_URL": "the notes API's URL, https://<api host>, if the deployment has it (its tests skip without)",
    "MCP_TEST_MCP_REPLICAS": "how many MCP server replicas answer behind the URL (default 1): each keeps its own DPoP replay cache",
}


def remote() -> bool:
    return os.environ.get("MCP_TEST_REMOTE") == "1"


def skip_remote(what: str) -> None:
    """In `make test-remote`, a test that needs more than the deployment's public face skips, saying what."""
    if remote():
        pytest.skip(f"needs {what}, which only a sandbox started by this checkout has (make test-remote)")


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    # make test-remote: the MCP_TEST_* variables (REMOTE_VARIABLES); None for the sandbox.
    remote: dict[str, str] | None = field(default=None)

    @classmethod
    def from_remote_environment(cls, environ: os._Environ[str] | dict[str, str] = os.environ) -> Stack:
        missing = [f"{name} ({why})" for name, why in REMOTE_VARIABLES.items() if not environ.get(name)]
        if missing:
            raise pytest.UsageError("make test-remote needs: " + "; ".join(missing))
        given = {name: environ[name] for name in [*REMOTE_VARIABLES, *OPTIONAL_REMOTE_VARIABLES] if environ.get(name)}
        issuer = given["MCP_TEST_ISSUER"].rstrip("/")
        if not issuer.endswith("/realms/mcp"):
            raise pytest.UsageError(f"MCP_TEST_ISSUER must be the realm `mcp` of the realm files, got {issuer}")
        parts = urlsplit(issuer)
        env = {"AUTH_ORIGIN": f"{parts.scheme}://{parts.netloc}", "MCP_RESOURCE_URL": given["MCP_TEST_RESOURCE_URL"],
               "CIMD_ORIGIN": given["MCP_TEST_CIMD_ORIGIN"].rstrip("/"),
               "AGENT_CALLBACK_PORT": given.get("MCP_TEST_CALLBACK_PORT", "8976"),
               **({"API_URL": given["MCP_TEST_API_URL"].rstrip("/")} if "MCP_TEST_API_URL" in given else {})}
        replicas = given.get("MCP_TEST_MCP_REPLICAS", "1")
        if not replicas.isdigit() or int(replicas) < 1:
            raise pytest.UsageError(f"MCP_TEST_MCP_REPLICAS must be a whole number of at least 1, got {replicas}")
        return cls(env, given)

    @property
    def mcp_replicas(self) -> int:
        """MCP server replicas behind the resource URL: 2 in TOPOLOGY=ha, else 1; remotely, what
        MCP_TEST_MCP_REPLICAS says (default 1)."""
        if self.remote is not None:
            return int(self.remote.get("MCP_TEST_MCP_REPLICAS", "1"))
        return 2 if self.env.get("TOPOLOGY", "single") == "ha" else 1

    @property
    def auth_origin(self) -> str:
        return self.env["AUTH_ORIGIN"]

    @property
    def issuer(self) -> str:
        return f"{self.auth_origin}/realms/mcp"

    def realm_url(self, realm: str) -> str:
        if realm != "mcp" and self.remote is not None:
            skip_remote(f"the sandbox's second realm `{realm}`")
        return f"{self.auth_origin}/realms/{realm}"

    def token_endpoint(self, realm: str = "mcp") -> str:
        return f"{self.realm_url(realm)}/protocol/openid-connect/token"

    @property
    def resource_url(self) -> str:
        return self.env["MCP_RESOURCE_URL"]

    @property
    def api_url(self) -> str:
        """The notes API's URL (and its client id at Keycloak): the sandbox's downstream API."""
        if "API_URL" not in self.env:
            skip_remote("the notes API's URL (MCP_TEST_API_URL)")
        return self.env["API_URL"]

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
    def ca_file(self) -> Path | None:
        if self.remote is not None:
            given = self.remote.get("MCP_TEST_CA_BUNDLE")
            return Path(given) if given else None
        return STATE / "ca" / "ca.pem"

    def key_dir(self, agent: str) -> Path:
        return self._state("keys", agent)

    def secret(self, name: str) -> str:
        return self.secret_file(name).read_text().strip()

    def secret_file(self, name: str) -> Path:
        return self._state("secrets", name)

    def _state(self, kind: str, name: str) -> Path:
        """A file or directory of .local — against a remote deployment, the one the environment
        names for it (REMOTE_FILES), or a skip saying what is missing."""
        if self.remote is None:
            return STATE / kind / name
        variable = REMOTE_FILES.get((kind, name))
        if variable is None:
            skip_remote(f"the sandbox's {kind[:-1]} `{name}`")
        return Path(self.remote[variable])

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        # Only the sandbox CA: proves the certificates chain to it, not to some system root.
        # (Against a remote deployment without a CA file: the system trust store.)
        ca = self.ca_file
        return ssl.create_default_context(cafile=str(ca)) if ca else ssl.create_default_context()

    def client(self, **kwargs) -> httpx2.Client:
        return httpx2.Client(transport=sync_transport(self.ssl_context), timeout=30.0, **kwargs)

    def async_client(self, **kwargs) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=async_transport(self.ssl_context), timeout=30.0, **kwargs)
