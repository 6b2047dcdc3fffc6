"""Screens over the panes: launch parameters, confirmation, a run's details with its live log,
one example, one teacher record, a MIPROv2 program's review."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from po_console import logfile, render
from po_console.messages import ProgramLoaded
from po_console.panes import PART_SHORT, run_details
from state.read import Run


class LaunchScreen(ModalScreen[dict | None]):
    """The few parameters that matter, prefilled from po.toml. Dismisses with the overrides.

    MIPROv2 also asks its trial and candidate counts; left empty, po.toml decides (its
    `auto` preset, when it has one). Typed in, they replace the preset. The teacher asks how
    many records to accept and the score that accepts one; its limit is the pool's.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "Back", id="launch-back")]
    OVERRIDES = {"threads": "threads", "limit": "limit", "trials": "num_trials", "candidates": "num_candidates",
                 "max_records": "max_records", "min_score": "min_score"}
    FRACTIONS = {"min_score"}  # the others are whole numbers

    def __init__(self, stage: str, threads: int, limit: int | None, *, trials: int | None = None,
                 candidates: int | None = None, auto: str | None = None, max_records: int | None = None,
                 min_score: float | None = None) -> None:
        super().__init__()
        self.stage, self.threads, self.limit = stage, threads, limit
        self.trials, self.candidates, self.auto = trials, candidates, auto
        self.max_records, self.min_score = max_records, min_score

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Launch {self.stage} (detached: it goes on when you leave)")
            with Horizontal():
                yield from labelled_input("threads", "threads", self.threads)
                yield from labelled_input("limit", f"{'pool ' if self.stage == 'teacher' else ''}limit (empty = all)",
                                          self.limit)
            if self.stage == "teacher":
                with Horizontal():
                    yield from labelled_input("max_records", "max records", self.max_records)
                    yield from labelled_input("min_score", "min score (0-1)", self.min_score, kind="number")
            if self.stage == "mipro":
                empty = f"empty = auto {self.auto}" if self.auto else "empty = po.toml"
                with Horizontal():
                    yield from labelled_input("trials", f"trials ({empty})", None if self.auto else self.trials)
                    yield from labelled_input("candidates", "candidates", None if self.auto else self.candidates)
            with Horizontal():
                yield Button("Launch", id="go", variant="primary")
                yield Button("Back", id="back")

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def go(self) -> None:
        overrides = {}
        for box in self.query(Input):
            if not box.value.strip():
                continue
            fraction = box.id in self.FRACTIONS
            try:
                overrides[self.OVERRIDES[box.id]] = float(box.value) if fraction else int(box.value)
            except ValueError:
                self.notify(f"{box.id}: {box.value!r} is not a {'number' if fraction else 'whole number'}",
                            severity="error")
                return
        if self.auto and ("num_trials" in overrides or "num_candidates" in overrides):
            overrides["auto"] = None  # counts typed in replace the preset (MIPROv2 takes one or the other)
        self.dismiss(overrides)

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.dismiss(None)


