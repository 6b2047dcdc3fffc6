"""Seconds per example of the embedded base and of a fine-tuned student on it, side by side
in one process: the demo validation examples one at a time (threads=1, max_batch=1), the
base and the student alternating in ABBA order (base, student, student, base, ...) so that
a change of the machine's load falls on both; DSPy's cache off. The team's table compares
models by seconds per example; this measures the two rows this CPU can give.

    .venv/bin/python bench/bench_student.py [--workspace po-distill | --adapter DIR] [--examples 12]

Without --adapter it takes the newest fine-tune adapter of the workspace (`make demo-distill`
makes one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pipeline  # noqa: E402,F401 - sets the offline environment first


def answerer(settings):
    """(one example -> its row) on a fresh engine with these settings."""
    import dspy

    from pipeline.evaluation import evaluate_one
    from pipeline.product_owner import ProductOwnerProgram
    from pipeline.project import shipped_project
    from pipeline.providers.local_engine import LocalEngine

    engine = LocalEngine(settings)
    lm = dspy.LM(engine.model_string(), engine=engine, cache=False, num_retries=0)
    program = ProductOwnerProgram()
    program.set_lm(lm)
    project = shipped_project()
    return lambda example, position: evaluate_one(program, example, project, position)


def newest_adapter(workspace: Path) -> str | None:
    """The adapter of the newest succeeded run that exported one."""
    from state import read
    from state.db import open_db

    if not (workspace / "state.db").exists():
        return None
    found = read.newest_succeeded(open_db(workspace / "state.db", readonly=True), "adapter")
    return str(workspace / found.summary["adapter"]) if found else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", help="the student's LoRA adapter directory")
    parser.add_argument("--workspace", default="po-distill", help="else the newest adapter of this workspace")
    parser.add_argument("--examples", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    if args.adapter is None:
        args.adapter = newest_adapter(Path(args.workspace))
        if args.adapter is None:
            print(f"no fine-tuned student in {args.workspace}: run `make demo-distill` first, or give --adapter")
            return

    import dspy

    from pipeline.datasets import load_examples
    from pipeline.evaluation import lm_call_counter
    from pipeline.project import SHIPPED_FIELDS, Fields
    from pipeline.providers.local_engine import LocalSettings

    dspy.configure(adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), callbacks=[lm_call_counter()],
                   track_usage=True)
    examples = load_examples(Path(pipeline.__file__).parent / "demo_data" / "val.jsonl",
                             Fields.from_json(SHIPPED_FIELDS))[: args.examples]
    systems = {"base": answerer(LocalSettings(max_batch=1, threads=args.threads)),
               "student": answerer(LocalSettings(max_batch=1, threads=args.threads,
                                                 adapter=str(Path(args.adapter).resolve())))}
    for answer in systems.values():  # load and warm up outside the timings
        answer(examples[0], 0)
    load_avg = os.getloadavg()[0]
    rows = {name: [] for name in systems}
    for i, example in enumerate(examples):
        order = ["base", "student"] if i % 2 == 0 else ["student", "base"]
        for name in order:
            started = time.perf_counter()
            row = systems[name](example, i)
            row["wall_s"] = time.perf_counter() - started
            rows[name].append(row)

    def figures(found: list[dict]) -> dict:
        seconds = [r["wall_s"] for r in found]
        tokens = sum(r["output_tokens"] for r in found)
        return {"examples": len(found), "s_per_example_mean": round(statistics.fmean(seconds), 2),
                "s_per_example_median": round(statistics.median(seconds), 2),
                "s_per_example_max": round(max(seconds), 2), "output_tokens_mean": round(tokens / len(found), 1),
                "output_tokens_per_s": round(tokens / sum(seconds), 1),
                "parsed": sum(r["status"] == "ok" for r in found)}

    base, student = figures(rows["base"]), figures(rows["student"])
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "load_avg_1m_before": load_avg,
                    "load_avg_1m_after": os.getloadavg()[0]},
        "adapter": args.adapter, "base": base, "student": student,
        "ratio_student_vs_base_s_per_example": round(student["s_per_example_mean"] / base["s_per_example_mean"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
