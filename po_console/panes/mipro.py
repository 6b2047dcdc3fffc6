"""MIPROv2: a run as it happens — every evaluation (trial, kind, score with parse failures
and errors beside it, best so far, candidates chosen), the score chart, the instruction
candidates with ★ on the best; enter (or p) reviews the saved program against the program
as written, before anyone trusts it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static

from pipeline.units import duration, figure
from po_console import render
from po_console.panes.base import Pane, View, latest_run_id, row_table, sync_ordered
from state import read
from state.read import Run, Trial

EMPTY = "MIPROv2 · no run yet: press l to launch one"


@dataclass
class MiproRunView:
    run: Run | None = None
    trials: list[Trial] = field(default_factory=list)  # one row per evaluation, in order
    instructions: list[str] = field(default_factory=list)  # instruction candidates by index
    demo_sets: list[str] = field(default_factory=list)  # demo sets (JSON lists) by index


class MiproPane(Pane):
    name = "mipro"
    title = "MIPROv2"
    key_label = "MIPRO"
    description = "MIPROv2 trials, score chart and candidates"
    stage = "mipro"
    order = 20

    BINDINGS = [Binding("p", "review_program", "Program", show=False, id="review-program",
                        tooltip="MIPROv2: the saved program, diff from the baseline")]
    DEFAULT_CSS = """
    /* At 80x24: two summary lines, 8 trials, a 6-line chart, 4 candidates; taller
       terminals share the extra lines between the trials and the chart. */
    #mipro-table { height: 2fr; }
    #mipro-chart { height: 1fr; min-height: 6; padding: 0 1; }
    #mipro-candidates-box { height: auto; max-height: 5; padding: 0 1; }
    #mipro-candidates { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: Run | None = None
        self.best_shown: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="mipro-summary", classes="pane-title")
        yield row_table("mipro-table", [("#", "evaluation"), ("trial", "trial"), ("kind", "kind"), ("score", "score"),
                                        ("note", "note"), ("best", "best"), ("instr", "instruction"),
                                        ("demos", "demos"), ("took", "took"), ("LM calls", "lm_calls")])
        yield ScoreChart(id="mipro-chart")
        with VerticalScroll(id="mipro-candidates-box"):
            yield Static("", id="mipro-candidates")

    @classmethod
    def read(cls, db, view: View, memo: dict) -> MiproRunView:
        run_id = latest_run_id(db, view, cls.stage)
        if run_id is None:
            return MiproRunView()
        # A few rows per trial, and a run has tens to hundreds: read them whole.
        return MiproRunView(read.get_run(db, run_id), read.trials(db, run_id),
                            read.candidates(db, run_id, "instruction"), read.candidates(db, run_id, "demos"))

    def show(self, payload: MiproRunView) -> None:
        self.run = run = payload.run
        trials = payload.trials
        self.query_one("#mipro-summary", Static).update(mipro_summary(run, trials))
        table = self.query_one(DataTable)
        # While the run works, follow its newest evaluation (as `tail -f` does) unless the
        # user moved up to read an older one.
        live = run is not None and run.state in ("queued", "running")
        following = live and (table.row_count == 0 or table.cursor_row >= table.row_count - 1)
        sync_ordered(table, {str(t.evaluation): trial_cells(t) for t in trials})
        if following and table.row_count:
            table.move_cursor(row=table.row_count - 1)
        self.query_one(ScoreChart).show(trials)
        self.query_one("#mipro-candidates", Static).update(candidate_list(trials, payload.instructions,
                                                                          payload.demo_sets))
        best = best_trial(trials)
        if best is not None and best.instruction != self.best_shown:
            # The box shows a few lines: bring a new ★ candidate into them (once: the user may scroll).
            self.best_shown = best.instruction
            self.query_one("#mipro-candidates-box").scroll_to(y=max(0, best.instruction - 2), animate=False)

    def selected_run_id(self) -> int | None:
        return self.run.id if self.run else None

    def open_selected(self) -> None:
        self.action_review_program()

    def action_review_program(self) -> None:
        if self.run is None:
            self.notify("no MIPROv2 run yet: press l to launch one", severity="warning")
            return
        if not isinstance(self.app.screen, ProgramScreen):
            self.app.push_screen(ProgramScreen(self.app.workspace, self.run))


