"""Validation: the comparison of a validation run's systems on the same held-out examples —
one row per system (mean with its 95% CI, scored / answered, parse-fail and error rates,
p50/p95 latency, wins / ties / losses and p-value against the reference), the gate's verdict
with each check's reason and the run's notes, then the examples where the systems disagree
most; enter shows one example across the systems side by side. While a run answers (no
summary yet) the rows are each system's counts so far. Readable at 80x24."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from pipeline.evaluation import percentile
from pipeline.stages.base import Stage
from pipeline.stages.validation import report
from pipeline.stages.validation.stats import TIE, UNDERPOWERED_BELOW
from pipeline.units import figure
from po_console.panes.base import (
    Pane,
    View,
    latest_run_id,
    row_table,
    selected_key,
    status_text,
    sync_ordered,
    sync_table,
)
from po_console.screens import ExampleScreen
from state import read
from state.read import EvalResult, Run

EMPTY = "Validation · no run yet: press l to launch one (the systems answer the validation set)"
DISAGREEMENTS = 100  # the examples listed (a run may have thousands); report.md has the top 5
VERDICT_LINES = (7, 12)  # the verdict, its checks and notes: at 80x24, and 36 lines or more; "… N more" beyond
VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "not decidable": "bold yellow"}
CHECK_MARK = {"pass": "✓", "fail": "✗", "not decidable": "?"}
FAILURE_SHORT = {"parse_failure": "parse fail", "error": "error", "metric_error": "metric err"}

# (label, key) of the systems table: the run's comparison, or each system's counts while it answers.
SUMMARY_COLUMNS = [("system", "system"), ("mean [95% CI]", "mean"), ("scored", "scored"), ("fail", "parse"),
                   ("err", "errors"), ("p50/p95", "latency"), ("W/T/L", "wtl"), ("p", "p")]
LIVE_COLUMNS = [("system", "system"), ("answered", "answered"), ("mean so far", "mean"), ("fail", "parse"),
                ("err", "errors"), ("p50/p95", "latency"), ("W/T/L so far", "wtl")]


@dataclass(frozen=True)
class Live:
    """One system's answers so far (a run with no summary yet)."""

    answered: int
    scored: int
    mean: float | None
    parse_failures: int
    errors: int
    p50_latency_s: float | None
    p95_latency_s: float | None
    wins: int | None = None  # against the reference, on the examples both scored (None: the reference)
    ties: int | None = None
    losses: int | None = None


@dataclass
class ValidationView:
    run: Run | None = None
    systems: list[str] = field(default_factory=list)  # the run's, the reference first
    results: dict[str, dict[str, EvalResult]] = field(default_factory=dict)  # system -> example id -> answer
    live: dict[str, Live] = field(default_factory=dict)
    spread: list[tuple[str, float]] = field(default_factory=list)  # report.disagreements: most first
    positions: dict[str, int] = field(default_factory=dict)  # example id -> its place in the file

    @property
    def reference(self) -> str | None:
        if self.run is None:
            return None
        return (self.run.summary or {}).get("reference") or self.run.config.get("reference")

    @property
    def compared(self) -> dict | None:
        """The stored comparison (`compare()`), once the run has one."""
        summary = self.run.summary if self.run else None
        return summary if summary and summary.get("systems") else None


