"""The console's panes. Each one renders a Snapshot; none of them reads or writes the store."""

from __future__ import annotations

import json
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static

from pipeline import teacher
from pipeline.stages import BUILT, PIPELINE
from pipeline.units import duration
from po_console import render
from po_console.snapshots import Snapshot
from state.read import Run

STATUS_STYLE = {"stale": "bold red", "failed": "red", "running": "green", "queued": "yellow",
                "succeeded": "", "cancelled": "dim"}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, "dim"))


def sync_table(table: DataTable, rows: dict[str, tuple]) -> None:
    """Keyed diff: update changed cells, add new rows, drop gone ones; never a full reload."""
    columns = [c.key for c in table.ordered_columns]
    current = {key.value: key for key in table.rows}
    for key in [k for k in current if k not in rows]:
        table.remove_row(current[key])
    for key, cells in rows.items():
        if key not in current:
            table.add_row(*cells, key=key)
            continue
        old = table.get_row(current[key])
        for column, before, after in zip(columns, old, cells):
            if str(before) != str(after):
                table.update_cell(current[key], column, after, update_width=True)


def sync_ordered(table: DataTable, rows: dict[str, tuple]) -> None:
    """sync_table, for rows whose order matters. Rows dropped or added at the end are a keyed
    diff; a new order (a sort, a filter, a row back in the middle) rebuilds the table,
    keeping the cursor on its row."""
    order = list(rows)
    kept = [k.value for k in table.rows if k.value in rows]
    if order[: len(kept)] == kept:
        sync_table(table, rows)
        return
    keep = selected_key(table)
    table.clear()
    for key in order:
        table.add_row(*rows[key], key=key)
    if keep in rows:
        table.move_cursor(row=order.index(keep))


def selected_key(table: DataTable) -> str | None:
    if table.row_count == 0:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


class OverviewPane(Vertical):
    """One row per stage: state, last run, progress, rate, ETA, heartbeat age, key figure."""

    def compose(self) -> ComposeResult:
        yield Static("Pipeline", classes="pane-title")
        table = DataTable(id="overview-table", cursor_type="row", zebra_stripes=False)
        for label, key in [("stage", "stage"), ("state", "state"), ("run", "run"), ("progress", "progress"),
                           ("rate", "rate"), ("ETA", "eta"), ("beat", "beat"), ("result", "result")]:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="overview-hint", classes="hint")

    def on_mount(self) -> None:
        self.apply_runs({})

    def apply(self, snap: Snapshot) -> None:
        self.apply_runs({r.stage: r for r in snap.runs}, snap.teacher)

    def apply_runs(self, latest: dict[str, Run], teacher: dict | None = None) -> None:
        rows = {}
        stale = []
        for row in render.overview_rows(latest, teacher):
            progress = f"{row['done']}/{row['total']}" if row["total"] else "-"
            rate = f"{row['rate_per_min']:.1f}/m" if row["rate_per_min"] else "-"
            rows[row["stage"]] = (row["stage"], status_text(row["status"]), str(row["run"] or "-"), progress, rate,
                                  render.eta_text(row), render.ago(row["heartbeat_age_s"]), row["result"] or "")
            if row["status"] == "stale":
                stale.append(f"{row['stage']} run {row['run']}")
        sync_table(self.query_one(DataTable), rows)
        hint = f"stale: {', '.join(stale)} — press r to resume" if stale else "l launch · c cancel · r resume · 2 runs"
        self.query_one("#overview-hint", Static).update(hint)

    def selected_stage(self) -> str | None:
        return selected_key(self.query_one(DataTable))


class RunsPane(Vertical):
    """Run history, filtered by stage and state."""

    STATES = [None, "running", "stale", "failed", "cancelled", "succeeded"]
    STAGES = [None, *[name for name, _ in PIPELINE]]

    def compose(self) -> ComposeResult:
        yield Static("Runs", id="runs-title", classes="pane-title")
        table = DataTable(id="runs-table", cursor_type="row")
        for label in ("run", "stage", "status", "progress", "started", "took", "result"):
            table.add_column(label, key=label)
        yield table

    def apply(self, snap: Snapshot) -> None:
        rows = {}
        for run in snap.runs:
            started = time.strftime("%m-%d %H:%M", time.localtime(run.started_at)) if run.started_at else "-"
            progress = f"{run.done}/{run.total}" if run.total else "-"
            rows[str(run.id)] = (str(run.id), run.stage, status_text(run.status), progress, started,
                                 render.ago(run.elapsed), run.error or render.headline(run))
        sync_ordered(self.query_one(DataTable), rows)  # newest first, also when a filter brings rows back
        view = snap.view
        self.query_one("#runs-title", Static).update(
            f"Runs · stage: {view.stage or 'all'} (f) · state: {view.state or 'all'} (s) · enter: details and log")

    def selected_run(self) -> int | None:
        key = selected_key(self.query_one(DataTable))
        return int(key) if key else None


