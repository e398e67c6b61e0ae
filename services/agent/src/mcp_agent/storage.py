"""Token storage in a file readable only by the user (C29: keep refresh tokens confidential).

Besides what the SDK's TokenStorage protocol holds (tokens, client registration), the file keeps
the token's absolute expiry and the discovered metadata: the SDK 2.3.0 forgets both across a
restart (python-sdk#3250) and then never refreshes a stored token — see provider.py.

Two agent processes may share the file (two terminals, a script next to an interactive run):
every read-modify-write holds an exclusive `flock` on a sibling lock file, so neither loses the
other's update, and the file is replaced atomically (a temporary file in the same directory,
fsync'd, then `os.replace`), so a reader — or a crash — never sees half a file. POSIX only
(Linux, macOS), like the agent's container.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class FileTokenStorage:
    def __init__(self, state_dir: Path, server_url: str) -> None:
        name = hashlib.sha256(server_url.encode()).hexdigest()[:16]
        self.path = state_dir / f"{name}.json"
        # The lock file is never replaced or deleted: a lock on a file that a writer swaps out
        # would lock nothing.
        self.lock_path = state_dir / f"{name}.lock"
        self.server_url = server_url

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock: no other agent process reads-modifies-writes meanwhile."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable or corrupt: start over rather than crash

    def _write(self, data: dict[str, Any]) -> None:
        directory = self.path.parent
        # mkstemp creates the file 0600 with a unique name, so concurrent writers never share it.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # The rename itself reaches the disk only with the directory.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _save(self, **changes: Any) -> None:
        with self.locked():
            self._write({**self._load(), **changes, "server_url": self.server_url})

    # --- mcp.client.auth.TokenStorage ---
    async def get_tokens(self) -> OAuthToken | None:
        raw = self._load().get("tokens")
        return OAuthToken.model_validate(raw) if raw else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._save(tokens=tokens.model_dump(mode="json", exclude_none=True))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        raw = self._load().get("client_info")
        return OAuthClientInformationFull.model_validate(raw) if raw else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._save(client_info=client_info.model_dump(mode="json", exclude_none=True))

    # --- what the SDK does not persist ---
    def get_session(self) -> dict[str, Any]:
        session: dict[str, Any] = self._load().get("session", {})
        return session

    def set_session(self, **session: Any) -> None:
        with self.locked():
            data = self._load()
            self._write({**data, "session": {**data.get("session", {}), **session}, "server_url": self.server_url})

    def snapshot(self) -> dict[str, Any]:
        """Everything stored, as one consistent read."""
        return self._load()

    def clear(self) -> bool:
        with self.locked():
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            return True
