"""The po console: a Textual app over one workspace.

It never writes stage data: it *asks* through pipeline.control (launch, cancel, resume),
the same functions the CLI calls, and *reads* through a polling thread worker that posts
snapshots of the visible pane (hidden panes are not read).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.widgets import ContentSwitcher, DataTable, Footer, Header
from textual.worker import Worker, WorkerState, get_current_worker

from po_console import keys
from po_console.messages import ActionDone, RunEnded, StoreSnapshot
from po_console.panes import BaselinePane, MiproPane, OverviewPane, RunsPane, TeacherPane
from po_console.screens import ConfirmScreen, ExampleScreen, LaunchScreen, ProgramScreen, RunScreen, TeacherRecordScreen
from po_console.snapshots import StoreReader, View

LOW_BANDWIDTH_REFRESH_S = 3.0


class POConsole(App):
    TITLE = "po console"
    CSS_PATH = "console.tcss"
    BINDINGS = keys.bindings()
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, workspace, *, low_bandwidth: bool | None = None, refresh_s: float | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        config = workspace.config.console
        env_low = os.environ.get("PO_LOW_BANDWIDTH", "").lower() in ("1", "true", "yes")
        self.low_bandwidth = low_bandwidth if low_bandwidth is not None else (config.low_bandwidth or env_low)
        self.refresh_s = refresh_s or (max(config.refresh_s, LOW_BANDWIDTH_REFRESH_S) if self.low_bandwidth else config.refresh_s)
        if self.low_bandwidth:
            self.animation_level = "none"
        self.keymap = keys.check_keymap(config.keys, str(workspace.config_path))
        self.view = View("overview")
        self.running: dict[int, str] = {}  # runs seen running, to notify when they end
        self.first_paint_at: float | None = None
        self.drawn: View | None = None  # the view of the last snapshot drawn (tests wait for it)
        self._force = False
        # Cancel and resume ask the pipeline one at a time. control.cancel keeps polling until
        # it sees the run stop (then SIGTERMs it after 15 s); a resume pressed within that
        # poll's 0.2 s would reopen the run first, and the cancel would stop the resumed process.
        self.control_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=not self.low_bandwidth, icon="po")
        with ContentSwitcher(initial="overview"):
            yield OverviewPane(id="overview")
            yield RunsPane(id="runs")
            yield BaselinePane(id="baseline")
            yield MiproPane(id="mipro")
            yield TeacherPane(id="teacher")
        yield Footer(compact=True)  # every pane's key fits in 80 columns

    def on_mount(self) -> None:
        self._trace("mount")
        self.set_keymap(self.keymap)
        self.sub_title = self.workspace.root.name
        if hasattr(signal, "SIGHUP"):  # not on Windows
            try:
                # A dropped SSH session hangs up the terminal: leave cleanly; runs go on.
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
            except (RuntimeError, ValueError):
                pass  # not the main thread (embedded in another app): the terminal check is theirs
        self.poll_store()

    # -- reading the store ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll", description="poll the state store")
    def poll_store(self) -> None:
        worker = get_current_worker()
        reader = StoreReader(self.workspace)
        while not worker.is_cancelled:
            view, force, self._force = self.view, self._force, False
            snap = reader.read(view, force=force)
            if snap is not None:
                self.post_message(StoreSnapshot(snap))
                self._watch_endings(reader)
            for _ in range(int(self.refresh_s / 0.1)):
                if worker.is_cancelled or self._force or self.view != view:
                    break
                time.sleep(0.1)

    def _watch_endings(self, reader: StoreReader) -> None:
        from state import read

        for run in read.list_runs(reader.db, limit=20):
            if run.status in ("running", "queued"):
                self.running[run.id] = run.status
            elif run.id in self.running:
                del self.running[run.id]
                self.post_message(RunEnded(run))

    def on_store_snapshot(self, message: StoreSnapshot) -> None:
        snap = message.snapshot
        if snap.view != self.view:
            return  # the user moved on; the next snapshot is for the new view
        if snap.view.pane == "run":
            if isinstance(self.screen, RunScreen) and snap.run:
                self.screen.apply(snap.run, snap.artifacts)
        else:
            self.query_one(f"#{snap.view.pane}").apply(snap)
        self.drawn = snap.view
        if self.first_paint_at is None:
            self.first_paint_at = time.monotonic()
            self.call_after_refresh(self._trace, "first-paint")

    def on_run_ended(self, message: RunEnded) -> None:
        run = message.run
        severity = {"succeeded": "information", "cancelled": "warning"}.get(run.status, "error")
        text = f"run {run.id} ({run.stage}) {run.status}" + (f": {run.error}" if run.error else "")
        self.notify(text, severity=severity, timeout=8)
        self.bell()

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="error" if message.error else "information")
        self.action_refresh()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        # One place routes every worker error to the user (as Harlequin does).
        if event.state == WorkerState.ERROR:
            self.notify(f"{event.worker.description}: {event.worker.error}", severity="error", timeout=10)

    def _trace(self, what: str) -> None:
        path = os.environ.get("PO_CONSOLE_TRACE")
        if path:
            with open(path, "a") as f:
                f.write(f"{what} {time.time():.6f}\n")

    # -- navigation -------------------------------------------------------------------------
    def _set_view(self, view: View) -> None:
        self.view = view
        self._force = True

    def action_show(self, pane: str) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        # From the Runs pane, a stage's pane shows the run selected there; else its latest run.
        chosen = self._selected_run() if self.view.pane == "runs" else None
        run_id = chosen.id if chosen is not None and chosen.stage == pane else None
        self.query_one(ContentSwitcher).current = pane
        self._set_view(View(pane, run_id=run_id, stage=self.view.stage if pane == "runs" else None,
                            state=self.view.state if pane == "runs" else None))
        self.query_one(f"#{pane} DataTable", DataTable).focus()

    def action_refresh(self) -> None:
        self._force = True

    def action_filter_stage(self) -> None:
        if self.view.pane == "runs":
            stages = RunsPane.STAGES
            self._set_view(View("runs", stage=stages[(stages.index(self.view.stage) + 1) % len(stages)], state=self.view.state))

    def action_filter_state(self) -> None:
        if self.view.pane == "runs":
            states = RunsPane.STATES
            self._set_view(View("runs", stage=self.view.stage, state=states[(states.index(self.view.state) + 1) % len(states)]))

    def action_sort_results(self) -> None:
        if self.view.pane == "baseline":
            self.query_one(BaselinePane).cycle_sort()
            self._force = True

    def action_open(self) -> None:
        if self.view.pane == "runs":
            run_id = self.query_one(RunsPane).selected_run()
            if run_id is not None:
                self._open_run(run_id)
        elif self.view.pane == "overview":
            run_id = self._selected_run_id()
            if run_id is not None:
                self._open_run(run_id)
        elif self.view.pane == "baseline":
            result = self.query_one(BaselinePane).selected_result()
            if result:
                self.push_screen(ExampleScreen(result, self._example_inputs(result["example_id"])))
        elif self.view.pane == "mipro":
            self.action_review_program()
        elif self.view.pane == "teacher":
            pane = self.query_one(TeacherPane)
            record = pane.selected_record()
            if record:
                self.push_screen(TeacherRecordScreen(record, pane.run.config.get("min_score") if pane.run else None))

    def action_review_program(self) -> None:
        run = self.query_one(MiproPane).run if self.view.pane == "mipro" else self._selected_run()
        if run is None or run.stage != "mipro":
            self.notify("no MIPROv2 run selected: press 4", severity="warning")
            return
        if not isinstance(self.screen, ProgramScreen):
            self.push_screen(ProgramScreen(self.workspace, run))

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def _open_run(self, run_id: int) -> None:
        from state import read

        run = read.get_run(self.workspace.db(readonly=True), run_id)
        if run is None:
            return
        screen = RunScreen(run, self.workspace.artifacts_dir / str(run_id) / "run.log")
        self.push_screen(screen, callback=lambda _: self._set_view(View(self._pane())))
        self._set_view(View("run", run_id=run_id))

    def _pane(self) -> str:
        return self.query_one(ContentSwitcher).current or "overview"

    def _example_inputs(self, example_id: str) -> dict | None:
        from pathlib import Path

        from pipeline.datasets import DatasetError, load_examples

        run = self.query_one(BaselinePane).run
        try:
            for example in load_examples(Path(run.config["val"])):
                if example.id == example_id:
                    return example.inputs
        except (DatasetError, KeyError, AttributeError):
            return None
        return None

    def _selected_run(self):
        from state import read

        run_id = self._selected_run_id()
        return None if run_id is None else read.get_run(self.workspace.db(readonly=True), run_id)

    def _selected_run_id(self) -> int | None:
        from state import read

        if self.view.pane == "runs":
            return self.query_one(RunsPane).selected_run()
        if self.view.pane in ("baseline", "mipro", "teacher"):
            run = self.query_one(f"#{self.view.pane}").run
            return run.id if run else None
        if isinstance(self.screen, RunScreen):
            return self.screen.run_id
        stage = self.query_one(OverviewPane).selected_stage()
        latest = read.latest_run_per_stage(self.workspace.db(readonly=True))
        return latest[stage].id if stage in latest else None

    # -- asking the pipeline (never writing stage data here) --------------------------------
    def action_launch(self) -> None:
        from pipeline.stages import BUILT

        # The stage selected in the overview, else the one whose pane is open, else baseline.
        if self.view.pane == "overview":
            stage = self.query_one(OverviewPane).selected_stage()
        else:
            stage = self.view.pane if self.view.pane in BUILT else "baseline"
        if stage not in BUILT:
            self.notify(f"{stage} is not built yet", severity="warning")
            return
        from pipeline.stages import LIMIT_KEY

        config = getattr(self.workspace.config, stage)
        limit_key = LIMIT_KEY[stage]
        counts = {}
        if stage == "mipro":
            counts = {"trials": config.num_trials, "candidates": config.num_candidates, "auto": config.auto}
        elif stage == "teacher":
            counts = {"max_records": config.max_records, "min_score": config.min_score}
        self.push_screen(LaunchScreen(stage, config.threads, getattr(config, limit_key), **counts),
                         callback=lambda overrides: overrides is not None and self.launch(stage, overrides))

    @work(thread=True, group="control", description="launch")
    def launch(self, stage: str, overrides: dict) -> None:
        from pipeline import control

        from pipeline.stages import LIMIT_KEY

        if "limit" in overrides:
            overrides[LIMIT_KEY[stage]] = overrides.pop("limit")
        try:
            run_id = control.launch(self.workspace, stage, overrides, detach=True)
        except Exception as exc:  # noqa: BLE001 - shown to the user in one line
            self.post_message(ActionDone(f"launch {stage}: {exc}", error=True))
        else:
            self.post_message(ActionDone(f"run {run_id} ({stage}) launched in the background"))

    def action_cancel(self) -> None:
        run_id = self._selected_run_id()
        if run_id is None:
            self.notify("no run selected", severity="warning")
            return
        self.push_screen(ConfirmScreen(f"Cancel run {run_id}? Stored results stay; you can resume it."),
                         callback=lambda yes: yes and self.cancel_run(run_id))

    @work(thread=True, group="control", description="cancel")
    def cancel_run(self, run_id: int) -> None:
        from pipeline import control

        try:
            with self.control_lock:
                run = control.cancel(self.workspace, run_id)
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionDone(f"cancel {run_id}: {exc}", error=True))
        else:
            self.post_message(ActionDone(f"run {run_id}: {run.status}"))

    def action_resume(self) -> None:
        run_id = self._selected_run_id()
        if run_id is not None:
            self.resume_run(run_id)

    @work(thread=True, group="control", description="resume")
    def resume_run(self, run_id: int) -> None:
        from pipeline import control

        try:
            with self.control_lock:
                control.resume(self.workspace, run_id, detach=True)
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionDone(f"resume {run_id}: {exc}", error=True))
        else:
            self.post_message(ActionDone(f"run {run_id} resumed in the background"))

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for binding_id, _key, action, label, tooltip, _show in keys.ACTIONS:
            if binding_id in ("quit",):
                continue
            yield SystemCommand(label, tooltip, lambda action=action: self.run_action(action))


def run_console(workspace, *, low_bandwidth: bool | None = None) -> None:
    POConsole(workspace, low_bandwidth=low_bandwidth).run()
