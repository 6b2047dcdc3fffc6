"""The po console: a Textual app over one workspace.

It builds its panes, number keys and palette entries from the pane registry and keeps
navigation, polling and the control workers only. It never writes stage data: it *asks*
through pipeline.control (launch, cancel, resume), the same functions the CLI calls, and
*reads* through a polling thread worker that asks the visible pane to read what it shows
(hidden panes are not read).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.widgets import ContentSwitcher, DataTable, Footer, Header
from textual.worker import Worker, WorkerState, get_current_worker

from pipeline import stages
from po_console import keys, panes
from po_console.messages import ActionDone, RunEnded, StoreSnapshot
from po_console.panes.base import Pane, View
from po_console.reader import StoreReader
from po_console.screens import ConfirmScreen, LaunchScreen, RunScreen

LOW_BANDWIDTH_REFRESH_S = 3.0


class POConsole(App):
    TITLE = "po console"
    CSS_PATH = Path(__file__).parent / "console.tcss"  # absolute: a subclass elsewhere finds it too
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, workspace, *, low_bandwidth: bool | None = None, refresh_s: float | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.panes = panes.panes()
        for binding in keys.bindings(self.panes):  # from the registry, with their ids (as Textual adds its own)
            self._bindings._add_binding(binding)
        config = workspace.config.console
        env_low = os.environ.get("PO_LOW_BANDWIDTH", "").lower() in ("1", "true", "yes")
        self.low_bandwidth = low_bandwidth if low_bandwidth is not None else (config.low_bandwidth or env_low)
        self.refresh_s = refresh_s or (max(config.refresh_s, LOW_BANDWIDTH_REFRESH_S) if self.low_bandwidth else config.refresh_s)
        if self.low_bandwidth:
            self.animation_level = "none"
        self.keymap = keys.check_keymap(config.keys, self.panes, str(workspace.config_path))
        self.view = View("overview")
        self.running: set[int] = set()  # runs seen queued or running, to notify when they end
        self._force = False
        # Cancel and resume ask the pipeline one at a time. control.cancel keeps polling until
        # it sees the run stop (then SIGTERMs it after CANCEL_WAIT_S); a resume pressed within
        # that poll's 0.2 s would reopen the run first, and the cancel would stop the resumed process.
        self.control_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=not self.low_bandwidth, icon="po")
        with ContentSwitcher(initial="overview"):
            for pane in self.panes:
                yield pane(id=pane.name)
        yield Footer(compact=True)  # every pane's key fits in 80 columns

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        self.sub_title = self.workspace.root.name
        # The panes read on read-only connections: let a writable open first create the tables
        # of a stage installed since the store was last opened (the console writes nothing else).
        self.workspace.db().conn.close()
        for warning in stages.warnings() + panes.warnings():
            self.notify(warning, severity="warning", timeout=15)
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
            payload = reader.read(view, force=force)
            if payload is not None:
                self.post_message(StoreSnapshot(view, payload))
                self._watch_endings(reader.db)
            for _ in range(int(self.refresh_s / 0.1)):
                if worker.is_cancelled or self._force or self.view != view:
                    break
                time.sleep(0.1)

    def _watch_endings(self, db) -> None:
        """Every run seen queued or running is followed until it ends, however many runs
        started since (a bell and a toast for each)."""
        from state import read

        active = {run.id for run in read.list_active_runs(db)}
        for run in read.get_runs(db, sorted(self.running - active)):
            if run.status not in ("running", "queued"):
                self.post_message(RunEnded(run))
        self.running = active | {run_id for run_id in self.running - active
                                 if (r := read.get_run(db, run_id)) is not None and r.status in ("running", "queued")}

    def on_store_snapshot(self, message: StoreSnapshot) -> None:
        if message.view != self.view:
            return  # the user moved on; the next snapshot is for the new view
        if message.view.pane == "run":
            if isinstance(self.screen, RunScreen):
                self.screen.show(message.payload)
        else:
            self.query_one(f"#{message.view.pane}", Pane).show(message.payload)

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

    # -- navigation -------------------------------------------------------------------------
    def set_view(self, view: View) -> None:
        """Show `view` next: the poller reads it at once."""
        self.view = view
        self._force = True

    def visible_pane(self) -> Pane:
        return self.query_one(f"#{self.query_one(ContentSwitcher).current or 'overview'}", Pane)

    def action_show(self, name: str) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        # From the Runs pane, a stage's pane shows the run selected there; else its latest run.
        chosen = self._selected_run() if self.view.pane == "runs" else None
        target = panes.by_name(name)
        run_id = chosen.id if chosen is not None and target is not None and chosen.stage == target.stage else None
        self.query_one(ContentSwitcher).current = name
        self.set_view(View(name, run_id=run_id, stage=self.view.stage if name == "runs" else None,
                           state=self.view.state if name == "runs" else None))
        self.visible_pane().on_show_pane()

    def action_refresh(self) -> None:
        self._force = True

    def action_open(self) -> None:
        self.visible_pane().open_selected()

    @on(DataTable.RowSelected)
    def row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def open_run(self, run_id: int) -> None:
        """A run's details and its log, over the current pane."""
        from state import read

        run = read.get_run(self.workspace.db(readonly=True), run_id)
        if run is None:
            return
        screen = RunScreen(run, self.workspace.artifacts_dir / str(run_id) / "run.log")
        self.push_screen(screen, callback=lambda _: self.set_view(View(self.visible_pane().name)))
        self.set_view(View("run", run_id=run_id))

    def _selected_run(self):
        from state import read

        run_id = self._selected_run_id()
        return None if run_id is None else read.get_run(self.workspace.db(readonly=True), run_id)

    def _selected_run_id(self) -> int | None:
        if isinstance(self.screen, RunScreen):
            return self.screen.run_id
        return self.visible_pane().selected_run_id()

    # -- asking the pipeline (never writing stage data here) --------------------------------
    def action_launch(self) -> None:
        # The stage selected in the overview, else the one whose pane is open, else the first.
        pane = self.visible_pane()
        name = pane.selected_stage() if pane.name == "overview" else pane.stage or stages.names()[0]
        if name not in stages.names():
            self.notify(f"{name} is not built yet", severity="warning")
            return
        stage = stages.get(name)
        self.push_screen(LaunchScreen(stage, self.workspace.config.stage(name)),
                         callback=lambda overrides: overrides is not None and self.launch(name, overrides))

    @work(thread=True, group="control", description="launch")
    def launch(self, stage: str, overrides: dict) -> None:
        from pipeline import control

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
        for pane in self.panes:  # every pane by its full title (the footer may show a shorter label)
            yield SystemCommand(pane.title, pane.description, lambda name=pane.name: self.action_show(name))
        for binding in keys.bindings([]):
            if binding.id != "quit":
                yield SystemCommand(binding.description, binding.tooltip,
                                    lambda action=binding.action: self.run_action(action))
        for pane in self.panes:  # a pane's own actions: shown first, then done there
            for binding in keys.pane_bindings(pane):
                yield SystemCommand(binding.description, binding.tooltip,
                                    lambda pane=pane, action=binding.action: self._pane_action(pane.name, action))

    def _pane_action(self, name: str, action: str) -> None:
        self.action_show(name)
        self.call_after_refresh(self.query_one(f"#{name}", Pane).run_action, action)


def run_console(workspace, *, low_bandwidth: bool | None = None) -> None:
    POConsole(workspace, low_bandwidth=low_bandwidth).run()
