"""Read models: what the CLI and the console show, as typed records. Nothing here writes."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field, fields

import sqlite_utils

# A queued/running run is stale when its process is known to be gone (same host), or
# when its heartbeat (every 2 s) is older than this: another host, or a reused pid.
STALE_AFTER_S = 60.0


@dataclass
class Run:
    id: int
    stage: str
    state: str  # as stored
    config: dict
    created_at: float
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    pid: int | None
    host: str | None
    detached: bool
    attempt: int
    done: int
    total: int | None
    message: str | None
    error: str | None
    cancel_requested: bool
    summary: dict | None = field(default=None)
    chain_id: int | None = None  # the `po run all` chain it is a step of
    inputs_sha256: str | None = None  # what it read (config, data, program, models): equal means the same run

    @property
    def status(self) -> str:
        """The state a user should see: `stale` when a queued/running run's process is gone."""
        if self.is_stale():
            return "stale"
        return self.state

    def is_stale(self, now: float | None = None) -> bool:
        if self.state not in ("queued", "running"):
            return False
        last = self.heartbeat_at or self.created_at
        if (now or time.time()) - last > STALE_AFTER_S:
            return True
        if self.pid is None:
            return False  # queued, its process not started yet
        return not process_alive(self.pid, self.host)

    @property
    def heartbeat_age(self) -> float | None:
        return None if self.heartbeat_at is None else max(0.0, time.time() - self.heartbeat_at)

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    def to_json(self) -> dict:
        data = asdict(self)
        data["status"] = self.status
        data["heartbeat_age_s"] = self.heartbeat_age
        return data


def process_alive(pid: int | None, host: str | None) -> bool:
    if pid is None:
        return False
    if host and host != socket.gethostname():
        return True  # cannot see another machine's processes: trust the heartbeat alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _run(row: dict) -> Run:
    row = dict(row)
    row["config"] = json.loads(row["config"] or "{}")
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
    row["detached"] = bool(row["detached"])
    row["cancel_requested"] = bool(row["cancel_requested"])
    return Run(**row)


def get_run(db: sqlite_utils.Database, run_id: int) -> Run | None:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    return _run(rows[0]) if rows else None


def list_runs(db: sqlite_utils.Database, *, stage: str | None = None, limit: int = 50) -> list[Run]:
    where, params = ("WHERE stage = ?", [stage]) if stage else ("", [])
    sql = f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?"
    return [_run(r) for r in db.query(sql, [*params, limit])]


def newest_succeeded(db: sqlite_utils.Database, summary_key: str, *, limit: int = 500) -> Run | None:
    """The newest succeeded run whose summary names `summary_key` (an `adapter`, a `program`):
    what a stage made, whichever stage made it."""
    return next((r for r in list_runs(db, limit=limit) if r.state == "succeeded" and (r.summary or {}).get(summary_key)),
                None)


def latest_run_per_stage(db: sqlite_utils.Database) -> dict[str, Run]:
    sql = "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY stage)"
    return {r.stage: r for r in map(_run, db.query(sql))}


def events_since(db: sqlite_utils.Database, seq: int, *, run_id: int | None = None, limit: int = 1000) -> list[dict]:
    where = "seq > ?" + (" AND run_id = ?" if run_id is not None else "")
    params = [seq] + ([run_id] if run_id is not None else [])
    rows = db.query(f"SELECT * FROM events WHERE {where} ORDER BY seq LIMIT ?", [*params, limit])
    return [{**r, "payload": json.loads(r["payload"])} for r in rows]


def list_active_runs(db: sqlite_utils.Database) -> list[Run]:
    """Every queued or running run, however old (the console watches each one end)."""
    return [_run(r) for r in db.query("SELECT * FROM runs WHERE state IN ('queued', 'running') ORDER BY id")]


