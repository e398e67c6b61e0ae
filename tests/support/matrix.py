"""The client interop matrix (docs/clients.md), generated from the last test run.

A test proves a cell of the matrix by its marker:

    @pytest.mark.matrix("TypeScript SDK", "client credentials")

As a pytest plugin (tests/conftest.py loads it) this records each marked test's outcome into
.local/interop/results.json, merged with earlier runs, and rewrites docs/clients.md at the end of
any run that executed a marked test — so `make interop` (the client tests only) and `make test`
(everything) both keep it current. The page is rendered from that file, the conformance runs'
summaries (.local/interop/conformance/), the clients' pinned versions (lockfiles) and
tests/interop/clients.toml (the columns, the rows and the known client-side limits);
`python -m tests.support.matrix` renders it again without running anything.
"""

from __future__ import annotations

import json
import re
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    data = catalog()
    flows = set(data["flows"])
    clients = {c["name"] for c in data["clients"]}
    for item in items:
        for mark in item.iter_markers("matrix"):
            client, flow = mark.args
            if client not in clients or flow not in flows:
                raise pytest.UsageError(f"{item.nodeid}: matrix({client!r}, {flow!r}) is not in {CATALOG.name}")


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
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    for (client, flow), entries in _outcomes.items():
        outcomes = {outcome for _, outcome in entries}
        result = "failed" if "failed" in outcomes else ("skipped" if "skipped" in outcomes else "passed")
        previous.setdefault(client, {})[flow] = {"result": result, "tests": sorted(n for n, _ in entries), "at": now}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    DOC.write_text(render())


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
