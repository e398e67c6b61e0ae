"""The SDK's OAuthClientProvider, with the two things it lacks for this agent.

1. `private_key_jwt` at the token endpoint for the authorization-code grant (the SDK only has it
   for client credentials): a CIMD document with `token_endpoint_auth_method: private_key_jwt`
   makes Keycloak treat the agent as a confidential client that must prove possession of its key
   on every token request (code exchange and refresh). RFC 7523 §2.2.
2. Refresh after a restart (python-sdk#3250): the SDK keeps the token's expiry and the discovered
   metadata only in memory, so a restarted agent sends its stale token, gets 401 and falls back to
   an interactive login. The expiry and metadata are persisted with the tokens and restored here.

Everything else — discovery (PRM, RFC 8414/OIDC), PKCE S256, state and RFC 9207 iss checks,
`resource` (RFC 8707), CIMD/DCR, step-up on 403 with the scope union — is the SDK's.

The SDK has no public hook for either, so both reach into its provider: the token-request
builder (`context.prepare_token_auth`) for 1, and `_initialize` / `_handle_token_response` /
`_handle_refresh_response` for 2. That is why the SDK is pinned to one minor version
(`mcp>=2.3,<2.4` in pyproject.toml), and every override is exercised against a mock
authorization server in tests/unit/agent/test_provider.py: re-check them on each SDK upgrade.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthMetadata, OAuthToken, ProtectedResourceMetadata

from .assertion import form_fields
from .storage import FileTokenStorage

AssertionFactory = Callable[[str], str]  # audience -> signed client assertion (local key: no I/O)


class AgentOAuthProvider(OAuthClientProvider):
    def __init__(self, server_url: str, *, storage: FileTokenStorage, assertion: AssertionFactory | None = None,
                 **kwargs: Any) -> None:
        super().__init__(server_url, storage=storage, **kwargs)
        self._file = storage
        self._assertion = assertion
        # Private hook (no public one): the SDK supports private_key_jwt only in its
        # client-credentials extension (python-sdk#1663), not for the authorization-code grant.
        sdk_prepare = self.context.prepare_token_auth

        def prepare_token_auth(
            data: dict[str, str], headers: dict[str, str] | None = None
        ) -> tuple[dict[str, str], dict[str, str]]:
            data, headers = sdk_prepare(data, headers)
            if self._uses_private_key_jwt():
                # Audience: the AS's issuer identifier (draft-ietf-oauth-rfc7523bis), as the SDK's
                # client-credentials provider does.
                audience = str(self.context.oauth_metadata.issuer)  # type: ignore[union-attr]
                data.update(form_fields(self._assertion(audience)))  # type: ignore[misc]
            return data, headers

        self.context.prepare_token_auth = prepare_token_auth  # type: ignore[method-assign]

    def _uses_private_key_jwt(self) -> bool:
        info = self.context.client_info
        return bool(
            self._assertion
            and info is not None
            and self.context.client_metadata_url
            and info.client_id == self.context.client_metadata_url
            and self.context.oauth_metadata is not None
        )

    # --- python-sdk#3250: persist and restore what a refresh needs (private overrides) ---
    async def _initialize(self) -> None:
        await super()._initialize()
        session = self._file.get_session()
        if self.context.current_tokens and session.get("expires_at"):
            self.context.token_expiry_time = float(session["expires_at"])
        if session.get("oauth_metadata") and self.context.oauth_metadata is None:
            self.context.oauth_metadata = OAuthMetadata.model_validate(session["oauth_metadata"])
        if session.get("protected_resource_metadata") and self.context.protected_resource_metadata is None:
            prm = ProtectedResourceMetadata.model_validate(session["protected_resource_metadata"])
            self.context.protected_resource_metadata = prm
            self.context.auth_server_url = str(prm.authorization_servers[0])

    def _remember(self) -> None:
        ctx = self.context
        self._file.set_session(
            expires_at=ctx.token_expiry_time,
            oauth_metadata=ctx.oauth_metadata.model_dump(mode="json", exclude_none=True) if ctx.oauth_metadata else None,
            protected_resource_metadata=ctx.protected_resource_metadata.model_dump(mode="json", exclude_none=True)
            if ctx.protected_resource_metadata
            else None,
            saved_at=time.time(),
        )

    # python-sdk#3250: the only places the SDK learns a token's expiry.
    async def _handle_token_response(self, response: httpx2.Response) -> None:
        await super()._handle_token_response(response)
        self._remember()

    async def _handle_refresh_response(self, response: httpx2.Response) -> bool:
        ok = await super()._handle_refresh_response(response)
        if ok:
            self._remember()
        return ok

    @property
    def tokens(self) -> OAuthToken | None:
        return self.context.current_tokens
