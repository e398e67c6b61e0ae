"""Token storage in a file readable only by the user (C29: keep refresh tokens confidential).

Besides what the SDK's TokenStorage protocol holds (tokens, client registration), the file keeps
the token's absolute expiry and the discovered metadata: the SDK 2.3.0 forgets both across a
restart (python-sdk#3250) and then never refreshes a stored token — see provider.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class FileTokenStorage:
    def __init__(self, state_dir: Path, server_url: str) -> None:
        name = hashlib.sha256(server_url.encode()).hexdigest()[:16]
        self.path = state_dir / f"{name}.json"
        self.server_url = server_url

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable or corrupt: start over rather than crash

    def _save(self, **changes: Any) -> None:
        data = {**self._load(), **changes, "server_url": self.server_url}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.path)

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
        self._save(session={**self.get_session(), **session})

    def clear(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
