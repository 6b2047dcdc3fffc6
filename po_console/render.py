"""Rendering with rich, no Textual: progress bars and tables for the `po` CLI, and the
MIPROv2 score chart, the teacher score histogram and the program review, which the CLI and
the console share."""

from __future__ import annotations

import json
import math
import time

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pipeline.stages import BUILT, PIPELINE, get
from state.read import Run


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def headline(run: Run | None) -> str:
    if run is None or run.stage not in BUILT:
        return ""
    return get(run.stage).headline(run.summary)


# What a stage's done / total counts, as the progress bar's label.
PROGRESS_LABEL = {"baseline": "evaluating", "mipro": "evaluations", "teacher": "accepted"}


def progress_label(stage: str | None) -> str:
    return PROGRESS_LABEL.get(stage or "", "working")


class RunProgress:
    """done / total, rate, ETA on stderr while a foreground run works."""

    def __init__(self, console: Console, enabled: bool = True, *, stage: str | None = None):
        self.enabled = enabled
        self.stage = stage  # the bar's label; may also be set before the first update
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}  ETA {task.fields[eta]}"), TimeElapsedColumn(),
            console=console, transient=False,
        )
        self.task = None
        self.started_at = time.monotonic()
        self.first_done = 0

    def __enter__(self):
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)

    def update(self, done: int, total: int | None, message: str | None = None) -> None:
        if not self.enabled:
            return
        if self.task is None:
            # Rate and ETA count only this process's work: units a resumed run already had are not "fast".
            self.first_done = done
            self.task = self.progress.add_task(progress_label(self.stage), total=total, completed=done,
                                               rate="-/min", eta="-")
            return
        elapsed = time.monotonic() - self.started_at
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        eta = ago((total - done) / rate) if rate and total else "-"
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate * 60:.1f}/min", eta=eta)


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def score(value: float | None) -> str:
    """A score on the one [0, 1] scale, or - when there is none."""
    return _fmt(value)


