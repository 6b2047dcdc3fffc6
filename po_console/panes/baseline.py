"""Baseline: per-example results of the latest (or chosen) baseline run, sortable, with the
summary and its 95% CI; enter shows one example's inputs and outputs side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from pipeline.stages.base import Stage
from po_console.panes.base import Pane, View, latest_run_id, row_table, selected_key, status_text, sync_ordered
from po_console.screens import ExampleScreen
from state import read
from state.read import EvalResult, Run

# The parts of the shipped metric in five letters, so that all six fit 80 columns; any other
# metric's parts are shown by their first five letters.
PART_SHORT = {"vision_structure": "struc", "requirement_coverage": "cover", "review_validity": "revw",
              "vision_consistency": "cons", "length_bounds": "len", "no_repetition": "rep"}


def part_columns(results: list[EvalResult]) -> list[tuple[str, str]]:
    """(label, part) for each part the metric named, in its order."""
    names = list(dict.fromkeys(name for r in results for name in r.parts))
    return [(PART_SHORT.get(name, name[:5]), name) for name in names]
EMPTY = "Baseline · no run yet: press 1, select baseline, l to launch"


@dataclass
class BaselineResults:
    run: Run | None = None
    results: list[EvalResult] = field(default_factory=list)


class BaselinePane(Pane):
    name = "baseline"
    title = "Baseline"
    key_label = "Base"  # short: eight panes' keys and launch fit 80 columns
    description = "Baseline results of the latest (or chosen) run"
    stage = "baseline"
    order = 10

    SORTS = ["position", "score", "latency", "status"]
    BINDINGS = [Binding("o", "sort_results", "Sort", show=False, id="sort-results",
                        tooltip="Baseline: cycle the sort column")]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sort_by = "position"
        self.payload = BaselineResults()

    @property
    def run(self) -> Run | None:
        return self.payload.run

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="baseline-summary", classes="pane-title")
        yield row_table("baseline-table", self._columns(list(PART_SHORT.items())))

    @staticmethod
    def _columns(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [("example", "example"), ("status", "status"), ("score", "score"),
                *[(short, name) for name, short in parts], ("lat", "latency")]

    @classmethod
    def read(cls, db, view: View, memo: dict) -> BaselineResults:
        run_id = latest_run_id(db, view, cls.stage)
        if run_id is None:
            return BaselineResults()
        # Results only grow: when the count did not move, reuse the rows already parsed.
        count = read.count_eval_results(db, run_id)
        if memo.get("key") != (run_id, count):
            memo.update(key=(run_id, count), results=read.eval_results(db, run_id))
        return BaselineResults(read.get_run(db, run_id), memo["results"])

    def show(self, payload: BaselineResults) -> None:
        self.payload = payload
        self.query_one("#baseline-summary", Static).update(self.summary_line())
        table = self.query_one(DataTable)
        parts = [name for _, name in part_columns(payload.results)] or list(PART_SHORT)
        if [c.key.value for c in table.ordered_columns][3:-1] != parts:  # another metric: its own parts
            table.clear(columns=True)
            for label, key in self._columns([(name, short) for short, name in part_columns(payload.results)]):
                table.add_column(label, key=key)
        rows = {}
        for r in self._sorted(payload.results):
            score = f"{r.score:.3f}" if r.score is not None else "-"
            cells = [f"{r.parts[name]:.2f}" if name in r.parts else "-" for name in parts]
            rows[r.example_id] = (r.example_id, status_text(r.status), score, *cells, f"{r.latency_s:.1f}s")
        sync_ordered(table, rows)

    def _sorted(self, results: list[EvalResult]) -> list[EvalResult]:
        key = {
            "position": lambda r: r.position,
            "score": lambda r: -(r.score if r.score is not None else -1),
            "latency": lambda r: -r.latency_s,
            "status": lambda r: (r.status == "ok", r.position),
        }[self.sort_by]
        return sorted(results, key=key)

    def summary_line(self) -> str:
        run = self.run
        if run is None:
            return EMPTY
        head = f"Baseline run {run.id} · {run.status} · {run.done}/{run.total or '?'} · sort: {self.sort_by} (o)"
        s = run.summary
        if s and s.get("mean") is not None:
            ci = s.get("ci95")
            head += f"\nmean {s['mean']:.3f}" + (f"  95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
            head += (f"  parse fail {s['parse_failures']}  errors {s['errors']}"
                     f"  p50/p95 {s['latency_p50_s']:.1f}/{s['latency_p95_s']:.1f}s")
            if s.get("cost_usd"):
                head += f"  ${s['cost_usd']:.2f}"
            if s.get("judge_calls"):  # the metric's own LM calls, beside the score they made
                head += f"  judge {s['judge_calls']} calls"
        return head

    def action_sort_results(self) -> None:
        self.sort_by = self.SORTS[(self.SORTS.index(self.sort_by) + 1) % len(self.SORTS)]
        self.show(self.payload)

    def selected_result(self) -> EvalResult | None:
        key = selected_key(self.query_one(DataTable))
        return next((r for r in self.payload.results if r.example_id == key), None) if key else None

    def selected_run_id(self) -> int | None:
        return self.run.id if self.run else None

    def open_selected(self) -> None:
        r = self.selected_result()
        if r is None:
            return
        score = f"{r.score:.3f}" if r.score is not None else r.status
        parts = "  ".join(f"{k} {v:.2f}" for k, v in r.parts.items())
        judge = f" · judge {r.judge_calls} calls, {r.judge_input_tokens:,}/{r.judge_output_tokens:,} tokens" \
            if r.judge_calls else ""
        head = f"{r.example_id} · {score}{judge} · {r.latency_s:.1f}s · {parts}" + (f"\n{r.error}" if r.error else "")
        fields = Stage.fields_of(self.run)
        self.app.push_screen(ExampleScreen(head, self._inputs(r.example_id, fields), r.outputs, fields, r.feedback))

    def _inputs(self, example_id: str, fields: dict) -> dict | None:
        """The example's inputs, read from the run's validation file as written (no program import)."""
        from pipeline.datasets import DatasetError, read_text

        renamed = {field: key for key, field in self.app.workspace.config.data.fields.items()}
        try:
            for line in read_text(Path(self.run.config["val"])).splitlines():
                record = json.loads(line) if line.strip() else {}
                if record.get("id") == example_id:
                    return {name: record.get(renamed.get(name, name)) or "" for name in fields["inputs"]}
        except (DatasetError, KeyError, AttributeError, ValueError):
            return None
        return None
