"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document) for the agents.

The document must be readable by Keycloak, whose parser is strict (keycloak#51039): only fields
of its OIDC client representation are allowed, and every URL in it must sit on a trusted host.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

# Properties Keycloak's CIMD fetch accepts and that this project uses.
ALLOWED_FIELDS = frozenset(
    {
        "client_id",
        "client_name",
        "redirect_uris",
        "grant_types",
        "response_types",
        "token_endpoint_auth_method",
        "token_endpoint_auth_signing_alg",
        "jwks_uri",
        "scope",
        "dpop_bound_access_tokens",
    }
)
# CIMD -02 §4.1 and Keycloak's default upper-limit-metadata-bytes.
MAX_BYTES = 5000


def metadata_url(origin: str, agent: str) -> str:
    return f"{origin}/agents/{agent}/metadata.json"


def jwks_url(origin: str, agent: str) -> str:
    return f"{origin}/agents/{agent}/jwks.json"


# The demo agent's Bearer-allowed twin document (sandbox only): the same key and redirect URIs
# without `dpop_bound_access_tokens`, for the Bearer-only clients of the tests (TypeScript SDK 1.x)
# that sign in as a private_key_jwt CIMD client. docs/decisions.md, "Which clients must use DPoP".
BEARER_TWIN = "demo-bearer"


def demo_agent_document(origin: str, callback_port: int, *, require_dpop: bool = True) -> dict[str, object]:
    document: dict[str, object] = {
        "client_id": metadata_url(origin, "demo" if require_dpop else BEARER_TWIN),
        "client_name": "MCP sandbox demo agent" if require_dpop else "MCP sandbox demo agent (Bearer allowed, tests)",
        # RFC 8252 §7.3 loopback redirects; the agent listens on this port (AGENT_CALLBACK_PORT).
        "redirect_uris": [
            f"http://127.0.0.1:{callback_port}/callback",
            f"http://localhost:{callback_port}/callback",
        ],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        # RFC 7523 client authentication: Keycloak makes this a confidential client that must
        # prove possession of a key published at jwks_uri on every token request.
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks_uri": jwks_url(origin, "demo"),
        # Every scope the agent may ever ask for: Keycloak makes them the client's optional scopes,
        # and ignores any other. mcp:connect carries the MCP audience alone, so a user without an
        # MCP role still gets an audience-bound token (and a 403, not a 401 loop). Whether a
        # permission scope is granted is the user's roles' decision, not the document's.
        # offline_access: the agent keeps working after the browser session ends (refresh tokens).
        "scope": "mcp:connect mcp:tools mcp:audit mcp:admin offline_access",
    }
    if require_dpop:
        # RFC 9449 §5.2: Keycloak (26.7.3) makes the client it creates from this document refuse a
        # token request without a DPoP proof, so every token issued to the demo agent is bound.
        document["dpop_bound_access_tokens"] = True
    return document


# What a third-party client's document may ask for (cimd-host/clients/README.md).
THIRD_PARTY_SCOPES = frozenset({"mcp:connect", "mcp:tools", "mcp:audit", "mcp:admin", "offline_access"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _exact_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    return parts.scheme == "http" and host in LOOPBACK_HOSTS and "*" not in uri and "#" not in uri \
        and not parts.username and not parts.query


def client_url(origin: str, name: str) -> str:
    return f"{origin}/clients/{name}/metadata.json"


def third_party_document(origin: str, name: str, data: dict[str, object]) -> dict[str, object]:
    """A third-party client's document from its data file: public, loopback redirects only."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        raise ValueError(f"{name}: file names are lower-case letters, digits and hyphens")
    if "client_id" in data:
        raise ValueError(f"{name}: no client_id in the file; it is the document's URL")
    if data.get("token_endpoint_auth_method") != "none" or "jwks_uri" in data or "jwks" in data:
        raise ValueError(f"{name}: third-party documents are public clients (token_endpoint_auth_method none, no keys)")
    redirects = data.get("redirect_uris")
    if not isinstance(redirects, list) or not redirects:
        raise ValueError(f"{name}: redirect_uris must be a non-empty list")
    for uri in redirects:
        if not _exact_loopback_http(str(uri)):
            raise ValueError(f"{name}: redirect URI {uri!r} is not an exact loopback http URI")
    scopes = set(str(data.get("scope", "")).split())
    if not scopes <= THIRD_PARTY_SCOPES:
        raise ValueError(f"{name}: scopes not offered to third-party clients: {sorted(scopes - THIRD_PARTY_SCOPES)}")
    return {"client_id": client_url(origin, name), **data}


def validate(url: str, document: dict[str, object]) -> bytes:
    """Check the rules the authorization server will apply; return the serialized document."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.path.strip("/"):
        raise ValueError(f"client_id must be an https URL with a path: {url}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"client_id must have no query, fragment or userinfo: {url}")
    if any(seg in (".", "..") for seg in parts.path.split("/")):
        raise ValueError(f"client_id must have no dot segments: {url}")
    if document.get("client_id") != url:
        raise ValueError("document client_id must equal its URL exactly")
    unknown = set(document) - ALLOWED_FIELDS
    if unknown:
        raise ValueError(f"fields Keycloak would reject: {sorted(unknown)}")
    if any(str(k).startswith("client_secret") for k in document):
        raise ValueError("a metadata document must not carry client secrets")
    body = json.dumps(document, indent=2).encode() + b"\n"
    if len(body) > MAX_BYTES:
        raise ValueError(f"document is {len(body)} bytes; the limit is {MAX_BYTES}")
    return body
