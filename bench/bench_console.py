"""Console benchmark on a big workspace: 1,000,000 events, 1,000 runs, 100,000 result rows.

The console runs in a real terminal (tmux, 80x24) as an operator would run it:
- start to first full paint of the overview (process start -> the first snapshot painted,
  from the console's PO_CONSOLE_TRACE mark), goals < 1 s;
- event written -> on screen (a run's progress committed -> capture-pane shows it), < 1.5 s;
- CPU of the idle console over 60 s, < 2% of one core;
- memory (RSS) after visiting every pane, < 200 MB.

    .venv/bin/python bench/bench_console.py [--idle-s 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.workspace import init_workspace  # noqa: E402
from state import write as store  # noqa: E402
from state.db import write  # noqa: E402

STAGES = ["baseline", "mipro", "teacher", "finetune", "validation"]


def build(root: Path, n_runs: int, n_events: int, n_results: int) -> tuple[object, int]:
    ws = init_workspace(root, demo=True)
    db = ws.db()
    now = time.time()
    rng = random.Random(7)
    with write(db) as conn:
        conn.executemany(
            "INSERT INTO runs (stage, state, config, created_at, started_at, ended_at, heartbeat_at, attempt, done, total)"
            " VALUES (?, ?, '{}', ?, ?, ?, ?, 1, 34, 34)",
            [(STAGES[i % len(STAGES)] if i % 3 else "baseline", rng.choice(["succeeded", "failed", "cancelled"]),
              now - 86400 + i, now - 86400 + i, now - 86000 + i, now - 86000 + i) for i in range(n_runs)],
        )
    run_ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE stage='baseline' ORDER BY id DESC LIMIT 100")]
    per_run = n_results // len(run_ids)
    for run_id in run_ids:
        with write(db) as conn:
            conn.executemany(
                "INSERT INTO eval_results (run_id, example_id, position, status, score, parts, latency_s, outputs, created_at)"
                " VALUES (?, ?, ?, 'ok', ?, '{\"length_bounds\": 1.0}', 4.2, '{}', ?)",
                [(run_id, f"val-{i:05d}", i, rng.random(), now) for i in range(per_run)],
            )
    batch = 100_000
    all_ids = [r[0] for r in db.execute("SELECT id FROM runs")]
    for start in range(0, n_events, batch):
        with write(db) as conn:
            conn.executemany(
                "INSERT INTO events (run_id, ts, kind, payload) VALUES (?, ?, 'log', ?)",
                [(all_ids[(start + i) % len(all_ids)], now, '{"message": "example val-0007: 0.612 (4.1 s)"}')
                 for i in range(batch)],
            )
    live = store.create_run(db, "baseline", {"examples": 1000})
    store.start_run(db, live, os.getpid(), "")  # this process keeps it alive
    store.set_progress(db, live, 0, 1000)
    return ws, live


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        ws, live = build(Path(tmp) / "ws", args.runs, args.events, args.results)
        build_s = time.perf_counter() - started
        db_mb = (ws.db_path.stat().st_size) / 1e6
        trace = Path(tmp) / "trace"
        session = f"po-bench-{os.getpid()}"
        env = f"PO_CONSOLE_TRACE={trace}"
        # Measured from just before tmux starts the console (an upper bound: it includes
        # tmux's own start); psutil's create_time is only as precise as the boot time (1 s).
        launched = time.time()
        tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
             f"env {env} {sys.executable} -m po_console.cli -w {ws.root} console")
        try:
            pid = int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])
            proc = psutil.Process(pid)
            created = launched
            deadline = time.time() + 30
            while not trace.exists() and time.time() < deadline:
                time.sleep(0.01)
            while "first-paint" not in trace.read_text() and time.time() < deadline:
                time.sleep(0.01)
            marks = dict(line.split() for line in trace.read_text().splitlines())
            first_paint = float(marks["first-paint"]) - created
            mounted = float(marks["mount"]) - created

            # Event -> screen: commit a new progress value, poll the terminal until it shows.
            writer = ws.db()
            latencies = []
            for k in range(1, args.samples + 1):
                time.sleep(random.uniform(0.2, 1.2))
                store.set_progress(writer, live, k * 7, 1000)
                written = time.perf_counter()
                while f"{k * 7}/1000" not in tmux("capture-pane", "-p", "-t", session):
                    if time.perf_counter() - written > 10:
                        break
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - written)

            # Visit every pane once (the baseline pane loads the latest run's 1,000 rows).
            for key in ["2", "3", "1"]:
                tmux("send-keys", "-t", session, key)
                time.sleep(1.5)
            rss_mb = proc.memory_info().rss / 1e6

            # Idle: nothing writes; the console only polls.
            store.finish_run(writer, live, "succeeded")
            time.sleep(3)
            cpu0, t0 = proc.cpu_times(), time.perf_counter()
            time.sleep(args.idle_s)
            cpu1, t1 = proc.cpu_times(), time.perf_counter()
            idle_cpu = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (t1 - t0) * 100
            rss_after_mb = proc.memory_info().rss / 1e6
        finally:
            tmux("kill-session", "-t", session)
    print(json.dumps({
        "workspace": {"runs": args.runs + 1, "events": args.events, "result_rows": args.results,
                      "state_db_mb": round(db_mb, 1), "build_s": round(build_s, 1)},
        "first_paint_s": round(first_paint, 3),
        "app_mounted_s": round(mounted, 3),
        "event_to_screen_s": {"p50": round(statistics.median(latencies), 3),
                              "p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3),
                              "max": round(max(latencies), 3), "samples": len(latencies)},
        "idle_cpu_percent_of_one_core": round(idle_cpu, 2),
        "idle_seconds": args.idle_s,
        "rss_mb_after_all_panes": round(rss_mb, 1),
        "rss_mb_after_idle": round(rss_after_mb, 1),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
    }, indent=2))


if __name__ == "__main__":
    main()