PART_SHORT = {"vision_structure": "struc", "requirement_coverage": "cover", "review_validity": "revw",
              "vision_consistency": "cons", "length_bounds": "len", "no_repetition": "rep"}


class BaselinePane(Vertical):
    """Per-example results (sortable), the summary with its CI, and a drill-down."""

    SORTS = ["position", "score", "latency", "status"]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sort_by = "position"
        self.run: Run | None = None
        self.results: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        yield Static("Baseline · no run yet: press 1, select baseline, l to launch", id="baseline-summary",
                     classes="pane-title")
        table = DataTable(id="baseline-table", cursor_type="row")
        for label, key in [("example", "example"), ("status", "status"), ("score", "score"),
                           *[(short, name) for name, short in PART_SHORT.items()], ("lat", "latency")]:
            table.add_column(label, key=key)
        yield table

    def apply(self, snap: Snapshot) -> None:
        self.run = snap.run
        self.results = {r["example_id"]: r for r in snap.results}
        self.query_one("#baseline-summary", Static).update(self.summary_line())
        rows = {}
        for r in self._sorted(snap.results):
            score = f"{r['score']:.3f}" if r["score"] is not None else "-"
            parts = [f"{r['parts'][name]:.2f}" if name in r["parts"] else "-" for name in PART_SHORT]
            status = status_text("ok" if r["status"] == "ok" else r["status"])
            rows[r["example_id"]] = (r["example_id"], status, score, *parts, f"{r['latency_s']:.1f}s")
        sync_ordered(self.query_one(DataTable), rows)

    def _sorted(self, results: list[dict]) -> list[dict]:
        key = {
            "position": lambda r: r["position"],
            "score": lambda r: -(r["score"] if r["score"] is not None else -1),
            "latency": lambda r: -r["latency_s"],
            "status": lambda r: (r["status"] == "ok", r["position"]),
        }[self.sort_by]
        return sorted(results, key=key)

    def summary_line(self) -> str:
        run = self.run
        if run is None:
            return "Baseline · no run yet: press 1, select baseline, l to launch"
        head = f"Baseline run {run.id} · {run.status} · {run.done}/{run.total or '?'} · sort: {self.sort_by} (o)"
        s = run.summary
        if s and s.get("mean") is not None:
            ci = s.get("ci95")
            head += f"\nmean {s['mean']:.3f}" + (f"  95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
            head += (f"  parse fail {s['parse_failures']}  errors {s['errors']}"
                     f"  p50/p95 {s['latency_p50_s']:.1f}/{s['latency_p95_s']:.1f}s")
            if s.get("cost_usd"):
                head += f"  ${s['cost_usd']:.2f}"
        return head

    def cycle_sort(self) -> None:
        self.sort_by = self.SORTS[(self.SORTS.index(self.sort_by) + 1) % len(self.SORTS)]

    def selected_result(self) -> dict | None:
        key = selected_key(self.query_one(DataTable))
        return self.results.get(key) if key else None


class ScoreChart(Widget):
    """The score chart of the MIPROv2 pane, drawn as text to the width it is given."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trials: list[dict] = []

    def show(self, trials: list[dict]) -> None:
        if trials != self.trials:
            self.trials = trials
            self.refresh()

    def render(self) -> Text:
        return render.score_chart(self.trials, self.size.width, self.size.height)


class MiproPane(Vertical):
    """A MIPROv2 run as it happens: every evaluation, the score chart, the instruction candidates."""

    EMPTY = "MIPROv2 · no run yet: press l to launch one"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: Run | None = None
        self.best_shown: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.EMPTY, id="mipro-summary", classes="pane-title")
        table = DataTable(id="mipro-table", cursor_type="row")
        for label, key in [("#", "evaluation"), ("trial", "trial"), ("kind", "kind"), ("score", "score"),
                           ("note", "note"), ("best", "best"), ("instr", "instruction"), ("demos", "demos"),
                           ("took", "took"), ("LM calls", "lm_calls")]:
            table.add_column(label, key=key)
        yield table
        yield ScoreChart(id="mipro-chart")
        with VerticalScroll(id="mipro-candidates-box"):
            yield Static("", id="mipro-candidates")

    def apply(self, snap: Snapshot) -> None:
        self.run = snap.run
        self.query_one("#mipro-summary", Static).update(mipro_summary(snap.run, snap.trials))
        table = self.query_one(DataTable)
        # While the run works, follow its newest evaluation (as `tail -f` does) unless the
        # user moved up to read an older one.
        live = snap.run is not None and snap.run.state in ("queued", "running")
        following = live and (table.row_count == 0 or table.cursor_row >= table.row_count - 1)
        sync_ordered(table, {str(t["evaluation"]): trial_cells(t) for t in snap.trials})
        if following and table.row_count:
            table.move_cursor(row=table.row_count - 1)
        self.query_one(ScoreChart).show(snap.trials)
        self.query_one("#mipro-candidates", Static).update(candidate_list(snap.trials, snap.instructions,
                                                                          snap.demo_sets))
        best = best_trial(snap.trials)
        if best is not None and best["instruction"] != self.best_shown:
            # The box shows a few lines: bring a new ★ candidate into them (once: the user may scroll).
            self.best_shown = best["instruction"]
            self.query_one("#mipro-candidates-box").scroll_to(y=max(0, best["instruction"] - 2), animate=False)


def mipro_summary(run: Run | None, trials: list[dict]) -> str:
    """State, evaluations done / planned, best full score against the program as written, LM calls.

    A running run has no summary yet, so its figures come from the trials recorded so far.
    """
    if run is None:
        return MiproPane.EMPTY
    planned = run.config.get("planned_evaluations")
    done = f"{len(trials)}/{planned}" if planned else str(len(trials))
    head = f"MIPROv2 run {run.id} · {run.status} · evaluations {done} · enter: program review"
    s = run.summary or {}
    fulls = [t["score"] for t in trials if t["kind"] == "full" and t["score"] is not None]
    best = s.get("best_score", max(fulls, default=None))
    default = s.get("default_score", trials[0]["score"] if trials else None)
    line = f"best full {render.score(best)} vs default {render.score(default)}"
    if best is not None and default is not None:
        line += f" ({best - default:+.3f})"
    lm_calls = s.get("lm_calls", sum(t["lm_calls"] for t in trials))
    cached = s.get("cache_hits", sum(t.get("cache_hits") or 0 for t in trials))  # not in older stores
    line += f" · LM calls {lm_calls}" + (f" (+{cached} from cache)" if cached else "")
    if run.error:
        line += f" · {run.error}"
    return f"{head}\n{line}"


def trial_cells(t: dict) -> tuple:
    # A low score from broken parsing or errors is not a bad prompt: say so beside the score.
    problems = render.trial_flag(t)
    note = ", ".join(filter(None, ["as written" if t["evaluation"] == 1 else "", problems]))
    if t["score"] is None:
        score = Text("failed", style="bold red")
    else:
        score = Text(f"{t['score']:.3f}", style="yellow" if problems else "")
    kind = Text("full", style="bold") if t["kind"] == "full" else Text("mini")
    index = lambda v: "-" if v is None else str(v)  # noqa: E731
    return (str(t["evaluation"]), index(t["trial"]), kind, score, Text(note, style="yellow" if problems else "dim"),
            render.score(t["best_full"]), index(t["instruction"]), index(t["demos"]), render.ago(t["duration_s"]),
            str(t["lm_calls"]))


def best_trial(trials: list[dict]) -> dict | None:
    """The full evaluation with the best score whose candidates are known."""
    known = [t for t in trials if t["kind"] == "full" and t["score"] is not None and t["instruction"] is not None]
    return max(known, key=lambda t: t["score"], default=None)


def candidate_list(trials: list[dict], instructions: list[str], demo_sets: list[str]) -> Text:
    """Instruction candidates, one line each, ★ on the one the best full evaluation used."""
    if not instructions:
        return Text("instruction candidates: not proposed yet", style="dim")
    best = best_trial(trials)
    sizes = []
    for content in demo_sets:
        try:
            sizes.append(str(len(json.loads(content))))
        except (ValueError, TypeError):
            sizes.append("?")
    title = "instructions · ★ " + (f"best full evaluation (trial {best['trial']})" if best else "none best yet")
    if sizes:
        title += f" · demo sets of {', '.join(sizes)} demos"
    text = Text(title, style="bold")
    for i, instruction in enumerate(instructions):
        mark = "★" if best and best["instruction"] == i else " "
        first = instruction.strip().splitlines()[0] if instruction.strip() else "(empty)"
        text.append(f"\n{mark}{i:>2} ", style="bold yellow" if mark != " " else "")
        text.append(first)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


class ScoreHistogram(Widget):
    """The teacher pane's score histogram with the min_score threshold, drawn to its size."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scores: list[float] = []
        self.min_score: float | None = None  # None: no run to draw

    def show(self, scores: list[float], min_score: float | None) -> None:
        if (scores, min_score) != (self.scores, self.min_score):
            self.scores, self.min_score = scores, min_score
            self.refresh()

    def render(self) -> Text:
        if self.min_score is None:
            return Text("")
        return render.score_histogram(self.scores, self.min_score, self.size.width, self.size.height)


# The reason column stops here, so that the table fits 80 columns; enter shows it whole.
REASON_CHARS = 34
RECORD_STYLE = {"accepted": "green", "rejected": "red", "surplus": "yellow", "error": "bold red"}


class TeacherPane(Vertical):
    """A teacher run as it fills its data set: accepted / target and what reaching it will
    take, the score histogram against min_score, why answers were rejected, the newest attempts."""

    EMPTY = "Teacher · no run yet: press l to launch one"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: Run | None = None
        self.records: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        yield Static(self.EMPTY, id="teacher-summary")
        with Horizontal(id="teacher-middle"):
            yield ScoreHistogram(id="teacher-histogram")
            yield Static("", id="teacher-reasons")
        table = DataTable(id="teacher-table", cursor_type="row")
        for label, key in [("seq", "seq"), ("example", "example"), ("att", "attempt"), ("status", "status"),
                           ("score", "score"), ("reason", "reason")]:
            table.add_column(label, key=key)
        yield table

    def apply(self, snap: Snapshot) -> None:
        self.run = snap.run
        stats = snap.teacher
        self.query_one("#teacher-summary", Static).update(teacher_summary(snap.run, stats))
        min_score = snap.run.config.get("min_score") if snap.run else None
        self.query_one(ScoreHistogram).show(stats["scores"] if stats else [], min_score)
        self.query_one("#teacher-reasons", Static).update(reason_list(stats))
        self.records = {record_key(r): r for r in snap.records}
        table = self.query_one(DataTable)
        following = table.cursor_row <= 0  # on the newest attempt: stay on the newest as more come
        sync_ordered(table, {key: record_cells(r) for key, r in self.records.items()})
        if following and table.row_count:
            table.move_cursor(row=0)

    def selected_record(self) -> dict | None:
        key = selected_key(self.query_one(DataTable))
        return self.records.get(key) if key else None


def record_key(r: dict) -> str:
    return f"{r['input_key']}/{r['attempt']}"


def record_cells(r: dict) -> tuple:
    reason = r["reason"] or ""
    attempt = "imp" if r["attempt"] == 0 else str(r["attempt"])  # imported from an old data set
    return ("-" if r["seq"] is None else str(r["seq"]), r["example_id"], attempt,
            Text(r["status"], style=RECORD_STYLE.get(r["status"], "")), render.score(r["score"]),
            reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 1] + "…")


