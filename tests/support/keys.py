"""Keep a test's key rotation out of the developer's sandbox: the agent's key directory and its
published JWKS are put back as they were afterwards, and Keycloak forgets the keys it cached
meanwhile (what `make rotate-keys` does too), so the next assertion meets the restored JWKS."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.stack import ROOT, STATE


@contextmanager
def restored_afterwards(agent: str) -> Iterator[None]:
    places = [STATE / "keys" / agent, STATE / "cimd-public" / "agents" / agent]
    with tempfile.TemporaryDirectory() as backup:
        copies = [Path(backup) / str(i) for i in range(len(places))]
        for place, copy in zip(places, copies, strict=True):
            shutil.copytree(place, copy)  # copy2: modes (0600 keys) kept
        try:
            yield
        finally:
            for place, copy in zip(places, copies, strict=True):
                shutil.rmtree(place)
                shutil.copytree(copy, place)
            forget_keys()


def forget_keys() -> None:
    """What `make rotate-keys` does after rotating: every Keycloak node drops its cached agent keys."""
    scripts = ROOT / "compose" / "scripts"
    subprocess.run([str(scripts / "with-env.sh"), str(scripts / "forget-keys.sh")], check=True,
                   capture_output=True, timeout=120)
