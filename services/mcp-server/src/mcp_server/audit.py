"""What this replica served: tool-call counts since it started, and the last calls.

In memory and per replica: behind a load balancer each replica knows only the calls it answered,
and a restart forgets them. It is what the `server_stats` and `recent_calls` tools report, not a
durable audit trail (that is the access log, access_log.py, one line per request).

Each tool records its own call on its first line (`record("name")`): explicit, and the SDK still
builds the tool's schema from the plain function's signature (a wrapper would hide it).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token

KEPT = 50  # calls `recent_calls` can list


@dataclass(frozen=True)
class Call:
    time: str  # ISO 8601, UTC
    tool: str
    user: str | None  # the token's preferred_username, else its sub
    client_id: str | None


# Sync tools run in worker threads (the SDK's anyio.to_thread): one lock for both records.
_lock = threading.Lock()
_counts: Counter[str] = Counter()
_recent: deque[Call] = deque(maxlen=KEPT)


def record(tool: str) -> None:
    """Count and remember a call of `tool` by the caller of the current request."""
    token = get_access_token()  # None only in the benchmark's no-auth baseline
    claims = (token.claims or {}) if token else {}
    user = claims.get("preferred_username") or (token.subject if token else None)
    call = Call(
        time=datetime.now(UTC).isoformat(timespec="milliseconds"),
        tool=tool,
        user=str(user) if user else None,
        client_id=(token.client_id or None) if token else None,
    )
    with _lock:
        _counts[tool] += 1
        _recent.append(call)


def counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def recent() -> list[dict[str, Any]]:
    """The last KEPT calls, newest first."""
    with _lock:
        calls = list(_recent)
    return [asdict(c) for c in reversed(calls)]
