"""The validation pane, piloted at 80x24 over a store written through the real store API: a
finished run whose summary is the real `compare()` of its stored answers (three systems,
parse failures among them), and a run still answering (counts per system so far)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest
from textual.widgets import ContentSwitcher, DataTable, Static

from pipeline.stages.validation import DEFAULT_GATE, ValidationRun, compare
from pipeline.workspace import Workspace, init_workspace
from po_console import panes
from po_console.app import POConsole
from po_console.panes.validation import SystemsExampleScreen
from state import read
from state import write as store

SYSTEMS = ("baseline", "optimized", "student")  # the reference first, as a run orders them
# Each system's score on val-0001..val-0008; None: a parse failure. Counting a failure as 0,
# val-0005 is where they disagree most (0.20 vs 0.95), then val-0003 (0.65 vs a failure),
# then val-0007 (0.60 vs the reference's failure).
SCORES = {
    "baseline": [0.50, 0.55, 0.60, 0.45, 0.20, 0.50, None, 0.40],
    "optimized": [0.55, 0.60, None, 0.50, 0.40, 0.55, 0.60, 0.45],
    "student": [0.60, 0.60, 0.65, 0.50, 0.95, 0.55, 0.60, None],
}
PARTS = ("vision_structure", "requirement_coverage")


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def answer(system: str, position: int) -> dict:
    example_id = f"val-{position + 1:04d}"
    score = SCORES[system][position]
    if score is None:
        return {"example_id": example_id, "position": position, "status": "parse_failure", "score": None,
                "latency_s": 3.0, "outputs": {"raw": f"[[ ## product_vision ## ]] half an answer of {system}"},
                "error": "ChatAdapter: the answer lacks [[ ## product_owner_review ## ]]"}
    return {"example_id": example_id, "position": position, "status": "ok", "score": score,
            "parts": {PARTS[0]: score, PARTS[1]: round(1 - score, 2)},
            "latency_s": {"baseline": 4.0, "optimized": 5.0, "student": 2.0}[system] + 0.5 * position,
            "lm_calls": 1, "input_tokens": 600, "output_tokens": 120,
            "outputs": {"product_vision": f"The vision of {system} for {example_id}.",
                        "product_owner_review": f"Verdict: Approved ({system})"}}


def validation_config(ws: Workspace, systems=SYSTEMS, notes=(), gate=None) -> ValidationRun:
    resolved = [{"name": name, "program": "as written", "program_dir": None, "program_fingerprint": "0" * 16,
                 "provider": "local", "provider_config": {"kind": "local"}, "source": "the test"}
                for name in systems]
    return ValidationRun.model_validate({
        "provider_config": {"kind": "local"}, "resolved": resolved, "notes": list(notes),
        "val": str(ws.root / "data/val.jsonl"), "val_sha256": "0" * 64, "examples": 8,
        **({"gate": gate} if gate is not None else {})})


def record_validation(ws: Workspace, *, answered: dict[str, int] | None = None, running: bool = False,
                      notes=(), gate=None) -> int:
    """A validation run: each system's first `answered[system]` answers stored (all 8 by
    default); finished with the real compare()'s summary unless `running`."""
    db = ws.db()
    cfg = validation_config(ws, notes=notes, gate=gate)
    run_id = store.create_run(db, "validation", cfg.model_dump(mode="json"))
    store.start_run(db, run_id, os.getpid(), socket.gethostname())  # alive: this process
    answered = answered or {name: 8 for name in SYSTEMS}
    for name in SYSTEMS:
        for position in range(answered.get(name, 0)):
            store.put_eval_result(db, run_id, answer(name, position), system=name)
    done = sum(answered.values())
    current = next((name for name in SYSTEMS if answered.get(name, 0) < 8), SYSTEMS[-1])
    store.set_progress(db, run_id, done, 8 * len(SYSTEMS), current)
    if not running:
        results = {name: read.eval_results(db, run_id, name) for name in SYSTEMS}
        store.finish_run(db, run_id, "succeeded", summary=compare(cfg, results))
    return run_id


def pane_key() -> str:
    """The validation pane's number key, as the app numbers the registry's panes."""
    return str(next(number for number, pane in enumerate(panes.panes(), 1) if pane.name == "validation"))


