"""Serving: what is served outside this process and usable as a provider — llama.cpp servers
started by `po serve` (their run's state, address, tokens generated) and models created on
an Ollama server by `po export ollama` — with the selected serve run's log tail. Launch
serves the newest student; cancel stops the selected server."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from po_console import logfile
from po_console.panes.base import (
    Pane,
    View,
    row_table,
    selected_key,
    status_text,
    sync_ordered,
)
from state import read
from state.read import Run, ServedModel

EMPTY = "Serving · nothing served yet: press l to serve the newest student (needs make llama-server)"
LOG_LINES = 3


@dataclass
class ServeView:
    models: list[tuple[ServedModel, Run | None]] = field(default_factory=list)
    latest: Run | None = None  # the newest serve run (what launch / cancel act on without a selection)
    log: list[str] = field(default_factory=list)


class ServePane(Pane):
    name = "serve"
    title = "Serving"
    key_label = "Serve"
    description = "Serving: the student and base behind llama.cpp's server or Ollama, usable as providers"
    stage = "serve"

    DEFAULT_CSS = """
    #serve-summary { height: auto; max-height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #serve-log { height: 3; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.payload = ServeView()

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="serve-summary")
        yield row_table("serve-models", [("provider", "name"), ("state", "state"), ("serves", "serves"),
                                         ("at", "at"), ("tokens", "tokens")])
        yield Static("", id="serve-log", markup=False)

    @classmethod
    def read(cls, db, view: View, memo: dict) -> ServeView:
        models = [(m, read.get_run(db, m.run_id) if m.run_id else None) for m in read.served_models(db)]
        # What is running first (what cancel most likely means), then Ollama's models, then the rest.
        models.sort(key=lambda pair: (0 if pair[1] and pair[1].status == "running" else 1 if pair[1] is None else 2,
                                      pair[0].name))
        runs = read.list_runs(db, stage=cls.stage, limit=1)
        latest = read.get_run(db, view.run_id) if view.run_id else (runs[0] if runs else None)
        log = []
        if latest is not None:
            path = memo["workspace"].artifacts_dir / str(latest.id) / "run.log"
            end = logfile.complete_end(path) if path.exists() else 0
            log = logfile.lines_before(path, end, LOG_LINES)[0] if end else []
        return ServeView(models, latest, log)

    def show(self, payload: ServeView) -> None:
        self.payload = payload
        self.query_one("#serve-summary", Static).update(summary(payload))
        rows = {}
        for model, run in payload.models:
            config = model.provider_config
            where = config.get("base_url") or config.get("host") or ""
            serves = f"run {model.source_run_id}'s student" if model.source_run_id else "the base"
            state = status_text(run.status) if run else Text(f"on {config.get('kind')}", style="dim")
            tokens = f"{run.done:,}" if run and run.done else ""
            rows[model.name] = (model.name, state, serves, where.removeprefix("http://"), tokens)
        sync_ordered(self.query_one("#serve-models", DataTable), rows)
        self.query_one("#serve-log", Static).update("\n".join(payload.log))

    def selected_run_id(self) -> int | None:
        name = selected_key(self.query_one("#serve-models", DataTable))
        chosen = next((run for model, run in self.payload.models if model.name == name and run), None)
        return chosen.id if chosen else (self.payload.latest.id if self.payload.latest else None)

    def open_selected(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.app.open_run(run_id)


def summary(view: ServeView) -> Text:
    if not view.models and view.latest is None:
        return Text(EMPTY, style="bold")
    running = [m for m, run in view.models if run and run.status == "running"]
    head = f"Serving · {len(running)} running" + (f": {', '.join(m.name for m in running)}" if running else "")
    lines = [Text(head + " · use one with provider = \"NAME\" · enter: log", style="bold")]
    if view.latest is not None and view.latest.error:
        lines.append(Text(f"run {view.latest.id}: {view.latest.error}", style="red"))
    elif view.latest is not None and view.latest.message:
        lines.append(Text(f"run {view.latest.id} · {view.latest.status} · {view.latest.message}"))
    return Text("\n").join(lines)