class ValidationPane(Pane):
    name = "validation"
    title = "Validation"
    key_label = "Val"
    description = "Validation: the systems compared, the gate's verdict, the examples they disagree on"
    stage = "validation"
    order = 50

    SORTS = ["spread", "position"]
    BINDINGS = [Binding("o", "sort_examples", "Sort examples", show=False, id="sort-validation-examples",
                        tooltip="Validation: examples by disagreement, or in the validation file's order")]
    DEFAULT_CSS = """
    /* At 80x24: two title lines, the systems (3 fit), the verdict with its checks and notes
       (at most 7 lines: the default gate has 4 conditions), then the examples they disagree on. */
    #validation-summary { height: auto; max-height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #validation-systems { height: auto; max-height: 7; }
    #validation-verdict { height: auto; max-height: 12; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #validation-examples-title { height: 1; padding: 0 1; color: $text-muted; }
    #validation-examples { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sort_by = "spread"
        self.payload = ValidationView()

    @property
    def run(self) -> Run | None:
        return self.payload.run

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="validation-summary", markup=False)
        systems = row_table("validation-systems", SUMMARY_COLUMNS)
        systems.cursor_type = "none"
        systems.can_focus = False  # a few rows: enter and the arrows belong to the examples
        yield systems
        yield Static("", id="validation-verdict", markup=False)
        yield Static("", id="validation-examples-title", markup=False)
        yield row_table("validation-examples", [("example", "example"), ("spread", "spread")])

    # -- reading (the polling thread) -------------------------------------------------------
    @classmethod
    def read(cls, db, view: View, memo: dict) -> ValidationView:
        run_id = latest_run_id(db, view, cls.stage)
        if run_id is None:
            return ValidationView()
        run = read.get_run(db, run_id)
        # Answers only grow: while their count did not move, the rows and what follows from
        # them (counts, disagreements) are the ones already computed.
        count = read.count_eval_results(db, run_id)
        if memo.get("key") != (run_id, count):
            by_system: dict[str, list[EvalResult]] = {}
            for row in read.eval_results(db, run_id):
                by_system.setdefault(row.system, []).append(row)
            reference = run.config.get("reference")
            memo.update(key=(run_id, count),
                        results={name: {r.example_id: r for r in rows} for name, rows in by_system.items()},
                        live={name: live_counts(rows, by_system.get(reference, []) if name != reference else None)
                              for name, rows in by_system.items()},
                        spread=report.disagreements(by_system),
                        positions={r.example_id: r.position for rows in by_system.values() for r in rows})
        return ValidationView(run, system_order(run, memo["results"]), memo["results"], memo["live"],
                              memo["spread"], memo["positions"])

    # -- drawing (the UI) -------------------------------------------------------------------
    def show(self, payload: ValidationView) -> None:
        self.payload = payload
        self.query_one("#validation-summary", Static).update(title_text(payload))
        self._show_systems(payload)
        lines = VERDICT_LINES[1] if self.app.size.height >= 36 else VERDICT_LINES[0]
        self.query_one("#validation-verdict", Static).update(verdict_text(payload, lines))
        self._show_examples(payload)

    def _show_systems(self, payload: ValidationView) -> None:
        table = self.query_one("#validation-systems", DataTable)
        compared = payload.compared
        columns = SUMMARY_COLUMNS if compared else LIVE_COLUMNS
        if [c.key.value for c in table.ordered_columns] != [key for _, key in columns]:
            table.clear(columns=True)  # the run finished (or another one is shown): the other layout
            for label, key in columns:
                table.add_column(label, key=key)
        if compared:
            rows = {name: summary_cells(name, s, compared["reference"]) for name, s in compared["systems"].items()}
        else:
            total = payload.run.config.get("examples") if payload.run else None
            answering = payload.run.message if payload.run and payload.run.status == "running" else None
            rows = {name: live_cells(name, payload.live.get(name), total, name == payload.reference,
                                     name == answering) for name in payload.systems}
        sync_table(table, rows)

    def _show_examples(self, payload: ValidationView) -> None:
        table = self.query_one("#validation-examples", DataTable)
        keys = ["example", "spread", *(f"system-{i}" for i in range(len(payload.systems)))]
        labels = [c.label.plain for c in table.ordered_columns][2:]
        if [c.key.value for c in table.ordered_columns] != keys or labels != payload.systems:
            table.clear(columns=True)  # another run, another set of systems
            table.add_column("example", key="example")
            table.add_column("spread", key="spread")
            for i, name in enumerate(payload.systems):
                table.add_column(name, key=f"system-{i}")
        spread = dict(payload.spread)
        listed = payload.spread[:DISAGREEMENTS]
        if self.sort_by == "position":
            listed = sorted(listed, key=lambda item: payload.positions.get(item[0], 0))
        rows = {}
        for example, gap in listed:
            rows[example] = (example, f"{gap:.3f}",
                             *(answer_cell(payload.results.get(name, {}).get(example)) for name in payload.systems))
        sync_ordered(table, rows)
        more = f"top {DISAGREEMENTS} of {len(spread):,}" if len(spread) > DISAGREEMENTS else f"{len(spread)}"
        order = "most disagreement first · o: file order" if self.sort_by == "spread" else \
            "in file order · o: most disagreement first"
        title = f"{more} example{'s' if len(spread) != 1 else ''}, {order} · enter: side by side" if spread else \
            "examples: none answered by two systems yet"
        self.query_one("#validation-examples-title", Static).update(title if payload.run else "")

    def on_show_pane(self) -> None:
        self.query_one("#validation-examples", DataTable).focus()

    def action_sort_examples(self) -> None:
        self.sort_by = self.SORTS[(self.SORTS.index(self.sort_by) + 1) % len(self.SORTS)]
        self.show(self.payload)

    def selected_run_id(self) -> int | None:
        return self.run.id if self.run else None

    def selected_example(self) -> str | None:
        return selected_key(self.query_one("#validation-examples", DataTable))

    def open_selected(self) -> None:
        example = self.selected_example()
        if example is None or self.run is None:
            return
        payload = self.payload
        answers = {name: payload.results.get(name, {}).get(example) for name in payload.systems}
        fields = Stage.fields_of(self.run)
        self.app.push_screen(SystemsExampleScreen(
            example, dict(payload.spread).get(example), answers, self._inputs(example, fields), fields,
            payload.reference))

    def _inputs(self, example_id: str, fields: dict) -> dict | str:
        """The example's inputs, read from the run's validation file as written (the program is
        not imported for it), or why they cannot be shown."""
        from pipeline.datasets import DatasetError, read_text

        path = self.run.config.get("val")
        if not path:
            return "the run names no validation file"
        renamed = {name: key for key, name in self.app.workspace.config.data.fields.items()}
        try:
            for line in read_text(Path(path)).splitlines():
                record = json.loads(line) if line.strip() else {}
                if isinstance(record, dict) and record.get("id") == example_id:
                    return {name: record.get(renamed.get(name, name)) or "" for name in fields["inputs"]}
        except (DatasetError, OSError, ValueError) as exc:
            return f"{path}: {exc}"
        return f"{example_id} is no longer in {path}"


# -- what the store holds, reduced ---------------------------------------------------------

def system_order(run: Run, results: dict) -> list[str]:
    """The run's systems in its order (the reference answers first), then any other that answered."""
    if run.summary and run.summary.get("systems"):
        names = list(run.summary["systems"])
    else:
        names = [s["name"] for s in run.config.get("resolved", []) if isinstance(s, dict) and "name" in s]
    return names + [name for name in results if name not in names]