async def wait_until(pilot, predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cells(table: DataTable, key: str) -> list[str]:
    return [str(cell) for cell in table.get_row(key)]


def shown(widget) -> str:
    return str(widget.render())


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return init_workspace(tmp_path / "ws", demo=True)


def test_a_finished_run_compares_the_systems_says_the_verdict_and_opens_the_examples_they_disagree_on(workspace):
    run_id = record_validation(workspace, notes=["no optimized program: a note of the plan"])
    summary = read.get_run(workspace.db(readonly=True), run_id).summary
    assert summary["verdict"] == "pass"
    first_input = json.loads((workspace.root / "data/val.jsonl").read_text().splitlines()[4])

    async def story():
        app = POConsole(workspace, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(pane_key())
            assert app.query_one(ContentSwitcher).current == "validation"
            examples = app.query_one("#validation-examples", DataTable)
            await wait_until(pilot, lambda: examples.row_count == 8, what="the examples")
            systems = app.query_one("#validation-systems", DataTable)
            assert [k.value for k in systems.rows] == list(SYSTEMS)
            for name in SYSTEMS:
                s = summary["systems"][name]
                row = cells(systems, name)
                assert row[0] == name
                assert row[1] == f"{s['mean']:.3f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"
                assert row[2] == "7/8" and row[3] == "12%" and row[4] == "0%"
            student = summary["systems"]["student"]
            assert cells(systems, "baseline")[6] == "ref"
            assert cells(systems, "student")[6] == f"{student['wins']}/{student['ties']}/{student['losses']}"
            assert cells(systems, "student")[7] == f"{student['p_value']:.3f}"

            title = shown(app.query_one("#validation-summary", Static))
            assert title.startswith(f"Validation run {run_id} · succeeded · 24/24 answers · vs baseline")
            verdict = shown(app.query_one("#validation-verdict", Static)).splitlines()
            assert verdict[0] == f"verdict pass · gate of {len(DEFAULT_GATE)} conditions"
            assert verdict[1].startswith("  ✓ pass student.mean 0.6357 >= baseline.mean 0.4571 - 0.02")
            assert verdict[2].startswith("  ✓ pass student.parse_failure_rate 0.125 <= baseline.parse_failure_rate")
            assert verdict[4].startswith("  ✓ pass student.p95_latency_s")
            assert any(line.startswith("note: no optimized program: a note of the plan") for line in verdict)
            # At 80x24 the verdict takes 7 lines: what does not fit is counted, and report.md has it all.
            assert verdict[6] == "… 3 more (report.md in the run's artifacts)"

            order = [k.value for k in examples.rows]
            assert order[:3] == ["val-0005", "val-0003", "val-0007"]  # the largest spread first
            assert cells(examples, "val-0005")[:2] == ["val-0005", "0.750"]
            assert cells(examples, "val-0003")[2:] == ["0.600", "parse fail", "0.650"]
            assert examples.has_focus and examples.cursor_row == 0

            await pilot.press("o")  # in the file's order
            await wait_until(pilot, lambda: [k.value for k in examples.rows][0] == "val-0001", what="file order")
            await pilot.press("o")
            await wait_until(pilot, lambda: [k.value for k in examples.rows][0] == "val-0005", what="spread order")

            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, SystemsExampleScreen), what="the drill-down")
            screen = app.screen
            head = shown(screen.query_one("#example-head")).splitlines()
            assert head[0].startswith("val-0005 · spread 0.750")
            assert head[1].split() == ["baseline*", "optimized", "student"]
            assert head[2].split() == ["score", "0.200", "0.400", "0.950"]
            assert head[3].split() == ["vision_structure", "0.20", "0.40", "0.95"]
            texts = [shown(w) for w in screen.query("Static")]
            assert "The vision of baseline for val-0005." in texts
            assert "The vision of student for val-0005." in texts
            assert "Verdict: Approved (optimized)" in texts
            assert first_input["concept"] in texts  # the inputs, from the run's validation file
            await pilot.press("escape")
            assert app.screen is app.screen_stack[0]
            assert app.query_one(ContentSwitcher).current == "validation"

            await pilot.press("down", "enter")  # val-0003: a system that failed shows its error
            await wait_until(pilot, lambda: isinstance(app.screen, SystemsExampleScreen), what="the failure")
            screen = app.screen
            assert shown(screen.query_one("#example-head")).splitlines()[2].split() == \
                ["score", "0.600", "parse", "fail", "0.650"]
            texts = [shown(w) for w in screen.query("Static")]
            assert "ChatAdapter: the answer lacks [[ ## product_owner_review ## ]]" in texts
            assert "[[ ## product_vision ## ]] half an answer of optimized" in texts
            await pilot.press("escape")
            assert app.screen is app.screen_stack[0]

    asyncio.run(story())