def summary_table(summary: dict) -> Table:
    table = Table(title="Baseline", show_header=True, header_style="bold", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    ci = summary.get("ci95")
    table.add_row("mean score (parsed answers)", _fmt(summary.get("mean")))
    table.add_row("95% CI", f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-")
    table.add_row("examples scored / evaluated", f"{summary['scored']} / {summary['examples']}")
    table.add_row("parse failures (not in mean)", str(summary["parse_failures"]))
    table.add_row("errors (not in mean)", str(summary["errors"]))
    for name, value in summary.get("parts", {}).items():
        table.add_row(f"  part: {name}", _fmt(value))
    table.add_row("latency p50 / p95", f"{_fmt(summary.get('latency_p50_s'), '.1f')} s / {_fmt(summary.get('latency_p95_s'), '.1f')} s")
    table.add_row("LM calls (cache hits)", f"{summary['lm_calls']} ({summary['cache_hits']})")
    table.add_row("tokens in / out", f"{summary['input_tokens']} / {summary['output_tokens']}")
    cost = summary.get("cost_usd")
    table.add_row("estimated cost", "unknown (no price for this model)" if cost is None else f"${cost:.4f}")
    if summary.get("retries"):
        table.add_row("provider retries", str(summary["retries"]))
    if summary.get("model"):
        table.add_row("model", summary["model"])
    return table


def mipro_table(summary: dict) -> Table:
    table = Table(title="MIPROv2", show_header=True, header_style="bold", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    best, default = summary.get("best_score"), summary.get("default_score")
    gain = f" ({best - default:+.3f})" if best is not None and default is not None else ""
    table.add_row("best full score", _fmt(best) + gain)
    table.add_row("program as written (default)", _fmt(default))
    table.add_row("evaluations", str(summary.get("evaluations", "-")))
    table.add_row("LM calls (cache hits)", f"{summary.get('lm_calls', '-')} ({summary.get('cache_hits', '-')})")
    if summary.get("parse_failures"):
        table.add_row("parse failures", str(summary["parse_failures"]))
    for name, count in (summary.get("demos") or {}).items():
        table.add_row(f"  demos: {name}", str(count))
    if summary.get("program"):
        table.add_row("program", summary["program"])
    return table


def print_run(console: Console, run: Run, artifacts: list[dict] | None = None) -> None:
    status = run.status
    line = f"run {run.id} · {run.stage} · {status}"
    if run.total:
        line += f" · {run.done}/{run.total}"
    if run.elapsed is not None:
        line += f" · {ago(run.elapsed)}"
    console.print(line, markup=False)
    if run.error:
        console.print(f"error: {run.error}", markup=False)
    if status == "stale":
        console.print(f"its process is gone: resume with `po resume {run.id}`", markup=False)
    if run.summary and run.stage == "baseline":
        console.print(summary_table(run.summary))
    elif run.summary and run.stage == "mipro":
        console.print(mipro_table(run.summary))
    # A teacher run: the run line and its data set are enough; `po status RUN` adds where it stands.
    for item in artifacts or []:
        console.print(f"  {item['path']}  ({item['bytes']} bytes, {item['kind']})", markup=False)


def runs_table(runs: list[Run]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("run", "stage", "status", "progress", "started", "took", "result"):
        table.add_column(name)
    for run in runs:
        started = time.strftime("%m-%d %H:%M", time.localtime(run.started_at)) if run.started_at else "-"
        progress = f"{run.done}/{run.total}" if run.total else "-"
        result = run.error or headline(run)
        table.add_row(str(run.id), run.stage, run.status, progress, started, ago(run.elapsed), Text(result or ""))
    return table


def overview_rows(latest: dict[str, Run], teacher: dict | None = None) -> list[dict]:
    """One row per stage. `teacher`: the running teacher run's stats; its ETA is then the
    projection's range (from the acceptance rate's interval), not a straight line."""
    rows = []
    for name, title in PIPELINE:
        run = latest.get(name)
        rate = eta = eta_high = None
        if run and run.status == "running" and run.elapsed and run.done and run.total:
            rate = run.done / run.elapsed
            eta = (run.total - run.done) / rate if rate else None
        if run and run.status == "running" and name == "teacher" and teacher is not None:
            from pipeline.teacher import projection

            p = projection(teacher, run.total or run.config.get("max_records", 0))
            eta, eta_high = p["seconds_low"], p["seconds_high"]
        rows.append({
            "stage": name,
            "title": title,
            "built": name in BUILT,
            "status": run.status if run else ("never run" if name in BUILT else "not built yet"),
            "run": run.id if run else None,
            "done": run.done if run else None,
            "total": run.total if run else None,
            "rate_per_min": rate * 60 if rate else None,
            "eta_s": eta,
            "eta_high_s": eta_high,  # set when the ETA is a range (the teacher stage)
            "heartbeat_age_s": run.heartbeat_age if run and run.state in ("queued", "running") else None,
            "result": (run.error or headline(run)) if run else "",
        })
    return rows


def eta_text(row: dict) -> str:
    if row.get("eta_high_s") is not None and row["eta_s"] is not None:
        return f"{ago(row['eta_s'])}–{ago(row['eta_high_s'])}"
    return ago(row["eta_s"])


def overview_table(latest: dict[str, Run], teacher: dict | None = None) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("stage", "status", "run", "progress", "rate", "ETA", "beat", "result"):
        table.add_column(name)
    for row in overview_rows(latest, teacher):
        progress = f"{row['done']}/{row['total']}" if row["total"] else "-"
        rate = f"{row['rate_per_min']:.1f}/min" if row["rate_per_min"] else "-"
        status = Text(row["status"], style="bold red" if row["status"] in ("stale", "failed") else "")
        table.add_row(row["title"], status, str(row["run"] or "-"), progress, rate, eta_text(row),
                      ago(row["heartbeat_age_s"]), Text(row["result"] or ""))
    return table


def print_doctor(console: Console, checks) -> None:
    """One line per check; a failed or doubtful one gets its fix on the next line."""
    styles = {"ok": ("ok  ", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red")}
    for c in checks:
        mark, style = styles[c.status]
        line = Text.assemble((mark, style), f"  {c.subject} · {c.check}: {c.detail}")
        console.print(line, soft_wrap=True)
        if c.fix and c.status != "ok":
            console.print(f"      fix: {c.fix}", soft_wrap=True, markup=False)
    failed = sum(c.status == "fail" for c in checks)
    console.print(f"{failed} check(s) failed" if failed else "all checks passed", markup=False)


def print_program(console: Console, data: dict) -> None:
    console.print(program_view(data))


def program_view(data: dict, *, demos_shown: int | None = 3, demo_chars: int | None = 60) -> RenderableType:
    """A program's instructions, fields and demos (data as `po program show --json` prints it).

    The CLI lists the first few demos on one line each; the console's review passes None for
    both limits and gets every demo with each field in full.
    """
    parts: list[RenderableType] = [Text(f"program {data['program']} · fingerprint {data['fingerprint'][:12]}")]
    for name, predictor in data["predictors"].items():
        parts += [Text(""), Text(f"predictor {name}\ninstructions:")]
        parts.append(Text(predictor["instructions"]))
        table = Table(show_header=True, header_style="bold", box=None)
        for column in ("field", "role", "prefix", "description"):
            table.add_column(column)
        for f in predictor["fields"]:
            table.add_row(f["name"], f["role"], f["prefix"] or "", Text(f["description"] or ""))
        parts.append(table)
        parts.append(Text(f"demos: {len(predictor['demos'])}"))
        parts += _demo_lines(predictor["demos"], demos_shown, demo_chars)
    if data.get("metadata"):
        parts.append(Text("metadata: " + json.dumps(data["metadata"], sort_keys=True)))
    return Group(*parts)


def _demo_lines(demos: list[dict], shown: int | None, chars: int | None) -> list[Text]:
    if chars is not None:
        return [Text(f"  {i}. " + " | ".join(f"{k}: {str(v)[:chars]!r}" for k, v in demo.items()))
                for i, demo in enumerate(demos[:shown], 1)]
    lines = []
    for i, demo in enumerate(demos[:shown], 1):
        lines.append(Text(f"demo {i}", style="bold"))
        for key, value in demo.items():
            lines.append(Text.assemble((f"  {key}: ", "bold"), str(value).replace("\n", "\n    ")))
    return lines


SAME_PROGRAMS = "the two programs render the same prompts"


def program_diff(lines: list[str]) -> Text:
    """`pipeline.programs.diff_programs` lines, with the unified diff's removals red and additions green."""
    if not lines:
        return Text(SAME_PROGRAMS)
    text = Text()
    for line in lines:
        style = ""
        if line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("predictor "):
            style = "bold"
        text.append(line + "\n", style=style)
    text.rstrip()
    return text


# -- MIPROv2 ---------------------------------------------------------------------------------

def trial_flag(trial: dict) -> str:
    """Why a score is low for reasons other than the prompt: broken parsing or errors."""
    flags = []
    if trial.get("parse_failures"):
        flags.append(f"{trial['parse_failures']} parse fail")
    if trial.get("errors"):
        flags.append(f"{trial['errors']} error" + ("s" if trial["errors"] > 1 else ""))
    return ", ".join(flags)


CHART_MARKS = {"full": ("●", "bold green"), "minibatch": ("·", "cyan"), "failed": ("×", "bold red")}
CHART_BEST = ("─", "yellow")
# When evaluations share a column (more of them than the chart is wide), the stronger mark wins.
_MARK_RANK = {"minibatch": 1, "failed": 2, "full": 3}
_LABEL_W = 5  # "0.60│"


def score_chart(trials: list[dict], width: int, height: int) -> Text:
    """Scores over evaluations as plain text: ● full, · minibatch, × failed, ─ best full so far.

    Text, not a plotting library: it draws the same over a slow SSH link, at 80×24, and in
    a log. The first line is the legend; the rows below span the scores seen, not 0..1, so
    small gains stay visible.
    """
    legend = Text.assemble("score  ", *_legend())
    if not trials:
        return Text.assemble(legend, "\n(no evaluations yet)")
    rows = max(2, height - 1)
    plot_w = max(1, width - _LABEL_W)
    n = len(trials)
    step = max(1, min(4, plot_w // n)) if n <= plot_w else 0
    column = (lambda i: i * step) if step else (lambda i: i * plot_w // n)
    values = [v for t in trials for v in (t["score"], t["best_full"]) if v is not None]
    low, high = _score_range(values)
    row_of = lambda v: round((high - v) / (high - low) * (rows - 1))  # noqa: E731
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(rows)]
    _draw_best(grid, trials, column, row_of, plot_w)
    rank = [0] * plot_w
    for i, t in enumerate(trials):
        kind = "failed" if t["score"] is None else t["kind"]
        c = column(i)
        if c < plot_w and _MARK_RANK[kind] >= rank[c]:
            rank[c] = _MARK_RANK[kind]
            grid[rows - 1 if t["score"] is None else row_of(t["score"])][c] = CHART_MARKS[kind]
    labels = {0: high, rows - 1: low, **({(rows - 1) // 2: (high + low) / 2} if rows >= 5 else {})}
    out = Text.assemble(legend, f"  evaluations 1–{n}")
    for r, cells in enumerate(grid):
        label = f"{labels[r]:.2f}" if r in labels else ""
        out.append(f"\n{label:>4}│", style="dim")
        for char, style in cells:
            out.append(char, style=style)
    out.no_wrap = True
    out.overflow = "crop"
    return out


def _legend() -> list[tuple[str, str]]:
    parts = []
    for kind, label in (("full", "full"), ("minibatch", "minibatch"), ("failed", "failed")):
        parts += [CHART_MARKS[kind], (f" {label}  ", "")]
    return [*parts, CHART_BEST, (" best full so far", "")]


def _score_range(values: list[float]) -> tuple[float, float]:
    """The scores seen, widened to 0.05 steps and to at least 0.1, inside [0, 1]."""
    if not values:
        return 0.0, 1.0
    low, high = math.floor(min(values) * 20) / 20, math.ceil(max(values) * 20) / 20
    if high - low < 0.1:
        high = min(1.0, low + 0.1)
        low = high - 0.1
    return max(0.0, low), min(1.0, high)


def _draw_best(grid, trials: list[dict], column, row_of, plot_w: int) -> None:
    """The best full score so far: flat from each evaluation's column to the next one's."""
    for i, t in enumerate(trials):
        if t["best_full"] is None:
            continue
        start = column(i)
        end = column(i + 1) if i + 1 < len(trials) else start + 1
        for c in range(start, min(max(end, start + 1), plot_w)):
            grid[row_of(t["best_full"])][c] = CHART_BEST


# -- teacher data set ------------------------------------------------------------------------

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