def live_counts(rows: list[EvalResult], reference: list[EvalResult] | None) -> Live:
    """A system's answers so far: counts, mean of the scored ones, latency, and against the
    reference the wins / ties / losses on the examples both scored."""
    scores = [r.score for r in rows if r.status == "ok" and r.score is not None]
    latencies = [r.latency_s for r in rows]
    wins = ties = losses = None
    if reference is not None:
        theirs = {r.example_id: r.score for r in reference if r.status == "ok" and r.score is not None}
        diffs = [r.score - theirs[r.example_id] for r in rows
                 if r.status == "ok" and r.score is not None and r.example_id in theirs]
        wins, losses = sum(d > TIE for d in diffs), sum(d < -TIE for d in diffs)
        ties = len(diffs) - wins - losses
    return Live(answered=len(rows), scored=len(scores), mean=statistics.fmean(scores) if scores else None,
                parse_failures=sum(r.status == "parse_failure" for r in rows),
                errors=sum(r.status in ("error", "metric_error") for r in rows),
                p50_latency_s=percentile(latencies, 0.5), p95_latency_s=percentile(latencies, 0.95),
                wins=wins, ties=ties, losses=losses)


# -- formatters ------------------------------------------------------------------------------

def title_text(view: ValidationView) -> Text:
    run = view.run
    if run is None:
        return Text(EMPTY, style="bold")
    head = f"Validation run {run.id} · {run.status} · {run.done}/{run.total or '?'} answers"
    if view.reference:
        head += f" · vs {view.reference}"
    lines = [Text(head, style="bold")]
    if run.error:
        lines.append(Text(run.error, style="red"))
    elif view.compared:
        s = view.compared
        lines.append(Text(f"{s.get('examples', '?')} examples · means over the answers that parsed; "
                          "failures counted apart", style="dim"))
    elif run.status == "running" and run.message:
        lines.append(Text(f"answering: {run.message} · figures so far; the comparison when all have answered",
                          style="dim"))
    return Text("\n").join(lines)


