"""Teacher data set: a run as it fills its data set — accepted / target and what reaching
it will take (a range, from the acceptance rate's interval), the score histogram against
min_score, why answers were rejected, the newest attempts; enter shows one record."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Static

from pipeline.stages.base import Stage
from pipeline.stages.teacher.records import EXPORT_NAME, projection
from pipeline.units import duration, figure
from po_console.panes.base import Pane, View, latest_run_id, row_table, selected_key, sync_ordered
from po_console.screens import ExampleScreen
from state import read
from state.read import Run, TeacherRecord, TeacherStats

EMPTY = "Teacher · no run yet: press l to launch one"
RECENT_RECORDS = 100  # the table lists the newest attempts (a run makes thousands)
# The reason column stops here, so that the table fits 80 columns; enter shows it whole.
REASON_CHARS = 34
RECORD_STYLE = {"accepted": "green", "rejected": "red", "surplus": "yellow", "error": "bold red"}


@dataclass
class TeacherRunView:
    run: Run | None = None
    stats: TeacherStats | None = None
    records: tuple[TeacherRecord, ...] = ()  # the newest attempts, newest first


class TeacherPane(Pane):
    name = "teacher"
    title = "Teacher"
    key_label = "Teach"
    description = "Teacher data set: accepted / target, score histogram, rejection reasons, recent records"
    stage = "teacher"
    order = 30

    DEFAULT_CSS = """
    /* At 80x24: five summary lines, a 7-line histogram beside the rejection reasons, the
       newest attempts below (9 at 80x24). */
    #teacher-summary { height: auto; max-height: 6; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #teacher-middle { height: 7; }
    #teacher-histogram { width: 48; padding: 0 1; }
    #teacher-reasons { width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: Run | None = None
        self.records: dict[str, TeacherRecord] = {}

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="teacher-summary")
        with Horizontal(id="teacher-middle"):
            yield ScoreHistogram(id="teacher-histogram")
            yield Static("", id="teacher-reasons")
        yield row_table("teacher-table", [("seq", "seq"), ("example", "example"), ("att", "attempt"),
                                          ("status", "status"), ("score", "score"), ("reason", "reason")])

    @classmethod
    def read(cls, db, view: View, memo: dict) -> TeacherRunView:
        run_id = latest_run_id(db, view, cls.stage)
        if run_id is None:
            return TeacherRunView()
        return TeacherRunView(read.get_run(db, run_id), read.teacher_stats(db, run_id),
                              tuple(read.teacher_records(db, run_id, recent=RECENT_RECORDS)))

    def show(self, payload: TeacherRunView) -> None:
        self.run, stats = payload.run, payload.stats
        self.query_one("#teacher-summary", Static).update(teacher_summary(self.run, stats))
        min_score = self.run.config.get("min_score") if self.run else None
        self.query_one(ScoreHistogram).show(stats.scores if stats else [], min_score)
        self.query_one("#teacher-reasons", Static).update(reason_list(stats))
        self.records = {record_key(r): r for r in payload.records}
        table = self.query_one(DataTable)
        following = table.cursor_row <= 0  # on the newest attempt: stay on the newest as more come
        sync_ordered(table, {key: record_cells(r) for key, r in self.records.items()})
        if following and table.row_count:
            table.move_cursor(row=0)

    def selected_record(self) -> TeacherRecord | None:
        key = selected_key(self.query_one(DataTable))
        return self.records.get(key) if key else None

    def selected_run_id(self) -> int | None:
        return self.run.id if self.run else None

    def open_selected(self) -> None:
        record = self.selected_record()
        if record:
            self.app.push_screen(TeacherRecordScreen(record, self.run.config.get("min_score") if self.run else None,
                                                     Stage.fields_of(self.run) if self.run else None))


class TeacherRecordScreen(ExampleScreen):
    """One teacher attempt: its decision and why, score parts, tokens, latency and model,
    then its inputs and the teacher's answer side by side (escape: back, as for an example)."""

    DEFAULT_CSS = "TeacherRecordScreen #example-head { max-height: 6; }"

    def __init__(self, record: TeacherRecord, min_score: float | None, fields: dict | None = None) -> None:
        super().__init__(record_head(record, min_score), record.inputs, record.outputs, fields, record.feedback)
        self.record = record


