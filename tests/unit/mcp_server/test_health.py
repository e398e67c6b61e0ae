"""Liveness and readiness are different questions. Liveness: the process answers (`/livez`).
Readiness: this replica can serve a tool call now (`/readyz`), which it cannot without a single
signing key of the authorization server (every token would get a 401) or while it drains before
a stop. The load balancers (Caddy, the ALB) and compose route on readiness; draining is in
test_shutdown.py."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.authorization_server import FakeAuthorizationServer, RunningServer, running_server


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


def test_readiness_recovers_once_the_authorization_server_answers_without_any_traffic(tmp_path: Path):
    """An unready replica gets no requests, so no token ever asks for the keys: the readiness
    probe itself starts the (rate-limited) refresh, and the replica joins the rotation."""
    fake = FakeAuthorizationServer(down=True)
    with running_server(fake, tmp_path / "key") as server:
        assert server.client.get("/readyz").status_code == 503
        fake.down = False
        deadline = time.monotonic() + 15
        while (ready := server.client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.json()
            time.sleep(0.2)
        assert ready.json() == {"status": "ok", "signing_keys": 1}
        assert fake.fetches == 1  # no token asked: the probe alone brought the keys
        response = server.call(server.token(), params={"name": "get_time", "arguments": {}})
        assert response.status_code == 200, response.text


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
