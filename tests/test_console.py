"""The console, piloted at 80x24: every screen by keyboard, live updates, launch / cancel /
resume on the real embedded model, keymaps, stale runs, snapshots."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time

import pytest
from textual.widgets import ContentSwitcher, DataTable

from pipeline.config import ConfigError
from pipeline.workspace import Workspace, locate
from po_console.app import POConsole
from po_console.panes.mipro import ProgramScreen
from po_console.panes.teacher import TeacherRecordScreen
from po_console.screens import ExampleScreen, LaunchScreen, RunScreen
from state import read
from state import write as store
from tests.console_fixtures import T0, dead_pid, record_baseline, record_mipro, record_teacher, recorded_workspace


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def recorded(tmp_path) -> Workspace:
    return recorded_workspace(tmp_path / "ws")


async def wait_until(pilot, predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    from textual.css.query import NoMatches

    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except NoMatches:  # the pane is still being composed (a loaded machine): look again
            pass
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cell(app: POConsole, table_id: str, row_key: str, column: str) -> str:
    table = app.query_one(f"#{table_id}", DataTable)
    return str(table.get_cell(row_key, column))


def test_every_screen_is_reachable_by_keyboard(recorded):
    async def story():
        app = POConsole(recorded, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: cell(app, "overview-table", "baseline", "state") == "cancelled",
                             what="the overview")
            assert cell(app, "overview-table", "mipro", "state") == "succeeded"
            assert cell(app, "overview-table", "finetune", "state") == "never run"
            assert cell(app, "overview-table", "validation", "state") == "never run"
            assert cell(app, "overview-table", "serve", "state") == "never run"

            await pilot.press("2")
            await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 4, what="runs")
            assert app.query_one(ContentSwitcher).current == "runs"
            await pilot.press("s")  # state filter: running (none)
            await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 0, what="filter")
            for _ in range(3):  # running -> stale -> failed -> cancelled
                await pilot.press("s")
            await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 1, what="cancelled")
            await pilot.press("s", "s")  # succeeded, then all
            await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 4, what="all")

            await pilot.press("down", "down", "enter")  # run 2, the cancelled baseline
            await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), what="run screen")
            await pilot.pause(0.3)
            assert "example val-0002: done" in app.screen.query_one("#run-log").shown
            await pilot.press("escape")

            await pilot.press("3")
            await wait_until(pilot, lambda: app.query_one("#baseline-table", DataTable).row_count == 2, what="baseline")
            assert cell(app, "baseline-table", "val-0002", "status") == "parse_failure"
            await pilot.press("enter")
            assert isinstance(app.screen, ExampleScreen)
            await pilot.press("escape")
            await pilot.press("4")
            await wait_until(pilot, lambda: app.query_one("#mipro-table", DataTable).row_count == 9, what="mipro")
            await pilot.press("p")
            await wait_until(pilot, lambda: isinstance(app.screen, ProgramScreen), what="program review")
            await pilot.press("escape")
            await pilot.press("5")
            await wait_until(pilot, lambda: app.query_one("#teacher-table", DataTable).row_count == 16, what="teacher")
            await pilot.press("enter")
            assert isinstance(app.screen, TeacherRecordScreen)
            await pilot.press("escape")
            await pilot.press("1")
            assert app.query_one(ContentSwitcher).current == "overview"

    asyncio.run(story())


def test_baseline_pane_sorts_and_shows_the_ci(tmp_path):
    ws = init_only(tmp_path)
    record_baseline(ws, state="succeeded", results=5, started=T0, took=60)

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            table = app.query_one("#baseline-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 5, what="results")
            summary = str(app.query_one("#baseline-summary").render())
            assert "95% CI [" in summary and "parse fail 1" in summary
            await pilot.press("o")  # sort by score, best first
            await wait_until(pilot, lambda: [k.value for k in table.rows][0] == "val-0005", what="sorted")

    asyncio.run(story())


def plain(renderable) -> str:
    """What a rich renderable reads as on a wide terminal, without styles."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_mipro_pane_tells_parse_failures_from_bad_prompts_and_reviews_the_program(recorded):
    async def story():
        app = POConsole(recorded, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("4")
            table = app.query_one("#mipro-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 9, what="the trials")
            summary = str(app.query_one("#mipro-summary").render())
            assert "MIPROv2 run 3 · succeeded · evaluations 9/9" in summary
            assert "best full 0.606 vs default 0.383 (+0.223)" in summary and "LM calls 75" in summary
            row = lambda key: [str(c) for c in table.get_row(key)]  # noqa: E731
            assert row("1") == ["1", "1", "full", "0.383", "as written", "0.383", "-", "-", "30s", "10"]
            assert row("3")[2:5] == ["mini", "0.210", "3 parse fail"]  # broken parsing, not a bad prompt
            assert row("5")[3] == "failed"
            assert row("6")[3:5] == ["0.600", "2 errors"]
            assert row("7")[3:8] == ["0.606", "", "0.606", "3", "1"]

            chart = str(app.query_one("#mipro-chart").render())
            lines = chart.splitlines()
            assert lines[0].startswith("score  ● full  · minibatch  × failed  ─ best full so far")
            assert len(lines) == 6 and all("│" in line for line in lines[1:])
            assert chart.count("●") == 1 + 4 and chart.count("×") == 1 + 1  # the legend, then the marks
            assert "─" in lines[1]  # the best full score reaches the top row

            candidates = str(app.query_one("#mipro-candidates").render()).splitlines()
            assert "★ best full evaluation (trial 7)" in candidates[0]
            assert "demo sets of 0, 1, 2 demos" in candidates[0]
            assert candidates[4].startswith("★ 3 Open with who the product is for")
            assert candidates[1].startswith("  0 You are the Product Owner")

            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ProgramScreen), what="the program review")
            await wait_until(pilot, lambda: app.screen.review is not None, what="the program to load")
            assert "error" not in app.screen.review
            head = str(app.screen.query_one("#program-head").render())
            assert head.startswith("programs/mipro-3 · MIPROv2 run 3 · best 0.606 vs default 0.383")
            text = plain(app.screen.query_one("#program-text").content)
            assert "predictor generate: instructions differ" in text
            assert "+Open with who the product is for" in text and "-You are the Product Owner" in text
            assert "predictor generate: demos 0 -> 1" in text
            assert "End the review with a verdict line." in text  # the instructions, in full
            assert "product_vision: For nurses in community clinics" in text  # the demo, field by field
            assert "Product Owner Review:" in text  # the fields
            await pilot.press("pagedown")  # the review scrolls by keyboard
            await pilot.press("escape")
            assert app.screen is app.screen_stack[0]
            assert app.query_one(ContentSwitcher).current == "mipro"

    asyncio.run(story())


