"""MIPROv2 benchmarks. Goal: trial recording costs under 2 % of a run's time.

1. Recording overhead: the same MIPROv2 run (seed, data, settings) on a fast in-process
   fake LM, with the recorder (DSPy callback + trial hook + a row per evaluation in a real
   SQLite store) and without (plain dspy.MIPROv2, no callbacks), alternating, several
   rounds; DSPy's cache off so both do every call. A fast LM is the worst case: the
   recording is compared with DSPy's own overhead, not with model time.
2. LM calls of a cancelled-then-resumed run vs an uninterrupted one, through the real
   `po` CLI against the fake LM served over the OpenAI wire protocol.

    .venv/bin/python bench/bench_mipro.py [--rounds 10] [--trials 30] [--skip-calls]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CPU: dict[bool, list[float]] = {False: [], True: []}
SETTINGS = {"auto": None, "num_candidates": 6, "max_bootstrapped_demos": 2, "max_labeled_demos": 2,
            "minibatch": True, "minibatch_size": 8, "minibatch_full_eval_steps": 5, "threads": 4, "seed": 0}


def fake_lm():
    import dspy

    from tests.fake_lm import FakeEngine

    return dspy.LM("fake/po-bench", engine=FakeEngine(), cache=False, num_retries=0)


def one_run(recorded: bool, cfg, train, val, ws) -> tuple[float, list]:
    import dspy

    from pipeline.runner import RunContext
    from pipeline.stages.mipro.recording import TrialRecorder, optimize, optimizer_class
    from state import read
    from state import write as store

    lm = fake_lm()
    if recorded:
        db = ws.db()
        run_id = store.create_run(db, "mipro", cfg.model_dump())
        ctx = RunContext(ws, read.get_run(db, run_id), db, store.EventBuffer(db, run_id),
                         logging.getLogger("bench.mipro"))
        recorder = TrialRecorder(ctx, [lm.engine])
        cls = optimizer_class(ctx, recorder)
    else:
        cls, recorder = dspy.MIPROv2, None
    started, cpu = time.perf_counter(), time.process_time()
    best = optimize(cls, cfg, ws.project, lm, lm, train, val, recorder)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu  # all threads of this process: less moved by other load
    CPU[recorded].append(cpu)
    trials = read.trials(ws.db(readonly=True), run_id) if recorded else None
    return seconds, [round(best.score, 4), lm.engine.generated_calls, len(trials) if trials else None]


def overhead(rounds: int, trials: int) -> dict:
    import dspy

    from pipeline.workspace import init_workspace

    logging.getLogger("dspy").setLevel(logging.WARNING)  # MIPROv2's progress lines, not the figure
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    ws = init_workspace(Path(tempfile.mkdtemp(prefix="po-bench-mipro-")) / "ws", demo=True)
    train = [e.to_dspy() for e in ws.examples(ws.root / "data/train.jsonl", with_outputs=True)[:16]]
    val = [e.to_dspy() for e in ws.examples(ws.root / "data/val.jsonl")[:24]]
    from pipeline.stages.mipro import MiproConfig

    cfg = MiproConfig(**SETTINGS, num_trials=trials)
    times = {"without": [], "with": []}
    outcome = {}
    one_run(False, cfg, train, val, ws)  # warm-up: imports, first compiles
    for i in range(rounds):
        # ABBA: the variant that goes first alternates, so a warm-up or a slow phase of the
        # machine does not always fall on the same one.
        for variant in (("without", "with") if i % 2 == 0 else ("with", "without")):
            seconds, result = one_run(variant == "with", cfg, train, val, ws)
            times[variant].append(seconds)
            outcome[variant] = result
    assert outcome["with"][:2] == outcome["without"][:2], outcome  # the same optimization, the same calls
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(CPU[k == "with"][-rounds:]) for k in times}
    # Each round runs both back to back: the median of the per-round ratios cancels slow phases of the machine.
    ratios = [w / wo for w, wo in zip(times["with"], times["without"])]
    return {"rounds": rounds, "trials": trials, "evaluations_recorded": outcome["with"][2],
            "lm_calls": outcome["with"][1], "best_score": outcome["with"][0],
            "seconds_without": [round(t, 3) for t in times["without"]],
            "seconds_with": [round(t, 3) for t in times["with"]],
            "median_without": round(med["without"], 3), "median_with": round(med["with"], 3),
            "overhead_pct_of_medians": round(100 * (med["with"] / med["without"] - 1), 2),
            "overhead_pct_median_of_paired_rounds": round(100 * (statistics.median(ratios) - 1), 2),
            "cpu_s_median_without": round(cpu["without"], 3), "cpu_s_median_with": round(cpu["with"], 3),
            "overhead_pct_cpu": round(100 * (cpu["with"] / cpu["without"] - 1), 2)}


def resumed_calls() -> dict:
    from tests.conftest import po, wait_for
    from tests.fake_lm import openai_responder
    from tests.loopback import OPENAI_CHAT, Loopback
    from tests.test_mipro_trials import fake_ws

    from state import read
    from state.db import open_db

    os.environ["PO_TEST_FAKE_KEY"] = "sk-fake"
    root = Path(tempfile.mkdtemp(prefix="po-bench-resume-"))
    with Loopback() as server:
        server.default(OPENAI_CHAT, openai_responder(delay=0.3))
        ws = fake_ws(root, "interrupted", server, trials=12)
        run_id = json.loads(po("run", "mipro", "--detach", "--json", ws=ws).stdout)["run_id"]
        db = open_db(ws / "state.db", readonly=True)
        wait_for(lambda: len(read.trials(db, run_id)) >= 4, timeout=300, what="four evaluations")
        po("cancel", str(run_id), ws=ws)
        before = len(server.requests_to(OPENAI_CHAT))
        done_before = read.get_run(db, run_id).summary["evaluations"]
        po("resume", str(run_id), ws=ws)
        after = len(server.requests_to(OPENAI_CHAT))
        server.reset()
        server.default(OPENAI_CHAT, openai_responder())
        straight = fake_ws(root, "uninterrupted", server, trials=12)
        po("run", "mipro", ws=straight)
        whole = len(server.requests_to(OPENAI_CHAT))
    return {"evaluations_before_cancel": done_before, "calls_before_cancel": before,
            "calls_after_resume": after - before, "interrupted_plus_resumed": after, "uninterrupted": whole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--skip-calls", action="store_true", help="only the recording overhead")
    args = parser.parse_args()
    result = {"overhead": overhead(args.rounds, args.trials)}
    if not args.skip_calls:
        result["resume"] = resumed_calls()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
