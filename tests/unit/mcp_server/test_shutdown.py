"""Drain before stop (TOPOLOGY=ha, and any load balancer): on SIGTERM the replica fails its health
check but keeps answering, and stops only when the drain time is up."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx2
import pytest
import uvicorn
from sse_starlette.sse import AppStatus

from mcp_server.app import create_app
from mcp_server.shutdown import Drain, DrainingServer
from tests.support.authorization_server import (
    FakeAuthorizationServer,
    RunningServer,
    make_settings,
    make_verifier,
    start_in_thread,
)
from tests.support.net import free_port


@pytest.fixture(autouse=True)
def _process_keeps_serving_streams():
    """uvicorn's stop also tells sse-starlette, process-wide, to end every event stream; the
    other tests in this process still serve streams."""
    yield
    AppStatus.should_exit = False


def test_sigterm_fails_the_health_check_first_keeps_serving_then_stops(tmp_path: Path):
    """Readiness fails at once (the balancer moves traffic away); liveness does not."""
    port = free_port()
    fake = FakeAuthorizationServer()
    settings = make_settings(f"http://127.0.0.1:{port}/mcp", client_key_dir=fake.write_client_key(tmp_path))
    verifier, _ = make_verifier(fake, settings)
    drain = Drain(seconds=1.5)
    app = create_app(settings, http=fake.http(), verifier=verifier, drain=drain)
    server = DrainingServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None), drain)
    thread = start_in_thread(server)
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        running = RunningServer(f"http://127.0.0.1:{port}", settings.resource_url, fake, client)
        assert client.get("/readyz").status_code == 200

        server.handle_exit(signal.SIGTERM, None)
        stopped_at = time.monotonic() + drain.seconds
        for path in ("/readyz", "/healthz"):  # /healthz: what balancers checked before /readyz
            health = client.get(path)
            assert (health.status_code, health.json()["status"]) == (503, "draining"), path
        assert "draining" in health.json()["reason"]
        # Alive all the same: nothing should restart a replica that is stopping on purpose.
        assert client.get("/livez").json() == {"status": "ok"}
        call = running.call(running.token(), params={"name": "get_time", "arguments": {}})
        assert call.status_code == 200, call.text  # still serving while the balancer moves away
        assert thread.is_alive()
    thread.join(timeout=drain.seconds + 10)
    assert not thread.is_alive()
    assert time.monotonic() >= stopped_at - 0.1


def test_without_a_drain_time_sigterm_stops_at_once():
    drain = Drain(seconds=0)
    server = DrainingServer(uvicorn.Config(app=None), drain)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit
    assert not drain.active