def test_a_running_mipro_run_follows_its_newest_trial_and_has_no_program_yet(tmp_path):
    ws = init_only(tmp_path)
    run_id = record_mipro(ws, state="running", evaluations=4, started=time.time() - 30, took=1, pid=dead_pid())

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("4")
            table = app.query_one("#mipro-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 4, what="the trials so far")
            assert table.cursor_row == 3
            assert "evaluations 4/9" in str(app.query_one("#mipro-summary").render())
            await pilot.press("p")
            await wait_until(pilot, lambda: isinstance(app.screen, ProgramScreen) and app.screen.review,
                             what="the program review")
            assert app.screen.review["error"].startswith(f"run {run_id} (stale) has no saved program")
            await pilot.press("escape")

    asyncio.run(story())


def record_launches(monkeypatch) -> list:
    """Launch and resume would start a stage on the embedded model: record what was asked instead."""
    from pipeline import control

    asked = []
    monkeypatch.setattr(control, "launch", lambda ws, stage, overrides, detach: asked.append((stage, overrides)) or 9)
    monkeypatch.setattr(control, "resume", lambda ws, run_id, detach: asked.append(("resume", run_id)) or run_id)
    return asked


def test_mipro_is_launched_cancelled_and_resumed_from_its_pane(tmp_path, monkeypatch):
    ws = init_only(tmp_path)
    run_id = record_mipro(ws, state="running", evaluations=2, started=time.time() - 30, took=1, pid=dead_pid())
    asked = record_launches(monkeypatch)

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("4")
            await wait_until(pilot, lambda: app.query_one("#mipro-table", DataTable).row_count == 2, what="trials")
            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(app.screen, LaunchScreen), what="launch dialog")
            assert app.screen.stage == "mipro"
            app.screen.query_one("#trials").value = "3"
            app.screen.query_one("#candidates").value = "2"
            await pilot.press("enter")
            await wait_until(pilot, lambda: asked, what="the launch")
            stage, overrides = asked.pop()
            assert stage == "mipro" and overrides["num_trials"] == 3 and overrides["num_candidates"] == 2

            await pilot.press("c", "y")  # the run is stale: cancelling it needs no process
            db = ws.db(readonly=True)
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "cancelled", what="cancel")
            await pilot.press("r")
            await wait_until(pilot, lambda: asked, what="the resume")
            assert asked.pop() == ("resume", run_id)

    asyncio.run(story())


