"""Teacher stage benchmarks, through the real `po` CLI against a loopback teacher that
answers every request after a fixed latency (the OpenAI wire protocol, the real client).

1. Throughput of attempts (accepted + rejected) with concurrency 8 at 200 ms latency:
   goal >= 90 % of the ideal 40 attempts/s; measured side by side with a sequential run
   (concurrency 1, ideal 5/s). Measured over the stored attempts' timestamps (start-up
   excluded).
2. Cost in time of a resume after kill -9: from launching `po resume` to the first request
   reaching the teacher (generating again); goal < 2 s.

    .venv/bin/python bench/bench_teacher.py [--attempts 240] [--resumes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from state import read  # noqa: E402
from state.db import open_db  # noqa: E402
from tests.conftest import po, po_env, set_tables, wait_for  # noqa: E402
from tests.fake_lm import openai_responder  # noqa: E402
from tests.loopback import OPENAI_CHAT, Loopback  # noqa: E402

CONFIG = """
[providers.teacher]
kind = "openai"
base_url = "{url}/v1"
model = "m"
api_key_env = "PO_TEST_FAKE_KEY"

[providers.teacher.limits]
concurrency = {threads}

[teacher]
provider = "teacher"
max_records = 100000
min_score = 0.8
threads = {threads}
pool_limit = {attempts}
"""


def workspace(root: Path, name: str, url: str, threads: int, attempts: int) -> Path:
    ws = root / name
    po("init", "--demo", ws=ws)
    set_tables(ws, CONFIG.format(url=url, threads=threads, attempts=attempts))
    return ws


def throughput(root: Path, url: str, threads: int, attempts: int) -> dict:
    ws = workspace(root, f"t{threads}", url, threads, attempts)
    started = time.monotonic()
    po("run", "teacher", ws=ws, check=False, timeout=1800)  # ends "pool exhausted": every input tried once
    wall = time.monotonic() - started
    db = open_db(ws / "state.db", readonly=True)
    run = read.list_runs(db)[0]
    times = sorted(r.created_at for r in read.teacher_records(db, run.id))
    rate = (len(times) - 1) / (times[-1] - times[0])
    ideal = threads / 0.2
    return {"threads": threads, "attempts": len(times), "attempts_per_s": round(rate, 2), "ideal_per_s": ideal,
            "of_ideal_pct": round(100 * rate / ideal, 1), "wall_s_with_startup": round(wall, 1)}


def resume_cost(root: Path, server, resumes: int) -> dict:
    ws = workspace(root, "resume", server.url, 8, 100000)
    run_id = json.loads(po("run", "teacher", "--detach", "--json", ws=ws).stdout)["run_id"]
    db = open_db(ws / "state.db", readonly=True)
    delays = []
    for _ in range(resumes):
        wait_for(lambda: len(read.teacher_records(db, run_id)) > 0 and read.get_run(db, run_id).pid, timeout=60)
        time.sleep(1.0)
        os.kill(read.get_run(db, run_id).pid, signal.SIGKILL)
        wait_for(lambda: read.get_run(db, run_id).status == "stale", timeout=30)
        seen = len(server.requests_to(OPENAI_CHAT))
        launched = time.monotonic()
        subprocess.run([sys.executable, "-m", "po_console.cli", "--workspace", str(ws), "resume", str(run_id),
                        "--detach"], check=True, capture_output=True, env=po_env())
        wait_for(lambda: len(server.requests_to(OPENAI_CHAT)) > seen, timeout=60, interval=0.01)
        first = server.requests_to(OPENAI_CHAT)[seen].started
        delays.append(first - launched)
    po("cancel", str(run_id), ws=ws)
    return {"resumes": resumes, "seconds_to_first_request": [round(d, 2) for d in delays],
            "median_s": round(statistics.median(delays), 2), "max_s": round(max(delays), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=240)
    parser.add_argument("--resumes", type=int, default=5)
    args = parser.parse_args()
    os.environ["PO_TEST_FAKE_KEY"] = "sk-fake"
    root = Path(tempfile.mkdtemp(prefix="po-bench-teacher-"))
    with Loopback() as server:
        server.default(OPENAI_CHAT, openai_responder(delay=0.2))
        concurrent = throughput(root, server.url, 8, args.attempts)
        sequential = throughput(root, server.url, 1, max(20, args.attempts // 8))
        result = {"concurrent": concurrent, "sequential": sequential,
                  "speedup": round(concurrent["attempts_per_s"] / sequential["attempts_per_s"], 2),
                  "resume": resume_cost(root, server, args.resumes)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
