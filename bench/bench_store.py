"""Store benchmark: events/s written in batches (EventBuffer) vs one transaction per event.

Both are measured in the same process, alternating, on the same kind of file; the ratio
is the figure that survives a noisy machine. Goal: >= 50,000 events/s batched.

    .venv/bin/python bench/bench_store.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from state import write as store  # noqa: E402
from state.db import open_db, write  # noqa: E402

PAYLOAD = {"level": "info", "message": "example val-0007: 0.612 (4.1 s)"}


def batched(db, run_id: int, n: int) -> float:
    buffer = store.EventBuffer(db, run_id)
    started = time.perf_counter()
    for _ in range(n):
        buffer.emit("log", PAYLOAD)
    buffer.flush()
    return n / (time.perf_counter() - started)


def one_per_event(db, run_id: int, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        with write(db) as conn:
            conn.execute(
                "INSERT INTO events (run_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), "log", json.dumps(PAYLOAD)),
            )
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--single-events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "state.db")
        run_id = store.create_run(db, "bench", {})
        fast, slow = [], []
        for _ in range(args.rounds):
            fast.append(batched(db, run_id, args.events))
            slow.append(one_per_event(db, run_id, args.single_events))
    result = {
        "batched_events_per_s": round(statistics.median(fast)),
        "one_tx_per_event_per_s": round(statistics.median(slow)),
        "ratio": round(statistics.median(fast) / statistics.median(slow), 1),
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
