"""Logout: revoke the refresh token at the authorization server (RFC 7009), then forget it.

Deleting the local file alone leaves the refresh token valid at the authorization server until it
expires (with `offline_access`, until the offline session idles out — days), so a copy of the file
would keep working. The agent revokes it first, authenticating exactly as on its token requests
(RFC 7009 §2.1: the client authenticates as at the token endpoint): `private_key_jwt` for the
CIMD identity, HTTP Basic for a confidential pre-registered client, `client_id` alone for a
public client (DCR, public pre-registered). The endpoint is the AS metadata's
`revocation_endpoint` (RFC 8414 §2), from the session stored with the tokens or discovered again.

Machine mode holds no refresh token (RFC 6749 §4.4.3: client credentials need none, and Keycloak
issues none by default); its access token expires on its own, so its file is only deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata

from . import registration
from .auth import _interactive_provider
from .config import AgentSettings
from .storage import FileTokenStorage
from .trace import Tracer
from .transport import http_client


@dataclass(frozen=True)
class Revocation:
    """What happened to the refresh token: `held` False means there was none to revoke."""

    held: bool
    revoked: bool = False
    reason: str | None = None


async def _never_redirect(url: str) -> None:
    raise RuntimeError("logout never signs in")


def client_authentication(settings: AgentSettings, storage: FileTokenStorage, client: OAuthClientInformationFull,
                          metadata: OAuthMetadata, data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The form and headers authenticating `client` as its token requests do: the provider the
    agent signs in with builds them (the SDK's methods plus this agent's private_key_jwt)."""
    provider = _interactive_provider(settings, storage, registration.observed(settings, client.client_id),
                                     _never_redirect)
    provider.context.client_info = client
    provider.context.oauth_metadata = metadata
    data, headers = provider.context.prepare_token_auth(dict(data), {})
    if "Authorization" not in headers:
        # RFC 6749 §2.3.1 / RFC 7009 §2.1: a client not using HTTP Basic names itself in the form.
        data["client_id"] = client.client_id
    return data, headers


def _reason(response: httpx2.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        described = f": {body['error_description']}" if body.get("error_description") else ""
        return f"{response.status_code} {body['error']}{described}"
    return f"{response.status_code} {response.reason_phrase}"


async def revoke_refresh_token(settings: AgentSettings, storage: FileTokenStorage,
                               tracer: Tracer | None = None) -> Revocation:
    stored = storage.snapshot()
    refresh_token = (stored.get("tokens") or {}).get("refresh_token")
    if not refresh_token:
        return Revocation(held=False)
    if not stored.get("client_info"):
        return Revocation(held=True, reason="no client registration is stored with the token, so the agent cannot "
                                           "authenticate a revocation")
    client = OAuthClientInformationFull.model_validate(stored["client_info"])
    async with http_client(settings, tracer) as http:
        raw = (stored.get("session") or {}).get("oauth_metadata")
        metadata = (OAuthMetadata.model_validate(raw) if raw
                    else await registration.authorization_server_metadata(http, settings.server_url))
        if metadata is None:
            return Revocation(held=True, reason="the authorization server's metadata could not be found")
        if metadata.revocation_endpoint is None:
            return Revocation(held=True, reason=f"{metadata.issuer} advertises no revocation_endpoint")
        # RFC 7009 §2.1: the token, with a hint of its type.
        data, headers = client_authentication(settings, storage, client, metadata,
                                              {"token": refresh_token, "token_type_hint": "refresh_token"})
        response = await http.post(str(metadata.revocation_endpoint), data=data, headers=headers)
    # RFC 7009 §2.2: 200 whether the token was valid or already invalid; anything else failed.
    if response.status_code == 200:
        return Revocation(held=True, revoked=True)
    return Revocation(held=True, reason=f"{metadata.revocation_endpoint} answered {_reason(response)}")
