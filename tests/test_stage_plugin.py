"""The contract test: adding a stage is one stage module and one pane module.

A team's small stage (`wordcount`: the words of each validation example, one stored result
per example, resumable) and its pane are written here, in the test, as a package would ship
them: a module and an entry point in the `po_console.stages` and `po_console.panes` groups.
No product file is edited. Then the stage is run, shown and operated like a built-in one:
`po run` in the foreground and detached, its generated `--help`, `po status`, the console's
overview, its pane by its number key, launch / cancel / resume from the console. A broken
plugin is a one-line warning, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import po_env, wait_for

PLUGIN = '''
"""A team's own stage (with a table of its own) and its pane, shipped as one module (po_wordcount)."""

import time
from pathlib import Path

from textual.widgets import DataTable, Static

from pipeline.config import Float, Int
from pipeline.stages.base import RunConfig, Stage, StageConfig, option
from po_console.panes.base import Pane, latest_run_id, sync_table
from state import read
from state.db import write


class WordCountConfig(StageConfig):
    delay_s: Float = option(0.0, "seconds spent on each example", ask=True, ge=0)
    limit: Int | None = option(None, "count only the first N validation examples", ask=True, ge=1)


class WordCountRun(WordCountConfig, RunConfig):
    val: str
    examples: int


class WordCountStage(Stage):
    name = "wordcount"
    title = "Word count"
    short_title = "Words"
    Config = WordCountConfig
    RunConfig = WordCountRun
    order = 35
    progress_label = "counted"
    limit_key = "limit"
    in_chain = False
    toml_real = "\\n[wordcount]\\ndelay_s = 0.0            # seconds spent on each example\\n"
    migrations = ("CREATE TABLE wordcount_words (run_id INTEGER NOT NULL, example_id TEXT NOT NULL, "
                  "position INTEGER NOT NULL, words INTEGER NOT NULL, PRIMARY KEY (run_id, example_id))",)

    def plan(self, ws, cfg):
        val = ws.resolve(ws.config.data.val)
        examples = len(ws.examples(val)[: cfg.limit])
        return WordCountRun(**cfg.model_dump(), val=str(val), examples=examples)

    def run(self, ctx, cfg):
        examples = ctx.workspace.examples(Path(cfg.val))[: cfg.limit]
        done = {row[0] for row in ctx.db.execute("SELECT example_id FROM wordcount_words WHERE run_id = ?",
                                                  [ctx.run.id])}
        count = len(done)
        for position, example in enumerate(examples):
            if example.id in done:
                continue
            ctx.check_cancelled()
            time.sleep(cfg.delay_s)
            with write(ctx.db) as conn:  # stored before it is counted
                conn.execute("INSERT INTO wordcount_words VALUES (?, ?, ?, ?)",
                             (ctx.run.id, example.id, position, len(example.inputs["concept"].split())))
            count += 1
            ctx.progress(count, len(examples))
        examples, words = ctx.db.execute("SELECT COUNT(*), SUM(words) FROM wordcount_words WHERE run_id = ?",
                                         [ctx.run.id]).fetchone()
        return {"examples": examples, "words": words}

    def headline(self, summary):
        return f"{summary['words']} words in {summary['examples']} examples" if summary else ""

    def summary_rows(self, summary):
        return [("examples", str(summary["examples"])), ("words", str(summary["words"]))]


STAGE = WordCountStage()


class WordCountPane(Pane):
    name = "wordcount"
    title = "Words"
    description = "Word count: words of each validation example"
    stage = "wordcount"

    def compose(self):
        yield Static("Word count · no run yet", id="words-summary", classes="pane-title")
        table = DataTable(id="words-table", cursor_type="row")
        table.add_column("example", key="example")
        table.add_column("words", key="words")
        yield table

    @classmethod
    def read(cls, db, view, memo):
        run_id = latest_run_id(db, view, cls.stage)
        if run_id is None:
            return None, []
        rows = db.execute("SELECT example_id, words FROM wordcount_words WHERE run_id = ? ORDER BY position",
                          [run_id]).fetchall()
        return read.get_run(db, run_id), rows

    def show(self, payload):
        run, rows = payload
        self.run = run
        if run is not None:
            self.query_one("#words-summary", Static).update(f"Word count run {run.id} · {run.status}")
        sync_table(self.query_one(DataTable), {example: (example, str(words)) for example, words in rows})

    def selected_run_id(self):
        return getattr(self, "run", None) and self.run.id