def mipro_summary(run: Run | None, trials: list[Trial]) -> str:
    """State, evaluations done / planned, best full score against the program as written, LM calls.

    A running run has no summary yet, so its figures come from the trials recorded so far.
    """
    if run is None:
        return EMPTY
    planned = run.config.get("planned_evaluations")
    done = f"{len(trials)}/{planned}" if planned else str(len(trials))
    head = f"MIPROv2 run {run.id} · {run.status} · evaluations {done} · enter: program review"
    s = run.summary or {}
    fulls = [t.score for t in trials if t.kind == "full" and t.score is not None]
    best = s.get("best_score", max(fulls, default=None))
    default = s.get("default_score", trials[0].score if trials else None)
    line = f"best full {figure(best)} vs default {figure(default)}"
    if best is not None and default is not None:
        line += f" ({best - default:+.3f})"
    lm_calls = s.get("lm_calls", sum(t.lm_calls for t in trials))
    cached = s.get("cache_hits", sum(t.cache_hits for t in trials))  # not in older stores
    line += f" · LM calls {lm_calls}" + (f" (+{cached} from cache)" if cached else "")
    if run.error:
        line += f" · {run.error}"
    return f"{head}\n{line}"


def trial_cells(t: Trial) -> tuple:
    # A low score from broken parsing or errors is not a bad prompt: say so beside the score.
    problems = trial_flag(t)
    note = ", ".join(filter(None, ["as written" if t.evaluation == 1 else "", problems]))
    if t.score is None:
        score = Text("failed", style="bold red")
    else:
        score = Text(f"{t.score:.3f}", style="yellow" if problems else "")
    kind = Text("full", style="bold") if t.kind == "full" else Text("mini")
    index = lambda v: "-" if v is None else str(v)  # noqa: E731
    return (str(t.evaluation), index(t.trial), kind, score, Text(note, style="yellow" if problems else "dim"),
            figure(t.best_full), index(t.instruction), index(t.demos), duration(t.duration_s, compact=True),
            str(t.lm_calls))


def best_trial(trials: list[Trial]) -> Trial | None:
    """The full evaluation with the best score whose candidates are known."""
    known = [t for t in trials if t.kind == "full" and t.score is not None and t.instruction is not None]
    return max(known, key=lambda t: t.score, default=None)


def candidate_list(trials: list[Trial], instructions: list[str], demo_sets: list[str]) -> Text:
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
    title = "instructions · ★ " + (f"best full evaluation (trial {best.trial})" if best else "none best yet")
    if sizes:
        title += f" · demo sets of {', '.join(sizes)} demos"
    text = Text(title, style="bold")
    for i, instruction in enumerate(instructions):
        mark = "★" if best and best.instruction == i else " "
        first = instruction.strip().splitlines()[0] if instruction.strip() else "(empty)"
        text.append(f"\n{mark}{i:>2} ", style="bold yellow" if mark != " " else "")
        text.append(first)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