def teacher_summary(run: Run | None, stats: dict | None) -> Text:
    """Accepted / target with a bar and ETA, the acceptance rate with its 95% interval,
    throughput, cost so far, and what reaching the target will take (a range, from
    pipeline.teacher.projection: never one guess)."""
    if run is None or stats is None:
        return Text(TeacherPane.EMPTY, style="bold")
    target, min_score = run.config.get("max_records") or 0, run.config.get("min_score")
    p = teacher.projection(stats, target)
    head = f"Teacher run {run.id} · {run.status} · min score {min_score}"
    if (run.config.get("attempts_per_input") or 1) > 1:
        head += f" · best of {run.config['attempts_per_input']}"
    head += f" · {run.config.get('provider', '?')} · enter: record"
    lines = [Text(head, style="bold")]
    if run.error:
        lines.append(Text(run.error, style="red"))  # it says what it is: "pool exhausted: …"
    share = f"{stats['accepted'] / target:.0%}" if target else "-"
    bar = render.progress_bar(stats["accepted"], target)
    lines.append(Text.assemble(f"accepted {stats['accepted']:,}/{target:,} ", (bar, "green"), f" {share} · ",
                               eta(run, p)))
    generated = stats["attempts"] - stats["imported"] - stats["errors"]
    line = f"attempts {stats['attempts']:,} on {stats['inputs']:,} inputs"
    if stats["imported"]:
        line += f" ({stats['imported']:,} imported)"
    if p["rate"] is not None:
        line += f" · acceptance {p['rate']:.0%} of {generated:,} (95% CI {p['rate_low']:.0%}–{p['rate_high']:.0%})"
    lines.append(Text(line))
    lines.append(Text(throughput(stats, p, generated)))
    lines.append(Text(to_reach(stats, p, target, run.id)))
    summary = Text("\n").join(lines)
    return summary  # one figure a line (the CSS does not wrap it): a long error is cut at 80 columns


