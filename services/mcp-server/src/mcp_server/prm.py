"""RFC 9728 Protected Resource Metadata, served where every client generation looks for it.

The SDK serves the path-inserted URL (/.well-known/oauth-protected-resource/mcp) with only the
required scopes; these routes replace it with the full document and add the root URL (RS3).
`scopes_supported` is what the tools declare (scopes.ScopePolicy.supported): the audience scope
first, then every permission scope.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.routing import Route

from .config import Settings
from .scopes import ScopePolicy

ROOT_PATH = "/.well-known/oauth-protected-resource"


def metadata_url(settings: Settings) -> str:
    return str(build_resource_metadata_url(AnyHttpUrl(settings.resource_url)))


def document(settings: Settings, policy: ScopePolicy) -> ProtectedResourceMetadata:
    dpop = settings.dpop != "off"
    return ProtectedResourceMetadata(
        # RS3a: `resource` is the canonical URL exactly as configured (no trailing slash added).
        resource=AnyHttpUrl(settings.resource_url),
        authorization_servers=[AnyHttpUrl(settings.issuer)],  # RS2
        scopes_supported=list(policy.supported),  # RS7: no offline_access
        resource_name=settings.resource_name,
        # RFC 9728 §2 with RFC 9449: which proof algorithms this server checks, and whether a
        # plain bearer token is refused (MCP_DPOP=required).
        dpop_signing_alg_values_supported=list(settings.dpop_algorithms) if dpop else None,
        dpop_bound_access_tokens_required=True if settings.dpop == "required" else None,
    )


def routes(settings: Settings, policy: ScopePolicy) -> list[Route]:
    # The SDK's handler and CORS wrapper (create_protected_resource_routes, which cannot take the
    # DPoP members), at the path-inserted URL it would use and at the root URL.
    handler = ProtectedResourceMetadataHandler(document(settings, policy))
    endpoint = cors_middleware(handler.handle, ["GET", "OPTIONS"])
    path_inserted = urlsplit(metadata_url(settings)).path
    return [Route(path, endpoint=endpoint, methods=["GET", "OPTIONS"]) for path in dict.fromkeys([path_inserted, ROOT_PATH])]
