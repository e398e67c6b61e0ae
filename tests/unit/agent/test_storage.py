"""Token storage: private file, survives a restart, holds what a refresh needs, and stays whole
when two agent processes share it."""

import fcntl
import json
import os
import stat
import subprocess
import sys

import anyio
import pytest
from mcp.shared.auth import OAuthToken

from mcp_agent.storage import FileTokenStorage

SERVER = "https://mcp.localhost/mcp"


def test_tokens_are_saved_readable_only_by_the_user(tmp_path):
    storage = FileTokenStorage(tmp_path / "state", SERVER)
    anyio.run(storage.set_tokens, OAuthToken(access_token="a", token_type="Bearer", refresh_token="r", expires_in=300))
    storage.set_session(expires_at=123.0)
    assert stat.S_IMODE(storage.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(storage.lock_path.stat().st_mode) == 0o600
    again = FileTokenStorage(tmp_path / "state", SERVER)  # a new process
    tokens = anyio.run(again.get_tokens)
    assert tokens.refresh_token == "r"
    assert again.get_session()["expires_at"] == 123.0
    # Only the file and its lock: no temporary file left behind.
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == sorted([storage.path.name, storage.lock_path.name])


def test_a_corrupt_file_means_logged_out_not_a_crash(tmp_path):
    storage = FileTokenStorage(tmp_path, SERVER)
    storage.path.write_text("{not json")
    assert anyio.run(storage.get_tokens) is None


def test_a_write_holds_the_exclusive_lock_other_processes_wait_on(tmp_path):
    storage = FileTokenStorage(tmp_path, SERVER)
    with storage.locked():
        other = os.open(storage.lock_path, os.O_RDWR)  # another open file, as another process has
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    other = os.open(storage.lock_path, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the write is done
    finally:
        os.close(other)


WRITER = """
import sys
from pathlib import Path
from mcp_agent.storage import FileTokenStorage
storage = FileTokenStorage(Path(sys.argv[1]), sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # both start writing together
for i in range(int(sys.argv[4])):
    storage.set_session(**{f"{sys.argv[3]}-{i}": i})
"""


def test_two_processes_updating_the_file_lose_nothing(tmp_path):
    """Each process adds its own session keys by read-modify-write; without the lock (or with a
    shared temporary file) one overwrites the other's additions or fails mid-rename."""
    rounds = 40
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), SERVER, name, str(rounds)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for name in ("first", "second")]
    assert [w.stdout.readline() for w in writers] == ["ready\n", "ready\n"]
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.close()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    session = json.loads(FileTokenStorage(tmp_path, SERVER).path.read_text())["session"]
    assert sorted(session) == sorted(f"{name}-{i}" for name in ("first", "second") for i in range(rounds))


def test_logout_removes_the_file_under_the_lock(tmp_path):
    storage = FileTokenStorage(tmp_path, SERVER)
    storage.set_session(expires_at=1.0)
    assert storage.clear() is True
    assert not storage.path.exists()
    assert storage.clear() is False