def summary_cells(name: str, s: dict, reference: str) -> tuple:
    ci = f" [{s['ci_low']:.2f}, {s['ci_high']:.2f}]" if s.get("ci_low") is not None else ""
    if name == reference:
        wtl, p = Text("ref", style="dim"), ""
    elif s.get("paired") is not None:
        p_value = s.get("p_value")  # a small p keeps its magnitude: 4e-05, not 0.000
        wtl, p = f"{s['wins']}/{s['ties']}/{s['losses']}", figure(p_value, ".3f" if (p_value or 1) >= 0.001 else ".0e")
    else:
        wtl, p = "-", "-"
    return (name, f"{figure(s.get('mean'))}{ci}", f"{s['scored']}/{s['examples']}",
            rate(s.get("parse_failure_rate")), rate(s.get("error_rate")),
            latency(s.get("p50_latency_s"), s.get("p95_latency_s")), wtl, p)


def live_cells(name: str, live: Live | None, total: int | None, is_reference: bool, answering: bool) -> tuple:
    label = Text(name, style="bold green" if answering else "")
    if live is None:
        return (label, f"0/{total or '?'}", Text("waiting", style="dim"), "-", "-", "-", "-")
    n = live.answered
    wtl = Text("ref", style="dim") if is_reference else f"{live.wins}/{live.ties}/{live.losses}"
    return (label, f"{n}/{total or '?'}", figure(live.mean), rate(live.parse_failures / n if n else None),
            rate(live.errors / n if n else None), latency(live.p50_latency_s, live.p95_latency_s), wtl)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def latency(p50: float | None, p95: float | None) -> str:
    return "-" if p50 is None else f"{p50:.1f}/{figure(p95, '.1f')}s"


def answer_cell(row: EvalResult | None) -> Text | str:
    if row is None:
        return "-"
    if row.status == "ok" and row.score is not None:
        return f"{row.score:.3f}"
    return Text(FAILURE_SHORT.get(row.status, row.status), style="red")


def verdict_text(view: ValidationView, limit: int = VERDICT_LINES[0]) -> Text:
    """The verdict (coloured), each check of the gate with its reason, then the notes; at most
    `limit` lines, the rest counted."""
    run = view.run
    if run is None:
        return Text("")
    compared = view.compared
    if compared:
        verdict = compared["verdict"]
        gate = compared.get("gate") or []
        lines = [Text.assemble("verdict ", (verdict, VERDICT_STYLE.get(verdict, "bold")),
                               f" · gate of {len(gate)} condition{'s' if len(gate) != 1 else ''}" if gate
                               else " · no gate configured (validation.gate)")]
        for check in compared.get("checks", []):
            outcome = check["outcome"]
            lines.append(Text.assemble(("  " + CHECK_MARK.get(outcome, "·") + f" {outcome:<4} ",
                                        VERDICT_STYLE.get(outcome, "")), check["reason"]))
        notes = list(compared.get("notes", [])) + system_notes(compared)
    else:
        if run.status in ("running", "queued"):
            head = Text("verdict: when every system has answered", style="dim")
        else:
            head = Text.assemble("verdict: none · ", status_text(run.status),
                                 " before every system answered: r resumes" if run.status != "succeeded" else "")
        lines = [head]
        notes = list(run.config.get("notes", []))
    lines += [Text(f"note: {n}", style="yellow") for n in notes]
    if len(lines) > limit:
        hidden = len(lines) - limit + 1
        lines = lines[:limit - 1] + [Text(f"… {hidden} more (report.md in the run's artifacts)", style="dim")]
    text = Text("\n").join(lines)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def system_notes(compared: dict) -> list[str]:
    """Each system's notes, the underpowered ones said once for all."""
    notes, thin = [], []
    for name, s in compared["systems"].items():
        if s.get("underpowered"):
            thin.append(f"{name} {s.get('paired')}")
        notes += [f"{name}: {n}" for n in s.get("notes", []) if not n.startswith("underpowered")]
    if thin:
        notes.insert(0, f"underpowered (paired examples under {UNDERPOWERED_BELOW}: {', '.join(thin)}): small "
                        "differences cannot be told from chance")
    return notes


