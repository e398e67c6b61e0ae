"""The real stack, brought up by testcontainers' DockerCompose from compose/compose.yaml.

If the sandbox is already running (make up), the tests use it and leave it running; otherwise
they start it and tear it down (volumes included) at the end. If it cannot start, the tests
fail with the reason — they are never skipped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from testcontainers.compose import DockerCompose

from tests.support.stack import COMPOSE_DIR, Stack, read_env


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
    compose = DockerCompose(context=COMPOSE_DIR, compose_file_name="compose.yaml", build=True, wait=True)
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
def stack(compose: DockerCompose) -> Stack:
    return Stack(read_env())
