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
class ChainStatus:
    """The last `po run all` as a whole: where it is, and how long the rest may take."""

    chain: int
    status: str  # running, succeeded, failed, cancelled, stale
    stages: list[str]
    current: str | None  # the stage running now, or where it stopped
    eta_s: float | None  # the current run's ETA plus the later stages' last durations
    untimed: list[str]  # later stages with no earlier run to time
    error: str | None

    def to_json(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        where = f"{self.current} ({self.stages.index(self.current) + 1} of {len(self.stages)})" \
            if self.current in self.stages else ""
        if self.status == "running":
            eta = f", ETA {duration(self.eta_s)}" if self.eta_s is not None else ""
            eta += f" + {', '.join(self.untimed)} (never timed)" if self.untimed and eta else ""
            return f"pipeline {self.chain} running: {where}{eta}"
        if self.status == "succeeded":
            return f"pipeline {self.chain} succeeded"
        if self.error and self.status in ("failed", "cancelled"):
            return f"pipeline {self.chain} {self.status}: {self.error}"  # names the stage and what to do
        return f"pipeline {self.chain} {self.status} at {where or 'its start'} — po resume continues it"


def chain_status(db, rows: list[StageRow] | None = None) -> ChainStatus | None:
    """The newest chain's standing (None before any `po run all`); `rows`: stage_rows(db), when
    the caller has them."""
    chain = read.latest_chain(db) if db is not None else None
    if chain is None:
        return None
    runs = read.chain_runs(db, chain.id)
    status = chain.status
    current = runs[-1].stage if runs else None
    eta, untimed = None, []
    if status == "running" and current is not None:
        row = next((r for r in rows or stage_rows(db) if r.stage == current), None)
        eta = row.eta_high_s or row.eta_s if row else None
        latest = {}
        for run in read.list_runs(db, limit=500):  # newest first: the last succeeded run of each stage
            if run.state == "succeeded" and run.started_at and run.ended_at:
                latest.setdefault(run.stage, run.ended_at - run.started_at)
        for name in chain.stages[chain.stages.index(current) + 1:]:
            if name in latest:
                eta = (eta or 0.0) + latest[name]
            else:
                untimed.append(name)
    return ChainStatus(chain.id, status, chain.stages, current, eta, untimed, chain.error)


def task_model(db) -> str:
    """Which model answers `provider = "task"`, in one line."""
    from pipeline.promotion import describe

    return describe(read.active_promotion(db) if db is not None else None)


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
