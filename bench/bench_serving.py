"""The in-process local provider vs llama.cpp's server (1 and 2 parallel slots), for the
embedded base and a fine-tuned student, side by side on the same validation examples and
prompts (the program as written, DSPy's ChatAdapter, DSPy's cache off): seconds per example,
p95 latency, output tokens/s of wall time, parsed answers.

    .venv/bin/python bench/bench_serving.py [--workspace po-distill | --adapter DIR] [--examples 8]

The in-process rows run one example at a time (max_batch 1) with torch's 2 threads; the server
gets the same 2 threads (-t 2) and, with 2 slots, two examples at a time. One system after
the other on the same examples, one server up at a time (each has the machine's cores), each
warmed up on the first example before it is timed; the machine's load is printed before
and after, since it is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_student import newest_adapter


def answerer(lm):
    from pipeline.evaluation import evaluate_one
    from pipeline.product_owner import ProductOwnerProgram
    from pipeline.project import shipped_project

    program = ProductOwnerProgram()
    program.set_lm(lm)
    project = shipped_project()
    return lambda example, position: evaluate_one(program, example, project, position)


def figures(rows: list[dict], wall_s: float) -> dict:
    seconds = sorted(r["wall_s"] for r in rows)
    tokens = sum(r["output_tokens"] for r in rows)
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    return {"examples": len(rows), "s_per_example": round(wall_s / len(rows), 2),
            "latency_mean_s": round(statistics.fmean(seconds), 2), "latency_p95_s": round(p95, 2),
            "output_tokens_per_example": round(tokens / len(rows), 1),
            "output_tokens_per_s": round(tokens / wall_s, 1), "parsed": sum(r["status"] == "ok" for r in rows),
            "mean_score": round(statistics.fmean(r["score"] for r in rows if r["status"] == "ok"), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", help="the student's PEFT adapter directory (trained on the embedded base)")
    parser.add_argument("--workspace", default="po-distill", help="else the newest adapter of this workspace")
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repetition-penalty", type=float, default=0.0, help="sent to the server (0: none, as "
                        "po serve by default)")
    parser.add_argument("--only-servers", action="store_true", help="leave out the in-process rows")
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
    from pipeline.providers import build_lm
    from pipeline.providers.local_engine import LocalSettings
    from pipeline.providers.local_model import gguf_path
    from pipeline.serving.gguf_adapter import convert
    from pipeline.serving.llama_server import LlamaServer, ServerSettings, find_binary

    binary = find_binary()
    if binary is None:
        print("llama-server is not installed: make llama-server")
        return
    dspy.configure(adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), callbacks=[lm_call_counter()],
                   track_usage=True)
    examples = load_examples(Path(pipeline.__file__).parent / "demo_data" / "val.jsonl",
                             Fields.from_json(SHIPPED_FIELDS))[: args.examples]
    local = LocalSettings(max_batch=1, threads=args.threads)
    adapter = Path(args.adapter).resolve()
    base_config = json.loads((Path(json.loads((adapter / "adapter_config.json").read_text())
                                   ["base_model_name_or_path"]) / "config.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    gguf = convert(adapter, base_config, work / "adapter.gguf")

    servers = {}
    for who, adapters in (("base", ()), ("student", (gguf,))):
        for slots in (1, 2):
            server = LlamaServer(binary, ServerSettings(gguf_path(), adapters, threads=args.threads, parallel=slots,
                                                        ctx_size=4096 * slots, alias=who),
                                 work / f"{who}-{slots}.log")
            servers[(who, slots)] = server
    # What `po serve` registers: the local provider's field bounds, greedy, no repetition penalty.
    table = {"max_chars": local.max_chars, "default_max_chars": local.default_max_chars, "temperature": 0.0,
             "repetition_penalty": args.repetition_penalty or None, "structure": "llama.cpp",
             "limits": {"timeout_s": 600.0, "max_retries": 0}}
    systems = {} if args.only_servers else {
        "in-process base": (answerer(build_lm(local.model_dump(), "local", cache=False)), 1, None),
        "in-process student": (answerer(build_lm({**local.model_dump(), "adapter": str(adapter)}, "student",
                                                 cache=False)), 1, None),
    }
    for (who, slots), server in servers.items():
        provider = {"kind": "openai", "model": who, "base_url": server.url + "/v1", **table,
                    "limits": {**table["limits"], "concurrency": slots}}
        systems[f"llama.cpp {who}, {slots} slot{'s' * (slots > 1)}"] = (
            answerer(build_lm(provider, f"{who}{slots}", cache=False)), slots, server)

    load_before = os.getloadavg()[0]
    results = {}
    try:
        for name, (answer, slots, server) in systems.items():
            # One server at a time, so that each has the machine's cores; warmed up before timing.
            if server is not None:
                server.start()
                server.wait_healthy(300)
            answer(examples[0], 0)
            started = time.perf_counter()

            def timed(pair):
                position, example = pair
                began = time.perf_counter()
                row = answer(example, position)
                row["wall_s"] = time.perf_counter() - began
                return row

            with ThreadPoolExecutor(slots) as pool:
                rows = list(pool.map(timed, enumerate(examples)))
            results[name] = figures(rows, time.perf_counter() - started)
            if server is not None:
                server.stop()
            print(name, results[name], file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
    if "in-process student" in results:
        reference = results["in-process student"]["s_per_example"]
        for name, found in results.items():
            found["vs_in_process_student"] = round(reference / found["s_per_example"], 2)
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "threads": args.threads, "load_avg_1m_before": load_before,
                                  "load_avg_1m_after": os.getloadavg()[0]},
                      "adapter": str(adapter), "examples": len(examples),
                      "server_repetition_penalty": args.repetition_penalty or None, "systems": results}, indent=2))


if __name__ == "__main__":
    main()
