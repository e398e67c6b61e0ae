"""The demo agent's OAuth as a library: one entry point, `agent_auth`, for any MCP client.

    from mcp_agent import AgentSettings, agent_auth

    agent = await agent_auth(AgentSettings())      # AGENT_* variables, or keyword arguments
    # what every MCP client framework takes: an httpx2.Auth, and an httpx2.AsyncClient factory
    auth, factory = agent.auth, agent.http_client

`agent.auth` is an `httpx2.Auth` that does everything the demo agent does: discovery (RFC 9728,
RFC 8414), the client identity (CIMD with `private_key_jwt`, a pre-registered client, dynamic
registration as the fallback; registration.py), PKCE with a browser sign-in and a loopback
redirect (callback.py), client credentials with a key or a secret (`machine=True`), tokens kept in
a 0600 file and refreshed across restarts (storage.py, provider.py), step-up on 403
`insufficient_scope` (the SDK's), and DPoP (dpop.py; `AgentSettings.dpop`, on by default).
`agent.http_client` builds the `httpx2.AsyncClient` those requests need — the sandbox CA,
proxies from the environment, `*.localhost` on hosts that do not resolve it (transport.py) — with
the MCP SDK's client-factory signature (`headers`, `timeout`, `auth`, more keywords passed on), so
it fits FastMCP's, pydantic-ai's and the OpenAI Agents SDK's `httpx_client_factory` as it is.

`connect()` in agent.py, the demo agent's own MCP session, is built on this and nothing else.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider, PrivateKeyJWTOAuthProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata
from pydantic import AnyUrl

from . import registration
from .assertion import SigningKeyFile, client_assertion
from .callback import CallbackListener, state_of
from .config import AgentSettings
from .dpop import Bindings, DPoPAuth, DPoPKeyFile
from .login import Login, RedirectHandler, noting_sign_ins, print_and_open
from .provider import AgentOAuthProvider
from .refusal import PermissionRefused, ScopeRefusals
from .storage import FileTokenStorage
from .trace import Tracer
from .transport import http_client, ssl_context


def signer(client_id: str, keys: SigningKeyFile) -> Callable[[str], str]:
    def sign(audience: str) -> str:
        key = keys.current()
        return client_assertion(client_id=client_id, audience=audience, key_id=str(key.key_id), private_key=key.key,
                                algorithm=key.algorithm_name)

    return sign


def _interactive_provider(
    settings: AgentSettings, storage: FileTokenStorage, chosen: str, redirect: RedirectHandler
) -> AgentOAuthProvider:
    metadata = OAuthClientMetadata(
        client_name=settings.client_name,
        redirect_uris=[AnyUrl(settings.redirect_uri)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",  # noqa: S106  (an auth method name, not a secret)
        application_type="native",  # C16
    )
    listener: CallbackListener | None = None
    provider: AgentOAuthProvider

    async def on_redirect(url: str) -> None:
        # Listen before the browser can come back; the SDK calls on_callback right after this.
        nonlocal listener
        # The listener accepts only the answer carrying this request's state (callback.py).
        listener = CallbackListener(settings.callback_port, settings.callback_bind, state=state_of(url)).start()
        try:
            await redirect(url)
        except BaseException:
            listener.stop()
            raise

    async def on_callback() -> AuthorizationCodeResult:
        assert listener is not None
        try:
            return await listener.wait(settings.login_timeout_seconds, provider.context.oauth_metadata)
        finally:
            listener.stop()

    assertion = None
    if chosen == "cimd" and settings.key_file:
        assertion = signer(settings.client_metadata_url or "", SigningKeyFile(settings.key_file))
    provider = AgentOAuthProvider(
        settings.server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=on_redirect,
        callback_handler=on_callback,
        client_metadata_url=settings.client_metadata_url if chosen == "cimd" else None,
        assertion=assertion,
    )
    return provider


async def _seed_preregistered(storage: FileTokenStorage, settings: AgentSettings) -> None:
    """The pre-registered client as the SDK's stored registration: public (PKCE only), or
    confidential with client_secret_basic when a secret is configured (MCP C11)."""
    secret = settings.preregistered_client_secret()
    wanted = OAuthClientInformationFull(
        client_id=settings.preregistered_client_id or "",
        client_secret=secret,
        redirect_uris=[AnyUrl(settings.redirect_uri)],
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        grant_types=["authorization_code", "refresh_token"],
    )
    current = await storage.get_client_info()
    if current is None or (current.client_id, current.client_secret) != (wanted.client_id, wanted.client_secret):
        await storage.set_client_info(wanted)


def _machine_provider(settings: AgentSettings, storage: FileTokenStorage) -> OAuthClientProvider:
    """Client credentials (no user): a shared secret sent as HTTP Basic if one is configured,
    else a private_key_jwt assertion (RFC 7523) from the machine key directory."""
    secret = settings.machine_client_secret()
    if secret:
        return ClientCredentialsOAuthProvider(
            settings.server_url,
            storage=storage,
            client_id=settings.machine_client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106  (a method name)
            scope=settings.machine_scope,
            issuer=settings.machine_issuer,
        )
    if not settings.machine_key_file:
        raise ValueError(
            "machine mode needs AGENT_MACHINE_KEY_FILE (the machine client's private JWK) "
            "or AGENT_MACHINE_CLIENT_SECRET_FILE (its secret)"
        )
    sign = signer(settings.machine_client_id, SigningKeyFile(settings.machine_key_file))

    async def assertion_provider(audience: str) -> str:
        return sign(audience)

    return PrivateKeyJWTOAuthProvider(
        settings.server_url,
        storage=storage,
        client_id=settings.machine_client_id,
        assertion_provider=assertion_provider,
        scope=settings.machine_scope,
        issuer=settings.machine_issuer,
    )


def with_dpop(settings: AgentSettings, provider: OAuthClientProvider, storage: FileTokenStorage) -> DPoPAuth:
    """The provider with DPoP proofs (dpop.py); which token the AS bound is kept with the tokens."""
    context = provider.context
    bindings = Bindings(read=lambda: storage.get_session().get("dpop_bound"),
                        write=lambda bound: storage.set_session(dpop_bound=bound))

    def token_endpoint() -> str | None:
        metadata = context.oauth_metadata
        return str(metadata.token_endpoint) if metadata and metadata.token_endpoint else None

    return DPoPAuth(provider, DPoPKeyFile(settings.dpop_key_file), bindings, token_endpoint)


def storage_for(settings: AgentSettings, *, machine: bool = False) -> FileTokenStorage:
    """The state file of this MCP server: one for the user's tokens, one for the machine's."""
    return FileTokenStorage(settings.state_dir, settings.server_url + ("#machine" if machine else ""))


@dataclass
class AgentAuth:
    """What `agent_auth` returns: the auth to hand a framework, and what goes with it."""

    settings: AgentSettings
    # The httpx2.Auth for the MCP client: the SDK's provider, with DPoP proofs when settings.dpop.
    auth: httpx2.Auth
    # The SDK's provider underneath (its `context` holds the tokens and the client registration).
    provider: OAuthClientProvider
    storage: FileTokenStorage
    login: Login
    machine: bool = False
    tracer: Tracer | None = None
    refusals: ScopeRefusals = field(init=False)
    ssl_context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        context = self.provider.context
        self.refusals = ScopeRefusals(
            granted=lambda: context.current_tokens.scope if context.current_tokens else None,
            issuer=lambda: str(context.oauth_metadata.issuer) if context.oauth_metadata else None,
        )
        self.ssl_context = ssl_context(self.settings)

    @property
    def server_url(self) -> str:
        return self.settings.server_url

    def http_client(self, headers: dict[str, str] | None = None, timeout: httpx2.Timeout | float | None = None,
                    auth: httpx2.Auth | None = None, **kwargs: Any) -> httpx2.AsyncClient:
        """An httpx2.AsyncClient for the MCP client and the OAuth requests its auth makes: the MCP
        SDK's client-factory signature (mcp.shared._httpx_utils.McpHttpClientFactory). `auth` is
        whatever the caller passes (frameworks pass `self.auth` themselves); the client watches
        403 `insufficient_scope` answers for `permission_refused`."""
        return http_client(self.settings, self.tracer, refusals=self.refusals, verify=self.ssl_context,
                           headers=headers, timeout=timeout, auth=auth, **kwargs)

    @property
    def client_id(self) -> str | None:
        """The client_id in use: known once the first request has been authorized."""
        info = self.provider.context.client_info
        return info.client_id if info else None

    @property
    def registration(self) -> str:
        """How the agent is identified: cimd, preregistered, dcr, or client_credentials."""
        return "client_credentials" if self.machine else registration.observed(self.settings, self.client_id)

    def permission_refused(self) -> PermissionRefused | None:
        """After a failed call: the permission the AS would not grant even after one step-up
        (refusal.py), as an exception whose message is one sentence; None if that was not it."""
        return self.refusals.refused()


async def agent_auth(
    settings: AgentSettings | None = None,
    *,
    machine: bool = False,
    redirect: RedirectHandler | None = None,
    tracer: Tracer | None = None,
) -> AgentAuth:
    """The demo agent's auth for `settings` (default: AgentSettings() from AGENT_* variables).

    machine: client credentials (`private_key_jwt` with AGENT_MACHINE_KEY_FILE, or a secret with
        AGENT_MACHINE_CLIENT_SECRET_FILE) instead of a user's sign-in.
    redirect: shows the user the authorization URL; default: print it and open a browser.
    tracer: prints every HTTP exchange, secrets masked (trace.py).

    Looks at the authorization server's metadata only when `registration="auto"` has a
    pre-registered client to choose against CIMD; no sign-in happens until the first request.
    """
    settings = settings or AgentSettings()  # type: ignore[call-arg]  # callback_port may come from the environment
    storage = storage_for(settings, machine=machine)
    if machine:
        return _assemble(settings, _machine_provider(settings, storage), storage, Login("client_credentials"),
                         machine=True, tracer=tracer)
    async with http_client(settings, tracer) as probe:
        chosen = await registration.choose(settings, probe)
    login = Login(registration=chosen)
    if chosen == "preregistered":
        await _seed_preregistered(storage, settings)
    show = redirect or (lambda url: print_and_open(url, open_browser=settings.open_browser,
                                                   callback=settings.redirect_uri))
    provider = _interactive_provider(settings, storage, chosen, noting_sign_ins(login, show))
    return _assemble(settings, provider, storage, login, machine=False, tracer=tracer)


def _assemble(settings: AgentSettings, provider: OAuthClientProvider, storage: FileTokenStorage, login: Login, *,
              machine: bool, tracer: Tracer | None) -> AgentAuth:
    auth: httpx2.Auth = with_dpop(settings, provider, storage) if settings.dpop else provider
    return AgentAuth(settings, auth, provider, storage, login, machine=machine, tracer=tracer)
