"""Console benchmark on a big workspace: 1,000,000 events, 1,000 runs, 100,000 result rows.

The console runs in a real terminal (tmux, 80x24) as an operator would run it:
- start to first full paint of the overview: tmux starts `po console`, then the terminal is
  read (capture-pane) until the overview shows the live run's progress from the store;
  goal < 1 s;
- event written -> on screen (a run's progress committed -> capture-pane shows it), < 1.5 s;
- CPU of the idle console over 60 s, < 2% of one core;
- memory (RSS) after visiting every pane, < 200 MB.

Nothing inside the console is instrumented: the same measurement runs any version of it.
`--compare DIR` measures another checkout (e.g. the previous commit in a git worktree) side
by side, in alternating rounds, each on a workspace built by its own code:

    .venv/bin/python bench/bench_console.py [--idle-s 60]
    git worktree add /tmp/before HEAD~1
    .venv/bin/python bench/bench_console.py --compare /tmp/before --rounds 3
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
STAGES = ["baseline", "mipro", "teacher", "finetune", "validation"]

# Run by the checkout under test (its own po init and store), so that each version reads a
# workspace of its own schema. Only what every version has: init_workspace, open_db, write.
BUILD = r"""
import json, os, random, sys, time
from pathlib import Path
from pipeline.workspace import init_workspace
from state.db import write
root, n_runs, n_events, n_results, stages = Path(sys.argv[1]), *map(int, sys.argv[2:5]), sys.argv[5].split(",")
ws = init_workspace(root, demo=True)
db = ws.db()
now = time.time()
rng = random.Random(7)
with write(db) as conn:
    conn.executemany(
        "INSERT INTO runs (stage, state, config, created_at, started_at, ended_at, heartbeat_at, attempt, done, total)"
        " VALUES (?, ?, '{}', ?, ?, ?, ?, 1, 34, 34)",
        [(stages[i % len(stages)] if i % 3 else "baseline", rng.choice(["succeeded", "failed", "cancelled"]),
          now - 86400 + i, now - 86400 + i, now - 86000 + i, now - 86000 + i) for i in range(n_runs)])
run_ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE stage='baseline' ORDER BY id DESC LIMIT 100")]
per_run = n_results // len(run_ids)
for run_id in run_ids:
    with write(db) as conn:
        conn.executemany(
            "INSERT INTO eval_results (run_id, example_id, position, status, score, parts, latency_s, outputs, created_at)"
            " VALUES (?, ?, ?, 'ok', ?, '{\"length_bounds\": 1.0}', 4.2, '{}', ?)",
            [(run_id, f"val-{i:05d}", i, rng.random(), now) for i in range(per_run)])
all_ids = [r[0] for r in db.execute("SELECT id FROM runs")]
for start in range(0, n_events, 100_000):
    with write(db) as conn:
        conn.executemany("INSERT INTO events (run_id, ts, kind, payload) VALUES (?, ?, 'log', ?)",
                         [(all_ids[(start + i) % len(all_ids)], now, '{"message": "example val-0007: 0.612 (4.1 s)"}')
                          for i in range(100_000)])
with write(db) as conn:  # a live baseline run, kept alive by the benchmark's own process
    live = conn.execute("INSERT INTO runs (stage, state, config, created_at, started_at, heartbeat_at, pid, host,"
                        " attempt, done, total) VALUES ('baseline', 'running', '{\"examples\": 1000}', ?, ?, ?, ?, '',"
                        " 1, 0, 1000)", (now, now, now, int(sys.argv[6]))).lastrowid
