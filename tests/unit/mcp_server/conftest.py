"""Fixtures: the fake authorization server and the resource server running on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx2
import pytest

from mcp_server.app import create_app
from tests.support.authorization_server import (
    FakeAuthorizationServer,
    RunningServer,
    make_settings,
    make_verifier,
    mint,
    serve,
)
from tests.support.net import free_port


@pytest.fixture(scope="module")
def fake_as() -> FakeAuthorizationServer:
    return FakeAuthorizationServer()


@pytest.fixture(scope="module")
def running(fake_as: FakeAuthorizationServer) -> Iterator[RunningServer]:
    port = free_port()
    settings = make_settings(f"http://127.0.0.1:{port}/mcp")
    verifier, _ = make_verifier(fake_as, settings)
    app = create_app(settings, verifier=verifier)
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in serve(app, port):
            yield RunningServer(f"http://127.0.0.1:{port}", settings.resource_url, fake_as, client)


@pytest.fixture
def mint_token() -> Callable[..., str]:
    return mint