def eta(run: Run, p: dict) -> str:
    if p["remaining"] == 0:
        return "target reached"
    if run.status in ("running", "queued"):
        if p["seconds_low"] is None:
            return "ETA -"
        high = duration(p["seconds_high"]) if p["seconds_high"] is not None else "?"
        return f"ETA {duration(p['seconds_low'])}–{high}"
    return f"{run.status}: r resumes" if run.status in ("cancelled", "failed", "stale") else run.status


def throughput(stats: dict, p: dict, generated: int) -> str:
    """Per minute over the latest attempts (teacher_stats' window), records at the acceptance rate."""
    cost = "unknown" if stats["cost_usd"] is None else f"${stats['cost_usd']:,.2f}"
    spa = stats["seconds_per_attempt"]
    if not spa or generated <= 0:
        return f"per minute: - · cost so far {cost}"
    per_min = 60 / spa
    tokens = (stats["input_tokens"] + stats["output_tokens"]) / generated * per_min
    records = f"{per_min * p['rate']:,.1f} records, " if p["rate"] is not None else ""
    return f"per minute: {records}{per_min:,.1f} attempts, {tokens:,.0f} tokens · cost so far {cost}"


def to_reach(stats: dict, p: dict, target: int, run_id: int) -> str:
    if p["remaining"] == 0:
        surplus = f" · {stats['surplus']:,} surplus, not counted" if stats["surplus"] else ""
        return f"data set: artifacts/{run_id}/{teacher.EXPORT_NAME}{surplus}"
    if p["attempts_low"] is None:
        return f"to reach {target:,}: not known before the teacher's first answer"
    high = lambda v, fmt: fmt(v) if v is not None else "?"  # noqa: E731 - nothing accepted yet: no upper bound
    text = f"to reach {target:,}: {p['attempts_low']:,}–{high(p['attempts_high'], '{:,}'.format)} more attempts"
    if p["seconds_low"] is not None:
        text += f", {duration(p['seconds_low'])}–{high(p['seconds_high'], duration)}"
    text += f", ${p['usd_low']:,.2f}–{high(p['usd_high'], '${:,.2f}'.format)}" if p["usd_low"] is not None \
        else ", cost unknown"
    return text


