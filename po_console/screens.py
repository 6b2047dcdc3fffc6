"""Screens over the panes that any pane may use: the launch dialog (built from the stage's
config), a confirmation, a run's details with its live log, and one example's inputs and
outputs side by side. A pane's own drill-downs live in its module."""

from __future__ import annotations

import json
import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from pipeline import stages
from pipeline.overview import headline
from pipeline.stages.base import Option, Stage, StageConfig
from pipeline.units import duration
from po_console import logfile
from po_console.panes.base import View
from state import read
from state.read import Artifact, Run


class LaunchScreen(ModalScreen[dict | None]):
    """The fields a stage asks at launch (`option(ask=True)` in its config), prefilled from
    po.toml, two to a row. Dismisses with the overrides (empty fields left to po.toml)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back", id="launch-back")]

    def __init__(self, stage: Stage, config: StageConfig) -> None:
        super().__init__()
        self.stage, self.config = stage.name, config
        self._stage = stage
        by_key = {o.key: o for o in stage.options()}
        self.fields = [(by_key[key], value, hint) for key, (value, hint) in stage.launch_values(config).items()]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Launch {self.stage} (detached: it goes on when you leave)")
            for i in range(0, len(self.fields), 2):
                with Horizontal():
                    for option, value, hint in self.fields[i:i + 2]:
                        yield from labelled_input(option, value, hint)
            with Horizontal():
                yield Button("Launch", id="go", variant="primary")
                yield Button("Back", id="back")

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def go(self) -> None:
        typed = {}
        for option, _, _ in self.fields:
            box = self.query_one(f"#{option.dest}", Input)
            if not box.value.strip():
                continue
            try:
                typed[option.key] = float(box.value) if option.kind == "float" else \
                    int(box.value) if option.kind == "int" else box.value.strip()
            except ValueError:
                self.notify(f"{option.dest}: {box.value!r} is not a "
                            f"{'number' if option.kind == 'float' else 'whole number'}", severity="error")
                return
        self.dismiss(self._stage.launch_overrides(self.config, typed))

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.dismiss(None)


def labelled_input(option: Option, value, hint: str) -> ComposeResult:
    kind = {"int": "integer", "float": "number"}.get(option.kind, "text")
    with Vertical(classes="field"):
        yield Label(option.label + (f" ({hint})" if hint else ""))
        yield Input("" if value is None else str(value), id=option.dest, type=kind)


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


def run_details(run: Run, artifacts: list[Artifact]) -> str:
    """The text of a run's details: state, timings, config, artifacts with sizes."""
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"  # noqa: E731
    ago = lambda s: duration(s, compact=True)  # noqa: E731
    lines = [
        f"run {run.id} · {run.stage} · {run.status} · attempt {run.attempt}" + (" · detached" if run.detached else ""),
        f"created {fmt(run.created_at)}  started {fmt(run.started_at)}  ended {fmt(run.ended_at)}"
        f"  took {ago(run.elapsed)}  heartbeat {ago(run.heartbeat_age)} ago  pid {run.pid or '-'}",
    ]
    if run.total:
        lines.append(f"progress {run.done}/{run.total}")
    if run.error:
        lines.append(f"error: {run.error}")
    config = {k: (v[:12] if k.endswith("sha256") else v) for k, v in run.config.items() if k != "provider_config"}
    lines.append("config: " + json.dumps(config, sort_keys=True))
    for item in artifacts:
        lines.append(f"artifact {item.path}  {item.bytes:,} bytes  {item.kind}")
    if run.summary and run.stage in stages.names():
        lines.append("result: " + headline(run))
    return "\n".join(lines)


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

    @classmethod
    def read(cls, db, view: View, memo: dict) -> tuple[Run | None, list[Artifact]]:
        """The run and its artifacts, read in the console's polling thread while this screen shows."""
        return read.get_run(db, view.run_id), read.artifacts(db, view.run_id)

    def compose(self) -> ComposeResult:
        yield Static(run_details(self.initial, []), id="run-details", markup=False)
        yield LogView(self.log_path, id="run-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self.query_one(LogView).refresh_tail)

    def show(self, payload: tuple[Run | None, list[Artifact]]) -> None:
        run, artifacts = payload
        if run is not None:
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
    """One example: a head of figures, then its inputs and outputs side by side, each field
    in the program's order (`fields`: what the run recorded of the program; a field the
    answer lacks, like the raw text of a parse failure, after them), then the metric's
    feedback when it gave one."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="example-back")]
    DEFAULT_CSS = """
    ExampleScreen #example-head { height: auto; max-height: 4; padding: 0 1; }
    ExampleScreen .side { width: 1fr; padding: 0 1; }
    ExampleScreen .field-name { text-style: bold; color: $accent; margin-top: 1; }
    """

    def __init__(self, head: str, inputs: dict | None, outputs: dict, fields: dict | None = None,
                 feedback: str | None = None) -> None:
        super().__init__()
        self.head, self.inputs, self.outputs, self.feedback = head, inputs or {}, outputs, feedback
        self.fields = fields or {"inputs": list(self.inputs), "outputs": list(self.outputs)}

    def compose(self) -> ComposeResult:
        yield Static(self.head, id="example-head", markup=False)
        with Horizontal():
            with VerticalScroll(classes="side"):
                for name in self.fields["inputs"]:
                    yield Label(name, classes="field-name")
                    yield Static(str(self.inputs.get(name) or "(empty)"), markup=False)
            with VerticalScroll(classes="side"):
                known = [name for name in self.fields["outputs"] if name in self.outputs]
                for name in known + [name for name in self.outputs if name not in known]:
                    yield Label(name, classes="field-name")
                    yield Static(str(self.outputs[name] or "(empty)"), markup=False)
                if self.feedback:
                    yield Label("the metric's feedback", classes="field-name")
                    yield Static(self.feedback, markup=False)
        yield Footer(compact=True)
