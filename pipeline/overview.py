"""Where the pipeline stands, as data: one row per stage, and one run in detail. `po status`
prints these; the console draws the same rows (the CLI mirrors the API, as sqlite-utils' does)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline import stages
from pipeline.stages.base import Details
from pipeline.units import duration
from state import read


@dataclass
class StageRow:
    stage: str
    title: str
    built: bool
    status: str  # a run's status, "never run" or "not built yet"
    run: int | None
    done: int | None
    total: int | None
    rate_per_min: float | None
    eta_s: float | None
    eta_high_s: float | None  # set when the ETA is a range (the stage's own estimate)
    heartbeat_age_s: float | None
    result: str  # the error of a failed run, else the stage's headline

    def to_json(self) -> dict:
        return asdict(self)

    def eta_text(self) -> str:
        """`4m`, or `30s–2m` when the stage's estimate is a range."""
        if self.eta_high_s is not None and self.eta_s is not None:
            return f"{duration(self.eta_s, compact=True)}–{duration(self.eta_high_s, compact=True)}"
        return duration(self.eta_s, compact=True)


def headline(run: read.Run | None) -> str:
    """The key figure of a run, from its stage ("" for a stage no longer installed)."""
    if run is None or run.stage not in stages.names():
        return ""
    return stages.get(run.stage).headline(run.summary)


def stage_rows(db) -> list[StageRow]:
    """One row per stage of the pipeline, built or planned, with its latest run (none when
    `db` is None: what to show before the store is read)."""
    latest = read.latest_run_per_stage(db) if db is not None else {}
    rows = []
    for name, title, stage in stages.pipeline():
        run = latest.get(name)
        rate = eta = eta_high = None
        running = run is not None and run.status == "running"
        if running and run.elapsed and run.done and run.total:
            rate = run.done / run.elapsed
            eta = (run.total - run.done) / rate if rate else None
        if running and stage is not None:
            estimate = stage.eta(db, run)
            if estimate is not None:
                eta, eta_high = estimate
        rows.append(StageRow(
            stage=name, title=title, built=stage is not None,
            status=run.status if run else ("never run" if stage is not None else "not built yet"),
            run=run.id if run else None, done=run.done if run else None, total=run.total if run else None,
            rate_per_min=rate * 60 if rate else None, eta_s=eta, eta_high_s=eta_high,
            heartbeat_age_s=run.heartbeat_age if run and run.state in ("queued", "running") else None,
            result=(run.error or headline(run)) if run else ""))
    return rows


@dataclass
class RunStatus:
    run: read.Run
    artifacts: list[read.Artifact]
    details: Details | None  # the stage's own figures (a teacher run's projection, ...)

    def to_json(self) -> dict:
        return {**self.run.to_json(), "artifacts": [asdict(a) for a in self.artifacts],
                **(self.details.data if self.details else {})}


def run_status(db, run_id: int) -> RunStatus | None:
    run = read.get_run(db, run_id)
    if run is None:
        return None
    stage = stages.get(run.stage) if run.stage in stages.names() else None
    return RunStatus(run, read.artifacts(db, run_id), stage.details(db, run) if stage else None)
