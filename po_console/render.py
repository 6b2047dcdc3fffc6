"""Plain-terminal rendering for the `po` CLI: progress bars and tables (rich)."""

from __future__ import annotations

import json
import time

from rich.console import Console
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


class RunProgress:
    """done / total, rate, ETA on stderr while a foreground run works."""

    def __init__(self, console: Console, enabled: bool = True):
        self.enabled = enabled
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
            self.task = self.progress.add_task("evaluating", total=total, completed=done, rate="-/min", eta="-")
            return
        elapsed = time.monotonic() - self.started_at
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        eta = ago((total - done) / rate) if rate and total else "-"
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate * 60:.1f}/min", eta=eta)


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


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


def overview_rows(latest: dict[str, Run]) -> list[dict]:
    rows = []
    for name, title in PIPELINE:
        run = latest.get(name)
        rate = eta = None
        if run and run.status == "running" and run.elapsed and run.done and run.total:
            rate = run.done / run.elapsed
            eta = (run.total - run.done) / rate if rate else None
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
            "heartbeat_age_s": run.heartbeat_age if run and run.state in ("queued", "running") else None,
            "result": (run.error or headline(run)) if run else "",
        })
    return rows


def overview_table(latest: dict[str, Run]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("stage", "status", "run", "progress", "rate", "ETA", "beat", "result"):
        table.add_column(name)
    for row in overview_rows(latest):
        progress = f"{row['done']}/{row['total']}" if row["total"] else "-"
        rate = f"{row['rate_per_min']:.1f}/min" if row["rate_per_min"] else "-"
        status = Text(row["status"], style="bold red" if row["status"] in ("stale", "failed") else "")
        table.add_row(row["title"], status, str(row["run"] or "-"), progress, rate, ago(row["eta_s"]),
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
    console.print(f"program {data['program']} · fingerprint {data['fingerprint'][:12]}", markup=False)
    for name, predictor in data["predictors"].items():
        console.print(f"\npredictor {name}\ninstructions:", markup=False)
        console.print(predictor["instructions"], markup=False)
        table = Table(show_header=True, header_style="bold", box=None)
        for column in ("field", "role", "prefix", "description"):
            table.add_column(column)
        for f in predictor["fields"]:
            table.add_row(f["name"], f["role"], f["prefix"] or "", Text(f["description"] or ""))
        console.print(table)
        console.print(f"demos: {len(predictor['demos'])}", markup=False)
        for i, demo in enumerate(predictor["demos"][:3], 1):
            console.print(f"  {i}. " + " | ".join(f"{k}: {str(v)[:60]!r}" for k, v in demo.items()), markup=False)
    if data.get("metadata"):
        console.print("metadata: " + json.dumps(data["metadata"], sort_keys=True), markup=False)
