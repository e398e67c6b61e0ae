"""The client interop matrix (docs/clients.md), generated from the last test run.

A test proves a cell of the matrix by its marker:

    @pytest.mark.matrix("TypeScript SDK 1.x", "client credentials")

As a pytest plugin (tests/conftest.py loads it) this records each marked test's outcome into
.local/interop/results.json: the outcomes of the last run that executed marked tests, that run's
alone (a run that executes any replaces the file and the conformance summaries, so the page never
mixes runs). Only a run given `--clients-doc` (`make interop`) rewrites the tracked
docs/clients.md; `make test` leaves the checkout as it found it. The page is rendered from that
file, the conformance runs' summaries (.local/interop/conformance/), the clients' pinned versions
(lockfiles) and tests/interop/clients.toml (the columns, the rows and the known client-side
limits); `python -m tests.support.matrix` renders it again without running anything.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.stack import ROOT, STATE, remote

RESULTS = STATE / "interop" / "results.json"
CONFORMANCE = STATE / "interop" / "conformance"
CATALOG = ROOT / "tests" / "interop" / "clients.toml"
DOC = ROOT / "docs" / "clients.md"
NODE_DIR = ROOT / "tests" / "interop" / "node"

_outcomes: dict[tuple[str, str], list[tuple[str, str]]] = {}


def catalog() -> dict[str, Any]:
    return tomllib.loads(CATALOG.read_text())


# --- pytest plugin -------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clients-doc", action="store_true", default=False,
                     help=f"rewrite {DOC.relative_to(ROOT)} from this run's client matrix results (make interop)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    data = catalog()
    flows = set(data["flows"])
    clients = {c["name"] for c in data["clients"]}
    for item in items:
        for mark in item.iter_markers("matrix"):
            client, flow = mark.args
            if client not in clients or flow not in flows:
                raise pytest.UsageError(f"{item.nodeid}: matrix({client!r}, {flow!r}) is not in {CATALOG.name}")


def pytest_collection_finish(session: pytest.Session) -> None:
    # After deselection (-m, -k): a run that will execute matrix tests is the one the page
    # describes, so nothing from earlier runs stays.
    if any(item.get_closest_marker("matrix") or item.get_closest_marker("interop") for item in session.items) \
            and not remote():
        RESULTS.unlink(missing_ok=True)
        shutil.rmtree(CONFORMANCE, ignore_errors=True)


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.when == "setup" and call.excinfo is None:
        return
    if call.when == "teardown" and call.excinfo is None:
        return
    outcome = "passed" if call.excinfo is None else ("skipped" if call.excinfo.errisinstance(pytest.skip.Exception)
                                                     else "failed")
    for mark in item.iter_markers("matrix"):
        cell = _outcomes.setdefault(mark.args, [])
        # One entry per test: a failure in teardown overrides the call's pass.
        cell[:] = [entry for entry in cell if entry[0] != item.nodeid] + [(item.nodeid, outcome)]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _outcomes or remote():  # the matrix is about this sandbox, not a remote deployment
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results(_outcomes, datetime.now(UTC)), indent=2, sort_keys=True) + "\n")
    if session.config.getoption("--clients-doc"):
        DOC.write_text(render())


def results(outcomes: dict[tuple[str, str], list[tuple[str, str]]], at: datetime) -> dict[str, dict[str, Any]]:
    """Each cell's result in this run: failed if any of its tests failed, skipped if any skipped."""
    now = at.strftime("%Y-%m-%d %H:%M UTC")
    table: dict[str, dict[str, Any]] = {}
    for (client, flow), entries in outcomes.items():
        seen = {outcome for _, outcome in entries}
        result = "failed" if "failed" in seen else ("skipped" if "skipped" in seen else "passed")
        table.setdefault(client, {})[flow] = {"result": result, "tests": sorted(n for n, _ in entries), "at": now}
    return table


# --- versions --------------------------------------------------------------------------------


def npm_version(package: str) -> str:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{package}"]["version"]


def pip_version(requirements: str, package: str) -> str:
    text = (ROOT / requirements).read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.MULTILINE | re.IGNORECASE)
    if not match:
        raise LookupError(f"{package} is not pinned in {requirements}")
    return match.group(1)


def uv_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for entry in lock["package"]:
        if entry["name"] == package:
            return str(entry["version"])
    raise LookupError(f"{package} is not in uv.lock")


def deb_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "(not installed)"
    return out.strip()


def version_of(client: dict[str, Any]) -> str:
    kind, _, where = client["version"].partition(":")
    if kind == "npm":
        return npm_version(where)
    if kind == "pip":
        file, package = where.split("#")
        return pip_version(file, package)
    if kind == "uv":
        return uv_version(where)
    if kind == "deb":
        return deb_version(where)
    raise ValueError(f"unknown version source {client['version']!r}")


# --- rendering -------------------------------------------------------------------------------

MARK = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⚠️ skipped"}


def cell(client: dict[str, Any], flow: str, results: dict[str, Any]) -> str:
    result = results.get(client["name"], {}).get(flow)
    if result:
        return MARK[result["result"]]
    note = client.get("unsupported", {}).get(flow)
    if note:
        return f"— {note}"
    return "not tested"


def conformance_section() -> list[str]:
    lines = []
    for summary in sorted(CONFORMANCE.glob("*.json")):
        data = json.loads(summary.read_text())
        lines += [f"### {data['title']}", "", f"`{data['command']}` — run {data['at']}.", "",
                  "| Scenario | Result | Checks |", "|---|---|---|"]
        for name, scenario in sorted(data["scenarios"].items()):
            result = "✅ passed" if scenario["failed"] == 0 else "❌ failed"
            if scenario.get("expected"):
                result = f"— {scenario['expected']}"
            lines.append(f"| `{name}` | {result} | {scenario['passed']} passed, {scenario['failed']} failed |")
        lines.append("")
    return lines or ["No conformance run recorded yet: run `make interop`.", ""]


def render() -> str:
    data = catalog()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    flows = data["flows"]
    stamps = sorted({r["at"] for c in results.values() for r in c.values()})
    lines = [
        "# Clients: what works against this stack",
        "",
        "<!-- Generated by `make interop` (tests/support/matrix.py) from the last run of the interop",
        "     tests and tests/interop/clients.toml. Do not edit by hand. -->",
        "",
        data["intro"].strip(),
        "",
        f"Last run: {stamps[-1] if stamps else 'never'}.",
        "",
        "| Client | Version | " + " | ".join(flows) + " |",
        "|---|---|" + "---|" * len(flows),
    ]
    for client in data["clients"]:
        row = [client["name"], f"`{version_of(client)}`"] + [cell(client, flow, results) for flow in flows]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Columns:", ""]
    lines += [f"- **{flow}**: {text}" for flow, text in data["flows"].items()]
    lines += ["", "## The tests behind each cell", ""]
    for client in data["clients"]:
        for flow in flows:
            result = results.get(client["name"], {}).get(flow)
            if result:
                tests = ", ".join(f"`{t}`" for t in result["tests"])
                lines.append(f"- {client['name']} × {flow}: {tests}")
    lines += ["", "## Official conformance suite", "", data["conformance"].strip(), ""]
    lines += conformance_section()
    lines += ["## Known client-side limits", ""]
    for limit in data["limits"]:
        lines.append(f"- **{limit['client']}** — {' '.join(limit['text'].split())} ({limit['reference']})")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    DOC.write_text(render())
    print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
