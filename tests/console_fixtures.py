"""A workspace with recorded runs, written through the real store at fixed times, so the
console's screens can be compared with snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.workspace import Workspace, init_workspace
from state import write as store
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


# A MIPROv2 run with minibatches (5 trials, a full evaluation every 2), as MIPROv2 numbers
# them: (kind, score, instruction, demos, parse failures, errors). Evaluation 3 parsed
# badly, 5 failed outright, 6 had errors; trial 7's full evaluation is the best.
MIPRO_TRIALS = [
    ("full", 0.383, None, None, 0, 0),
    ("minibatch", 0.42, 1, 0, 0, 0),
    ("minibatch", 0.21, 2, 1, 3, 0),
    ("full", 0.52, 1, 0, 0, 0),
    ("minibatch", None, 3, 2, 0, 0),
    ("minibatch", 0.6, 3, 1, 0, 2),
    ("full", 0.606, 3, 1, 0, 0),
    ("minibatch", 0.575, 0, 1, 0, 0),
    ("full", 0.59, 3, 1, 0, 0),
]
MIPRO_INSTRUCTIONS = [
    None,  # candidate 0 is the program's own instruction
    "Write the product vision first, then review every requirement by id.\nKeep it short.",
    "Act as a strict Product Owner: reject requirements without acceptance criteria.",
    "Open with who the product is for and the problem it solves; cite requirement ids in both fields.\n"
    "End the review with a verdict line.",
]
MIPRO_DEMO = {
    "concept": "A shared calendar for community clinics.",
    "requirements_yaml": "requirements:\n  - id: CLIN-001\n    title: Shift swaps\n    priority: must\n",
    "existing_vision": "",
    "product_vision": "For nurses in community clinics who swap shifts by phone (CLIN-001).",
    "product_owner_review": "Verdict: Approved\n- CLIN-001 (must) is covered.",
}


def record_mipro(ws: Workspace, *, state: str = "succeeded", evaluations: int = len(MIPRO_TRIALS),
                 started: float = T0 + 1200, took: float = 300.0, pid: int | None = None) -> int:
    """A MIPROv2 run: its trials, candidates and, when it succeeded, its saved program (the
    program as written with candidate 3's instruction and one demo), as the stage writes them."""
    db = ws.db()
    run_id = store.create_run(db, "mipro", {
        "provider": "local", "prompt_provider": None, "auto": None, "num_candidates": 4, "num_trials": 5,
        "max_bootstrapped_demos": 1, "max_labeled_demos": 1, "minibatch": True, "minibatch_size": 4,
        "minibatch_full_eval_steps": 2, "threads": 2, "seed": 0, "train_limit": None, "val_limit": None,
        "val": str(ws.root / "data/val.jsonl"), "val_examples": 10, "train": str(ws.root / "data/train.jsonl"),
        "train_examples": 8, "planned_evaluations": len(MIPRO_TRIALS)})
    from pipeline.product_owner import ProductOwner

    instructions = [text or ProductOwner.instructions for text in MIPRO_INSTRUCTIONS]
    store.put_candidates(db, run_id, "instruction", instructions)
    store.put_candidates(db, run_id, "demos", [json.dumps(demos) for demos in ([], [MIPRO_DEMO], [MIPRO_DEMO] * 2)])
    best = None
    for i, (kind, score, instruction, demos, parse_failures, errors) in enumerate(MIPRO_TRIALS[:evaluations], 1):
        if kind == "full" and score is not None:
            best = score if best is None else max(best, score)
        examples = 10 if kind == "full" else 4
        store.put_trial(db, run_id, {
            "evaluation": i, "trial": i, "kind": kind, "score": score, "best_full": best, "examples": examples,
            "instruction": instruction, "demos": demos, "duration_s": 3.0 * examples, "lm_calls": examples,
            "parse_failures": parse_failures, "errors": errors})
    summary = None
    if state == "succeeded":
        summary = {"best_score": best, "evaluations": evaluations, "lm_calls": 75, "cache_hits": 1,
                   "parse_failures": 3, "default_score": MIPRO_TRIALS[0][1],
                   **save_mipro_program(ws, run_id, instructions[3], best)}
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET state=?, created_at=?, started_at=?, ended_at=?, heartbeat_at=?, pid=?, host=NULL,"
            " attempt=1, done=?, total=?, summary=? WHERE id=?",
            (state, started, started, None if state == "running" else started + took, started + took, pid,
             evaluations, len(MIPRO_TRIALS), json.dumps(summary) if summary else None, run_id),
        )
        conn.execute("UPDATE trials SET created_at=? + evaluation WHERE run_id=?", (started, run_id))
    return run_id


