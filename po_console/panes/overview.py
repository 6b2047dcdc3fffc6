"""Overview: one row per stage of the pipeline — state, last run, progress, rate, ETA,
heartbeat age and key figure. Launch, cancel and resume act on the selected stage."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from pipeline.overview import ChainStatus, StageRow, chain_status, stage_rows, task_model
from pipeline.units import duration
from po_console.panes.base import Pane, View, selected_key, status_text, sync_table


@dataclass
class Overview:
    rows: list[StageRow]
    chain: ChainStatus | None = None  # the last `po run all`
    task_model: str = ""


class OverviewPane(Pane):
    name = "overview"
    title = "Overview"
    key_label = "Home"  # eight panes' keys and launch fit 80 columns
    description = "Pipeline overview: every stage"
    order = 0

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: dict[str, StageRow] = {}

    def compose(self) -> ComposeResult:
        yield Static("Pipeline", id="overview-title", classes="pane-title")
        table = DataTable(id="overview-table", cursor_type="row", zebra_stripes=False)
        for label, key in [("stage", "stage"), ("state", "state"), ("run", "run"), ("progress", "progress"),
                           ("rate", "rate"), ("ETA", "eta"), ("beat", "beat"), ("result", "result")]:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="overview-hint", classes="hint")

    def on_mount(self) -> None:
        self.show(Overview(stage_rows(None)))  # every stage at once; its runs when the store is read

    @classmethod
    def read(cls, db, view: View, memo: dict) -> Overview:
        rows = stage_rows(db)
        promoted = "promotions" in db.table_names() and db.execute("SELECT 1 FROM promotions LIMIT 1").fetchone()
        return Overview(rows, chain_status(db, rows), task_model(db) if promoted else "")

    def show(self, data: Overview) -> None:
        rows = data.rows
        title = "Pipeline" + (f" · {data.chain.text()}" if data.chain else "")
        self.query_one("#overview-title", Static).update(title + (f"\n{data.task_model}" if data.task_model else ""))
        self.rows = {row.stage: row for row in rows}
        cells, stale = {}, []
        for row in rows:
            progress = f"{row.done}/{row.total}" if row.total else "-"
            rate = f"{row.rate_per_min:.1f}/m" if row.rate_per_min else "-"
            cells[row.stage] = (row.stage, status_text(row.status), str(row.run or "-"), progress, rate,
                                row.eta_text(), duration(row.heartbeat_age_s, compact=True), row.result or "")
            if row.status == "stale":
                stale.append(f"{row.stage} run {row.run}")
        sync_table(self.query_one(DataTable), cells)
        hint = f"stale: {', '.join(stale)} — press r to resume" if stale else "l launch · c cancel · r resume · 2 runs"
        self.query_one("#overview-hint", Static).update(hint)

    def selected_stage(self) -> str | None:
        return selected_key(self.query_one(DataTable))

    def selected_run_id(self) -> int | None:
        row = self.rows.get(self.selected_stage() or "")
        return row.run if row else None

    def open_selected(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.app.open_run(run_id)
