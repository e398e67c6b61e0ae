"""RFC 6750 §3 `WWW-Authenticate: Bearer` challenges, with the MCP additions.

MCP 2026-07-28 wants `resource_metadata` (RFC 9728 §5.1) in every challenge (RS3), and `scope`
in 401s (RS4, SHOULD; the SDK omits it) and 403s (RS15-RS17).

`error_description` (RFC 6750 §3, RFC 6749 §5.2) is "human-readable ... to assist the client
developer": in the sandbox it names the precise reason. With `generic` (MCP_GENERIC_ERRORS, for
production) every answer of one error code says the same words, so a caller probing with crafted
tokens learns nothing about which check failed; the reason goes to the access log only. The
`error` code and `scope` stay: clients act on them (RS4, RS16).
"""

from __future__ import annotations

import json

# What an answer says under MCP_GENERIC_ERRORS, per error code.
GENERIC_DESCRIPTIONS = {
    "invalid_token": "The access token is invalid or expired.",
    "insufficient_scope": "The access token lacks a scope this call needs (see the scope parameter).",
    "invalid_request": "The request is malformed.",
    "access_denied": "This call is not allowed.",
    "temporarily_unavailable": "The call could not be authorized now. Try again later.",
    # RFC 9449 §7.1, §9
    "invalid_dpop_proof": "The DPoP proof is invalid.",
    "use_dpop_nonce": "Send a DPoP proof with the nonce from the DPoP-Nonce header.",
}


def describe(error: str, detail: str, *, generic: bool) -> str:
    """The `error_description` of an answer: the detail, or the generic words for `error`."""
    return GENERIC_DESCRIPTIONS[error] if generic else detail


def error_body(error: str, detail: str, *, generic: bool) -> bytes:
    """A JSON error body (RFC 6749 §5.2 shape) for answers without a challenge."""
    return json.dumps({"error": error, "error_description": describe(error, detail, generic=generic)}).encode()


def _quote(value: str) -> str:
    # RFC 6750 §3: auth-param values are quoted-strings; the values here never carry quotes,
    # but escape defensively so a description can never break the header.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def www_authenticate(
    *,
    resource_metadata: str,
    scope: str | None = None,
    error: str | None = None,
    description: str | None = None,
    scheme: str = "Bearer",
    algs: str | None = None,
) -> str:
    """One challenge: `Bearer` (RFC 6750 §3) or `DPoP` (RFC 9449 §7.1, with `algs`)."""
    params: list[tuple[str, str]] = []
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    if error:
        params.append(("error", error))
    if description:
        params.append(("error_description", description))
    if scope:
        params.append(("scope", scope))
    if algs:
        params.append(("algs", algs))
    params.append(("resource_metadata", resource_metadata))
    return f"{scheme} " + ", ".join(f"{k}={_quote(v)}" for k, v in params)


def response(
    status: int,
    *,
    resource_metadata: str,
    scope: str | None,
    error: str | None,
    description: str | None,
    generic: bool = False,
    scheme: str = "Bearer",
    algs: str | None = None,
    nonce: str | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and JSON body of a challenge response; `generic`: see the module."""
    if error and description:
        description = describe(error, description, generic=generic)
    body = json.dumps({"error": error or "unauthorized", "error_description": description or ""}).encode()
    header = www_authenticate(resource_metadata=resource_metadata, scope=scope, error=error, description=description,
                              scheme=scheme, algs=algs)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", header.encode()),
        (b"cache-control", b"no-store"),
    ]
    if nonce:
        headers.append((b"dpop-nonce", nonce.encode()))  # RFC 9449 §9
    return status, headers, body