def save_mipro_program(ws: Workspace, run_id: int, instruction: str, score: float) -> dict:
    import dspy

    from pipeline.product_owner import INPUT_FIELDS, ProductOwnerProgram
    from pipeline.saved_programs import save_program

    program = ProductOwnerProgram()
    program.generate.signature = program.generate.signature.with_instructions(instruction)
    program.generate.demos = [dspy.Example(**MIPRO_DEMO).with_inputs(*INPUT_FIELDS)]
    name = f"mipro-{run_id}"
    manifest = save_program(program, ws.root / "programs" / name, ProductOwnerProgram,
                            {"source": f"run {run_id} (MIPROv2)", "score": score})
    return {"demos": manifest["demos"], "program": f"programs/{name}", "fingerprint": manifest["fingerprint"]}


# A teacher run (min score 0.55, best of 3, 6 records) as the stage writes it, attempt by
# attempt in time order: (example, attempt, score parts or None for a parse failure). Parts
# are (vision_structure, requirement_coverage, review_validity, vision_consistency,
# length_bounds, no_repetition); scores 0.43-0.85, as the embedded model's. The 14th attempt
# reaches the target; the 15th was in flight then and is kept as surplus, the 16th rejected.
TEACHER_ATTEMPTS = [
    ("pool-0001", 1, (0.5, 0.25, 0.5, 1, 0.5, 1)),
    ("pool-0002", 1, (0.75, 0.5, 0.75, 1, 0.75, 1)),
    ("pool-0003", 1, None),
    ("pool-0001", 2, (0.75, 0.5, 0.5, 1, 0.5, 1)),
    ("pool-0004", 1, (0.75, 0.5, 0, 1, 0.25, 1)),
    ("pool-0003", 2, (0.5, 0, 0.5, 1, 0.75, 1)),
    ("pool-0005", 1, (1, 0.75, 0.75, 1, 0.75, 1)),
    ("pool-0006", 1, (0.25, 0, 0.5, 1, 0.5, 1)),
    ("pool-0004", 2, (0.75, 0.5, 0.5, 1, 0.75, 0.5)),
    ("pool-0007", 1, None),
    ("pool-0006", 2, (0.5, 0.5, 0.5, 0.5, 0, 1)),
    ("pool-0008", 1, (0.75, 0.5, 0.75, 1, 0.5, 1)),
    ("pool-0003", 3, (0.5, 0.25, 0.25, 1, 0.5, 1)),
    ("pool-0009", 1, (0.75, 0.75, 0.5, 1, 0.5, 0.5)),
    ("pool-0007", 2, (0.5, 0.5, 0.75, 1, 0.5, 1)),
    ("pool-0006", 3, (0.25, 0.25, 0.5, 1, 0.25, 1)),
]
TEACHER_MODEL = "local/Qwen2.5-0.5B-Instruct"


def teacher_inputs(example_id: str) -> dict:
    n = int(example_id.split("-")[1])
    return {"concept": f"A booking app for community sports clubs, number {n}.",
            "requirements_yaml": f"requirements:\n  - id: CLUB-{n:03d}\n    title: Court booking\n    priority: must\n",
            "existing_vision": ""}


