"""Fixtures: the fake authorization server and the resource server running on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.authorization_server import FakeAuthorizationServer, RunningServer, mint, running_server


@pytest.fixture(scope="module")
def fake_as() -> FakeAuthorizationServer:
    return FakeAuthorizationServer()


@pytest.fixture(scope="module")
def running(fake_as: FakeAuthorizationServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server as deployed: privileged tools introspected, with the default cache window."""
    with running_server(fake_as, tmp_path_factory.mktemp("mcp-server-key")) as server:
        yield server


@pytest.fixture
def mint_token() -> Callable[..., str]:
    return mint
