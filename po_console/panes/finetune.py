"""Fine-tune: a LoRA run as it trains — step / total with ETA and tokens/s, the loss curve
(train loss line, eval loss points) with the learning rate beneath it, resource gauges (CPU
and memory; each GPU's memory, utilisation, power and temperature), the checkpoints with
their step and loss, and the tail of the log. Readable at 80x24."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from pipeline.stages.finetune import store
from pipeline.units import duration
from po_console import logfile
from po_console.panes.base import Pane, View, latest_run_id
from state import read
from state.read import Run

EMPTY = "Fine-tune · no run yet: press l to launch one (it trains on the newest teacher run's records)"
LOG_LINES = 3


@dataclass
class FinetuneView:
    run: Run | None = None
    train: list[store.Point] = field(default_factory=list)
    evals: list[store.Point] = field(default_factory=list)
    checkpoints: list[store.Checkpoint] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


class FinetunePane(Pane):
    name = "finetune"
    title = "Fine-tune"
    key_label = "LoRA"
    description = "Fine-tune: loss and learning-rate curves, progress, resources, checkpoints, log"
    stage = "finetune"

    DEFAULT_CSS = """
    #finetune-summary { height: auto; max-height: 3; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #finetune-chart { height: 1fr; min-height: 7; padding: 0 1; }
    #finetune-bottom { height: 5; }
    #finetune-checkpoints { width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #finetune-resources { width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #finetune-log { height: 3; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: Run | None = None

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="finetune-summary")
        yield LossChart(id="finetune-chart")
        with Horizontal(id="finetune-bottom"):
            yield Static("", id="finetune-checkpoints")
            yield Static("", id="finetune-resources")
        yield Static("", id="finetune-log", markup=False)

    @classmethod
    def read(cls, db, view: View, memo: dict) -> FinetuneView:
        run_id = latest_run_id(db, view, cls.stage)
        if run_id is None:
            return FinetuneView()
        run = read.get_run(db, run_id)
        log_path = memo["workspace"].artifacts_dir / str(run_id) / "run.log"
        end = logfile.complete_end(log_path) if log_path.exists() else 0
        log = logfile.lines_before(log_path, end, LOG_LINES)[0] if end else []
        return FinetuneView(run, store.points(db, run_id, "train"), store.points(db, run_id, "eval"),
                            store.checkpoints(db, run_id), log)

    def show(self, payload: FinetuneView) -> None:
        self.run = payload.run
        self.query_one("#finetune-summary", Static).update(summary(payload))
        self.query_one(LossChart).show(payload.train, payload.evals)
        self.query_one("#finetune-checkpoints", Static).update(checkpoint_list(payload.checkpoints))
        last = payload.train[-1].resources if payload.train else {}
        self.query_one("#finetune-resources", Static).update(gauges(last))
        self.query_one("#finetune-log", Static).update("\n".join(payload.log))

    def selected_run_id(self) -> int | None:
        return self.run.id if self.run else None

    def open_selected(self) -> None:
        if self.run is not None:
            self.app.open_run(self.run.id)


def summary(view: FinetuneView) -> Text:
    run = view.run
    if run is None:
        return Text(EMPTY, style="bold")
    total = run.config.get("total_steps") or run.total or 0
    head = Text(f"Fine-tune run {run.id} · {run.status} · {run.config.get('base_model', '?')} · "
                f"{run.config.get('placement', '')} · enter: log", style="bold")
    lines = [head]
    if run.error:
        lines.append(Text(run.error, style="red"))
    if view.train:
        last = view.train[-1]
        bar = "█" * round(20 * last.step / total) + "░" * (20 - round(20 * last.step / total)) if total else ""
        eta = f"ETA {duration(last.eta_s)}" if last.eta_s and run.status in ("running", "queued") else run.status
        speed = f" · {last.tokens_per_s:,.0f} tokens/s" if last.tokens_per_s else ""
        lines.append(Text.assemble(f"step {last.step}/{total} ", (bar, "green"), f" · {eta}{speed} · "
                                   f"loss {last.loss:.4f} · lr {last.learning_rate:.2e}"))
    else:
        lines.append(Text(f"{run.config.get('train_examples', '?')} train examples, {total} steps planned · "
                          "loading the model…" if run.status == "running" else run.status))
    return Text("\n").join(lines)


