"""The note stores (notes_api.store, notes_api.postgres): which backend the configuration picks,
the SQLite backend's rules (per owner, the limit under concurrent adds, nothing lost on reopen),
and the PostgreSQL backend's start-up failures as one clear line (a real libpq connection to a
closed port). The PostgreSQL backend's round trips run against the HA topology's database in
tests/integration/test_notes_api.py (make test-ha)."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest
from pydantic import ValidationError

from notes_api.app import note_store
from notes_api.config import Settings
from notes_api.postgres import PostgresNoteStore, read_password
from notes_api.store import SQLiteNoteStore, StoreUnavailable, TooManyNotes

pytestmark = pytest.mark.anyio


def test_sqlite_unless_a_postgresql_url_is_configured(tmp_path: Path):
    assert isinstance(note_store(Settings(database=tmp_path / "n.sqlite3")), SQLiteNoteStore)
    chosen = note_store(Settings(database_url="postgresql://notes@postgres:5432/notes",
                                 database_password_file=tmp_path / "pw"))
    assert isinstance(chosen, PostgresNoteStore)


def test_a_password_in_the_database_url_is_refused(tmp_path: Path):
    """The password is a file (a compose secret), never part of a URL in the environment."""
    with pytest.raises(ValidationError):
        Settings(database_url="postgresql://notes:secret@postgres:5432/notes")
    with pytest.raises(ValidationError):
        Settings(database_url="mysql://notes@db/notes")


def test_the_aws_templates_shape_user_and_password_from_task_secrets_is_accepted():
    """ECS hands Secrets Manager fields over as variables: a URL without credentials, the user and
    the password beside it (deploy/aws, components/notes_api.py)."""
    settings = Settings(database_url="postgresql://db.internal:5433/notes?sslmode=require",
                        database_user="notes", database_password="from-secrets-manager")
    assert isinstance(note_store(settings), PostgresNoteStore)
    assert "from-secrets-manager" not in repr(settings)
    with pytest.raises(ValidationError, match="names no user"):
        Settings(database_url="postgresql://db.internal:5433/notes")


def test_the_password_file_must_exist_and_hold_a_password(tmp_path: Path):
    with pytest.raises(StoreUnavailable, match="cannot read the database password file"):
        read_password(tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(StoreUnavailable, match="is empty"):
        read_password(tmp_path / "empty")
    (tmp_path / "pw").write_text("s3cret\n")
    assert read_password(tmp_path / "pw") == "s3cret"


async def test_an_unreachable_database_fails_the_start_with_one_line_and_no_password(tmp_path: Path):
    with socket.socket() as closed:  # a port nothing listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        (tmp_path / "pw").write_text("not-this-one")
        store = PostgresNoteStore(f"postgresql://notes@127.0.0.1:{port}/notes", password_file=tmp_path / "pw",
                                  max_per_owner=5, connect_timeout=0.5)
        with pytest.raises(StoreUnavailable) as failed:
            await store.open()
    message = str(failed.value)
    assert message.startswith("PostgreSQL: ")
    assert "\n" not in message
    assert "not-this-one" not in message


async def test_a_store_that_is_not_open_says_so():
    store = PostgresNoteStore("postgresql://notes@127.0.0.1:1/notes", password_file=None, max_per_owner=5)
    with pytest.raises(StoreUnavailable, match="not open"):
        await store.notes("alice")


async def test_sqlite_keeps_notes_per_owner_and_across_reopening(tmp_path: Path):
    store = SQLiteNoteStore(tmp_path / "notes.sqlite3", max_per_owner=5)
    await store.open()
    note = await store.add("alice", "one")
    assert await store.notes("bob") == []
    assert not await store.delete("bob", note.id)  # not his: nothing deleted
    reopened = SQLiteNoteStore(tmp_path / "notes.sqlite3", max_per_owner=5)
    await reopened.open()
    assert await reopened.notes("alice") == [note]
    assert await reopened.delete("alice", note.id)
    assert await reopened.notes("alice") == []


async def test_sqlite_holds_the_limit_under_concurrent_adds(tmp_path: Path):
    store = SQLiteNoteStore(tmp_path / "notes.sqlite3", max_per_owner=3)
    await store.open()
    outcomes: list[str] = []

    async def add(i: int) -> None:
        try:
            await store.add("alice", f"note {i}")
            outcomes.append("added")
        except TooManyNotes:
            outcomes.append("refused")

    async with anyio.create_task_group() as tasks:
        for i in range(8):
            tasks.start_soon(add, i)
    assert sorted(outcomes) == ["added"] * 3 + ["refused"] * 5
    assert len(await store.notes("alice")) == 3
