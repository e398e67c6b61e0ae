"""What anonymous dynamic client registration may ask for (RFC 7591 §2), checked at the edge.

Anonymous registration creates public clients for the authorization code grant with PKCE and
refresh tokens, nothing more: no client secret, no keys, no machine grants, no implicit flow.
Keycloak 26.7.3 cannot enforce that itself without also hitting our own agents' CIMD clients
(both kinds of creation are "ByAnonymous" to its client policies, and the agents' CIMD clients are
confidential, private_key_jwt), so Caddy sends every POST and PUT to a realm's registration
endpoints here first (`forward_auth`, after the rate limiter): CIMD clients are created at
/authorize and never pass this way. PUT is an RFC 7592 update by whoever holds the registration
access token that anonymous registration handed out: it could turn the client confidential, so it
is held to the same rules.

Caddy passes the request body base64-encoded in X-Registration-Body (or, when it could not read
the body, Caddy's error text, which is not base64) and the provider path segment in
X-Registration-Provider. A refusal is 400 `{"error": "invalid_client_metadata",
"error_description": <the reason>}` (RFC 7591 §3.2.2), 413 for a body over MAX_BODY_BYTES; the
reason is the first rule broken, in the order below. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

BODY_HEADER = "X-Registration-Body"
PROVIDER_HEADER = "X-Registration-Provider"
# Keycloak's provider for RFC 7591/7592. Its others take Keycloak's own client representation
# ("default": publicClient, serviceAccountsEnabled, …) or SAML XML, where these rules mean nothing.
PROVIDER = "openid-connect"
# The Caddyfile bounds the body at the same size (request_body max_size 16KiB); client metadata
# is a few hundred bytes (the MCP Inspector's: about 400).
MAX_BODY_BYTES = 16 * 1024

ALLOWED_GRANT_TYPES = ("authorization_code", "refresh_token")
# "none" returns neither code nor token (OAuth 2.0 Multiple Response Type Encoding); Keycloak maps
# it to the code flow and reports ["code", "none"] for every such client, so an RFC 7592 update
# that sends the registered metadata back carries it.
ALLOWED_RESPONSE_TYPES = ("code", "none")
PUBLIC_AUTH_METHOD = "none"

AUTH_METHOD_REASON = ('token_endpoint_auth_method must be "none": anonymous registration creates public clients only; '
                      "use a Client ID Metadata Document for a client with keys")
# Members only a confidential client has: its secret, or its keys.
CONFIDENTIAL_MEMBERS = ("client_secret", "client_secret_expires_at", "jwks", "jwks_uri")
# Why a grant type is refused; any grant not named here gets OTHER_GRANT_REASON.
GRANT_REASONS = {
    "client_credentials": "no user: machine clients are pre-registered by an administrator",
    "password": "removed by OAuth 2.1",
    "implicit": "removed by OAuth 2.1; tokens in URLs",
}
OTHER_GRANT_REASON = "not available to anonymous registration"
IMPLICIT_RESPONSE_REASON = "implicit flow: removed by OAuth 2.1; tokens in URLs"
# A value the client sent is quoted in a reason at most this long (reasons are logged too).
QUOTED_LENGTH = 80


@dataclass(frozen=True)
class Refusal:
    status: int
    description: str
    error: str = "invalid_client_metadata"

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class _Duplicate(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def quoted(value: object) -> str:
    """A value the client sent, as it may appear in a reason: JSON-quoted (so ASCII, escaped),
    cut to QUOTED_LENGTH characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > QUOTED_LENGTH:
        text = text[:QUOTED_LENGTH] + "..."
    return json.dumps(text)


def grant_reason(grant_type: str) -> str:
    return (f"grant type {quoted(grant_type)} is not allowed ({GRANT_REASONS.get(grant_type, OTHER_GRANT_REASON)}); "
            'anonymous registration allows only "authorization_code" and "refresh_token"')