def test_a_run_still_answering_shows_each_systems_counts_so_far(workspace):
    run_id = record_validation(workspace, answered={"baseline": 8, "optimized": 3}, running=True)

    async def story():
        app = POConsole(workspace, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(pane_key())
            systems = app.query_one("#validation-systems", DataTable)
            await wait_until(pilot, lambda: systems.row_count == 3 and
                             [c.key.value for c in systems.ordered_columns][1] == "answered", what="the counts")
            baseline_mean = sum(s for s in SCORES["baseline"] if s is not None) / 7
            optimized_mean = (0.55 + 0.60) / 2
            assert cells(systems, "baseline")[:4] == ["baseline", "8/8", f"{baseline_mean:.3f}", "12%"]
            assert cells(systems, "baseline")[6] == "ref"
            # optimized: 0.55 and 0.60 beat 0.50 and 0.55; its third answer failed to parse.
            assert cells(systems, "optimized")[:4] == ["optimized", "3/8", f"{optimized_mean:.3f}", "33%"]
            assert cells(systems, "optimized")[6] == "2/0/0"
            assert cells(systems, "student")[:3] == ["student", "0/8", "waiting"]

            title = shown(app.query_one("#validation-summary", Static)).splitlines()
            assert title[0] == f"Validation run {run_id} · running · 11/24 answers · vs baseline"
            assert title[1].startswith("answering: optimized")
            assert shown(app.query_one("#validation-verdict", Static)) == "verdict: when every system has answered"
            examples = app.query_one("#validation-examples", DataTable)
            await wait_until(pilot, lambda: examples.row_count == 3, what="the examples answered twice")
            assert [k.value for k in examples.rows][0] == "val-0003"  # 0.60 vs a parse failure
            assert cells(examples, "val-0001")[4] == "-"  # the student has not answered yet

            # One more answer arrives: the counts follow.
            store.put_eval_result(workspace.db(), run_id, answer("optimized", 3), system="optimized")
            await wait_until(pilot, lambda: cells(systems, "optimized")[1] == "4/8", what="the new answer")

    asyncio.run(story())


def test_no_run_yet_says_how_to_launch_one(workspace):
    async def story():
        app = POConsole(workspace, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(pane_key())
            await pilot.pause(0.3)
            assert "no run yet: press l to launch one" in shown(app.query_one("#validation-summary", Static))
            await pilot.press("enter")  # nothing to open
            assert app.screen is app.screen_stack[0]

    asyncio.run(story())


def test_a_failed_gate_and_a_run_stopped_before_its_comparison_say_so(workspace):
    from po_console.panes.validation import ValidationView, verdict_text

    db = workspace.db()
    failed = record_validation(workspace, gate=["optimized.mean >= student.mean", "nobody.mean >= 0.5"])
    lines = verdict_text(ValidationView(read.get_run(db, failed))).plain.splitlines()
    assert lines[0] == "verdict fail · gate of 2 conditions"
    assert lines[1].startswith("  ✗ fail optimized.mean 0.5214 >= student.mean 0.6357")
    assert lines[2] == "  ? not decidable nobody.mean (no system 'nobody') >= 0.5"
    assert lines[3].startswith("note: underpowered (paired examples under 20: optimized 6, student 6)")
    assert lines[4:] == [f"note: {name}: 1 examples this system failed are not in the paired comparison"
                         for name in ("optimized", "student")]
    assert verdict_text(ValidationView(read.get_run(db, failed)), limit=4).plain.splitlines()[3] == \
        "… 3 more (report.md in the run's artifacts)"

    stopped = record_validation(workspace, answered={"baseline": 8}, running=True, notes=["no student: a note"])
    store.finish_run(db, stopped, "cancelled")
    assert verdict_text(ValidationView(read.get_run(db, stopped))).plain.splitlines() == [
        "verdict: none · cancelled before every system answered: r resumes", "note: no student: a note"]
