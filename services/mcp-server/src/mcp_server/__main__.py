"""Run the resource server: python -m mcp_server (configuration from MCP_* variables)."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from . import logs
from .app import create_app
from .config import ConfigurationError, Settings
from .shutdown import Drain, DrainingServer


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"mcp-server: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    drain = Drain(seconds=settings.shutdown_drain_seconds)
    try:
        app = create_app(settings, drain=drain)
    except ConfigurationError as exc:
        print(f"mcp-server: invalid configuration: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # X-Forwarded-* only from the TLS front (RS20: forwarded headers trusted only from the proxy).
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    DrainingServer(config, drain).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
