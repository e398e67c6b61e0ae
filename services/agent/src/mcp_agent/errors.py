"""Turn what can go wrong into one line that says what to do."""

from __future__ import annotations

import ssl

import httpx2
from mcp.client.auth import OAuthFlowError, OAuthTokenError

from .callback import AuthorizationDenied
from .refusal import PermissionRefused
from .trace import redact_tokens


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    return [exc]


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def explain(exc: BaseException) -> str:
    for leaf in leaves(exc):
        for e in _chain(leaf):
            text = str(e)
            if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
                return ("TLS certificate not trusted: point AGENT_CA_BUNDLE (or --ca-bundle) at the sandbox CA, "
                        ".local/ca/ca.pem")
            if isinstance(e, AuthorizationDenied | PermissionRefused):
                return text
            if isinstance(e, TimeoutError):
                return "no login completed in time: open the printed URL in a browser and sign in"
            if isinstance(e, httpx2.ConnectError):
                return f"cannot connect ({text or 'connection refused'}): is the sandbox up? run `make up`"
            if isinstance(e, OAuthFlowError) and "metadata" in text and ("discovered" in text or "failed" in text):
                return (f"the authorization server did not serve its metadata ({text}): "
                        "is Keycloak up? check `make ps`")
            if isinstance(e, (OAuthFlowError, OAuthTokenError)):
                return f"authorization failed: {redact_tokens(text)}"
            if isinstance(e, httpx2.HTTPStatusError):
                return f"server answered {e.response.status_code} for {e.request.url}"
    first = leaves(exc)[0]
    return f"{type(first).__name__}: {redact_tokens(str(first))}"
