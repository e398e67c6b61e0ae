"""What the current request has decided so far, shared by layers that cannot hand it to each
other: the SDK calls the verifier with the token alone, yet the scope gate's 401 and the access
log line must say why the token was refused. A context variable is per request (per task), and
the access log starts every request with a clean slate."""

from __future__ import annotations

import contextvars

_rejection: contextvars.ContextVar[str | None] = contextvars.ContextVar("rejection", default=None)


def begin() -> None:
    _rejection.set(None)


def record_rejection(reason: str) -> None:
    _rejection.set(reason)


def rejection() -> str | None:
    return _rejection.get()
