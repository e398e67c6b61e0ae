"""Checks on the realm-as-code files that fail in seconds, not as an unhealthy Keycloak."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REALMS = sorted((Path(__file__).resolve().parents[2] / "services" / "keycloak").glob("*/*.json"))
# Keycloak stores these in VARCHAR(255) columns; a longer value aborts the whole import.
SHORT_FIELDS = {"name", "description", "clientId"}


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SHORT_FIELDS and isinstance(value, str):
                yield f"{path}/{key}", value
            yield from strings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from strings(value, f"{path}[{i}]")


@pytest.mark.parametrize("realm", REALMS, ids=lambda p: p.name)
def test_short_fields_fit_keycloaks_columns(realm: Path):
    too_long = {path: len(value) for path, value in strings(json.loads(realm.read_text())) if len(value) > 255}
    assert too_long == {}


def test_client_secrets_come_from_the_environment_not_the_file():
    for realm in REALMS:
        data = json.loads(realm.read_text())
        for client in data.get("clients", []) if isinstance(data, dict) else []:
            secret = client.get("secret")
            assert secret is None or (secret.startswith("${") and secret.endswith("}")), (realm.name, client["clientId"])