# -- one example across the systems --------------------------------------------------------

class SystemsExampleScreen(ExampleScreen):
    """One example across the systems: each one's score, its parts and latency in a grid, then
    the inputs and each system's answer side by side (a failure's status, error and raw text);
    tab moves between the columns, escape goes back."""

    DEFAULT_CSS = """
    SystemsExampleScreen #example-head { max-height: 12; }
    SystemsExampleScreen .failure { color: $error; }
    """

    def __init__(self, example_id: str, spread: float | None, answers: dict[str, EvalResult | None],
                 inputs: dict | str, fields: dict, reference: str | None) -> None:
        self.example_id, self.answers, self.reference = example_id, answers, reference
        self.missing = inputs if isinstance(inputs, str) else None
        super().__init__("", inputs if isinstance(inputs, dict) else {}, {}, fields)
        self.grid = example_grid(example_id, spread, answers, reference)

    def compose(self) -> ComposeResult:
        yield Static(self.grid, id="example-head")
        with Horizontal():
            with VerticalScroll(classes="side", id="example-inputs"):
                yield Static("inputs", classes="field-name", markup=False)
                if self.missing:
                    yield Static(f"(not shown: {self.missing})", markup=False)
                for name in self.fields["inputs"] if not self.missing else []:
                    yield Static(name, classes="field-name", markup=False)
                    yield Static(str(self.inputs.get(name) or "(empty)"), markup=False)
            for i, (system, row) in enumerate(self.answers.items()):
                with VerticalScroll(classes="side", id=f"example-system-{i}"):
                    yield from answer_widgets(system, row, self.fields, system == self.reference)
        yield Footer(compact=True)


def answer_widgets(system: str, row: EvalResult | None, fields: dict, is_reference: bool) -> ComposeResult:
    yield Static(system + (" (ref)" if is_reference else ""), classes="field-name", markup=False)
    if row is None:
        yield Static("(not answered)", markup=False)
        return
    if row.status != "ok":
        yield Static(row.status.replace("_", " "), classes="failure", markup=False)
        if row.error:
            yield Static(row.error, classes="failure", markup=False)
    known = [name for name in fields["outputs"] if name in row.outputs]
    for name in known + [name for name in row.outputs if name not in known]:
        yield Static(name, classes="field-name", markup=False)
        yield Static(str(row.outputs[name] or "(empty)"), markup=False)
    if row.feedback:
        yield Static("the metric's feedback", classes="field-name", markup=False)
        yield Static(row.feedback, markup=False)


def example_grid(example_id: str, spread: float | None, answers: dict[str, EvalResult | None],
                 reference: str | None) -> Text:
    """score, each part and latency (rows) by system (columns)."""
    head = f"{example_id}" + (f" · spread {spread:.3f}" if spread is not None else "") + " · escape: back"
    rows = [r for r in answers.values() if r is not None]
    parts = list(dict.fromkeys(name for r in rows for name in r.parts))
    label_w = max([len("latency"), *map(len, parts)]) + 2
    widths = [max(len(name) + (1 if name == reference else 0), 10) + 2 for name in answers]
    text = Text(head, style="bold")
    text.append("\n" + " " * label_w)
    for name, w in zip(answers, widths):
        text.append(f"{name + ('*' if name == reference else ''):<{w}}", style="bold")

    def line(label: str, cells: list[tuple[str, str]]) -> None:
        text.append(f"\n{label:<{label_w}}")
        for (value, style), w in zip(cells, widths):
            text.append(f"{value:<{w}}", style=style)

    line("score", [("-", "dim") if r is None else (f"{r.score:.3f}", "") if r.status == "ok" and r.score is not None
                   else (FAILURE_SHORT.get(r.status, r.status), "red") for r in answers.values()])
    for part in parts:
        line(part, [(f"{r.parts[part]:.2f}", "") if r is not None and part in r.parts else ("-", "dim")
                    for r in answers.values()])
    line("latency", [("-", "dim") if r is None else (f"{r.latency_s:.1f}s", "") for r in answers.values()])
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text