def test_teacher_pane_shows_acceptance_scores_against_the_threshold_reasons_and_each_record(recorded):
    async def story():
        app = POConsole(recorded, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            table = app.query_one("#teacher-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 16, what="the attempts")
            summary = str(app.query_one("#teacher-summary").render()).splitlines()
            assert summary[0] == "Teacher run 4 · succeeded · min score 0.55 · best of 3 · local · enter: record"
            assert summary[1] == "accepted 6/6 ████████████████████ 100% · target reached"
            assert summary[2] == "attempts 16 on 9 inputs · acceptance 44% of 16 (95% CI 23%–67%)"
            assert summary[3] == "per minute: 2.6 records, 6.0 attempts, 5,595 tokens · cost so far unknown"
            assert summary[4] == "data set: artifacts/4/po_teacher_dataset.jsonl · 1 surplus, not counted"

            chart = str(app.query_one("#teacher-histogram").render()).splitlines()
            assert chart[0] == "scores of 14 attempts · │ min score 0.55"
            bars = chart[1:-1]
            threshold = bars[0].index("│")
            assert all(line[threshold] == "│" for line in bars)  # one column, in every row
            assert chart[-1][threshold] == "┴"
            # 7 scores under 0.55 in 3 bins (0.40-0.55), 7 at or over it in 4 (0.60-0.75, 0.85); 3 the most in one.
            assert bars[0].startswith("3 ")
            assert bars[-1][threshold + 1:].startswith("  █")  # nothing in 0.55-0.60, then 0.60-0.65
            assert bars[-1][:threshold].count("█") == 3 and bars[-1][threshold:].count("█") == 4

            reasons = str(app.query_one("#teacher-reasons").render()).splitlines()
            assert reasons[0] == "rejected for (9)"
            assert reasons[1:] == ["requirement_coverage    5  56%", "parse failure           2  22%",
                                   "review_validity         1  11%", "length_bounds           1  11%"]

            row = lambda key: [str(c) for c in table.get_row(key)]  # noqa: E731
            keys = [k.value for k in table.rows]
            assert row(keys[0]) == ["-", "pool-0006", "3", "rejected", "0.450", "requirement_coverage: 0.25 (visio…"]
            assert row(keys[1]) == ["-", "pool-0007", "2", "surplus", "0.650", "target of 6 already reached"]
            assert row(keys[2]) == ["6", "pool-0009", "1", "accepted", "0.662", ""]
            assert row(keys[-1])[:4] == ["-", "pool-0001", "1", "rejected"]

            await pilot.press("down", "down", "enter")
            assert isinstance(app.screen, TeacherRecordScreen)
            head = str(app.screen.query_one("#example-head").render())
            assert head.startswith("pool-0009 · attempt 1 · accepted #6 · score 0.662 (min 0.55)\n"
                                   "parts: vision_structure 0.75  requirement_coverage 0.75")
            assert "tokens 770 in / 245 out · cost unknown · local/Qwen2.5-0.5B-Instruct" in head
            texts = [str(w.render()) for w in app.screen.query("Static")]
            assert "A booking app for community sports clubs, number 9." in texts
            assert any(t.startswith("For members of the sports club behind pool-0009") for t in texts)
            await pilot.press("escape")
            assert app.query_one(ContentSwitcher).current == "teacher" and app.screen is app.screen_stack[0]

            await pilot.press("down", "down", "down", "down", "enter")  # the parse failure
            head = str(app.screen.query_one("#example-head").render())
            assert head.startswith("pool-0007 · attempt 1 · rejected · score - (min 0.55)\n"
                                   "reason: parse failure: ChatAdapter: the answer lacks")
            assert "parts:" not in head
            assert any(str(w.render()).startswith("[[ ## product_vision ## ]]") for w in app.screen.query("Static"))
            await pilot.press("escape")

    asyncio.run(story())


def test_a_teacher_run_projects_its_eta_and_cost_and_is_launched_cancelled_and_resumed_from_its_pane(
        tmp_path, monkeypatch):
    import os

    from pipeline import control

    ws = init_only(tmp_path)
    # Running in this very process (alive, beating): 10 attempts, 4 accepted of 6, $0.0125 each.
    run_id = record_teacher(ws, state="running", attempts=10, started=time.time() - 110, took=110, pid=os.getpid(),
                            usd_per_attempt=0.0125)
    asked = record_launches(monkeypatch)

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await wait_until(pilot, lambda: app.query_one("#teacher-table", DataTable).row_count == 10, what="rows")
            summary = lambda: str(app.query_one("#teacher-summary").render()).splitlines()  # noqa: E731
            assert summary()[1] == "accepted 4/6 █████████████░░░░░░░ 67% · ETA 30 s–2 min"
            assert summary()[2] == "attempts 10 on 7 inputs · acceptance 40% of 10 (95% CI 17%–69%)"
            assert summary()[3].endswith("· cost so far $0.12")
            assert summary()[4] == "to reach 6: 3–12 more attempts, 30 s–2 min, $0.04–$0.15"

            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(app.screen, LaunchScreen), what="launch dialog")
            assert app.screen.stage == "teacher"
            assert (app.screen.query_one("#max_records").value, app.screen.query_one("#min_score").value) == \
                ("6", "0.55")  # from po.toml
            app.screen.query_one("#max_records").value = "10"
            app.screen.query_one("#min_score").value = "0.6"
            app.screen.query_one("#limit").value = "8"
            await pilot.press("enter")
            await wait_until(pilot, lambda: asked, what="the launch")
            stage, overrides = asked.pop()
            assert stage == "teacher" and overrides == {"threads": 4, "pool_limit": 8, "max_records": 10,
                                                        "min_score": 0.6}
            config = control.plan(ws, "teacher", overrides)  # what the dialog asks, the stage takes
            assert (config["max_records"], config["min_score"], config["pool_inputs"]) == (10, 0.6, 8)

            # Its process dies: the pane offers resume; cancel, then resume, from the pane.
            store_db = ws.db()
            from state.db import write

            with write(store_db) as conn:
                conn.execute("UPDATE runs SET pid=? WHERE id=?", (dead_pid(), run_id))
            await wait_until(pilot, lambda: summary()[1].endswith("· stale: r resumes"), what="stale")
            await pilot.press("c", "y")
            db = ws.db(readonly=True)
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "cancelled", what="cancel")
            await wait_until(pilot, lambda: summary()[1:3] == ["cancelled while stale (its process was gone)",
                                                               "accepted 4/6 █████████████░░░░░░░ 67% · cancelled: "
                                                               "r resumes"], what="cancelled")
            await pilot.press("r")
            await wait_until(pilot, lambda: asked, what="the resume")
            assert asked.pop() == ("resume", run_id)

    asyncio.run(story())


