"""Which client identity to use (MCP C10/C11), decided from the AS's metadata.

Order: the agent's CIMD URL if the authorization server advertises
`client_id_metadata_document_supported` (portable, nothing to register, keys rotate by
publishing); else the pre-registered client if one is configured; else dynamic registration
(deprecated in MCP 2026-07-28, still what many servers offer). The SDK makes the CIMD-or-DCR
choice itself; only `auto` with a pre-registered client needs to look first, and it looks with
the SDK's own discovery helpers.
"""

from __future__ import annotations

import httpx2
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    handle_auth_metadata_response,
    handle_protected_resource_response,
)
from mcp.shared.auth import OAuthMetadata

from .config import AgentSettings


async def authorization_server_metadata(http: httpx2.AsyncClient, server_url: str) -> OAuthMetadata | None:
    """The MCP server's authorization server metadata, found as the SDK finds it (401 challenge,
    RFC 9728 PRM, then RFC 8414 / OIDC discovery)."""
    challenge = await http.post(server_url, json={}, headers={"accept": "application/json, text/event-stream"})
    auth_server = None
    for url in build_protected_resource_metadata_discovery_urls(
        extract_resource_metadata_from_www_auth(challenge), server_url
    ):
        prm = await handle_protected_resource_response(await http.get(url))
        if prm:
            auth_server = str(prm.authorization_servers[0])
            break
    for url in build_oauth_authorization_server_metadata_discovery_urls(auth_server, server_url):
        ok, metadata = await handle_auth_metadata_response(await http.get(url))
        if not ok:
            break
        if metadata:
            return metadata
    return None


async def authorization_server_supports_cimd(http: httpx2.AsyncClient, server_url: str) -> bool:
    metadata = await authorization_server_metadata(http, server_url)
    return bool(metadata and getattr(metadata, "client_id_metadata_document_supported", False))


def observed(settings: AgentSettings, client_id: str | None) -> str:
    """What the SDK actually used: asking for CIMD still ends in DCR when the AS does not
    advertise CIMD support, so the identity in use is reported, not the one asked for."""
    if client_id and client_id == settings.client_metadata_url:
        return "cimd"
    if client_id and client_id == settings.preregistered_client_id:
        return "preregistered"
    return "dcr"


async def choose(settings: AgentSettings, http: httpx2.AsyncClient) -> str:
    if settings.registration != "auto":
        return settings.registration
    if not settings.preregistered_client_id:
        return "cimd" if settings.client_metadata_url else "dcr"
    if settings.client_metadata_url and await authorization_server_supports_cimd(http, settings.server_url):
        return "cimd"
    return "preregistered"
