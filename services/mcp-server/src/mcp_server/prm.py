"""RFC 9728 Protected Resource Metadata, served where every client generation looks for it.

The SDK serves the path-inserted URL (/.well-known/oauth-protected-resource/mcp) with only the
required scopes; these routes replace it with the full document and add the root URL (RS3).
`scopes_supported` is what the tools declare (scopes.ScopePolicy.supported): the audience scope
first, then every permission scope.
"""

from __future__ import annotations

from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from pydantic import AnyHttpUrl
from starlette.routing import Route

from .config import Settings
from .scopes import ScopePolicy

ROOT_PATH = "/.well-known/oauth-protected-resource"


def metadata_url(settings: Settings) -> str:
    return str(build_resource_metadata_url(AnyHttpUrl(settings.resource_url)))


def routes(settings: Settings, policy: ScopePolicy) -> list[Route]:
    (path_inserted,) = create_protected_resource_routes(
        # RS3a: `resource` is the canonical URL exactly as configured (no trailing slash added).
        resource_url=AnyHttpUrl(settings.resource_url),
        authorization_servers=[AnyHttpUrl(settings.issuer)],  # RS2
        scopes_supported=list(policy.supported),  # RS7: no offline_access
        resource_name=settings.resource_name,
    )
    root = Route(ROOT_PATH, endpoint=path_inserted.endpoint, methods=["GET", "OPTIONS"])
    return [path_inserted, root]
