"""Run the notes API: python -m notes_api (configuration from API_* variables)."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from mcp_server import logs

from .app import create_app
from .config import Settings


def main() -> int:
    try:
        settings = Settings()
        settings.verifier_settings  # noqa: B018  (the verifier's own checks, at start, not first request)
    except ValidationError as exc:
        print(f"notes-api: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # X-Forwarded-* only from the TLS front.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        log_config=None,
        server_header=False,
        # Longer than Caddy keeps an idle upstream connection (mcp_server.config, keep_alive_seconds).
        timeout_keep_alive=310,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
