"""The agent: an MCP client session over HTTPS whose OAuth is done by the SDK's providers.

    async with connect(settings) as session:
        await session.call_tool("whoami", {})
"""

from __future__ import annotations

import ssl
import sys
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.client import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider, PrivateKeyJWTOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata
from pydantic import AnyUrl

from . import registration
from .assertion import SigningKeyFile, client_assertion
from .callback import CallbackListener, state_of
from .config import AgentSettings
from .dpop import Bindings, DPoPAuth, DPoPKeyFile
from .localhost import async_transport
from .provider import AgentOAuthProvider
from .refusal import ScopeRefusals
from .storage import FileTokenStorage
from .trace import Tracer

RedirectHandler = Callable[[str], Awaitable[None]]


def ssl_context(settings: AgentSettings) -> ssl.SSLContext:
    if settings.ca_bundle:
        return ssl.create_default_context(cafile=str(settings.ca_bundle))
    return ssl.create_default_context()


# Names a proxy cannot reach (they mean this machine): always connected to directly, whatever
# HTTPS_PROXY and NO_PROXY say, through the transport that finds *.localhost (localhost.py).
LOOPBACK_MOUNTS = ("all://localhost", "all://*.localhost", "all://127.0.0.1", "all://[::1]")


def http_client(settings: AgentSettings, tracer: Tracer | None = None, *, refusals: ScopeRefusals | None = None,
                **kwargs: Any) -> httpx2.AsyncClient:
    hooks: dict[str, list[Callable[..., Any]]] = tracer.hooks() if tracer else {"request": [], "response": []}
    if refusals is not None:
        hooks = {**hooks, "response": [*hooks.get("response", []), refusals.on_response]}
    verify = ssl_context(settings)
    loopback = async_transport(verify)
    return httpx2.AsyncClient(
        # HTTP(S)_PROXY, ALL_PROXY and NO_PROXY are honoured (trust_env): httpx2 builds the direct and
        # proxy transports itself, each verifying the server with `verify` — the sandbox CA when
        # one is configured, through a proxy's CONNECT tunnel too. Explicit mounts win over them.
        verify=verify,
        trust_env=True,
        mounts=dict.fromkeys(LOOPBACK_MOUNTS, loopback),
        # Streams outlive httpx2's 5 s default.
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks=hooks,
        **kwargs,
    )


def signer(client_id: str, keys: SigningKeyFile) -> Callable[[str], str]:
    def sign(audience: str) -> str:
        key = keys.current()
        return client_assertion(client_id=client_id, audience=audience, key_id=str(key.key_id), private_key=key.key,
                                algorithm=key.algorithm_name)

    return sign


def sign_in_prompt(url: str, *, callback: str | None = None, color: bool = False) -> str:
    """The sign-in prompt, the URL last: alone on its line (indented, nothing after it, so a
    terminal selects it whole), after a heading that says where the browser comes back to."""
    heading = "Open this URL to sign in"
    if color:
        heading = f"\033[1m{heading}\033[0m"
    if callback:
        heading += f" (your browser comes back to {callback})"
    return "\n".join(["", heading + ":", "", f"  {url}", ""])


async def print_and_open(url: str, *, open_browser: bool = True, callback: str | None = None) -> None:
    """Show the authorization URL and open a browser if there is one (C33: http(s) only, no shell)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise ValueError(f"refusing to open a non-https authorization URL: {parts.scheme}://{parts.hostname}")
    print(sign_in_prompt(url, callback=callback, color=sys.stderr.isatty()), file=sys.stderr, flush=True)
    if open_browser:
        webbrowser.open(url)


@dataclass
class Login:
    """What the last connection used; for reporting."""

    registration: str
    client_id: str | None = None
    # A browser sign-in happened in this run (else stored tokens, refreshed if need be, sufficed).
    signed_in_now: bool = False


def noting_sign_ins(login: Login, show: RedirectHandler) -> RedirectHandler:
    """`show`, recording in `login` that the user was sent to sign in."""

    async def redirect(url: str) -> None:
        login.signed_in_now = True
        await show(url)

    return redirect


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


@asynccontextmanager
async def connect(
    settings: AgentSettings,
    *,
    machine: bool = False,
    tracer: Tracer | None = None,
    redirect: RedirectHandler | None = None,
    mode: str = "auto",
) -> AsyncIterator[tuple[Client, Login]]:
    storage = FileTokenStorage(settings.state_dir, settings.server_url + ("#machine" if machine else ""))
    if machine:
        chosen = "client_credentials"
    else:
        async with http_client(settings, tracer) as probe:
            chosen = await registration.choose(settings, probe)
    auth: OAuthClientProvider
    login = Login(registration=chosen)
    if machine:
        auth = _machine_provider(settings, storage)
    else:
        if chosen == "preregistered":
            await _seed_preregistered(storage, settings)
        show = redirect or (lambda u: print_and_open(u, open_browser=settings.open_browser,
                                                     callback=settings.redirect_uri))
        auth = _interactive_provider(settings, storage, chosen, noting_sign_ins(login, show))
    context = auth.context
    refusals = ScopeRefusals(
        granted=lambda: context.current_tokens.scope if context.current_tokens else None,
        issuer=lambda: str(context.oauth_metadata.issuer) if context.oauth_metadata else None,
    )
    sent: httpx2.Auth = with_dpop(settings, auth, storage) if settings.dpop else auth
    async with http_client(settings, tracer, refusals=refusals, auth=sent) as http:
        try:
            async with Client(streamable_http_client(settings.server_url, http_client=http), mode=mode) as client:
                info = auth.context.client_info
                login.client_id = info.client_id if info else None
                if not machine:
                    login.registration = registration.observed(settings, login.client_id)
                yield client, login
        except Exception as exc:
            # A second 403 after the SDK's one step-up: say which permission is missing (refusal.py).
            refused = refusals.refused()
            if refused is None:
                raise
            raise refused from exc