def record_teacher(ws: Workspace, *, state: str = "succeeded", attempts: int = len(TEACHER_ATTEMPTS),
                   target: int = 6, started: float = T0 + 2400, took: float | None = None, pid: int | None = None,
                   usd_per_attempt: float | None = None) -> int:
    """A teacher run through the real store: each attempt decided by the teacher stage's decide
    and stored (numbered, or kept as surplus) by put_teacher_record, 10 s apart."""
    from pipeline.metric import WEIGHTS
    from pipeline.stages.teacher import records as teacher
    from pipeline.stages.teacher import summarize
    from state.read import teacher_stats

    db = ws.db()
    config = {"provider": "local", "program": None, "max_records": target, "min_score": 0.55,
              "attempts_per_input": 3, "temperature": 0.8, "threads": 2, "pool_limit": None,
              "pool": str(ws.root / "data/pool.jsonl"), "pool_inputs": 12, "effective_temperature": 0.8}
    run_id = store.create_run(db, "teacher", config)
    for i, (example_id, attempt, values) in enumerate(TEACHER_ATTEMPTS[:attempts]):
        inputs = teacher_inputs(example_id)
        parts = None if values is None else dict(zip(WEIGHTS, map(float, values)))
        if parts is None:
            row = {"status": "parse_failure", "score": None, "parts": {},
                   "error": "ChatAdapter: the answer lacks [[ ## product_owner_review ## ]]"}
            outputs = {"raw": f"[[ ## product_vision ## ]]\nFor the members of club {example_id}…"}
        else:
            row = {"status": "ok", "score": round(sum(WEIGHTS[k] * v for k, v in parts.items()), 4), "parts": parts}
            outputs = {"product_vision": f"For members of the sports club behind {example_id} who book courts "
                                         "by phone.",
                       "product_owner_review": f"Verdict: Approved\n- CLUB-{int(example_id[-4:]):03d} (must) is "
                                               "covered."}
        decision = teacher.decide(row, config["min_score"], WEIGHTS)
        store.put_teacher_record(db, run_id, {
            "input_key": teacher.input_key(inputs, list(inputs)), "attempt": attempt, "example_id": example_id,
            "status": decision.status, "score": row["score"], "reason": decision.reason,
            "reason_kind": decision.kind, "parts": row["parts"], "inputs": inputs, "outputs": outputs,
            "latency_s": 8.0 + i % 5, "input_tokens": 640 + 10 * i, "output_tokens": 180 + 5 * i,
            "cost_usd": usd_per_attempt, "model": TEACHER_MODEL}, target=target)
        with write(db) as conn:  # the store stamps the time of writing: make it fixed, 10 s apart
            conn.execute("UPDATE teacher_records SET created_at=? WHERE run_id=? AND example_id=? AND attempt=?",
                         (started + 10 * (i + 1), run_id, example_id, attempt))
    stats = teacher_stats(db, run_id)
    took = 10.0 * attempts + 5 if took is None else took
    summary = summarize(stats, target, config["min_score"], TEACHER_MODEL) if state != "running" else None
    with write(db) as conn:
        conn.execute(
            "UPDATE runs SET state=?, created_at=?, started_at=?, ended_at=?, heartbeat_at=?, pid=?, host=NULL,"
            " attempt=1, done=?, total=?, summary=? WHERE id=?",
            (state, started, started, None if state == "running" else started + took, started + took, pid,
             stats.accepted, target, json.dumps(summary) if summary else None, run_id),
        )
    return run_id


def recorded_workspace(root: Path) -> Workspace:
    ws = init_workspace(root, demo=True)
    record_baseline(ws, state="succeeded", results=5, started=T0, took=95.0)
    record_baseline(ws, state="cancelled", results=2, started=T0 + 600, took=20.0)
    record_mipro(ws)
    record_teacher(ws)
    return ws
