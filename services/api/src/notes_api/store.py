"""The notes, per user: a SQLite file (on a named volume in compose, so a restart keeps them).

Every query is keyed by the owner — the `sub` of the validated token, never anything the request
body says — so one user can neither read nor delete another's notes. SQLite is synchronous: each
call runs in a worker thread with its own connection (no connection shared across threads), and
WAL mode lets readers proceed while one writer writes.

TOPOLOGY=ha runs one API container like the sandbox does; PostgreSQL for the API there is a
follow-up (docs/decisions.md, "The downstream API").
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    created: float

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))}


class NoteStore:
    def __init__(self, path: Path, *, max_per_owner: int) -> None:
        self._path = path
        self._max = max_per_owner

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def initialise(self) -> None:
        """Create the file and schema if missing (at startup; fails loudly if the volume is not writable)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.executescript(SCHEMA)
        finally:
            db.close()

    def ping(self) -> bool:
        try:
            db = self._connect()
            try:
                db.execute("SELECT 1 FROM notes LIMIT 1").fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            return False
        return True

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
            with db:  # one transaction: the count and the insert
                (count,) = db.execute("SELECT COUNT(*) FROM notes WHERE owner = ?", (owner,)).fetchone()
                if count >= self._max:
                    raise TooManyNotes(f"at most {self._max} notes per user")
                created = time.time()
                cursor = db.execute("INSERT INTO notes (owner, text, created) VALUES (?, ?, ?)", (owner, text, created))
                note_id = cursor.lastrowid
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