def get_runs(db: sqlite_utils.Database, run_ids: list[int]) -> list[Run]:
    marks = ", ".join("?" for _ in run_ids)
    return [_run(r) for r in db.query(f"SELECT * FROM runs WHERE id IN ({marks}) ORDER BY id", list(run_ids))] \
        if run_ids else []


def done_example_ids(db: sqlite_utils.Database, run_id: int, system: str = "") -> set[str]:
    return {r["example_id"] for r in db.query("SELECT example_id FROM eval_results WHERE run_id = ? AND system = ?",
                                              [run_id, system])}


def _record(cls, row: dict, json_columns: tuple[str, ...]):
    """A dataclass from a row: JSON columns decoded, columns the class does not know dropped
    (a newer store read by an older reader)."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in row.items() if k in known}
    for key in json_columns:
        if key in values:
            values[key] = json.loads(values[key]) if values[key] else ({} if key != "trace" else None)
    return cls(**values)


@dataclass
class EvalResult:
    """One evaluated example. `score` is None unless `status` is ok (parse failures and
    errors are kept out of the mean)."""

    example_id: str
    position: int
    status: str  # ok, parse_failure, error
    score: float | None
    latency_s: float
    parts: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)  # the fields, or {"raw": text} that failed to parse
    error: str | None = None
    feedback: str | None = None  # the metric's explanation, when it gave one
    lm_calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    judge_calls: int = 0  # LM calls the metric made (a judge), apart from the program's
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_usd: float | None = None
    run_id: int | None = None
    created_at: float | None = None
    system: str = ""  # which program x model answered, in a run that evaluates several


def eval_results(db: sqlite_utils.Database, run_id: int, system: str | None = None) -> list[EvalResult]:
    """A run's results in example order; of one system only when `system` is given."""
    if system is None:
        rows = db.query("SELECT * FROM eval_results WHERE run_id = ? ORDER BY position, system", [run_id])
    else:
        rows = db.query("SELECT * FROM eval_results WHERE run_id = ? AND system = ? ORDER BY position",
                        [run_id, system])
    return [_record(EvalResult, r, ("parts", "outputs")) for r in rows]


