"""Turn what can go wrong into one line that says what to do."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx2
from mcp.client.auth import OAuthFlowError, OAuthTokenError

from .assertion import KeyFileError
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


@dataclass(frozen=True)
class Failure:
    """A failure as `--json` reports it: a stable `kind` a script can branch on, and the line."""

    kind: str
    message: str

    def as_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"kind": self.kind, "message": self.message}}


def describe(exc: BaseException) -> Failure:
    for leaf in leaves(exc):
        for e in _chain(leaf):
            text = str(e)
            if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
                return Failure("tls", "TLS certificate not trusted: point AGENT_CA_BUNDLE (or --ca-bundle) at the "
                                      "sandbox CA, .local/ca/ca.pem")
            if isinstance(e, AuthorizationDenied):
                return Failure("denied", text)
            if isinstance(e, PermissionRefused):
                return Failure("permission", text)
            if isinstance(e, TimeoutError):
                return Failure("timeout", "no login completed in time: open the printed URL in a browser and sign in")
            if isinstance(e, httpx2.ProxyError):
                return Failure("connection", f"the proxy refused or failed ({text}): check HTTPS_PROXY and NO_PROXY")
            if isinstance(e, httpx2.ConnectError):
                return Failure("connection", f"cannot connect ({text or 'connection refused'}): is the sandbox up? "
                                             "run `make up`")
            if isinstance(e, OAuthFlowError) and "metadata" in text and ("discovered" in text or "failed" in text):
                return Failure("authorization", f"the authorization server did not serve its metadata ({text}): "
                                                "is Keycloak up? check `make ps`")
            if isinstance(e, (OAuthFlowError, OAuthTokenError)):
                return Failure("authorization", f"authorization failed: {redact_tokens(text)}")
            if isinstance(e, httpx2.HTTPStatusError):
                return Failure("http", f"server answered {e.response.status_code} for {e.request.url}")
            if isinstance(e, KeyFileError):
                return Failure("configuration", text)
    first = leaves(exc)[0]
    return Failure("internal", f"{type(first).__name__}: {redact_tokens(str(first))}")


def explain(exc: BaseException) -> str:
    """The one line for `exc`."""
    return describe(exc).message
