"""What each console pane shows, read from the store in one go (no Textual here).

The console's polling worker calls `StoreReader.read(view)`; it returns None when the
store did not change since the last read (`PRAGMA data_version`), so an idle console
costs one tiny query per tick.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from state import read
from state.db import data_version

# Re-read even without writes this often: a crashed run writes nothing, yet becomes stale,
# and ages (heartbeat, ETA) move with the clock.
FORCE_EVERY_S = 5.0
# The teacher pane lists this many of the newest attempts (a run makes thousands).
RECENT_RECORDS = 100


@dataclass(frozen=True)
class View:
    """What the visible pane needs: its name and its parameters."""

    pane: str
    run_id: int | None = None
    stage: str | None = None
    state: str | None = None


@dataclass
class Snapshot:
    view: View
    taken_at: float
    runs: list[read.Run] = field(default_factory=list)  # overview: latest per stage; runs: the list
    run: read.Run | None = None
    results: list[dict] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)
    trials: list[dict] = field(default_factory=list)  # mipro: one row per evaluation, in order
    instructions: list[str] = field(default_factory=list)  # mipro: instruction candidates by index
    demo_sets: list[str] = field(default_factory=list)  # mipro: demo sets (JSON lists) by index
    teacher: dict | None = None  # teacher (and overview, while one runs): state.read.teacher_stats of the run
    records: list[dict] = field(default_factory=list)  # teacher: the newest attempts, newest first


class StoreReader:
    def __init__(self, workspace):
        self.workspace = workspace
        self.db = workspace.db(readonly=True)
        self._version: int | None = None
        self._view: View | None = None
        self._last = 0.0
        self._results_cache: tuple[int, int, list[dict]] | None = None

    def read(self, view: View, *, force: bool = False) -> Snapshot | None:
        version = data_version(self.db)
        now = time.monotonic()
        fresh = force or view != self._view or version != self._version or now - self._last > FORCE_EVERY_S
        if not fresh:
            return None
        self._version, self._view, self._last = version, view, now
        return self._take(view)

    def _take(self, view: View) -> Snapshot:
        snap = Snapshot(view, time.time())
        if view.pane == "overview":
            latest = read.latest_run_per_stage(self.db)
            snap.runs = list(latest.values())
            teacher = latest.get("teacher")
            if teacher is not None and teacher.status == "running":  # its ETA is a range
                snap.teacher = read.teacher_stats(self.db, teacher.id)
        elif view.pane == "runs":
            runs = read.list_runs(self.db, stage=view.stage, limit=500)
            snap.runs = [r for r in runs if view.state is None or r.status == view.state]
        elif view.pane == "baseline":
            run_id = self._run_id(view, "baseline")
            if run_id is not None:
                snap.run = read.get_run(self.db, run_id)
                snap.results = self._results(run_id)
        elif view.pane == "mipro":
            run_id = self._run_id(view, "mipro")
            if run_id is not None:
                snap.run = read.get_run(self.db, run_id)
                # A few rows per trial, and a run has tens to hundreds: read them whole.
                snap.trials = read.trials(self.db, run_id)
                snap.instructions = read.candidates(self.db, run_id, "instruction")
                snap.demo_sets = read.candidates(self.db, run_id, "demos")
        elif view.pane == "teacher":
            run_id = self._run_id(view, "teacher")
            if run_id is not None:
                snap.run = read.get_run(self.db, run_id)
                snap.teacher = read.teacher_stats(self.db, run_id)
                snap.records = read.teacher_records(self.db, run_id, recent=RECENT_RECORDS)
        elif view.pane == "run" and view.run_id is not None:
            snap.run = read.get_run(self.db, view.run_id)
            snap.artifacts = read.artifacts(self.db, view.run_id)
        return snap

    def _run_id(self, view: View, stage: str) -> int | None:
        """The run chosen in the Runs pane, else the stage's latest."""
        if view.run_id is not None:
            return view.run_id
        latest = read.list_runs(self.db, stage=stage, limit=1)
        return latest[0].id if latest else None

    def _results(self, run_id: int) -> list[dict]:
        # Results only grow: when the count did not move, reuse the rows already parsed.
        count = self.db.execute("SELECT COUNT(*) FROM eval_results WHERE run_id = ?", [run_id]).fetchone()[0]
        if self._results_cache and self._results_cache[:2] == (run_id, count):
            return self._results_cache[2]
        rows = read.eval_results(self.db, run_id)
        self._results_cache = (run_id, count, rows)
        return rows


def program_review(workspace, run: read.Run) -> dict:
    """What the program review screen shows: the run's saved program and what changed from
    the program as written, through the same pipeline.programs functions as `po program
    show` and `po program diff`. Loading checks field names and the prompt fingerprint, so
    what is shown is what a pipeline would run. Returns {"error": ...} when it cannot."""
    from pipeline.program import ProductOwnerProgram
    from pipeline.programs import ProgramError, describe, diff_programs, fingerprint, load_program

    ref = (run.summary or {}).get("program")
    if not ref:
        return {"error": f"run {run.id} ({run.status}) has no saved program: MIPROv2 saves its best program "
                         "when it ends or is cancelled"}
    path = workspace.root / ref
    try:
        program = load_program(path)
    except (ProgramError, OSError) as exc:
        return {"error": str(exc)}  # it names the directory and what is wrong
    name = path.name
    manifest = path / "manifest.json"
    return {
        "program": ref,
        "fingerprint": fingerprint(program),
        "predictors": describe(program),
        "metadata": json.loads(manifest.read_text()).get("metadata", {}) if manifest.exists() else {},
        "diff": diff_programs(ProductOwnerProgram(), program, ("baseline", name)),
    }
