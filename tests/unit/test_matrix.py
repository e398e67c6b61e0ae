"""The client matrix plugin (tests/support/matrix.py): `make test` leaves docs/clients.md alone,
`make interop` rewrites it from that run's results only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import matrix

CELL = ("TypeScript SDK 1.x", "client credentials")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    paths = SimpleNamespace(results=tmp_path / "results.json", conformance=tmp_path / "conformance",
                            doc=tmp_path / "clients.md")
    monkeypatch.setattr(matrix, "RESULTS", paths.results)
    monkeypatch.setattr(matrix, "CONFORMANCE", paths.conformance)
    monkeypatch.setattr(matrix, "DOC", paths.doc)
    monkeypatch.setattr(matrix, "render", lambda: "rendered\n")
    monkeypatch.setattr(matrix, "_outcomes", {CELL: [("tests/interop/test_x.py::test_a", "passed")]})
    monkeypatch.delenv("MCP_TEST_REMOTE", raising=False)
    return paths


def session(*, clients_doc: bool, items: list[object] | None = None) -> pytest.Session:
    config = SimpleNamespace(getoption=lambda name: clients_doc if name == "--clients-doc" else None)
    return SimpleNamespace(config=config, items=items or [])  # type: ignore[return-value]


def test_a_run_without_clients_doc_records_results_but_leaves_the_tracked_page_alone(state: SimpleNamespace) -> None:
    matrix.pytest_sessionfinish(session(clients_doc=False))
    assert json.loads(state.results.read_text())[CELL[0]][CELL[1]]["result"] == "passed"
    assert not state.doc.exists()


def test_make_interop_rewrites_the_page(state: SimpleNamespace) -> None:
    matrix.pytest_sessionfinish(session(clients_doc=True))
    assert state.doc.read_text() == "rendered\n"


def test_results_are_this_runs_alone(state: SimpleNamespace) -> None:
    state.results.write_text(json.dumps({"Old client": {"machine": {"result": "passed", "tests": [], "at": "x"}}}))
    matrix.pytest_sessionfinish(session(clients_doc=False))
    assert set(json.loads(state.results.read_text())) == {CELL[0]}


def test_a_run_that_will_execute_client_tests_forgets_earlier_runs(state: SimpleNamespace) -> None:
    state.results.write_text("{}")
    state.conformance.mkdir()
    (state.conformance / "old.json").write_text("{}")
    marked = SimpleNamespace(get_closest_marker=lambda name: object() if name == "matrix" else None)
    unmarked = SimpleNamespace(get_closest_marker=lambda name: None)

    matrix.pytest_collection_finish(session(clients_doc=False, items=[unmarked]))
    assert state.results.exists()
    assert (state.conformance / "old.json").exists()

    matrix.pytest_collection_finish(session(clients_doc=False, items=[unmarked, marked]))
    assert not state.results.exists()
    assert not state.conformance.exists()


def test_a_cell_fails_if_any_of_its_tests_failed() -> None:
    table = matrix.results({CELL: [("a", "passed"), ("b", "failed"), ("c", "skipped")]}, datetime(2026, 1, 1, tzinfo=UTC))
    assert table[CELL[0]][CELL[1]] == {"result": "failed", "tests": ["a", "b", "c"], "at": "2026-01-01 00:00 UTC"}
    table = matrix.results({CELL: [("a", "passed"), ("c", "skipped")]}, datetime(2026, 1, 1, tzinfo=UTC))
    assert table[CELL[0]][CELL[1]]["result"] == "skipped"
