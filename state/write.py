"""Writing runs, events, evaluation results and artifacts. Every function is one short
write transaction; a unit of work that cost model time is committed before it is counted."""

from __future__ import annotations

import json
import threading
import time

import sqlite_utils

from state.db import write

ACTIVE = ("queued", "running")
ENDED = ("succeeded", "failed", "cancelled")


def create_run(db: sqlite_utils.Database, stage: str, config: dict, *, detached: bool = False,
               chain_id: int | None = None, inputs_sha256: str | None = None) -> int:
    with write(db) as conn:
        cur = conn.execute(
            "INSERT INTO runs (stage, state, config, created_at, detached, chain_id, inputs_sha256) "
            "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
            (stage, json.dumps(config, sort_keys=True), time.time(), int(detached), chain_id, inputs_sha256),
        )
        return cur.lastrowid


def start_run(db: sqlite_utils.Database, run_id: int, pid: int, host: str) -> None:
    now = time.time()
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET state='running', pid=?, host=?, started_at=COALESCE(started_at, ?), heartbeat_at=?,"
            " attempt=attempt+1, ended_at=NULL, error=NULL WHERE id=?",
            (pid, host, now, now, run_id),
        )


def heartbeat(db: sqlite_utils.Database, run_id: int) -> bool:
    """Record that the run is alive; returns whether a cancel was requested."""
    with write(db) as conn:
        conn.execute("UPDATE runs SET heartbeat_at=? WHERE id=?", (time.time(), run_id))
        return bool(conn.execute("SELECT cancel_requested FROM runs WHERE id=?", (run_id,)).fetchone()[0])


def set_progress(db: sqlite_utils.Database, run_id: int, done: int, total: int | None, message: str | None = None) -> None:
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET done=?, total=?, message=COALESCE(?, message), heartbeat_at=? WHERE id=?",
            (done, total, message, time.time(), run_id),
        )


def finish_run(db: sqlite_utils.Database, run_id: int, state: str, *, summary: dict | None = None,
               error: str | None = None) -> None:
    assert state in ENDED, state
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET state=?, ended_at=?, summary=COALESCE(?, summary), error=?, heartbeat_at=? WHERE id=?",
            (state, time.time(), json.dumps(summary) if summary is not None else None, error, time.time(), run_id),
        )


def cancel_requested(db: sqlite_utils.Database, run_id: int) -> bool:
    with db.write_lock:  # the connection is shared with the heartbeat thread
        return bool(db.conn.execute("SELECT cancel_requested FROM runs WHERE id=?", (run_id,)).fetchone()[0])


def request_cancel(db: sqlite_utils.Database, run_id: int) -> None:
    with write(db) as conn:
        conn.execute("UPDATE runs SET cancel_requested=1 WHERE id=?", (run_id,))


def reopen_run(db: sqlite_utils.Database, run_id: int, *, detached: bool) -> None:
    """Make an ended or stale run runnable again; its stored units stay and are skipped."""
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET state='queued', cancel_requested=0, error=NULL, ended_at=NULL, pid=NULL,"
            " detached=?, heartbeat_at=NULL WHERE id=?",
            (int(detached), run_id),
        )


def put_eval_result(db: sqlite_utils.Database, run_id: int, row: dict, system: str = "") -> bool:
    """Store one evaluated example (of `system`, when the run evaluates several). Returns False
    when it was already stored (it is never replaced)."""
    record = {
        "run_id": run_id,
        "system": system,
        "example_id": row["example_id"],
        "position": row["position"],
        "status": row["status"],
        "score": row.get("score"),
        "parts": json.dumps(row.get("parts") or {}),
        "error": row.get("error"),
        "feedback": row.get("feedback"),
        **{key: row.get(key) or 0 for key in ("judge_calls", "judge_input_tokens", "judge_output_tokens")},
        "judge_cost_usd": row.get("judge_cost_usd"),
        "latency_s": row["latency_s"],
        "lm_calls": row.get("lm_calls", 0),
        "cache_hits": row.get("cache_hits", 0),
        "input_tokens": row.get("input_tokens", 0),
        "output_tokens": row.get("output_tokens", 0),
        "outputs": json.dumps(row.get("outputs") or {}, default=str),
        "cost_usd": row.get("cost_usd"),
        "created_at": time.time(),
    }
    columns = ", ".join(record)
    marks = ", ".join("?" for _ in record)
    with write(db) as conn:
        cur = conn.execute(f"INSERT OR IGNORE INTO eval_results ({columns}) VALUES ({marks})", tuple(record.values()))
        return cur.rowcount == 1