def checkpoint_list(kept: list[store.Checkpoint]) -> Text:
    text = Text("checkpoints", style="bold")
    if not kept:
        return text.append("\n(none yet)", style="dim")
    for c in kept[-4:]:
        loss = f"loss {c.loss:.4f}" if c.loss is not None else ""
        text.append(f"\nstep {c.step:>6,}  {loss}  {c.bytes / 1e6:,.1f} MB")
    return text


def gauges(resources: dict) -> Text:
    """CPU and memory of the training process, then each GPU: memory bar, use, power, heat."""
    text = Text("resources", style="bold")
    if not resources:
        return text.append("\n(no sample yet)", style="dim")
    text.append(f"\nCPU {resources.get('cpu_percent', 0):.0f}% · RSS {resources.get('rss_mb', 0):,.0f} MB")
    for gpu in resources.get("gpus", []):
        used, total = gpu.get("memory_used_mb"), gpu.get("memory_total_mb")
        bar = ""
        if used is not None and total:
            filled = round(10 * used / total)
            bar = "█" * filled + "░" * (10 - filled) + f" {used / 1e3:.1f}/{total / 1e3:.0f} GB"
        extra = " ".join(f for f in (f"{gpu['utilization']}%" if "utilization" in gpu else "",
                                     f"{gpu['power_w']:.0f}W" if "power_w" in gpu else "",
                                     f"{gpu['temperature_c']}°C" if "temperature_c" in gpu else "") if f)
        text.append(f"\nGPU{gpu['index']} {bar} {extra}".rstrip())
    return text


class LossChart(Widget):
    """Train loss (a line of dots), eval loss (●) over steps, and the learning rate beneath."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train: list[store.Point] = []
        self.evals: list[store.Point] = []

    def show(self, train: list[store.Point], evals: list[store.Point]) -> None:
        if (train, evals) != (self.train, self.evals):
            self.train, self.evals = train, evals
            self.refresh()

    def render(self) -> Text:
        return loss_chart(self.train, self.evals, self.size.width, self.size.height)


def loss_chart(train: list[store.Point], evals: list[store.Point], width: int, height: int) -> Text:
    """Text, not a plotting library: it draws the same over a slow SSH link and at 80x24."""
    legend = Text.assemble("loss  ", ("·", "cyan"), " train  ", ("●", "bold yellow"), " eval   ",
                           ("▁▂▃", "magenta"), " learning rate")
    if not train:
        return Text.assemble(legend, "\n(no step yet)")
    label_w = 7
    rows, plot_w = max(2, height - 2), max(4, width - label_w)
    last_step = max(p.step for p in train + evals)
    column = lambda step: min(plot_w - 1, (step - 1) * plot_w // max(1, last_step))  # noqa: E731
    values = [p.loss for p in train + evals if p.loss is not None and math.isfinite(p.loss)]
    if not values:
        return Text.assemble(legend, f"\n(no finite loss in {len(train)} steps: the run diverged; see its log)")
    low, high = min(values), max(values)
    if high - low < 1e-6:
        high = low + 1e-6
    row_of = lambda v: round((high - v) / (high - low) * (rows - 1))  # noqa: E731
    grid = [[(" ", "")] * plot_w for _ in range(rows)]
    for p in train:
        if p.loss is not None and math.isfinite(p.loss):
            grid[row_of(p.loss)][column(p.step)] = ("·", "cyan")
    for p in evals:
        if p.loss is not None and math.isfinite(p.loss):
            grid[row_of(p.loss)][column(p.step)] = ("●", "bold yellow")
    out = Text.assemble(legend, f"  steps 1–{last_step}")
    labels = {0: high, rows - 1: low}
    for r, cells in enumerate(grid):
        out.append(f"\n{labels[r]:>6.3f}" if r in labels else "\n      ", style="dim")
        out.append("│", style="dim")
        for char, style in cells:
            out.append(char, style=style)
    out.append("\n    lr│", style="dim")
    out.append(_sparkline(train, plot_w, column), style="magenta")
    out.no_wrap = True
    out.overflow = "crop"
    return out


def _sparkline(train: list[store.Point], width: int, column) -> str:
    levels = " ▁▂▃▄▅▆▇█"
    rates = [p.learning_rate for p in train if p.learning_rate is not None]
    top = max(rates, default=0) or 1
    cells = [" "] * width
    for p in train:
        if p.learning_rate is not None:
            cells[column(p.step)] = levels[max(1, round(p.learning_rate / top * 8))]
    return "".join(cells)
