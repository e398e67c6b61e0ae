"""The notes, per user, in one of two backends chosen by configuration (config.Settings):

- `SQLiteNoteStore`: a file on a named volume (the single-node sandbox): a restart keeps them.
- `PostgresNoteStore` (postgres.py): a PostgreSQL database (TOPOLOGY=ha), so several API
  replicas share the notes and no replica holds any state of its own.

Both answer the same `NoteStore` protocol, and the same rules hold in both: every query is keyed
by the owner — the `sub` of the validated token, never anything the request body says — so one
user can neither read nor delete another's notes; the per-owner count and the insert happen in one
transaction, so the limit holds under concurrent requests (across replicas too, postgres.py).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_owner ON notes (owner, id);
"""


class TooManyNotes(Exception):
    """The owner already has the most notes allowed."""


class StoreUnavailable(Exception):
    """The database cannot be reached or used; the message says why (never a password)."""


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    created: float

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))}


class NoteStore(Protocol):
    async def open(self) -> None:
        """Connect and create the schema if missing (at startup: fails loudly when it cannot)."""

    async def close(self) -> None: ...

    async def notes(self, owner: str) -> list[Note]: ...

    async def add(self, owner: str, text: str) -> Note:
        """The new note; TooManyNotes when the owner has `max_per_owner` already."""

    async def delete(self, owner: str, note_id: int) -> bool:
        """True if the owner's note `note_id` was deleted; False if the owner has no such note."""


class SQLiteNoteStore:
    """SQLite is synchronous: each call runs in a worker thread with its own connection (no
    connection shared across threads), and WAL mode lets readers proceed while one writer writes.
    One process at a time: this backend is for a single API container."""

    def __init__(self, path: Path, *, max_per_owner: int) -> None:
        self._path = path
        self._max = max_per_owner

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._initialise)

    async def close(self) -> None:
        return None

    def _initialise(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.executescript(SCHEMA)
        finally:
            db.close()

    async def notes(self, owner: str) -> list[Note]:
        return await anyio.to_thread.run_sync(self._list, owner)

    async def add(self, owner: str, text: str) -> Note:
        return await anyio.to_thread.run_sync(self._add, owner, text)

    async def delete(self, owner: str, note_id: int) -> bool:
        return await anyio.to_thread.run_sync(self._delete, owner, note_id)

    def _list(self, owner: str) -> list[Note]:
        db = self._connect()
        try:
            rows = db.execute("SELECT id, text, created FROM notes WHERE owner = ? ORDER BY id", (owner,)).fetchall()
        finally:
            db.close()
        return [Note(*row) for row in rows]

    def _add(self, owner: str, text: str) -> Note:
        db = self._connect()
        try:
            # BEGIN IMMEDIATE takes the write lock before the count: two concurrent adds cannot
            # both count below the limit and both insert.
            db.isolation_level = None
            db.execute("BEGIN IMMEDIATE")
            try:
                (count,) = db.execute("SELECT COUNT(*) FROM notes WHERE owner = ?", (owner,)).fetchone()
                if count >= self._max:
                    raise TooManyNotes(f"at most {self._max} notes per user")
                created = time.time()
                cursor = db.execute("INSERT INTO notes (owner, text, created) VALUES (?, ?, ?)", (owner, text, created))
                note_id = cursor.lastrowid
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()
        assert note_id is not None
        return Note(note_id, text, created)

    def _delete(self, owner: str, note_id: int) -> bool:
        db = self._connect()
        try:
            with db:
                cursor = db.execute("DELETE FROM notes WHERE owner = ? AND id = ?", (owner, note_id))
        finally:
            db.close()
        return cursor.rowcount == 1