def test_score_histogram_marks_a_threshold_inside_a_bin_and_narrows_to_tenths():
    from po_console.panes.teacher import score_histogram

    text = score_histogram([0.1, 0.56, 0.58, 0.9], 0.57, 46, 4)
    lines = text.plain.splitlines()
    assert len(lines) == 4 and lines[0] == "scores of 4 attempts · │ min score 0.57"
    cut = lines[1].index("│")
    assert lines[1][cut - 2] == "█"  # 0.55-0.60 holds both sides of 0.57: left of the line, in yellow
    assert any(span.style == "yellow" for span in text.spans)
    narrow = score_histogram([0.1, 0.56, 0.58, 0.9], 0.5, 30, 4).plain.splitlines()
    assert narrow[1].count("│") == 1 and max(len(line) for line in narrow[1:]) <= 30
    assert "(no scored attempts yet)" in score_histogram([], 0.85, 46, 6).plain


def test_cli_progress_and_run_summary_say_what_each_stage_counts(recorded):
    from rich.console import Console

    from po_console import render

    for stage, label in [("baseline", "evaluating"), ("mipro", "evaluations"), ("teacher", "accepted"),
                         ("finetune", "steps"), ("validation", "answers"), ("serve", "tokens generated")]:
        progress = render.RunProgress(Console(file=io.StringIO()), stage=stage)
        with progress:
            progress.update(0, 6)
        assert progress.progress.tasks[0].description == label

    db = recorded.db(readonly=True)
    mipro = plain_print(lambda console: render.print_run(console, read.get_run(db, 3)))
    assert "run 3 · mipro · succeeded · 9/9" in mipro
    for figure in ("best full score", "0.606", "(+0.223)", "LM calls (cache hits)", "75 (1)", "programs/mipro-3"):
        assert figure in mipro
    teacher = plain_print(lambda console: render.print_run(console, read.get_run(db, 4)))
    assert teacher.splitlines() == ["run 4 · teacher · succeeded · 6/6 · 3m"]