'''

ENTRY_POINTS = """
[po_console.stages]
wordcount = po_wordcount:STAGE

[po_console.panes]
wordcount = po_wordcount:WordCountPane
"""


def install(root: Path, module: str, source: str, entry_points: str) -> Path:
    """A package as pip would leave it in site-packages: its module and a dist-info with its
    entry points. `root` goes on PYTHONPATH (and sys.path)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return root


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plugin installed for `po` subprocesses (PYTHONPATH) and for this process (sys.path)."""
    from pipeline import stages
    from po_console import panes

    root = install(tmp_path / "site", "po_wordcount", PLUGIN, ENTRY_POINTS)
    monkeypatch.setenv("PYTHONPATH", str(root))  # `po`, and the detached workers it starts
    monkeypatch.syspath_prepend(str(root))
    stages.reload()
    panes.reload()
    yield root
    monkeypatch.undo()
    sys.modules.pop("po_wordcount", None)
    stages.reload()
    panes.reload()


def po_with(plugin_root: Path, *args, ws: Path, check: bool = True, timeout: float = 120):
    import subprocess

    env = po_env(PYTHONPATH=str(plugin_root))
    proc = subprocess.run([sys.executable, "-m", "po_console.cli", "-w", str(ws), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"po {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def ws(tmp_path, plugin) -> Path:
    ws = tmp_path / "ws"
    po_with(plugin, "init", "--demo", ws=ws)
    return ws


def test_a_plugin_stage_gets_its_po_toml_section_and_generated_options(plugin, ws):
    assert "[wordcount]" in (ws / "po.toml").read_text()  # po init writes the stage's own section
    shown = " ".join(po_with(plugin, "run", "wordcount", "--help", ws=ws).stdout.split())  # unwrapped
    assert "--delay-s X" in shown and "seconds spent on each example [>= 0]" in shown
    assert "(po.toml: wordcount.delay_s)" in shown and "--limit N" in shown
    assert "wordcount" in po_with(plugin, "run", "--help", ws=ws).stdout
    bad = po_with(plugin, "run", "wordcount", "--limit", "0", ws=ws, check=False)
    assert bad.returncode == 2 and "wordcount: limit must be >= 1 (got 0)" in bad.stderr
    (ws / "po.toml").write_text((ws / "po.toml").read_text().replace("delay_s = 0.0", "delay_s = -1"))
    bad = po_with(plugin, "run", "baseline", "--dry-run", ws=ws, check=False)  # po.toml is checked whole
    assert bad.returncode == 2 and "po.toml: wordcount.delay_s must be >= 0 (got -1)" in bad.stderr


def test_a_plugin_stage_runs_in_the_foreground_and_detached_and_po_status_shows_it(plugin, ws):
    run = json.loads(po_with(plugin, "run", "wordcount", "--limit", "4", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded" and run["done"] == run["total"] == 4
    table = po_with(plugin, "run", "wordcount", "--limit", "2", ws=ws).stdout
    assert "Words" in table and "examples" in table  # its summary rows, under its short title

    detached = json.loads(po_with(plugin, "run", "wordcount", "--detach", "--json", ws=ws).stdout)["run_id"]
    wait_for(lambda: json.loads(po_with(plugin, "status", str(detached), "--json", ws=ws).stdout)["state"]
             == "succeeded", timeout=60, what="the detached run")
    detail = json.loads(po_with(plugin, "status", str(detached), "--json", ws=ws).stdout)
    assert detail["summary"]["examples"] == 34 and detail["summary"]["words"] > 34

    overview = {row["stage"]: row for row in json.loads(po_with(plugin, "status", "--json", ws=ws).stdout)}
    assert list(overview)[:4] == ["baseline", "mipro", "teacher", "wordcount"]  # its place: order 35
    assert overview["wordcount"]["run"] == detached and overview["wordcount"]["result"].endswith("in 34 examples")
    assert "Word count" in po_with(plugin, "status", ws=ws).stdout


def test_the_console_shows_operates_and_launches_a_plugin_stage(plugin, ws, monkeypatch):
    from textual.widgets import DataTable

    from pipeline.workspace import locate
    from po_console.app import POConsole
    from po_console.screens import LaunchScreen
    from state import read
    from tests.test_console import cell, wait_until

    workspace = locate(ws)
    po_with(plugin, "run", "wordcount", "--limit", "3", ws=ws)

    async def story():
        app = POConsole(workspace, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: cell(app, "overview-table", "wordcount", "state") == "succeeded",
                             what="the overview's row")
            assert "Words" in [b.binding.description for b in app.active_bindings.values() if b.binding.key == "6"]
            await pilot.press("6")
            table = app.query_one("#words-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 3, what="its pane, by its number key")

            await pilot.press("l")  # launch from its pane: the dialog asks what the stage marks `ask`
            await wait_until(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the launch dialog")
            assert app.screen.stage == "wordcount" and app.screen.query_one("#delay_s").value == "0.0"
            app.screen.query_one("#delay_s").value = "0.5"
            app.screen.query_one("#limit").value = "30"
            await pilot.press("enter")
            db = workspace.db(readonly=True)
            await wait_until(pilot, lambda: len(read.list_runs(db, stage="wordcount")) == 2, what="the launch")
            run_id = read.list_runs(db, stage="wordcount")[0].id
            assert read.get_run(db, run_id).config["delay_s"] == 0.5
            pane = app.query_one("#wordcount")
            await wait_until(pilot, lambda: pane.run is not None and pane.run.id == run_id and pane.run.done >= 2,
                             timeout=60, what="the new run's progress in its pane")

            await pilot.press("c", "y")  # cancel it from its pane
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "cancelled", timeout=60,
                             what="the cancel")
            kept = read.get_run(db, run_id).done
            assert 2 <= kept < 30
            await pilot.press("r")  # and resume it
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "succeeded", timeout=90,
                             what="the resume")
            stored = db.execute("SELECT COUNT(*), COUNT(DISTINCT example_id) FROM wordcount_words WHERE run_id = ?",
                                [run_id]).fetchone()
            assert stored == (30, 30)  # every example once: resumed, not redone
            await pilot.press("1")
            await wait_until(pilot, lambda: cell(app, "overview-table", "wordcount", "run") == str(run_id),
                             what="the overview")

    asyncio.run(story())


BROKEN = """
[po_console.stages]
broken = po_broken:STAGE

[po_console.panes]
broken = po_broken:Nothing
"""


def test_a_broken_plugin_is_a_one_line_warning_not_a_crash(tmp_path):
    root = install(tmp_path / "site", "po_broken", "raise ImportError('needs a library nobody installed')\n",
                   BROKEN)
    ws = tmp_path / "ws"
    po_with(root, "init", "--demo", ws=ws)
    proc = po_with(root, "status", ws=ws)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: stage plugin 'broken' (po_broken:STAGE) not loaded: ImportError: needs a library "
                        "nobody installed"]
    assert "Baseline evaluation" in proc.stdout  # po works on


def test_a_broken_pane_plugin_is_a_warning_in_the_console(tmp_path, monkeypatch):
    from pipeline import stages
    from pipeline.workspace import init_workspace
    from po_console import panes
    from textual.notifications import Notify

    from po_console.app import POConsole

    root = install(tmp_path / "site", "po_broken", "raise ImportError('no textual here')\n", BROKEN)
    monkeypatch.syspath_prepend(str(root))
    try:
        stages.reload()
        panes.reload()
        ws = init_workspace(tmp_path / "ws", demo=True)
        seen = []

        async def story():
            app = POConsole(ws, refresh_s=0.2)
            async with app.run_test(size=(80, 24), message_hook=seen.append) as pilot:
                await pilot.pause(0.5)
                shown = [m.notification.message for m in seen if isinstance(m, Notify)]
                assert any(m.startswith("pane plugin 'broken' (po_broken:Nothing) not loaded: ImportError")
                           for m in shown), shown
                assert len(app.panes) == len(panes.BUILT_IN)  # the built-in ones

        asyncio.run(story())
    finally:
        monkeypatch.undo()
        sys.modules.pop("po_broken", None)
        stages.reload()
        panes.reload()


def test_the_registry_refuses_a_plugin_that_takes_a_built_in_name(tmp_path, monkeypatch):
    from pipeline import stages

    source = "from pipeline.stages.baseline import BaselineStage\n\nclass Impostor(BaselineStage):\n    pass\n"
    root = install(tmp_path / "site", "po_impostor", source, "[po_console.stages]\nimpostor = po_impostor:Impostor\n")
    monkeypatch.syspath_prepend(str(root))
    try:
        registry = stages.reload()
        assert registry.warnings == ["stage plugin 'impostor' (po_impostor:Impostor) not loaded: the name "
                                     "'baseline' is taken"]
        assert stages.names() == [path.rsplit(".", 1)[1] for path in stages.BUILT_IN]
    finally:
        monkeypatch.undo()
        sys.modules.pop("po_impostor", None)
        stages.reload()