def put_artifact(db: sqlite_utils.Database, run_id: int, path: str, kind: str, sha256: str, size: int) -> None:
    with write(db) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO artifacts (run_id, path, kind, sha256, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, path, kind, sha256, size, time.time()),
        )


class EventBuffer:
    """Collects events from any thread and writes them in batches: one transaction per
    flush, never one per line."""

    def __init__(self, db: sqlite_utils.Database, run_id: int, max_pending: int = 500):
        self.db = db
        self.run_id = run_id
        self.max_pending = max_pending
        self._pending: list[tuple] = []
        self._lock = threading.Lock()

    def emit(self, kind: str, payload: dict) -> None:
        with self._lock:
            self._pending.append((self.run_id, time.time(), kind, json.dumps(payload, default=str)))
            full = len(self._pending) >= self.max_pending
        if full:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            with write(self.db) as conn:
                conn.executemany("INSERT INTO events (run_id, ts, kind, payload) VALUES (?, ?, ?, ?)", batch)
        return len(batch)


def put_trial(db: sqlite_utils.Database, run_id: int, row: dict, *, done: int | None = None,
              total: int | None = None) -> None:
    """One evaluation of a MIPROv2 run, and (given `done`) the run's progress, in one transaction."""
    now = time.time()
    record = {"run_id": run_id, **row, "created_at": now}
    columns, marks = ", ".join(record), ", ".join("?" for _ in record)
    with write(db) as conn:
        conn.execute(f"INSERT OR REPLACE INTO trials ({columns}) VALUES ({marks})", tuple(record.values()))
        if done is not None:
            conn.execute("UPDATE runs SET done=?, total=?, heartbeat_at=? WHERE id=?", (done, total, now, run_id))


def put_candidates(db: sqlite_utils.Database, run_id: int, kind: str, contents: list[str]) -> None:
    with write(db) as conn:
        conn.executemany("INSERT OR REPLACE INTO candidates (run_id, kind, idx, content) VALUES (?, ?, ?, ?)",
                         [(run_id, kind, i, c) for i, c in enumerate(contents)])


def clear_trials(db: sqlite_utils.Database, run_id: int) -> None:
    """A resumed MIPROv2 run replays from the LM cache and records its trials again."""
    with write(db) as conn:
        conn.execute("DELETE FROM trials WHERE run_id = ?", (run_id,))


TEACHER_COLUMNS = ("input_key", "attempt", "example_id", "status", "score", "reason", "reason_kind", "parts",
                   "feedback", "inputs", "outputs", "trace", "latency_s", "input_tokens", "output_tokens", "cost_usd",
                   "judge_calls", "judge_input_tokens", "judge_output_tokens", "judge_cost_usd", "model")