def plain_print(draw) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=100, record=True)
    draw(console)
    return console.export_text()


def test_score_chart_fits_more_evaluations_than_columns():
    from po_console.panes.mipro import score_chart
    from state.read import Trial

    trials = [Trial(run_id=1, evaluation=i, trial=i, kind="full" if i % 5 == 1 else "minibatch",
                    score=0.3 + (i % 7) / 20, best_full=0.6, examples=4, instruction=None, demos=None, duration_s=1.0,
                    lm_calls=4, parse_failures=0, errors=0, created_at=0.0) for i in range(1, 301)]
    lines = score_chart(trials, 60, 6).plain.splitlines()
    assert len(lines) == 6 and all(len(line) <= 60 for line in lines[1:])
    assert "evaluations 1–300" in lines[0]
    assert "(no evaluations yet)" in score_chart([], 60, 6).plain


def init_only(tmp_path) -> Workspace:
    from pipeline.workspace import init_workspace

    return init_workspace(tmp_path / "ws", demo=True)


def test_stale_run_stands_out_and_offers_resume(tmp_path):
    ws = init_only(tmp_path)
    record_baseline(ws, state="running", results=1, started=time.time() - 30, took=1, pid=dead_pid())

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.query_one("#overview-table", DataTable).row_count == 6)
            await wait_until(pilot, lambda: cell(app, "overview-table", "baseline", "state") == "stale", what="stale")
            assert "press r to resume" in str(app.query_one("#overview-hint").render())

    asyncio.run(story())


def test_launch_progress_cancel_and_resume_from_the_console(demo_ws):
    ws = locate(demo_ws)

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.query_one("#overview-table", DataTable).row_count == 6)
            await pilot.press("l")
            await wait_until(pilot, lambda: isinstance(app.screen, LaunchScreen), what="launch dialog")
            threads = app.screen.query_one("#threads")
            limit = app.screen.query_one("#limit")
            threads.value, limit.value = "1", "8"
            await pilot.press("enter")
            db = ws.db(readonly=True)
            await wait_until(pilot, lambda: read.list_runs(db), timeout=30, what="a launched run")
            run_id = read.list_runs(db)[0].id
            assert read.get_run(db, run_id).detached  # closing the console never stops it
            # Progress moves on screen.
            await wait_until(pilot, lambda: cell(app, "overview-table", "baseline", "progress") in
                             {f"{n}/8" for n in range(1, 8)}, timeout=180, what="progress on screen")

            await pilot.press("c")
            await pilot.press("y")
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "cancelled", timeout=60, what="cancel")
            await wait_until(pilot, lambda: cell(app, "overview-table", "baseline", "state") == "cancelled",
                             what="cancelled on screen")
            kept = len(read.eval_results(db, run_id))

            await pilot.press("r")
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "succeeded", timeout=240, what="resume")
            assert len(read.eval_results(db, run_id)) == 8 >= kept
            await wait_until(pilot, lambda: cell(app, "overview-table", "baseline", "state") == "succeeded")

    asyncio.run(story())


