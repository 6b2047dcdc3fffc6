"""The layering of design.md: state/ imports nothing of ours; pipeline/ imports state/ and
never Textual; po_console/ sits on top."""

from __future__ import annotations

import ast
import re
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


PANES = REPO / "po_console" / "panes"
PANE_MODULES = sorted(p for p in PANES.glob("*.py") if p.name not in ("__init__.py", "base.py"))


@pytest.mark.parametrize("path", PANE_MODULES, ids=lambda p: p.stem)
def test_a_pane_never_imports_another_pane(path):
    others = {f"po_console.panes.{p.stem}" for p in PANE_MODULES if p != path}
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not imported & others, f"{path.name} imports {sorted(imported & others)}"


# The one literal allowed: `po program show baseline` names the program as written, not the stage.
NAMED_ON_PURPOSE = {("pipeline/saved_programs.py", "baseline")}


def stage_names() -> set[str]:
    from pipeline import stages

    return {name for name, _, _ in stages.pipeline()}


def identifier_strings(path: Path) -> list[tuple[int, str]]:
    """String literals used as names (no spaces: keys, ids, comparisons), f-string parts included;
    prose (help texts, docstrings) is left alone."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value.strip():
            found.append((node.lineno, node.value))
    return found


@pytest.mark.parametrize("package", ["po_console", "pipeline"])
def test_no_stage_is_named_outside_its_own_modules_and_the_registries(package):
    """A stage is named by its module (pipeline/stages/) and its pane (po_console/panes/), and
    nowhere else: the CLI, the app, the run engine and the overview take stages from the registry."""
    names = stage_names()
    allowed = {"po_console": PANES, "pipeline": REPO / "pipeline" / "stages"}[package]
    problems = []
    for path in sorted((REPO / package).rglob("*.py")):
        if allowed in path.parents:
            continue
        for line, text in identifier_strings(path):
            words = {w for w in re.split(r"[^a-z]+", text.lower()) if w}
            if words & names and (str(path.relative_to(REPO)), text) not in NAMED_ON_PURPOSE:
                problems.append(f"{path.relative_to(REPO)}:{line}: {text!r}")
    assert not problems, "\n".join(problems)
