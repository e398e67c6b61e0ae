"""Secret values the suite used — tokens, codes, assertions, passwords. None of them may appear
in any container's log; tests/security/test_logs.py checks that after every other test."""

from __future__ import annotations

USED: set[str] = set()


def remember(*values: str | None) -> None:
    for value in values:
        if value and len(value) >= 12:  # long enough never to match by chance
            USED.add(value)