def count_eval_results(db: sqlite_utils.Database, run_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM eval_results WHERE run_id = ?", [run_id]).fetchone()[0]


@dataclass
class Artifact:
    run_id: int
    path: str  # relative to the workspace
    kind: str
    sha256: str
    bytes: int
    created_at: float


def artifacts(db: sqlite_utils.Database, run_id: int) -> list[Artifact]:
    return [Artifact(**r) for r in db.query("SELECT * FROM artifacts WHERE run_id = ? ORDER BY path", [run_id])]


@dataclass
class Trial:
    """One evaluation of a MIPROv2 run, numbered as MIPROv2 numbers its trials."""

    run_id: int
    evaluation: int
    trial: int | None
    kind: str  # full, minibatch
    score: float | None  # mean metric in [0, 1]; None when the evaluation failed
    best_full: float | None
    examples: int
    instruction: int | None
    demos: int | None
    duration_s: float
    lm_calls: int
    parse_failures: int
    errors: int
    created_at: float
    cache_hits: int = 0


def trials(db: sqlite_utils.Database, run_id: int) -> list[Trial]:
    return [_record(Trial, r, ()) for r in db.query("SELECT * FROM trials WHERE run_id = ? ORDER BY evaluation",
                                                     [run_id])]


def candidates(db: sqlite_utils.Database, run_id: int, kind: str) -> list[str]:
    rows = db.query("SELECT content FROM candidates WHERE run_id = ? AND kind = ? ORDER BY idx", [run_id, kind])
    return [r["content"] for r in rows]


@dataclass
class TeacherRecord:
    """One teacher attempt: an answer to one input and its decision."""

    run_id: int
    input_key: str
    attempt: int  # 1..attempts_per_input; 0 for an imported record
    example_id: str
    status: str  # accepted, rejected, surplus, error
    seq: int | None  # 1..N in order of acceptance
    score: float | None
    reason: str | None
    reason_kind: str | None  # what rejection reasons are ranked by: a metric part, parse failure, error
    parts: dict
    inputs: dict
    outputs: dict
    latency_s: float
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    model: str | None
    created_at: float
    feedback: str | None = None  # the metric's explanation, when it gave one
    trace: list | None = None  # each predictor call: {"predictor", "inputs", "outputs"} (None: not recorded)
    judge_calls: int = 0  # LM calls the metric made (a judge), apart from the program's
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_usd: float | None = None


def teacher_records(db: sqlite_utils.Database, run_id: int, *, accepted_only: bool = False,
                    recent: int | None = None) -> list[TeacherRecord]:
    """Attempts of a teacher run: accepted ones in acceptance order, or the `recent` newest first."""
    if accepted_only:
        sql, params = "SELECT * FROM teacher_records WHERE run_id=? AND status='accepted' ORDER BY seq", [run_id]
    elif recent:
        sql, params = "SELECT * FROM teacher_records WHERE run_id=? ORDER BY created_at DESC LIMIT ?", [run_id, recent]
    else:
        sql, params = "SELECT * FROM teacher_records WHERE run_id=? ORDER BY created_at", [run_id]
    return [_record(TeacherRecord, r, ("parts", "inputs", "outputs", "trace")) for r in db.query(sql, params)]


@dataclass
class TeacherStats:
    """Counts and sums of a teacher run (for po status and the console)."""

    attempts: int
    accepted: int
    rejected: int
    surplus: int
    errors: int
    inputs: int
    imported: int
    accepted_imported: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None unless every generated attempt had a price
    first_at: float | None
    last_at: float | None
    seconds_per_attempt: float | None  # over the latest attempts
    reasons: list[tuple[str, int]]  # rejection kinds, most frequent first
    scores: list[float]  # of generated attempts

    def to_json(self) -> dict:
        return asdict(self)


def teacher_stats(db: sqlite_utils.Database, run_id: int) -> TeacherStats:
    """One pass over a teacher run's rows."""
    row = db.execute(
        """SELECT COUNT(*), SUM(status='accepted'), SUM(status='rejected'), SUM(status='surplus'),
                  SUM(status='error'), COUNT(DISTINCT input_key), SUM(input_tokens), SUM(output_tokens),
                  SUM(cost_usd), SUM(cost_usd IS NOT NULL OR attempt = 0), MIN(created_at), MAX(created_at),
                  SUM(attempt = 0), SUM(attempt = 0 AND status = 'accepted')
           FROM teacher_records WHERE run_id=?""", [run_id]).fetchone()
    (attempts, accepted, rejected, surplus, errors, inputs, tin, tout, cost, priced, first, last, imported,
     accepted_imported) = row
    # Throughput over the latest generated attempts (a pause before a resume falls out of the window).
    recent = [r[0] for r in db.execute("SELECT created_at FROM teacher_records WHERE run_id=? AND attempt > 0 "
                                       "ORDER BY created_at DESC LIMIT 101", [run_id])]
    per_attempt = (recent[0] - recent[-1]) / (len(recent) - 1) if len(recent) > 1 else None
    reasons = db.execute(
        """SELECT reason_kind, COUNT(*) AS n FROM teacher_records
           WHERE run_id=? AND status IN ('rejected', 'error') GROUP BY reason_kind ORDER BY n DESC""",
        [run_id]).fetchall()
    scores = [r[0] for r in db.execute(
        "SELECT score FROM teacher_records WHERE run_id=? AND score IS NOT NULL AND attempt > 0", [run_id])]
    return TeacherStats(
        attempts=attempts or 0, accepted=accepted or 0, rejected=rejected or 0, surplus=surplus or 0,
        errors=errors or 0, inputs=inputs or 0, imported=imported or 0, accepted_imported=accepted_imported or 0,
        input_tokens=tin or 0, output_tokens=tout or 0,
        cost_usd=(cost or 0.0) if attempts and priced == attempts else None,
        first_at=first, last_at=last, seconds_per_attempt=per_attempt,
        reasons=[(why, n) for why, n in reasons], scores=scores)


@dataclass
class Promotion:
    """A system made the workspace's task model by `po promote`."""

    id: int
    run_id: int
    system: str
    provider_config: dict
    verdict: str  # the gate's verdict at the time
    forced: bool
    promoted_by: str
    promoted_at: float
    undone_by: str | None = None
    undone_at: float | None = None


def promotions(db: sqlite_utils.Database) -> list[Promotion]:
    """Every promotion, newest first."""
    if "promotions" not in db.table_names():
        return []
    found = []
    for row in db.query("SELECT * FROM promotions ORDER BY id DESC"):
        row = dict(row)
        row["provider_config"] = json.loads(row["provider_config"])
        row["forced"] = bool(row["forced"])
        found.append(Promotion(**row))
    return found


def active_promotion(db: sqlite_utils.Database) -> Promotion | None:
    """The promotion in force: the newest not undone."""
    return next((p for p in promotions(db) if p.undone_at is None), None)


@dataclass
class ServedModel:
    """A model served outside this process, usable as provider `name`."""

    name: str
    provider_config: dict
    run_id: int | None  # the serve run it lives in; None: it lives on its server (Ollama)
    source_run_id: int | None
    created_at: float


def served_models(db: sqlite_utils.Database) -> list[ServedModel]:
    if "served_models" not in db.table_names():
        return []
    return [ServedModel(r["name"], json.loads(r["provider_config"]), r["run_id"], r["source_run_id"], r["created_at"])
            for r in db.query("SELECT * FROM served_models ORDER BY name")]


def served_model(db: sqlite_utils.Database, name: str) -> ServedModel | None:
    return next((m for m in served_models(db) if m.name == name), None)


@dataclass
class Chain:
    """`po run all`: its stages in order, and whether it promotes when the gate passes."""

    id: int
    stages: list[str]
    promote: bool
    state: str  # as stored: running, succeeded, failed, cancelled
    pid: int | None
    host: str | None
    created_at: float
    finished_at: float | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        """`stale` when it says running and its process is gone."""
        if self.state == "running" and self.pid is not None and not process_alive(self.pid, self.host):
            return "stale"
        return self.state


def _chain(row: dict) -> Chain:
    row = dict(row)
    row["stages"] = json.loads(row["stages"])
    row["promote"] = bool(row["promote"])
    return Chain(**row)


def get_chain(db: sqlite_utils.Database, chain_id: int) -> Chain | None:
    rows = list(db.query("SELECT * FROM chains WHERE id = ?", [chain_id]))
    return _chain(rows[0]) if rows else None


def latest_chain(db: sqlite_utils.Database) -> Chain | None:
    if "chains" not in db.table_names():
        return None
    rows = list(db.query("SELECT * FROM chains ORDER BY id DESC LIMIT 1"))
    return _chain(rows[0]) if rows else None


def chain_runs(db: sqlite_utils.Database, chain_id: int) -> list[Run]:
    """The runs a chain started, oldest first."""
    return [_run(r) for r in db.query("SELECT * FROM runs WHERE chain_id = ? ORDER BY id", [chain_id])]


def same_inputs_run(db: sqlite_utils.Database, stage: str, inputs_sha256: str) -> Run | None:
    """The newest succeeded run of `stage`, when it read exactly these inputs. Only the newest:
    the stages after it read the newest succeeded run, so an older one cannot stand in for it."""
    rows = list(db.query("SELECT * FROM runs WHERE stage = ? AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
                         [stage]))
    return _run(rows[0]) if rows and rows[0]["inputs_sha256"] == inputs_sha256 else None
