"""A graceful stop behind a load balancer: drain, then stop.

On SIGTERM, the replica first fails its readiness check (`/readyz` answers 503; liveness,
`/livez`, stays 200: health.py) but keeps serving.
The balancer sees the failure and takes the replica out of its rotation (Caddy within two 2 s
checks; an ALB at deregistration). Only after `drain_seconds` does uvicorn stop. It then
finishes the requests in flight and closes idle connections, and by that time no new request is
routed here. Without the drain, a request the proxy sent on a kept-alive connection just as the
server closed it is lost: a 502 for a tool call that never ran. A second signal stops at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import FrameType

import uvicorn

logger = logging.getLogger(__name__)


@dataclass
class Drain:
    """Whether this replica is draining; the readiness check reads it."""

    seconds: float = 0.0
    active: bool = False


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.active or self.drain.seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self.drain.active = True
        logger.info("shutdown requested: health check failing, stopping in %.0f s (drain)", self.drain.seconds)
        timer = threading.Timer(self.drain.seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()
