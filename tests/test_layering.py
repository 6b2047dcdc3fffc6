"""The layering of design.md: state/ imports nothing of ours; pipeline/ imports state/ and
never Textual; po_console/ sits on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = {"state", "pipeline", "po_console"}
ALLOWED = {"state": {"state"}, "pipeline": {"state", "pipeline"}, "po_console": OURS}
FORBIDDEN_THIRD_PARTY = {"state": {"textual", "dspy", "torch"}, "pipeline": {"textual"}}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package):
    problems = []
    for path in sorted((REPO / package).rglob("*.py")):
        roots = imported_roots(path)
        for root in sorted(roots & OURS - ALLOWED[package]):
            problems.append(f"{path.relative_to(REPO)} imports {root}")
        for root in sorted(roots & FORBIDDEN_THIRD_PARTY.get(package, set())):
            problems.append(f"{path.relative_to(REPO)} imports {root}")
    assert not problems, "\n".join(problems)
