"""The services' requirements.lock files are exactly uv.lock's export (run `make lock`)."""

import os
import shutil
import subprocess

import pytest

from tests.support.stack import ROOT


@pytest.mark.parametrize(("package", "path"), [("mcp-server", "services/mcp-server"), ("notes-api", "services/api"),
                                              ("mcp-agent", "services/agent")])
def test_requirements_lock_matches_uv_lock(package, path):
    uv = shutil.which("uv") or str(ROOT / ".local" / "tools" / "bin" / "uv")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--package", package, "--no-emit-workspace", "--no-header", "-q"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    ).stdout
    assert exported == (ROOT / path / "requirements.lock").read_text(), "run `make lock`"