class ScoreChart(Widget):
    """The score chart of the MIPROv2 pane, drawn as text to the width it is given."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trials: list[Trial] = []

    def show(self, trials: list[Trial]) -> None:
        if trials != self.trials:
            self.trials = trials
            self.refresh()

    def render(self) -> Text:
        return score_chart(self.trials, self.size.width, self.size.height)


# -- the score chart ----------------------------------------------------------------------

def trial_flag(trial: Trial) -> str:
    """Why a score is low for reasons other than the prompt: broken parsing or errors."""
    flags = []
    if trial.parse_failures:
        flags.append(f"{trial.parse_failures} parse fail")
    if trial.errors:
        flags.append(f"{trial.errors} error" + ("s" if trial.errors > 1 else ""))
    return ", ".join(flags)


CHART_MARKS = {"full": ("●", "bold green"), "minibatch": ("·", "cyan"), "failed": ("×", "bold red")}
CHART_BEST = ("─", "yellow")
# When evaluations share a column (more of them than the chart is wide), the stronger mark wins.
_MARK_RANK = {"minibatch": 1, "failed": 2, "full": 3}
_LABEL_W = 5  # "0.60│"


def score_chart(trials: list[Trial], width: int, height: int) -> Text:
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
    values = [v for t in trials for v in (t.score, t.best_full) if v is not None]
    low, high = _score_range(values)
    row_of = lambda v: round((high - v) / (high - low) * (rows - 1))  # noqa: E731
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(rows)]
    _draw_best(grid, trials, column, row_of, plot_w)
    rank = [0] * plot_w
    for i, t in enumerate(trials):
        kind = "failed" if t.score is None else t.kind
        c = column(i)
        if c < plot_w and _MARK_RANK[kind] >= rank[c]:
            rank[c] = _MARK_RANK[kind]
            grid[rows - 1 if t.score is None else row_of(t.score)][c] = CHART_MARKS[kind]
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


def _draw_best(grid, trials: list[Trial], column, row_of, plot_w: int) -> None:
    """The best full score so far: flat from each evaluation's column to the next one's."""
    for i, t in enumerate(trials):
        if t.best_full is None:
            continue
        start = column(i)
        end = column(i + 1) if i + 1 < len(trials) else start + 1
        for c in range(start, min(max(end, start + 1), plot_w)):
            grid[row_of(t.best_full)][c] = CHART_BEST



# -- the program review --------------------------------------------------------------------

class ProgramLoaded(Message):
    """A run's saved program, loaded and compared with the baseline (or why it could not be)."""

    def __init__(self, review: dict) -> None:
        super().__init__()
        self.review = review


def program_review(workspace, run: Run) -> dict:
    """The run's saved program and what changed from the program as written, or {"error": ...}."""
    from pipeline.saved_programs import review

    ref = (run.summary or {}).get("program")
    if not ref:
        return {"error": f"run {run.id} ({run.status}) has no saved program: MIPROv2 saves its best program "
                         "when it ends or is cancelled"}
    return review(workspace, ref)


class ProgramScreen(Screen):
    """A MIPROv2 run's saved program, reviewed before it is trusted: what changed from the
    program as written, then its instructions, fields and every demo. Loaded in a thread:
    the first load imports DSPy."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="program-back")]
    DEFAULT_CSS = """
    #program-head { height: auto; max-height: 3; padding: 0 1; border-bottom: solid $primary; }
    #program-body { height: 1fr; padding: 0 1; }
    """

    def __init__(self, workspace, run: Run) -> None:
        super().__init__()
        self.workspace, self.run = workspace, run
        self.review: dict | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"Program of MIPROv2 run {self.run.id} · loading…", id="program-head", markup=False)
        with VerticalScroll(id="program-body"):
            yield Static("", id="program-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#program-body").focus()
        self.load()

    @work(thread=True, exclusive=True, group="program", description="load the program")
    def load(self) -> None:
        self.post_message(ProgramLoaded(program_review(self.workspace, self.run)))

    def on_program_loaded(self, message: ProgramLoaded) -> None:
        self.review = review = message.review
        head = self.query_one("#program-head", Static)
        if "error" in review:
            head.update(f"Program of MIPROv2 run {self.run.id}\n{review['error']}")
            return
        s = self.run.summary or {}
        head.update(f"{review['program']} · MIPROv2 run {self.run.id} · best {figure(s.get('best_score'))}"
                    f" vs default {figure(s.get('default_score'))} · escape: back")
        self.query_one("#program-text", Static).update(Group(
            Text("changes from the program as written (baseline)", style="bold underline"),
            render.program_diff(review["diff"]),
            Text(""),
            Text("the program", style="bold underline"),
            render.program_view(review, demos_shown=None, demo_chars=None),
        ))
