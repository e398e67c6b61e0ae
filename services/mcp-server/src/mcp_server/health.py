"""Liveness and readiness: unauthenticated, for compose, Caddy and load-balancer checks; they
say nothing secret.

- `GET /livez` (liveness): the process answers. Always 200 while it does, even when it cannot
  serve: restarting a replica because the authorization server is down, or while it drains,
  helps nothing.
- `GET /readyz` (readiness): this replica can serve a tool call now. 503 with a JSON reason
  while it holds no signing key of the authorization server (every token would get a 401: the
  JWKS could not be fetched yet) or while it drains before a stop (shutdown.py); 200 otherwise.
  Whatever routes traffic here, or waits for the server to be up, asks this one.
- `GET /healthz`: the same answer as `/readyz`, for health checks set up before it existed
  (it used to answer 200 with no keys; it already failed while draining).

An unready replica gets no traffic, so no token would ever trigger the JWKS refresh that makes it
ready: a readiness probe with no keys starts that refresh itself, in the background and within
the cache's rate limit (jwks.py), and answers at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .jwks import JWKSCache
from .shutdown import Drain

LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"
LEGACY_PATH = "/healthz"


def routes(keys: JWKSCache, drain: Drain | None) -> list[Route]:
    async def livez(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        if drain is not None and drain.active:
            return JSONResponse({"status": "draining", "reason": "shutting down: draining before the stop"},
                                status_code=503)
        held = len(keys.kids)
        if held == 0:
            keys.refresh_if_empty()
            return JSONResponse({"status": "no_signing_keys",
                                 "reason": "no signing key of the authorization server yet (its JWKS could not be "
                                           "fetched): every token would be refused"},
                                status_code=503)
        return JSONResponse({"status": "ok", "signing_keys": held})

    return [
        Route(LIVENESS_PATH, livez, methods=["GET"]),
        Route(READINESS_PATH, readyz, methods=["GET"]),
        Route(LEGACY_PATH, readyz, methods=["GET"]),
    ]