def reason_list(stats: dict | None) -> Text:
    """Why answers were rejected, most frequent first, with each reason's share of the rejections."""
    if stats is None:
        return Text("")
    reasons = stats["reasons"]
    if not reasons:
        return Text("no rejections yet", style="dim")
    total = sum(n for _, n in reasons)
    text = Text(f"rejected for ({total:,})", style="bold")
    names = [why if len(why) <= 22 else why[:21] + "…" for why, _ in reasons[:5]]
    width = max(map(len, names))
    for name, (_, n) in zip(names, reasons):
        text.append(f"\n{name:<{width}} {n:>4,} {n / total:>4.0%}")
    if len(reasons) > 5:
        text.append(f"\n… {len(reasons) - 5} more", style="dim")
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def run_details(run: Run, artifacts: list[dict]) -> str:
    """The text of a run's details: state, timings, config, artifacts with sizes."""
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"  # noqa: E731
    lines = [
        f"run {run.id} · {run.stage} · {run.status} · attempt {run.attempt}" + (" · detached" if run.detached else ""),
        f"created {fmt(run.created_at)}  started {fmt(run.started_at)}  ended {fmt(run.ended_at)}"
        f"  took {render.ago(run.elapsed)}  heartbeat {render.ago(run.heartbeat_age)} ago  pid {run.pid or '-'}",
    ]
    if run.total:
        lines.append(f"progress {run.done}/{run.total}")
    if run.error:
        lines.append(f"error: {run.error}")
    config = {k: (v[:12] if k.endswith("sha256") else v) for k, v in run.config.items() if k != "provider_config"}
    lines.append("config: " + json.dumps(config, sort_keys=True))
    for item in artifacts:
        lines.append(f"artifact {item['path']}  {item['bytes']:,} bytes  {item['kind']}")
    if run.stage in BUILT and run.summary:
        lines.append("result: " + render.headline(run))
    return "\n".join(lines)
