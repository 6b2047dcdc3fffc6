"""Runs: the history of every stage's runs, filtered by stage and state; enter opens a run's
details and its log."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from pipeline import stages
from pipeline.overview import headline
from pipeline.units import duration
from po_console.panes.base import Pane, View, row_table, selected_key, status_text, sync_ordered
from state import read
from state.read import Run


@dataclass
class RunList:
    view: View
    runs: list[Run]


class RunsPane(Pane):
    name = "runs"
    title = "Runs"
    description = "Run history and logs"
    order = 1

    STATES = [None, "running", "stale", "failed", "cancelled", "succeeded"]
    BINDINGS = [
        Binding("f", "filter_stage", "Stage filter", show=False, id="filter-stage", tooltip="Runs: cycle the stage filter"),
        Binding("s", "filter_state", "State filter", show=False, id="filter-state", tooltip="Runs: cycle the state filter"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("Runs", id="runs-title", classes="pane-title")
        yield row_table("runs-table", [(label, label) for label in ("run", "stage", "status", "progress", "started",
                                                                     "took", "result")])

    @classmethod
    def read(cls, db, view: View, memo: dict) -> RunList:
        runs = read.list_runs(db, stage=view.stage, limit=500)
        return RunList(view, [r for r in runs if view.state is None or r.status == view.state])

    def show(self, payload: RunList) -> None:
        rows = {}
        for run in payload.runs:
            started = time.strftime("%m-%d %H:%M", time.localtime(run.started_at)) if run.started_at else "-"
            progress = f"{run.done}/{run.total}" if run.total else "-"
            rows[str(run.id)] = (str(run.id), run.stage, status_text(run.status), progress, started,
                                 duration(run.elapsed, compact=True), run.error or headline(run))
        sync_ordered(self.query_one(DataTable), rows)  # newest first, also when a filter brings rows back
        view = payload.view
        self.query_one("#runs-title", Static).update(
            f"Runs · stage: {view.stage or 'all'} (f) · state: {view.state or 'all'} (s) · enter: details and log")

    def selected_run_id(self) -> int | None:
        key = selected_key(self.query_one(DataTable))
        return int(key) if key else None

    def open_selected(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.app.open_run(run_id)

    def action_filter_stage(self) -> None:
        choices = [None, *[name for name, _, _ in stages.pipeline()]]
        view = self.app.view
        self.app.set_view(replace(view, stage=choices[(choices.index(view.stage) + 1) % len(choices)]))

    def action_filter_state(self) -> None:
        view = self.app.view
        self.app.set_view(replace(view, state=self.STATES[(self.STATES.index(view.state) + 1) % len(self.STATES)]))