def response_type_reason(response_type: str) -> str:
    implicit = any(part in ("token", "id_token") for part in response_type.split())
    why = IMPLICIT_RESPONSE_REASON if implicit else OTHER_GRANT_REASON
    return (f'response type {quoted(response_type)} is not allowed ({why}); '
            'anonymous registration allows only "code" (and "none")')


def check_metadata(metadata: Mapping[str, Any]) -> str | None:
    """The reason the client metadata asks for more than a public authorization-code client,
    or None. Absent grant_types and response_types default (RFC 7591 §2) to authorization_code
    and code: fine. An absent token_endpoint_auth_method defaults to client_secret_basic, a
    confidential client with a secret: refused like any other method but "none"."""
    if metadata.get("token_endpoint_auth_method") != PUBLIC_AUTH_METHOD:
        return AUTH_METHOD_REASON
    for member in CONFIDENTIAL_MEMBERS:
        if member in metadata:
            return (f"{member} is not allowed: anonymous registration creates public clients only, without secrets "
                    "or keys; use a Client ID Metadata Document for a client with keys")
    for member, allowed, reason in (("grant_types", ALLOWED_GRANT_TYPES, grant_reason),
                                    ("response_types", ALLOWED_RESPONSE_TYPES, response_type_reason)):
        if member not in metadata:
            continue
        values = metadata[member]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return f"{member} must be an array of strings (RFC 7591 section 2)"
        refused = next((v for v in values if v not in allowed), None)
        if refused is not None:
            return reason(refused)
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of two equal member names, and so does Keycloak's Jackson, but
    # nothing obliges a parser to: a duplicate is refused rather than guessed at.
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise _Duplicate(name)
        obj[name] = value
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(body: bytes) -> dict[str, Any] | Refusal:
    """The JSON object of client metadata in `body`, or the refusal saying why not."""
    if len(body) > MAX_BODY_BYTES:
        return too_large()
    if not body.strip():
        return Refusal(400, "the request body is empty: client metadata is sent as a JSON object (RFC 7591 section 3.1)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "the request body is not UTF-8 (RFC 8259 section 8.1)")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _Duplicate as duplicate:
        return Refusal(400, f"member {quoted(duplicate.name)} appears more than once in the request body")
    except (ValueError, RecursionError):
        return Refusal(400, "the request body is not valid JSON: client metadata is sent as a JSON object (RFC 7591 section 3.1)")
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        return Refusal(400, f"the request body is {kind}, not a JSON object of client metadata (RFC 7591 section 3.1)")
    return value


def too_large() -> Refusal:
    return Refusal(413, f"the request body is larger than {MAX_BODY_BYTES} bytes; client metadata takes a few hundred")


def decode_body(header: str) -> bytes | Refusal:
    """The body from Caddy's X-Registration-Body: base64, or Caddy's error text when it could not
    read the body (over its request_body max_size: "request body: http: request body too large")."""
    try:
        return base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        if header.endswith("request body too large"):
            return too_large()
        return Refusal(400, "the request body could not be read")


def check_headers(headers: Message) -> Refusal | None:
    """The check as the guard's HTTP handler runs it, on the headers Caddy sent: each of the two
    exactly once, else the front is misconfigured and nothing passes."""
    providers, bodies = headers.get_all(PROVIDER_HEADER) or [], headers.get_all(BODY_HEADER) or []
    if len(providers) != 1 or len(bodies) != 1:
        return Refusal(500, "the registration guard got no request body or provider from the front", error="server_error")
    return check_request(providers[0], bodies[0])


def check_request(provider: str, body_header: str) -> Refusal | None:
    """The whole check for one registration request (POST) or update (PUT): None lets it through."""
    if provider != PROVIDER:
        return Refusal(400, f"anonymous registration is open only at clients-registrations/{PROVIDER} (RFC 7591); "
                            f"provider {quoted(provider)} is not", error="invalid_request")
    body = decode_body(body_header)
    if isinstance(body, Refusal):
        return body
    metadata = parse(body)
    if isinstance(metadata, Refusal):
        return metadata
    reason = check_metadata(metadata)
    return Refusal(400, reason) if reason else None
