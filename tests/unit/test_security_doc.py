"""docs/security.md names every attack test: the threat model cannot silently fall behind."""

from __future__ import annotations

import ast

from tests.support.stack import ROOT

DOC = (ROOT / "docs" / "security.md").read_text()


def attack_tests() -> list[str]:
    names = []
    for path in [*(ROOT / "tests" / "security").glob("test_*.py"), ROOT / "tests" / "integration" / "test_agent_flows.py"]:
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.name.startswith("test_"):
                continue
            marked = any("security" in ast.unparse(d) for d in node.decorator_list)
            if path.parent.name == "security" or marked:
                names.append(node.name)
    return names


def test_every_attack_test_is_in_the_threat_model():
    names = attack_tests()
    assert len(names) >= 40
    missing = [n for n in names if n not in DOC]
    assert missing == []
