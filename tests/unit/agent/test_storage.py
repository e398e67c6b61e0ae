"""Token storage: private file, survives a restart, holds what a refresh needs."""

import stat

import anyio
from mcp.shared.auth import OAuthToken

from mcp_agent.storage import FileTokenStorage


def test_tokens_are_saved_readable_only_by_the_user(tmp_path):
    storage = FileTokenStorage(tmp_path / "state", "https://mcp.localhost/mcp")
    anyio.run(storage.set_tokens, OAuthToken(access_token="a", token_type="Bearer", refresh_token="r", expires_in=300))
    storage.set_session(expires_at=123.0)
    assert stat.S_IMODE(storage.path.stat().st_mode) == 0o600
    again = FileTokenStorage(tmp_path / "state", "https://mcp.localhost/mcp")  # a new process
    tokens = anyio.run(again.get_tokens)
    assert tokens.refresh_token == "r"
    assert again.get_session()["expires_at"] == 123.0


def test_a_corrupt_file_means_logged_out_not_a_crash(tmp_path):
    storage = FileTokenStorage(tmp_path, "https://mcp.localhost/mcp")
    storage.path.write_text("{not json")
    assert anyio.run(storage.get_tokens) is None
