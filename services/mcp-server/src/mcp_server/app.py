"""Assembles the ASGI app: the SDK's MCPServer and its streamable-HTTP transport, served by this
project's Starlette app with the glue around it.

Request path, outermost first:
    AccessLog -> CORS (preflights answered before auth)
    -> ScopeGate (two Authorization headers: 400; bearer authentication with AccessTokenVerifier;
       401/403 challenges, per-tool scopes, introspection before privileged tools; the GET event
       stream ends at the token's exp, requests run to completion)
    -> SDK AuthContextMiddleware -> MCP transport (Host/Origin checks, RS20)
PRM (prm.py) and health (health.py) are routes of this app, outside the gate.

Only public SDK API: the route of `MCPServer.streamable_http_app()`, with `session_manager.run()`
in our lifespan (as the SDK documents for serving its app inside another), `AuthContextMiddleware`,
`AuthenticatedUser`.
test_app.py and test_bearer.py fail, naming what to change, if the SDK's transport app or its
bearer authentication stop being what this composition assumes.
"""

from __future__ import annotations

import logging
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware

from . import health, prm, tools
from .access_log import AccessLog
from .authorization import ScopeGate
from .client_auth import ClientKeyError, PrivateKeyJWT
from .config import ConfigurationError, Settings
from .cors import CORS
from .discovery import AuthorizationServerMetadata
from .dpop import ProofOfPossession
from .exchange import TokenExchange
from .introspection import Introspection
from .notes import NotesAPI
from .scopes import ScopePolicy
from .shutdown import Drain
from .verifier import AccessTokenVerifier, verifier_for

log = logging.getLogger(__name__)

# What a browser client sends (Authorization, the MCP headers of both protocol generations)
# and what it must be able to read from our answers (the challenge, the protocol version).
CORS_REQUEST_HEADERS = ["authorization", "dpop", "content-type", "accept", "mcp-protocol-version", "mcp-session-id",
                        "last-event-id", "mcp-method", "mcp-name"]
CORS_EXPOSED_HEADERS = ["www-authenticate", "dpop-nonce", "mcp-protocol-version", "mcp-session-id"]
INSTRUCTIONS = ("Demo MCP server of the OAuth sandbox. get_time and whoami need mcp:tools; recent_calls needs "
                "mcp:audit; server_stats needs mcp:admin and a session the authorization server still holds active. "
                "list_notes, add_note and delete_note (when configured) call the notes API as you, by token exchange.")


def http_client(settings: Settings) -> httpx2.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if settings.ca_bundle:
        verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
    return httpx2.AsyncClient(verify=verify, timeout=10.0, follow_redirects=False)


def transport_app(server: MCPServer, settings: Settings) -> Starlette:
    """The SDK's streamable-HTTP app for `server`, as this project configures it."""
    return server.streamable_http_app(
        streamable_http_path=settings.mcp_path,
        # Stateless: no session state, any replica behind a load balancer can answer (RS21).
        stateless_http=True,
        json_response=True,
        # RS20: Host and Origin must be this server's public name; on, not switched off.
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=settings.public_hosts,
            # Browser clients on the CORS allow-list pass too (same `:*` syntax as the SDK's).
            allowed_origins=settings.public_origins + settings.cors_origins,
        ),
        host=settings.host,
    )


def own_client(settings: Settings, needed_by: str) -> PrivateKeyJWT:
    """This server's own client at the AS (private_key_jwt), for `needed_by`; ConfigurationError
    if it has no usable key."""
    key = None
    if settings.client_key_pem is not None:
        if not settings.client_key_id:
            raise ConfigurationError("MCP_CLIENT_KEY_PEM is set: set MCP_CLIENT_KEY_ID to its kid too")
        key = (settings.client_key_id, settings.client_key_pem.get_secret_value())
    elif settings.client_key_dir is None:
        raise ConfigurationError(
            f"{needed_by}: set MCP_CLIENT_KEY_DIR to this server's client key directory (<kid>.pem files and `current`; "
            "or MCP_CLIENT_KEY_ID and MCP_CLIENT_KEY_PEM)")
    client = PrivateKeyJWT(client_id=settings.own_client_id, key_dir=settings.client_key_dir, key=key,
                           audience=settings.issuer)
    try:
        client.form_fields()  # a key that cannot sign stops the start, not the first call that needs it
    except ClientKeyError as exc:
        raise ConfigurationError(f"the MCP server's client key: {exc}") from None
    return client


