"""Modal screens: launch parameters, confirmation, a run's details with its live log, one example."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from po_console import logfile
from po_console.panes import run_details
from state.read import Run


class LaunchScreen(ModalScreen[dict | None]):
    """The few parameters that matter, prefilled from po.toml. Dismisses with the overrides."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back", id="launch-back")]

    def __init__(self, stage: str, threads: int, limit: int | None) -> None:
        super().__init__()
        self.stage, self.threads, self.limit = stage, threads, limit

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Launch {self.stage} (detached: it goes on when you leave)")
            yield Label("threads")
            yield Input(str(self.threads), id="threads", type="integer")
            yield Label("limit (empty = all examples)")
            yield Input("" if self.limit is None else str(self.limit), id="limit", type="integer")
            with Horizontal():
                yield Button("Launch", id="go", variant="primary")
                yield Button("Back", id="back")

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def go(self) -> None:
        threads = self.query_one("#threads", Input).value.strip()
        limit = self.query_one("#limit", Input).value.strip()
        overrides = {"threads": int(threads)} if threads else {}
        if limit:
            overrides["limit"] = int(limit)
        self.dismiss(overrides)

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.dismiss(None)


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
        yield Footer()

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

    def compose(self) -> ComposeResult:
        r = self.result
        score = f"{r['score']:.3f}" if r["score"] is not None else r["status"]
        parts = "  ".join(f"{k} {v:.2f}" for k, v in r["parts"].items())
        yield Static(f"{r['example_id']} · {score} · {r['latency_s']:.1f}s · {parts}" +
                     (f"\n{r['error']}" if r.get("error") else ""), id="example-head")
        with Horizontal():
            with VerticalScroll(classes="side"):
                for name in ("concept", "requirements_yaml", "existing_vision"):
                    yield Label(name, classes="field-name")
                    yield Static(self.inputs.get(name) or "(empty)", markup=False)
            with VerticalScroll(classes="side"):
                for name, value in r["outputs"].items():
                    yield Label(name, classes="field-name")
                    yield Static(value or "(empty)", markup=False)
        yield Footer()