def record_head(r: TeacherRecord, min_score: float | None) -> str:
    attempt = "imported" if r.attempt == 0 else f"attempt {r.attempt}"
    seq = f" #{r.seq}" if r.seq is not None else ""
    threshold = f" (min {min_score})" if min_score is not None else ""
    lines = [f"{r.example_id} · {attempt} · {r.status}{seq} · score {figure(r.score)}{threshold}"]
    if r.reason:
        lines.append(f"reason: {r.reason}")
    if r.parts:  # in the metric's order
        lines.append("parts: " + "  ".join(f"{k} {v:.2f}" for k, v in r.parts.items()))
    cost = "cost unknown" if r.cost_usd is None else f"${r.cost_usd:.4f}"
    lines.append(f"latency {r.latency_s or 0:.1f}s · tokens {r.input_tokens:,} in / "
                 f"{r.output_tokens:,} out · {cost} · {r.model or 'model unknown'}")
    if r.judge_calls:  # the metric's own LM calls
        judge_cost = "" if r.judge_cost_usd is None else f" · ${r.judge_cost_usd:.4f}"
        lines[0] += f" · judge {r.judge_calls} calls, {r.judge_input_tokens:,}/{r.judge_output_tokens:,} tokens" \
            + judge_cost
    return "\n".join(lines)


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
        return score_histogram(self.scores, self.min_score, self.size.width, self.size.height)


def record_key(r: TeacherRecord) -> str:
    return f"{r.input_key}/{r.attempt}"


def record_cells(r: TeacherRecord) -> tuple:
    reason = r.reason or ""
    attempt = "imp" if r.attempt == 0 else str(r.attempt)  # imported from an old data set
    return ("-" if r.seq is None else str(r.seq), r.example_id, attempt,
            Text(r.status, style=RECORD_STYLE.get(r.status, "")), figure(r.score),
            reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 1] + "…")


def teacher_summary(run: Run | None, stats: TeacherStats | None) -> Text:
    """Accepted / target with a bar and ETA, the acceptance rate with its 95% interval,
    throughput, cost so far, and what reaching the target will take (a range, from
    the teacher stage's projection: never one guess)."""
    if run is None or stats is None:
        return Text(EMPTY, style="bold")
    target, min_score = run.config.get("max_records") or 0, run.config.get("min_score")
    p = projection(stats, target)
    head = f"Teacher run {run.id} · {run.status} · min score {min_score}"
    if (run.config.get("attempts_per_input") or 1) > 1:
        head += f" · best of {run.config['attempts_per_input']}"
    head += f" · {run.config.get('provider', '?')} · enter: record"
    lines = [Text(head, style="bold")]
    if run.error:
        lines.append(Text(run.error, style="red"))  # it says what it is: "pool exhausted: …"
    share = f"{stats.accepted / target:.0%}" if target else "-"
    bar = progress_bar(stats.accepted, target)
    lines.append(Text.assemble(f"accepted {stats.accepted:,}/{target:,} ", (bar, "green"), f" {share} · ",
                               eta(run, p)))
    generated = stats.attempts - stats.imported - stats.errors
    line = f"attempts {stats.attempts:,} on {stats.inputs:,} inputs"
    if stats.imported:
        line += f" ({stats.imported:,} imported)"
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


def throughput(stats: TeacherStats, p: dict, generated: int) -> str:
    """Per minute over the latest attempts (teacher_stats' window), records at the acceptance rate."""
    cost = "unknown" if stats.cost_usd is None else f"${stats.cost_usd:,.2f}"
    spa = stats.seconds_per_attempt
    if not spa or generated <= 0:
        return f"per minute: - · cost so far {cost}"
    per_min = 60 / spa
    tokens = (stats.input_tokens + stats.output_tokens) / generated * per_min
    records = f"{per_min * p['rate']:,.1f} records, " if p["rate"] is not None else ""
    return f"per minute: {records}{per_min:,.1f} attempts, {tokens:,.0f} tokens · cost so far {cost}"


