"""services/keycloak/realm/profile.py, imported by path (a build script of two images, not a package),
and the realm files of its profiles, as the Keycloak and realm-sync images render them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.stack import ROOT

REALM_DIR = ROOT / "services" / "keycloak" / "realm"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("realm_profile_script", REALM_DIR / "profile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


profile = _load()


def rendered(name: str) -> dict[str, dict[str, Any]]:
    """File name -> realm representation, for profile `name` (`production` or `sandbox`)."""
    realms: dict[str, dict[str, Any]] = profile.render(REALM_DIR, name)
    return realms


def render_to(directory: Path, name: str) -> Path:
    """The profile's files written into `directory`, as the images' build writes them."""
    assert profile.main(["--profile", name, str(REALM_DIR), str(directory)]) == 0
    return directory


def realm_of(realms: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    (realm,) = [realm for realm in realms.values() if realm["realm"] == name]
    return realm
