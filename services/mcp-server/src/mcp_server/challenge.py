"""RFC 6750 §3 `WWW-Authenticate: Bearer` challenges, with the MCP additions.

MCP 2026-07-28 wants `resource_metadata` (RFC 9728 §5.1) in every challenge (RS3), and `scope`
in 401s (RS4, SHOULD; the SDK omits it) and 403s (RS15-RS17).
"""

from __future__ import annotations

import json


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
) -> str:
    params: list[tuple[str, str]] = []
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    if error:
        params.append(("error", error))
    if description:
        params.append(("error_description", description))
    if scope:
        params.append(("scope", scope))
    params.append(("resource_metadata", resource_metadata))
    return "Bearer " + ", ".join(f"{k}={_quote(v)}" for k, v in params)


def response(
    status: int,
    *,
    resource_metadata: str,
    scope: str | None,
    error: str | None,
    description: str | None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and JSON body of a challenge response."""
    body = json.dumps({"error": error or "unauthorized", "error_description": description or ""}).encode()
    header = www_authenticate(resource_metadata=resource_metadata, scope=scope, error=error, description=description)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", header.encode()),
        (b"cache-control", b"no-store"),
    ]
    return status, headers, body
