"""Suite-wide configuration. Tests under tests/integration are marked `integration`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Testcontainers' reaper (Ryuk) is an image pulled from Docker Hub, which these machines cannot
# reach. The compose stack is torn down by the `stack` fixture instead (tests/integration).
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
    # Unit tests first: they are fast and say more precisely what broke.
    items.sort(key=lambda i: INTEGRATION in Path(i.fspath).parents)
