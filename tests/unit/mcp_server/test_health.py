"""Liveness and readiness are different questions. Liveness: the process answers (`/livez`).
Readiness: this replica can serve a tool call now (`/readyz`), which it cannot without a single
signing key of the authorization server (every token would get a 401) or while it drains before
a stop. The load balancers (Caddy, the ALB) and compose route on readiness; draining is in
test_shutdown.py."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from mcp_server.app import create_app
from tests.support.authorization_server import (
    FakeAuthorizationServer,
    RunningServer,
    claims_for,
    make_settings,
    make_verifier,
    mint,
    running_server,
)
from tests.support.clock import Clock

BASE = "http://127.0.0.1:8000"  # make_settings' resource URL: the Host the transport allows


def test_a_replica_with_no_signing_key_is_alive_but_not_ready(tmp_path: Path):
    """The AS was unreachable at startup: the replica must not take traffic it would 401."""
    fake = FakeAuthorizationServer(down=True)
    with running_server(fake, tmp_path / "key") as server:
        ready = server.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "no_signing_keys"
        assert "signing key" in ready.json()["reason"]
        assert ready.headers["content-type"] == "application/json"
        # /healthz, what load balancers were pointed at before /readyz existed, answers the same.
        assert server.client.get("/healthz").status_code == 503
        live = server.client.get("/livez")
        assert (live.status_code, live.json()["status"]) == (200, "ok")


@pytest.mark.anyio
async def test_readiness_recovers_once_the_authorization_server_answers_without_any_traffic(tmp_path: Path):
    """An unready replica gets no requests, so no token ever asks for the keys: the readiness
    probe itself starts the (rate-limited) refresh, and the replica joins the rotation. In process,
    on a fake clock: the test waits for the refresh the probe started, not for time to pass."""
    fake, clock = FakeAuthorizationServer(down=True), Clock()
    settings = make_settings(client_key_dir=fake.write_client_key(tmp_path / "key"))
    verifier, keys = make_verifier(fake, settings, clock)
    app = create_app(settings, http=fake.http(), verifier=verifier)
    transport = httpx2.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx2.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/readyz")).status_code == 503  # the first fetch failed at startup
        fake.down = False
        clock.now += 2.5  # past the retry delay after that failure
        assert (await client.get("/readyz")).status_code == 503  # this probe starts the refresh
        await keys.settle()
        ready = await client.get("/readyz")
        assert ready.json() == {"status": "ok", "signing_keys": 1}
        assert fake.fetches == 1  # no token asked: the probe alone brought the keys
        headers = {"authorization": f"Bearer {mint(fake.key, claims_for(settings.resource_url))}",
                   "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
        call = await client.post("/mcp", headers=headers,
                                 json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                       "params": {"name": "get_time", "arguments": {}}})
        assert call.status_code == 200, call.text


def test_a_replica_holding_keys_is_ready_and_alive(running: RunningServer):
    ready = running.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "signing_keys": 1})
    assert running.client.get("/livez").json() == {"status": "ok"}
    assert running.client.get("/healthz").status_code == 200


def test_probes_need_no_token_and_fetch_nothing_when_keys_are_held(running: RunningServer):
    before = running.fake.attempts
    for _ in range(20):
        assert running.client.get("/readyz").status_code == 200
        assert running.client.get("/livez").status_code == 200
    assert running.fake.attempts == before


def test_an_unready_replica_does_not_hammer_the_authorization_server(tmp_path: Path):
    """Probes every 2 s from Caddy (and compose, and each ALB node): refreshes stay rate-limited."""
    fake = FakeAuthorizationServer(down=True)
    with running_server(fake, tmp_path / "key") as server:
        started = fake.attempts
        for _ in range(50):
            assert server.client.get("/readyz").status_code == 503
        assert fake.attempts - started <= 2  # at most one retry window passed during the loop