def test_console_stays_responsive_while_a_run_writes_events_at_full_speed(recorded):
    db = recorded.db()
    run_id = store.create_run(db, "baseline", {"examples": 5000})
    store.start_run(db, run_id, dead_pid(), "")
    stop = threading.Event()

    def flood():
        writer = recorded.db()
        events = store.EventBuffer(writer, run_id)
        done = 0
        while not stop.is_set():
            for _ in range(200):
                events.emit("log", {"message": "x" * 80})
            events.flush()
            done += 1
            store.set_progress(writer, run_id, done, 10**9)
            store.heartbeat(writer, run_id)

    async def story():
        app = POConsole(recorded, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            thread = threading.Thread(target=flood)
            thread.start()
            try:
                seen = set()
                for key, pane in [("2", "runs"), ("3", "baseline"), ("1", "overview")] * 3:
                    await pilot.press(key)
                    assert app.query_one(ContentSwitcher).current == pane
                    await pilot.pause(0.3)
                    seen.add(cell(app, "overview-table", "baseline", "progress"))
                # The screen keeps catching up with the writer while keys are handled.
                await wait_until(pilot, lambda: cell(app, "overview-table", "baseline", "progress") not in seen,
                                 what="progress to move on screen")
            finally:
                stop.set()
                thread.join()

    asyncio.run(story())


def test_keys_are_overridden_by_id_from_po_toml(recorded):
    path = recorded.config_path
    path.write_text(path.read_text() + '\n[console.keys]\ncancel-run = "x"\n')

    async def story():
        app = POConsole(Workspace(recorded.root))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            keys = {b.binding.id: b.binding.key for b in app.active_bindings.values() if b.binding.id}
            assert keys["cancel-run"] == "x"

    asyncio.run(story())


@pytest.mark.parametrize("keymap, message", [
    ('cancel-run = "ctrl+s"', "terminals eat ctrl+s"),
    ('cancle-run = "x"', "console.keys.cancle-run is not an action"),
])
def test_a_bad_key_binding_is_a_clear_config_error(recorded, keymap, message):
    path = recorded.config_path
    path.write_text(path.read_text() + f"\n[console.keys]\n{keymap}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        POConsole(Workspace(recorded.root))


def test_low_bandwidth_mode_from_the_environment(recorded, monkeypatch):
    monkeypatch.setenv("PO_LOW_BANDWIDTH", "1")
    app = POConsole(recorded)
    assert app.low_bandwidth and app.refresh_s >= 3.0 and app.animation_level == "none"


def test_every_action_is_in_the_command_palette(recorded):
    async def story():
        app = POConsole(recorded)
        async with app.run_test(size=(80, 24)):
            titles = {command.title for command in app.get_system_commands(app.screen)}
            assert {"Launch", "Cancel", "Resume", "Runs", "Baseline", "MIPROv2", "Teacher", "Program",
                    "Overview"} <= titles

    asyncio.run(story())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("keys", [(), ("2",), ("3",), ("4",), ("5",)],
                         ids=["overview", "runs", "baseline", "mipro", "teacher"])
def test_snapshots_of_the_main_screens(recorded, snap_compare, size, keys):
    async def settle(pilot):
        app = pilot.app
        await wait_until(pilot, lambda: app.drawn == app.view, what="the overview drawn")
        for key in keys:
            await pilot.press(key)
        # A loaded machine may take a while to read the store: wait for the pane's data, not a fixed time,
        # then for the screen to settle (a table sizes its columns when the app is next idle).
        await wait_until(pilot, lambda: app.drawn == app.view, what=f"the {app.view.pane} pane drawn")
        # A table sizes its columns when it is next idle, later still on a loaded machine: wait until
        # no table has sizing pending (Textual is pinned: its DataTable keeps these two) and the screen
        # is the same three times in a row.
        pending = lambda: any(t._updated_cells or t._require_update_dimensions  # noqa: E731
                              for t in app.query(DataTable))
        shots = [None, None, app.export_screenshot()]
        while pending() or not shots[-1] == shots[-2] == shots[-3]:
            await pilot.pause(0.3)
            shots.append(app.export_screenshot())
        # Under load a row drawn before its columns were sized can keep its narrow rendering in the
        # table's render caches (seen before this test changed, in CI): draw every table afresh.
        for table in app.query(DataTable):
            table._clear_caches()
            table.refresh()
        await pilot.pause(0.3)

    assert snap_compare(Drawn(recorded, low_bandwidth=True, refresh_s=0.2), terminal_size=size, run_before=settle)


class Drawn(POConsole):
    """The console, remembering the last view it drew (the app itself keeps no test hooks)."""

    drawn = None

    def on_store_snapshot(self, message) -> None:
        # Textual calls POConsole's handler too, after this one: note the view once it is drawn.
        if message.view == self.view:
            self.call_after_refresh(setattr, self, "drawn", message.view)


def test_hidden_panes_are_not_refreshed(recorded, monkeypatch):
    from po_console.panes.baseline import BaselinePane
    from po_console.panes.runs import RunsPane

    calls = {"baseline": 0, "runs": 0}
    monkeypatch.setattr(BaselinePane, "show", lambda self, payload: calls.__setitem__("baseline", calls["baseline"] + 1))
    monkeypatch.setattr(RunsPane, "show", lambda self, payload: calls.__setitem__("runs", calls["runs"] + 1))
    db = recorded.db()

    async def story():
        app = POConsole(recorded, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            for done in range(5):  # the store changes while only the overview is visible
                store.set_progress(db, 1, done, 5)
                await pilot.pause(0.3)
            assert calls == {"baseline": 0, "runs": 0}
            await pilot.press("2")
            await wait_until(pilot, lambda: calls["runs"] > 0, what="the runs pane to refresh once visible")

    asyncio.run(story())


def test_a_newer_snapshot_replaces_an_unprocessed_older_one():
    from po_console.messages import ActionDone, StoreSnapshot
    from po_console.panes.base import View

    old, new = StoreSnapshot(View("overview"), [1.0]), StoreSnapshot(View("overview"), [2.0])
    assert new.can_replace(old)
    assert not ActionDone("x").can_replace(old)


def test_a_running_teacher_runs_eta_is_a_range_in_the_overview_and_po_status(tmp_path):
    import os

    from po_console.panes.base import View
    from po_console.reader import StoreReader
    from tests.conftest import po

    ws = init_only(tmp_path)
    run_id = record_teacher(ws, state="running", attempts=10, started=time.time() - 110, took=110, pid=os.getpid())
    rows = StoreReader(ws).read(View("overview")).rows  # what the console's overview shows
    row = {r.stage: r for r in rows}["teacher"]
    assert row.run == run_id and row.eta_s < row.eta_high_s  # from the acceptance rate's interval
    assert "–" in row.eta_text()
    shown = po("status", ws=ws.root).stdout
    assert "Teacher dataset" in shown and row.eta_text().split("–")[0] + "–" in shown


def test_a_run_pushed_out_of_the_newest_twenty_still_rings_when_it_ends(tmp_path):
    import os

    from po_console.messages import RunEnded

    ws = init_only(tmp_path)
    db = ws.db()
    old = store.create_run(db, "baseline", {})
    store.start_run(db, old, os.getpid(), "")  # alive: this process
    for _ in range(24):  # newer runs push it out of any "latest 20"
        store.finish_run(db, store.create_run(db, "baseline", {}), "succeeded")
    seen = []

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
            await wait_until(pilot, lambda: old in app.running, what="the old run followed")
            store.finish_run(db, old, "succeeded")
            await wait_until(pilot, lambda: any(isinstance(m, RunEnded) and m.run.id == old for m in seen),
                             what="its end noticed")

    asyncio.run(story())


def test_a_panes_own_binding_is_rebound_by_its_id(recorded):
    path = recorded.config_path
    path.write_text(path.read_text() + '\n[console.keys]\nreview-program = "v"\n')

    async def story():
        app = POConsole(Workspace(recorded.root), refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("4")
            await wait_until(pilot, lambda: app.query_one("#mipro-table", DataTable).row_count == 9, what="trials")
            await pilot.press("v")
            await wait_until(pilot, lambda: isinstance(app.screen, ProgramScreen), what="the review, on v")

    asyncio.run(story())
