"""Suite-wide configuration and the real stack.

Tests under tests/integration and tests/security run against the real stack, brought up by
testcontainers' DockerCompose from compose/compose.yaml; they are marked `integration` (and the
latter `security`). If the sandbox is already running (make up), the tests use it and leave it
running; otherwise they start it and tear it down (volumes included) at the end. If it cannot
start, the tests fail with the reason — they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.compose import DockerCompose

from tests.support.logs import ARCHIVE as LOG_ARCHIVE
from tests.support.stack import COMPOSE_DIR, Stack, read_env, remote, skip_remote

# Records the outcome of tests marked `matrix` for docs/clients.md (tests/support/matrix.py).
pytest_plugins = ["tests.support.matrix"]

# Testcontainers' reaper (Ryuk) is an image pulled from Docker Hub, which these machines cannot
# reach. The compose stack is torn down by the `compose` fixture instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

# The AWS CDK (tests/deploy) runs on Node through jsii: the suite's own Node 22 when `make test`
# installed it (tests/interop/node), before anything imports aws_cdk.
_NODE = Path(__file__).parent / "interop" / "node" / "node_modules" / ".bin" / "node"
if _NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_NODE))

TESTS = Path(__file__).parent
INTEGRATION = TESTS / "integration"
SECURITY = TESTS / "security"
INTEROP = TESTS / "interop"
CHAOS = TESTS / "chaos"


def _against_the_stack(item: pytest.Item) -> bool:
    parents = Path(item.fspath).parents
    return INTEGRATION in parents or SECURITY in parents or INTEROP in parents or CHAOS in parents


def _topology() -> str:
    try:
        return read_env().get("TOPOLOGY", "single")
    except FileNotFoundError:
        return "single"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Fault injection needs the HA topology (two nodes of each): make test's HA half runs the
    # short version (5 agents, 8 s phases), make chaos the long one (docs/topology.md, "Faults").
    if remote() or _topology() != "ha":
        chaos = [i for i in items if i.get_closest_marker("chaos")]
        if chaos:
            config.hook.pytest_deselected(items=chaos)
            items[:] = [i for i in items if not i.get_closest_marker("chaos")]
    for item in items:
        if _against_the_stack(item):
            item.add_marker(pytest.mark.integration)
        if SECURITY in Path(item.fspath).parents:
            item.add_marker(pytest.mark.security)
        if INTEROP in Path(item.fspath).parents:
            item.add_marker(pytest.mark.interop)
    # Unit tests first: they are fast and say more precisely what broke. Tests marked
    # `after_all` (the log audit) last: they check what the whole run left behind.
    # `restarts` (containers replaced) after the other stack tests, just before the audits.
    items.sort(key=lambda i: (i.get_closest_marker("after_all") is not None, i.get_closest_marker("restarts") is not None,
                              _against_the_stack(i)))


def _running(compose: DockerCompose) -> bool:
    result = subprocess.run(
        [*compose.docker_compose_command(), "ps", "--status", "running", "-q", "caddy"],
        cwd=COMPOSE_DIR,
        capture_output=True,
        text=True,
    )
    return result.returncode == 0 and bool(result.stdout.strip())


@pytest.fixture(scope="session")
def compose(request: pytest.FixtureRequest) -> Iterator[DockerCompose]:
    skip_remote("the sandbox's containers (admin API, logs, restarts)")
    shutil.rmtree(LOG_ARCHIVE, ignore_errors=True)  # logs of containers replaced in an earlier run
    # The files of the topology `make` prepared (compose/.env: COMPOSE_FILE, absolute paths).
    files = read_env().get("COMPOSE_FILE", str(COMPOSE_DIR / "compose.yaml")).split(":")
    compose = DockerCompose(context=COMPOSE_DIR, compose_file_name=files, build=True, wait=True)
    reuse = _running(compose)
    # Progress on the long step, past pytest's output capture.
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(
            "\nstack: already running, reusing it" if reuse
            else "\nstack: building and starting it (docker compose up --build --wait; first run takes minutes)",
            flush=True,
        )
    try:
        compose.start()
    except subprocess.CalledProcessError as exc:
        logs = subprocess.run(
            [*compose.docker_compose_command(), "logs", "--tail=40"], cwd=COMPOSE_DIR, capture_output=True, text=True
        ).stdout
        pytest.fail(f"the stack did not start (exit {exc.returncode}):\n{exc.stderr or ''}\n{logs}", pytrace=False)
    yield compose
    if not reuse:
        compose.stop(down=True)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Stack:
    if remote():  # make test-remote: only what the environment says about the deployment
        return Stack.from_remote_environment()
    request.getfixturevalue("compose")  # the sandbox, started (or reused)
    return Stack(read_env())