def labelled_input(name: str, label: str, value: float | None, kind: str = "integer") -> ComposeResult:
    with Vertical(classes="field"):
        yield Label(label)
        yield Input("" if value is None else str(value), id=name, type=kind)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "dismiss(False)", "No", id="confirm-no"),
                Binding("y", "dismiss(True)", "Yes", id="confirm-yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid(id="dialog"):
            yield Label(self.question, id="question")
            yield Button("Yes (y)", id="yes", variant="error")
            yield Button("No (n)", id="no")

    @on(Button.Pressed)
    def answer(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class LogView(Static):
    """The visible tail of a log file, re-read only when the file grew; never the whole file."""

    def __init__(self, path: Path, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.path = path
        self.end = 0  # offset after the last line shown (following mode)
        self.top: int | None = None  # offset of the first line shown, when scrolled back
        self.shown = ""

    def refresh_tail(self) -> None:
        height = max(1, self.size.height or 10)
        if self.top is None:
            end = logfile.complete_end(self.path) if self.path.exists() else 0
            if end == self.end and self.shown:
                return
            self.end = end
            lines, _ = logfile.lines_before(self.path, end, height) if end else ([], 0)
        else:
            lines, _ = logfile.lines_after(self.path, self.top, height)
        self.shown = "\n".join(lines) or "(no log yet)"
        self.update(self.shown)

    def page_up(self) -> None:
        height = max(1, self.size.height)
        anchor = self.top if self.top is not None else self.end
        _, self.top = logfile.lines_before(self.path, anchor, height) if anchor else ([], 0)
        self.refresh_tail()

    def page_down(self) -> None:
        if self.top is None:
            return
        _, after = logfile.lines_after(self.path, self.top, max(1, self.size.height))
        self.top = None if after >= logfile.complete_end(self.path) else after
        self.refresh_tail()


class RunScreen(Screen):
    """A run's details and its log, tailed live (`tail -f`); PageUp/PageDown scroll back."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="run-back"),
        Binding("pageup", "log_up", "Log up", id="log-page-up"),
        Binding("pagedown", "log_down", "Log down", id="log-page-down"),
        Binding("end", "log_follow", "Follow", id="log-follow"),
    ]

    def __init__(self, run: Run, log_path: Path) -> None:
        super().__init__()
        self.run_id = run.id
        self.log_path = log_path
        self.initial = run

    def compose(self) -> ComposeResult:
        yield Static(run_details(self.initial, []), id="run-details", markup=False)
        yield LogView(self.log_path, id="run-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self.query_one(LogView).refresh_tail)

    def apply(self, run: Run, artifacts: list[dict]) -> None:
        self.query_one("#run-details", Static).update(run_details(run, artifacts))
        self.query_one(LogView).refresh_tail()

    def action_log_up(self) -> None:
        self.query_one(LogView).page_up()

    def action_log_down(self) -> None:
        self.query_one(LogView).page_down()

    def action_log_follow(self) -> None:
        view = self.query_one(LogView)
        view.top = None
        view.end = -1
        view.refresh_tail()


class ExampleScreen(Screen):
    """One evaluated example: inputs and outputs side by side, with its score parts."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="example-back")]

    def __init__(self, result: dict, inputs: dict | None) -> None:
        super().__init__()
        self.result, self.inputs = result, inputs or {}

    def head(self) -> str:
        r = self.result
        score = f"{r['score']:.3f}" if r["score"] is not None else r["status"]
        parts = "  ".join(f"{k} {v:.2f}" for k, v in r["parts"].items())
        return f"{r['example_id']} · {score} · {r['latency_s']:.1f}s · {parts}" + \
            (f"\n{r['error']}" if r.get("error") else "")

    def compose(self) -> ComposeResult:
        r = self.result
        yield Static(self.head(), id="example-head", markup=False)
        with Horizontal():
            with VerticalScroll(classes="side"):
                for name in ("concept", "requirements_yaml", "existing_vision"):
                    yield Label(name, classes="field-name")
                    yield Static(self.inputs.get(name) or "(empty)", markup=False)
            with VerticalScroll(classes="side"):
                # The vision first, as the program writes it (the store keeps the fields sorted by name).
                outputs = sorted(r["outputs"].items(), key=lambda kv: kv[0] != "product_vision")
                for name, value in outputs:
                    yield Label(name, classes="field-name")
                    yield Static(value or "(empty)", markup=False)
        yield Footer(compact=True)


class TeacherRecordScreen(ExampleScreen):
    """One teacher attempt: its decision and why, score parts, tokens, latency and model,
    then its inputs and the teacher's answer side by side (escape: back, as for an example)."""

    def __init__(self, record: dict, min_score: float | None) -> None:
        super().__init__(record, record["inputs"])
        self.min_score = min_score

    def head(self) -> str:
        r = self.result
        attempt = "imported" if r["attempt"] == 0 else f"attempt {r['attempt']}"
        seq = f" #{r['seq']}" if r["seq"] is not None else ""
        threshold = f" (min {self.min_score})" if self.min_score is not None else ""
        lines = [f"{r['example_id']} · {attempt} · {r['status']}{seq} · score {render.score(r['score'])}{threshold}"]
        if r["reason"]:
            lines.append(f"reason: {r['reason']}")
        if r["parts"]:
            order = list(PART_SHORT)  # the metric's order (the store keeps them sorted by name)
            parts = sorted(r["parts"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
            lines.append("parts: " + "  ".join(f"{k} {v:.2f}" for k, v in parts))
        cost = "cost unknown" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
        lines.append(f"latency {r['latency_s'] or 0:.1f}s · tokens {r['input_tokens']:,} in / "
                     f"{r['output_tokens']:,} out · {cost} · {r['model'] or 'model unknown'}")
        return "\n".join(lines)


class ProgramScreen(Screen):
    """A MIPROv2 run's saved program, reviewed before it is trusted: what changed from the
    program as written, then its instructions, fields and every demo. Loaded in a thread:
    the first load imports DSPy."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="program-back")]

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
        from po_console.snapshots import program_review

        self.post_message(ProgramLoaded(program_review(self.workspace, self.run)))

    def on_program_loaded(self, message: ProgramLoaded) -> None:
        self.review = review = message.review
        head = self.query_one("#program-head", Static)
        if "error" in review:
            head.update(f"Program of MIPROv2 run {self.run.id}\n{review['error']}")
            return
        s = self.run.summary or {}
        head.update(f"{review['program']} · MIPROv2 run {self.run.id} · best {render.score(s.get('best_score'))}"
                    f" vs default {render.score(s.get('default_score'))} · escape: back")
        self.query_one("#program-text", Static).update(Group(
            Text("changes from the program as written (baseline)", style="bold underline"),
            render.program_diff(review["diff"]),
            Text(""),
            Text("the program", style="bold underline"),
            render.program_view(review, demos_shown=None, demo_chars=None),
        ))
