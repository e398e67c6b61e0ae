"""The docs stand alone and name only tests that exist: every `test_…` a page under docs/ (or a
README) cites is a test function in tests/, and no page points outside the repository."""

from __future__ import annotations

import ast
import re

from tests.support.stack import ROOT

PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", *sorted(ROOT.glob("services/*/README.md")),
         ROOT / "cimd-host" / "README.md", ROOT / "cimd-host" / "clients" / "README.md", ROOT / "tests" / "interop" / "README.md",
         ROOT / "deploy" / "aws" / "README.md"]


def defined_tests() -> set[str]:
    """Test function names, and test module names (pages cite both)."""
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.add(path.stem)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_every_test_a_page_cites_exists():
    existing = defined_tests()
    cited = {(page.name, name) for page in PAGES for name in re.findall(r"\btest_[a-z0-9_]+", page.read_text())}
    missing = sorted((page, name) for page, name in cited if name not in existing and not name.endswith("_"))
    assert missing == []


def test_no_page_points_outside_the_repository():
    for page in PAGES:
        text = page.read_text()
        assert "shared/notes" not in text, page
        assert "../shared" not in text, page
