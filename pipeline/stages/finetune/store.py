"""The fine-tune stage's own tables (declared as the stage's migrations): the curves — one
row per logged step and per evaluation — and the checkpoints on disk. A step replayed after
a resume replaces its row: the stored curve never holds a step twice."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from state.db import write

MIGRATIONS = (
    """
    CREATE TABLE finetune_metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,             -- train, eval
        epoch REAL,
        loss REAL,
        learning_rate REAL,
        grad_norm REAL,
        tokens_per_s REAL,
        seconds_per_step REAL,
        eta_s REAL,
        resources TEXT,                 -- JSON: cpu_percent, rss_mb, gpus [...]
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, kind, step)
    );
    CREATE TABLE finetune_checkpoints (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        step INTEGER NOT NULL,
        path TEXT NOT NULL,             -- relative to the workspace
        loss REAL,
        bytes INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, step)
    )
    """,
    # Each training process's last step, so that every rank of a multi-process run is seen.
    """
    CREATE TABLE finetune_ranks (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        rank INTEGER NOT NULL,
        step INTEGER NOT NULL,
        loss REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, rank)
    )
    """,
)


@dataclass
class Point:
    step: int
    kind: str
    epoch: float | None
    loss: float | None
    learning_rate: float | None
    grad_norm: float | None
    tokens_per_s: float | None
    seconds_per_step: float | None
    eta_s: float | None
    resources: dict
    created_at: float


@dataclass
class Checkpoint:
    step: int
    path: str
    loss: float | None
    bytes: int
    created_at: float


def put_point(db, run_id: int, point) -> None:
    """One logged step or evaluation (a finetune.train.Logged), replacing a replayed one."""
    with write(db) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO finetune_metrics (run_id, step, kind, epoch, loss, learning_rate, grad_norm,"
            " tokens_per_s, seconds_per_step, eta_s, resources, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, point.step, point.kind, point.epoch, point.loss, point.learning_rate, point.grad_norm,
             point.tokens_per_s, point.seconds_per_step, point.eta_s, json.dumps(point.resources), time.time()))


def put_rank(db, run_id: int, rank: int, step: int, loss: float | None) -> None:
    with write(db) as conn:
        conn.execute("INSERT OR REPLACE INTO finetune_ranks (run_id, rank, step, loss, updated_at) VALUES (?, ?, ?, ?, ?)",
                     (run_id, rank, step, loss, time.time()))


def ranks(db, run_id: int) -> list[tuple[int, int, float | None]]:
    """(rank, step, loss) of each training process."""
    return [tuple(r) for r in db.execute("SELECT rank, step, loss FROM finetune_ranks WHERE run_id = ? ORDER BY rank",
                                         [run_id]).fetchall()]


def forget_after(db, run_id: int, step: int) -> None:
    """A resume continues from `step`: what the lost attempt logged after it is redone."""
    with write(db) as conn:
        conn.execute("DELETE FROM finetune_metrics WHERE run_id = ? AND step > ?", (run_id, step))


def sync_checkpoints(db, run_id: int, kept: list[tuple[int, str, float | None, int]]) -> None:
    """The checkpoints on disk now (step, path, loss, bytes): pruned ones leave the table."""
    now = time.time()
    with write(db) as conn:
        conn.execute(f"DELETE FROM finetune_checkpoints WHERE run_id = ? AND step NOT IN "
                     f"({', '.join('?' for _ in kept) or 'NULL'})", (run_id, *[k[0] for k in kept]))
        conn.executemany("INSERT OR IGNORE INTO finetune_checkpoints (run_id, step, path, loss, bytes, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", [(run_id, *k, now) for k in kept])


def points(db, run_id: int, kind: str | None = None) -> list[Point]:
    sql = "SELECT * FROM finetune_metrics WHERE run_id = ?" + (" AND kind = ?" if kind else "") + " ORDER BY step"
    rows = db.query(sql, [run_id] + ([kind] if kind else []))
    return [Point(r["step"], r["kind"], r["epoch"], r["loss"], r["learning_rate"], r["grad_norm"], r["tokens_per_s"],
                  r["seconds_per_step"], r["eta_s"], json.loads(r["resources"] or "{}"), r["created_at"]) for r in rows]


def checkpoints(db, run_id: int) -> list[Checkpoint]:
    rows = db.query("SELECT * FROM finetune_checkpoints WHERE run_id = ? ORDER BY step", [run_id])
    return [Checkpoint(r["step"], r["path"], r["loss"], r["bytes"], r["created_at"]) for r in rows]