print(json.dumps({"live": live, "db_mb": round(ws.db_path.stat().st_size / 1e6, 1)}))
"""


def build(tree: Path, root: Path, args) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", BUILD, str(root), str(args.runs), str(args.events), str(args.results),
                           ",".join(STAGES), str(os.getpid())], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree)
    return {**json.loads(proc.stdout), "build_s": round(time.perf_counter() - started, 1)}


def set_progress(db_path: Path, run_id: int, done: int) -> None:
    import sqlite3

    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    conn.execute("UPDATE runs SET done=?, heartbeat_at=? WHERE id=?", (done, time.time(), run_id))
    conn.close()


def finish(db_path: Path, run_id: int) -> None:
    import sqlite3

    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    conn.execute("UPDATE runs SET state='succeeded', ended_at=? WHERE id=?", (time.time(), run_id))
    conn.close()


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def screen_shows(session: str, text: str, timeout: float = 30) -> float:
    """Seconds until the terminal shows `text` (polled every 10 ms)."""
    started = time.perf_counter()
    while text not in tmux("capture-pane", "-p", "-t", session):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{text!r} not on screen after {timeout} s")
        time.sleep(0.01)
    return time.perf_counter() - started


def measure(tree: Path, ws_root: Path, live: int, args, label: str) -> dict:
    db_path = ws_root / "state.db"
    set_progress(db_path, live, 0)
    session = f"po-bench-{os.getpid()}-{label}"
    env = f"PYTHONPATH={tree} LITELLM_LOCAL_MODEL_COST_MAP=True"
    # From just before tmux starts the console: includes tmux's own start, Python's, the imports.
    launched = time.perf_counter()
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         f"cd {tree} && env {env} {sys.executable} -m po_console.cli -w {ws_root} console")
    try:
        screen_shows(session, "0/1000")  # the overview, with the live run read from the store
        first_paint = time.perf_counter() - launched
        pid = int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])
        proc = psutil.Process(pid)
        children = proc.children(recursive=True)
        proc = children[-1] if children else proc  # the python under `cd && env`

        latencies = []
        for k in range(1, args.samples + 1):
            time.sleep(random.uniform(0.2, 1.2))
            set_progress(db_path, live, k * 7)
            written = time.perf_counter()
            try:
                screen_shows(session, f"{k * 7}/1000", timeout=10)
            except TimeoutError:
                pass
            latencies.append(time.perf_counter() - written)

        for key in ["2", "3", "4", "5", "1"]:  # every pane once (baseline loads the live run's rows)
            tmux("send-keys", "-t", session, key)
            time.sleep(1.5)
        rss_mb = proc.memory_info().rss / 1e6

        finish(db_path, live)  # idle: nothing writes; the console only polls
        time.sleep(3)
        cpu0, t0 = proc.cpu_times(), time.perf_counter()
        time.sleep(args.idle_s)
        cpu1, t1 = proc.cpu_times(), time.perf_counter()
        idle_cpu = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (t1 - t0) * 100
    finally:
        tmux("kill-session", "-t", session)
    with_db_state = __import__("sqlite3").connect(db_path, isolation_level=None)
    with_db_state.execute("UPDATE runs SET state='running', ended_at=NULL WHERE id=?", (live,))
    with_db_state.close()
    return {"first_paint_s": round(first_paint, 3),
            "event_to_screen_s": {"p50": round(statistics.median(latencies), 3),
                                  "p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3),
                                  "max": round(max(latencies), 3)},
            "idle_cpu_percent_of_one_core": round(idle_cpu, 2), "rss_mb_after_all_panes": round(rss_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--compare", type=Path, help="another checkout, measured side by side")
    args = parser.parse_args()
    trees = {"this": REPO, **({"compare": args.compare.resolve()} if args.compare else {})}
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        built = {label: build(tree, Path(tmp) / label, args) for label, tree in trees.items()}
        results: dict[str, list[dict]] = {label: [] for label in trees}
        for round_ in range(args.rounds):
            # ABBA: which version goes first alternates, so a slow phase of the machine is shared.
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for label in order:
                results[label].append(measure(trees[label], Path(tmp) / label, built[label]["live"], args, label))
    summary = {}
    for label, rounds in results.items():
        summary[label] = {
            "tree": str(trees[label]), "workspace": {"runs": args.runs + 1, "events": args.events,
                                                     "result_rows": args.results, **built[label]},
            "first_paint_s": [r["first_paint_s"] for r in rounds],
            "event_to_screen_p50_s": [r["event_to_screen_s"]["p50"] for r in rounds],
            "event_to_screen_p95_s": [r["event_to_screen_s"]["p95"] for r in rounds],
            "idle_cpu_percent_of_one_core": [r["idle_cpu_percent_of_one_core"] for r in rounds],
            "rss_mb_after_all_panes": [r["rss_mb_after_all_panes"] for r in rounds],
        }
    print(json.dumps({"results": summary, "idle_seconds": args.idle_s, "samples": args.samples,
                      "machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": load_at_start}}, indent=2))


if __name__ == "__main__":
    main()
