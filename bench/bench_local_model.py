"""Embedded-model benchmark, on the demo validation set, side by side in one process:

- seconds per validation example, one at a time (threads=1, max_batch=1) vs batched
  (threads=4, max_batch=4): the same examples, the same decoding; ratio of throughput,
  and whether the texts are identical;
- parse rate with the structure grammar vs without it (same decoding otherwise).

DSPy's cache is off so every call reaches the model.

    .venv/bin/python bench/bench_local_model.py [--examples 8] [--unconstrained 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pipeline  # noqa: E402,F401 - sets the offline environment first


def evaluate(examples, settings, threads: int) -> dict:
    import dspy

    from pipeline.evaluation import evaluate_examples, evaluate_one, lm_call_counter
    from pipeline.project import shipped_project
    from pipeline.product_owner import ProductOwnerProgram
    from pipeline.providers.local_engine import LocalEngine

    engine = LocalEngine(settings)
    lm = dspy.LM(engine.model_string(), engine=engine, cache=False, num_retries=0)
    dspy.configure(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), callbacks=[lm_call_counter()],
                   track_usage=True)
    program = ProductOwnerProgram()
    project = shipped_project()
    work = lambda ex, pos: evaluate_one(program, ex, project, pos)  # noqa: E731
    started = time.perf_counter()
    rows = list(evaluate_examples(work, list(enumerate(examples)), threads=threads, stop=threading.Event()))
    wall = time.perf_counter() - started
    rows.sort(key=lambda r: r["position"])
    tokens = sum(r["output_tokens"] for r in rows)
    return {
        "wall_s": round(wall, 1),
        "s_per_example": round(wall / len(rows), 2),
        "output_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "parsed": sum(r["status"] == "ok" for r in rows),
        "examples": len(rows),
        "batches": engine.batches,
        "texts": [r["outputs"] for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--unconstrained", type=int, default=4, help="examples for the no-grammar parse rate")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    from pipeline.datasets import load_examples
    from pipeline.providers.local_engine import LocalSettings

    from pipeline.project import SHIPPED_FIELDS, Fields

    examples = load_examples(Path(pipeline.__file__).parent / "demo_data" / "val.jsonl",
                             Fields.from_json(SHIPPED_FIELDS))[: args.examples]
    # Load and warm up once, outside the timings, on the engine's own model thread.
    evaluate(examples[:1], LocalSettings(threads=args.threads), threads=1)
    load_avg = os.getloadavg()[0]

    one = evaluate(examples, LocalSettings(max_batch=1, threads=args.threads), threads=1)
    batched = evaluate(examples, LocalSettings(max_batch=4, threads=args.threads), threads=4)
    free = evaluate(examples[: args.unconstrained], LocalSettings(structured=False, max_batch=4, threads=args.threads), threads=4)
    grammar = evaluate(examples[: args.unconstrained], LocalSettings(max_batch=4, threads=args.threads), threads=4)
    same = sum(a == b for a, b in zip(one.pop("texts"), batched.pop("texts")))
    free.pop("texts"), grammar.pop("texts")
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "load_avg_1m_before": load_avg},
        "one_at_a_time": one,
        "batched_4": batched,
        "throughput_ratio_batched_vs_one": round(one["wall_s"] / batched["wall_s"], 2),
        "identical_texts_batched_vs_one": f"{same}/{len(examples)}",
        "parse_rate_with_grammar": f"{grammar['parsed']}/{grammar['examples']}",
        "parse_rate_without_grammar": f"{free['parsed']}/{free['examples']}",
        "without_grammar": free,
    }, indent=2))


if __name__ == "__main__":
    main()