def introspection_for(
    settings: Settings, policy: ScopePolicy, http: httpx2.AsyncClient, metadata: AuthorizationServerMetadata
) -> Introspection | None:
    """The introspection privileged tools need, or None if no tool is privileged or it is off.
    ConfigurationError if it is needed and this server cannot authenticate to the AS."""
    if not policy.privileged_tools:
        return None
    tools_named = ", ".join(policy.privileged_tools)
    if not settings.introspect_privileged:
        log.warning("MCP_INTROSPECT_PRIVILEGED=false: privileged tools (%s) trust the token alone; a revoked session "
                    "reaches them until its token expires", tools_named)
        return None
    if settings.client_key_pem is None and settings.client_key_dir is None:
        raise ConfigurationError(
            f"privileged tools ({tools_named}) check revocation by token introspection: set MCP_CLIENT_KEY_DIR to this "
            "server's client key directory (<kid>.pem files and `current`; or MCP_CLIENT_KEY_ID and MCP_CLIENT_KEY_PEM), "
            "or MCP_INTROSPECT_PRIVILEGED=false to let revoked sessions reach them until their tokens expire")
    return Introspection(
        http,
        client=own_client(settings, f"privileged tools ({tools_named})"),
        metadata=metadata,
        endpoint=settings.introspection_url,
        cache_seconds=settings.introspection_cache_seconds,
        timeout=settings.introspection_timeout_seconds,
    )


def notes_api_for(settings: Settings, http: httpx2.AsyncClient, metadata: AuthorizationServerMetadata) -> NotesAPI | None:
    """The notes API client of the notes tools (token exchange as this server's own client), or
    None without MCP_NOTES_API_URL."""
    if settings.notes_api_url is None:
        return None
    exchange = TokenExchange(
        http,
        client=own_client(settings, "the notes tools exchange tokens for the notes API (MCP_NOTES_API_URL)"),
        metadata=metadata,
        endpoint=None,
        timeout=settings.exchange_timeout_seconds,
        margin=settings.exchange_margin_seconds,
    )
    return NotesAPI(http, exchange, url=settings.notes_api_url,
                    audience=settings.notes_api_audience or settings.notes_api_url,
                    timeout=settings.notes_api_timeout_seconds)


def create_app(
    settings: Settings,
    *,
    http: httpx2.AsyncClient | None = None,
    verifier: AccessTokenVerifier | None = None,
    drain: Drain | None = None,
) -> Starlette:
    """Build the server: the SDK's MCPServer and transport, behind this project's layers.

    `http` is the one client for every call to the AS (default: `http_client(settings)`, closed
    with the app); ConfigurationError if the settings and the declared tools do not fit."""
    own_http = http is None
    http = http or http_client(settings)
    metadata = AuthorizationServerMetadata(http, settings.issuer)
    # SIGHUP reloads the signing keys at once (jwks.py): the operator's path after withdrawing a
    # key, unreachable from the network. Only for the keys this app fetches itself.
    reload_signal = signal.SIGHUP if verifier is None else None
    if verifier is None:
        verifier = verifier_for(settings, http, metadata)
    keys = verifier.keys

    # No `auth=` here: with it, the SDK would build its own bearer layers around the transport, and
    # the scope gate has to run between authentication and the transport. The gate authenticates
    # with the same decision (bearer.py) and hands over to the SDK's AuthContextMiddleware; PRM is
    # prm.py's (with every scope, at both well-known URLs).
    server = MCPServer(name="mcp-auth-sandbox", instructions=INSTRUCTIONS)
    tool_table = tools.register(server, notes_api_for(settings, http, metadata))
    try:
        policy = settings.scope_policy.with_tools(tool_table.declarations)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    checks = introspection_for(settings, policy, http, metadata)
    try:
        pop = ProofOfPossession(settings)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"MCP_DPOP_NONCE_SECRET_FILE: {exc}") from None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await tool_table.check()  # deny by default: no tool without a scope declaration
        # The transport's lifespan (its session manager), which runs where its routes are served.
        async with server.session_manager.run(), keys.running(reload_signal=reload_signal):
            await keys.warm()
            yield
        if own_http:
            await http.aclose()

    return Starlette(
        routes=[
            *transport_app(server, settings).routes,  # the MCP endpoint, first: matched first
            *prm.routes(settings, policy),
            # Liveness (/livez) and readiness (/readyz: a signing key held, not draining): health.py.
            *health.routes(keys, drain),
        ],
        middleware=[
            Middleware(AccessLog),
            # CORS for clients that run in a browser page: the preflight is answered here, before
            # the bearer check (a preflight carries no credentials, and a 401 to it fails the real
            # request); the 401/403 challenges are readable by the page (WWW-Authenticate exposed).
            # No cookies are involved, so no Allow-Credentials; origins only from the allow-list,
            # never `*`.
            Middleware(
                CORS,
                allow_origin_regex=settings.cors_origin_regex,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_EXPOSED_HEADERS,
                allow_credentials=False,
                max_age=600,
            ),
            # Inside CORS, so a browser page can read the 400 for two credentials and the challenges.
            Middleware(
                ScopeGate,
                verifier=verifier,
                mcp_path=settings.mcp_path,
                resource_metadata_url=prm.metadata_url(settings),
                policy=policy,
                max_body_bytes=settings.max_body_bytes,
                introspection=checks,
                generic_errors=settings.generic_errors,
                pop=pop,
            ),
        ],
        lifespan=lifespan,
    )