def put_teacher_record(db: sqlite_utils.Database, run_id: int, row: dict, *, target: int) -> tuple[str, int | None]:
    """Store one teacher attempt; an accepted one is numbered 1..target in the same
    transaction, so it is durable before it is counted. An acceptance once `target` records
    are accepted is kept as `surplus` (paid for, not counted). Returns (status, seq).
    An attempt already stored (a replay after a crash) is left as it was."""
    record = {k: row.get(k) for k in TEACHER_COLUMNS}
    for key in ("inputs", "outputs"):
        record[key] = json.dumps(record[key] if record[key] is not None else {}, sort_keys=True, default=str)
    record["parts"] = json.dumps(record["parts"] or {})  # in the metric's order: panes show them so
    record["trace"] = json.dumps(record["trace"], default=str) if record["trace"] is not None else None
    for key in ("input_tokens", "output_tokens", "judge_calls", "judge_input_tokens", "judge_output_tokens"):
        record[key] = record[key] or 0
    with write(db) as conn:
        stored = conn.execute("SELECT status, seq FROM teacher_records WHERE run_id=? AND input_key=? AND attempt=?",
                              (run_id, record["input_key"], record["attempt"])).fetchone()
        if stored:
            return stored[0], stored[1]
        seq = None
        if record["status"] == "accepted":
            taken = conn.execute("SELECT 1 FROM teacher_records WHERE run_id=? AND input_key=? AND status='accepted'",
                                 (run_id, record["input_key"])).fetchone()
            count = conn.execute("SELECT COUNT(*) FROM teacher_records WHERE run_id=? AND status='accepted'",
                                 (run_id,)).fetchone()[0]
            if taken or count >= target:
                record["status"] = "surplus"
                record["reason"] = record["reason_kind"] = ("input already accepted" if taken
                                                            else f"target of {target} already reached")
            else:
                seq = count + 1
        record.update(run_id=run_id, seq=seq, created_at=time.time())
        columns, marks = ", ".join(record), ", ".join("?" for _ in record)
        conn.execute(f"INSERT INTO teacher_records ({columns}) VALUES ({marks})", tuple(record.values()))
        return record["status"], seq


def promote(db: sqlite_utils.Database, run_id: int, system: str, provider_config: dict, verdict: str, *,
            forced: bool, who: str) -> int:
    """Make `system` of validation run `run_id` the workspace's task model (the newest promotion
    not undone is the one in force)."""
    with write(db) as conn:
        cur = conn.execute(
            "INSERT INTO promotions (run_id, system, provider_config, verdict, forced, promoted_by, promoted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, system, json.dumps(provider_config), verdict, int(forced), who, time.time()))
        return cur.lastrowid


def undo_promotion(db: sqlite_utils.Database, promotion_id: int, who: str) -> None:
    with write(db) as conn:
        conn.execute("UPDATE promotions SET undone_by=?, undone_at=? WHERE id=? AND undone_at IS NULL",
                     (who, time.time(), promotion_id))


def register_served_model(db: sqlite_utils.Database, name: str, provider_config: dict, *, run_id: int | None,
                          source_run_id: int | None) -> None:
    """Make a served model a provider by `name` (replacing an older one of that name)."""
    with write(db) as conn:
        conn.execute("INSERT OR REPLACE INTO served_models (name, provider_config, run_id, source_run_id, created_at) "
                     "VALUES (?, ?, ?, ?, ?)", (name, json.dumps(provider_config), run_id, source_run_id, time.time()))


def create_chain(db: sqlite_utils.Database, stages: list[str], *, promote: bool) -> int:
    with write(db) as conn:
        cur = conn.execute("INSERT INTO chains (stages, promote, state, created_at) VALUES (?, ?, 'running', ?)",
                           (json.dumps(stages), int(promote), time.time()))
        return cur.lastrowid


def chain_started(db: sqlite_utils.Database, chain_id: int, pid: int, host: str) -> None:
    with write(db) as conn:
        conn.execute("UPDATE chains SET state='running', pid=?, host=?, finished_at=NULL, error=NULL WHERE id=?",
                     (pid, host, chain_id))


def chain_ended(db: sqlite_utils.Database, chain_id: int, state: str, error: str | None = None) -> None:
    with write(db) as conn:
        conn.execute("UPDATE chains SET state=?, finished_at=?, error=? WHERE id=?",
                     (state, time.time(), error, chain_id))
