"""The notes in PostgreSQL (TOPOLOGY=ha): several API replicas share one database, so any replica
answers any request, and a replica's restart loses nothing. The same contract as store.py's
SQLite backend (store.NoteStore), with psycopg 3's async driver and its connection pool.

- The password is read from a file (a compose secret, API_DATABASE_PASSWORD_FILE), never from the
  environment or the URL, and goes to libpq as a connection parameter.
- Concurrency across replicas: PostgreSQL's default isolation (READ COMMITTED) would let two
  replicas both count 199 notes and both insert. Each add takes a transaction-scoped advisory lock
  on the owner first, so adds of one owner are serialised and the limit holds; other owners are
  not blocked. Schema creation takes a fixed advisory lock: two replicas starting together would
  otherwise race on CREATE TABLE IF NOT EXISTS (it is not atomic against a concurrent create).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .store import Note, StoreUnavailable, TooManyNotes

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner TEXT NOT NULL,
    text TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_owner ON notes (owner, id);
"""
# Any fixed key of our own: the lock held while the schema is created.
SCHEMA_LOCK = 0x6E6F746573  # "notes"


def read_password(path: Path) -> str:
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise StoreUnavailable(f"cannot read the database password file {path}: {exc.strerror}") from None
    if not password:
        raise StoreUnavailable(f"the database password file {path} is empty")
    return password


class PostgresNoteStore:
    def __init__(self, url: str, *, password_file: Path | None, max_per_owner: int, pool_size: int = 5,
                 connect_timeout: float = 5.0, user: str | None = None, password: str | None = None) -> None:
        self._url = url
        self._password_file = password_file
        self._user = user
        self._password = password
        self._max = max_per_owner
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool | None = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, checked before use (after a database restart the pool's old
        connections are dead: they are replaced, not handed out); a database error becomes
        StoreUnavailable, which the API answers with a 503 and one line."""
        if self._pool is None:
            raise StoreUnavailable("the note store is not open")
        try:
            async with self._pool.connection() as db:
                yield db
        except (psycopg.Error, TimeoutError) as exc:
            raise StoreUnavailable(f"PostgreSQL: {_reason(exc)}") from None

    async def open(self) -> None:
        kwargs: dict[str, object] = {"connect_timeout": max(1, round(self._connect_timeout))}
        if self._password_file is not None:
            kwargs["password"] = read_password(self._password_file)
        elif self._password is not None:
            kwargs["password"] = self._password
        if self._user is not None:
            kwargs["user"] = self._user
        pool = AsyncConnectionPool(self._url, kwargs=kwargs, min_size=1, max_size=self._pool_size, open=False,
                                   timeout=self._connect_timeout, name="notes",
                                   check=AsyncConnectionPool.check_connection)
        try:
            # Waits for the first connection: a database that cannot be reached fails the start,
            # with libpq's reason (it never includes the password).
            await pool.open(wait=True, timeout=self._connect_timeout * 6)
            async with pool.connection() as db, db.transaction():
                await db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                await db.execute(SCHEMA)
        except (psycopg.Error, TimeoutError) as exc:
            await pool.close()
            raise StoreUnavailable(f"PostgreSQL: {_reason(exc)}") from None
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def notes(self, owner: str) -> list[Note]:
        async with self._connection() as db:
            cursor = await db.execute("SELECT id, text, created FROM notes WHERE owner = %s ORDER BY id", (owner,))
            rows = await cursor.fetchall()
        return [Note(int(r[0]), str(r[1]), float(r[2])) for r in rows]

    async def add(self, owner: str, text: str) -> Note:
        async with self._connection() as db, db.transaction():
            # Serialise this owner's adds across replicas (see the module docstring).
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (owner,))
            cursor = await db.execute("SELECT COUNT(*) FROM notes WHERE owner = %s", (owner,))
            row = await cursor.fetchone()
            if row is not None and int(row[0]) >= self._max:
                raise TooManyNotes(f"at most {self._max} notes per user")
            created = time.time()
            cursor = await db.execute("INSERT INTO notes (owner, text, created) VALUES (%s, %s, %s) RETURNING id",
                                      (owner, text, created))
            inserted = await cursor.fetchone()
        assert inserted is not None
        return Note(int(inserted[0]), text, created)

    async def delete(self, owner: str, note_id: int) -> bool:
        async with self._connection() as db:
            cursor = await db.execute("DELETE FROM notes WHERE owner = %s AND id = %s", (owner, note_id))
            return cursor.rowcount == 1


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