def to_reach(stats: TeacherStats, p: dict, target: int, run_id: int) -> str:
    if p["remaining"] == 0:
        surplus = f" · {stats.surplus:,} surplus, not counted" if stats.surplus else ""
        return f"data set: artifacts/{run_id}/{EXPORT_NAME}{surplus}"
    if p["attempts_low"] is None:
        return f"to reach {target:,}: not known before the teacher's first answer"
    high = lambda v, fmt: fmt(v) if v is not None else "?"  # noqa: E731 - nothing accepted yet: no upper bound
    text = f"to reach {target:,}: {p['attempts_low']:,}–{high(p['attempts_high'], '{:,}'.format)} more attempts"
    if p["seconds_low"] is not None:
        text += f", {duration(p['seconds_low'])}–{high(p['seconds_high'], duration)}"
    text += f", ${p['usd_low']:,.2f}–{high(p['usd_high'], '${:,.2f}'.format)}" if p["usd_low"] is not None \
        else ", cost unknown"
    return text


def reason_list(stats: TeacherStats | None) -> Text:
    """Why answers were rejected, most frequent first, with each reason's share of the rejections."""
    if stats is None:
        return Text("")
    reasons = stats.reasons
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


# -- the histogram ------------------------------------------------------------------------

HIST_STYLE = {"kept": "green", "mixed": "yellow", "under": "red"}
_EIGHTHS = " ▁▂▃▄▅▆▇█"


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """`█████░░░░░`: plain blocks, the same over a slow link and in a log."""
    filled = min(width, round(width * done / total)) if total else 0
    return "█" * filled + "░" * (width - filled)


def score_histogram(scores: list[float], min_score: float, width: int, height: int) -> Text:
    """Scores of generated attempts over [0, 1], in bins of 0.05 (0.1 when narrow), with
    min_score drawn as a │ column: bars right of it were kept, left of it rejected (a bin
    the threshold cuts is yellow). The first line is the title, the last the score axis."""
    counted = f"{len(scores)} attempt{'' if len(scores) == 1 else 's'}"
    title = Text.assemble(f"scores of {counted} · ", ("│", "bold"), f" min score {min_score}")
    if not scores:
        return Text.assemble(title, "\n(no scored attempts yet)")
    rows = max(1, height - 2)
    bins = 20 if width >= 46 else 10
    counts = [0] * bins
    for value in scores:
        counts[min(bins - 1, math.floor(round(value * bins, 6)))] += 1
    peak = max(counts)
    label_w = len(str(peak)) + 1
    bin_w = max(1, min(4, (width - label_w - 1) // bins))
    edge = round(min_score * bins, 6)
    cut = math.ceil(edge)  # the first bin wholly at or above the threshold
    style = [HIST_STYLE["kept" if i >= cut else "mixed" if i == cut - 1 and cut != edge else "under"]
             for i in range(bins)]
    column = lambda edge: label_w + edge * bin_w + (1 if edge >= cut else 0)  # noqa: E731 - left edge of bin `edge`
    out = title
    for r in range(rows):
        level = (rows - 1 - r) * 8
        out.append(f"\n{str(peak) if r == 0 else '':>{label_w - 1}} ", style="dim")
        for i, count in enumerate(counts):
            if i == cut:
                out.append("│", style="bold")
            eighths = max(1, round(count / peak * rows * 8)) if count else 0
            char = _EIGHTHS[max(0, min(8, eighths - level))]
            out.append(char * max(1, bin_w - 1) + (" " if bin_w > 1 else ""), style=style[i])
        if cut >= bins:
            out.append("│", style="bold")
    axis = [" "] * (column(bins) + 1)
    if cut <= bins:
        axis[column(cut) - 1] = "┴"
    for value, label in ((0, "0"), (0.25, ".25"), (0.5, ".5"), (0.75, ".75"), (1, "1")):
        at = column(round(value * bins))
        at = min(at, len(axis) - len(label))
        if all(c == " " for c in axis[max(0, at - 1): at + len(label) + 1]):
            axis[at: at + len(label)] = label
    out.append("\n" + "".join(axis).rstrip(), style="dim")
    out.no_wrap = True
    out.overflow = "crop"
    return out
