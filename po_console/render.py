"""Rendering with rich, no Textual: progress bars and tables for the `po` CLI, and the
program review, which the CLI and the console share. A stage's own figures come from the
stage (`summary_rows`, `plan_lines`, `details`); a pane's own formatters live in its module."""

from __future__ import annotations

import json
import time

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pipeline import stages
from pipeline.overview import StageRow, headline
from pipeline.units import duration
from state.read import Artifact, Run


class RunProgress:
    """done / total, rate, ETA on stderr while a foreground run works."""

    def __init__(self, console: Console, enabled: bool = True, *, stage: str | None = None):
        self.enabled = enabled
        self.stage = stage  # its progress label names the bar
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
            label = stages.get(self.stage).progress_label if self.stage in stages.names() else "working"
            self.task = self.progress.add_task(label, total=total, completed=done,
                                               rate="-/min", eta="-")
            return
        elapsed = time.monotonic() - self.started_at
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        eta = duration((total - done) / rate, compact=True) if rate and total else "-"
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate * 60:.1f}/min", eta=eta)


def print_run(console: Console, run: Run, artifacts: list[Artifact] | None = None,
              details: list[str] | None = None) -> None:
    """The run line, its error, its stage's summary table, where it stands, its artifacts."""
    status = run.status
    line = f"run {run.id} · {run.stage} · {status}"
    if run.total:
        line += f" · {run.done}/{run.total}"
    if run.elapsed is not None:
        line += f" · {duration(run.elapsed, compact=True)}"
    console.print(line, markup=False)
    if run.error:
        console.print(f"error: {run.error}", markup=False)
    if status == "stale":
        console.print(f"its process is gone: resume with `po resume {run.id}`", markup=False)
    stage = stages.get(run.stage) if run.stage in stages.names() else None
    rows = stage.summary_rows(run.summary) if stage and run.summary else []
    if rows:
        table = Table(title=stage.short_title, show_header=True, header_style="bold", title_justify="left")
        table.add_column("figure")
        # Figures line up on the right; sentences (a gate's reasons) read from the left.
        table.add_column("value", justify="right" if all(len(v) <= 60 for _, v in rows) else "left")
        for figure, value in rows:
            table.add_row(figure, value)
        console.print(table)
    for item in artifacts or []:
        console.print(f"  {item.path}  ({item.bytes} bytes, {item.kind})", markup=False)
    for text in details or []:
        console.print("  " + text, highlight=False, markup=False)


def runs_table(runs: list[Run]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("run", "stage", "status", "progress", "started", "took", "result"):
        table.add_column(name)
    for run in runs:
        started = time.strftime("%m-%d %H:%M", time.localtime(run.started_at)) if run.started_at else "-"
        progress = f"{run.done}/{run.total}" if run.total else "-"
        result = run.error or headline(run)
        table.add_row(str(run.id), run.stage, run.status, progress, started, duration(run.elapsed, compact=True),
                      Text(result or ""))
    return table


def overview_table(rows: list[StageRow]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("stage", "status", "run", "progress", "rate", "ETA", "beat", "result"):
        table.add_column(name)
    for row in rows:
        progress = f"{row.done}/{row.total}" if row.total else "-"
        rate = f"{row.rate_per_min:.1f}/min" if row.rate_per_min else "-"
        status = Text(row.status, style="bold red" if row.status in ("stale", "failed") else "")
        table.add_row(row.title, status, str(row.run or "-"), progress, rate, row.eta_text(),
                      duration(row.heartbeat_age_s, compact=True), Text(row.result or ""))
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
