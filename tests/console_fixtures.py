"""A workspace with recorded runs, written through the real store at fixed times, so the
console's screens can be compared with snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.workspace import Workspace, init_workspace
from state import runs as store
from state.db import write

T0 = 1_790_000_000.0  # a fixed moment, so rendered times never move


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def record_baseline(ws: Workspace, *, state: str, results: int, started: float, took: float,
                    pid: int | None = None, total: int = 5) -> int:
    db = ws.db()
    run_id = store.create_run(db, "baseline", {"threads": 2, "limit": total, "examples": total, "provider": "local",
                                               "val": str(ws.root / "data/val.jsonl"), "val_sha256": "0" * 64})
    rows = []
    for i in range(results):
        ok = i != 1
        row = {"example_id": f"val-{i + 1:04d}", "position": i, "status": "ok" if ok else "parse_failure",
               "score": round(0.3 + 0.1 * i, 3) if ok else None,
               "parts": {"vision_structure": 0.5, "requirement_coverage": 0.25 * (i % 4), "review_validity": 0.5,
                         "vision_consistency": 1.0, "length_bounds": 0.75, "no_repetition": 1.0} if ok else {},
               "latency_s": 4.0 + i, "lm_calls": 1, "input_tokens": 600, "output_tokens": 120,
               "outputs": {"product_vision": f"A vision for example {i + 1}.", "product_owner_review": "Verdict: Approved"}
               if ok else {"raw": "garbled"}}
        store.put_eval_result(db, run_id, row)
        rows.append(row)
    summary = None
    if state == "succeeded":
        from pipeline.evaluation import summarize
        from state.read import eval_results

        summary = summarize(eval_results(db, run_id))
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET state=?, created_at=?, started_at=?, ended_at=?, heartbeat_at=?, pid=?, host=NULL,"
            " attempt=1, done=?, total=?, summary=? WHERE id=?",
            (state, started, started, None if state == "running" else started + took, started + took, pid, results,
             total, json.dumps(summary) if summary else None, run_id),
        )
        conn.execute("UPDATE eval_results SET created_at=? WHERE run_id=?", (started, run_id))
    log = ws.run_dir(run_id) / "run.log"
    log.write_text("".join(f"2026-09-21 12:00:{i:02d},000 INFO example val-{i + 1:04d}: done\n" for i in range(results)))
    return run_id


def recorded_workspace(root: Path) -> Workspace:
    ws = init_workspace(root, demo=True)
    record_baseline(ws, state="succeeded", results=5, started=T0, took=95.0)
    record_baseline(ws, state="cancelled", results=2, started=T0 + 600, took=20.0)
    return ws
