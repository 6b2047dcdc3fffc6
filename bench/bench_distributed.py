"""Several training processes on this CPU: one process vs two under DDP vs two under FSDP2
(an accelerate config file), the embedded SmolLM2 with LoRA r=32 / alpha=64 on all seven
projections, through `po run finetune` itself, alternating the order (ABC, CBA).

Reports, from what the stage stored: seconds a step (median over the logged steps after
the first), tokens a second, and rank 0's peak RSS (the only rank whose resources are
stored). On a 2-core machine two processes share the cores one thread each, so this
measures the machinery (and FSDP2's sharding of the base in memory), not a speed-up.

    .venv/bin/python bench/bench_distributed.py [--steps 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FSDP = """\
distributed_type: FSDP
num_machines: 1
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_reshard_after_forward: true
"""

TABLE = """
[finetune]
base_model = "embedded"
lora_r = 32
lora_alpha = 64
max_steps = {steps}
batch_size = 1
gradient_accumulation = 1
max_length = 2048
eval_fraction = 0.2
eval_every = 1000
checkpoint_every = 1000
threads = {threads}
processes = {processes}
"""

VARIANTS = {
    "1 process, 2 threads": (1, 2, ""),
    "2 processes, DDP": (2, 1, ""),
    "2 processes, FSDP2": (2, 1, 'accelerate_config = "fsdp.yaml"\n'),
}


def run(name: str, steps: int, root: Path) -> dict:
    from pipeline.stages.finetune import store
    from pipeline.workspace import init_workspace
    from state.db import open_db
    from tests.conftest import set_tables
    from tests.console_fixtures import record_teacher

    processes, threads, extra = VARIANTS[name]
    ws = init_workspace(root / name.replace(" ", "-").replace(",", ""), demo=True)
    record_teacher(ws)
    (ws.root / "fsdp.yaml").write_text(FSDP)
    set_tables(ws.root, TABLE.format(steps=steps, threads=threads, processes=processes) + extra)
    proc = subprocess.run([sys.executable, "-m", "po_console.cli", "--workspace", str(ws.root), "run", "finetune",
                           "--json"], capture_output=True, text=True, cwd=ROOT)
    result = json.loads(proc.stdout)
    if result["state"] != "succeeded":
        raise SystemExit(f"{name}: {result['state']}: {result.get('error')}")
    points = store.points(open_db(ws.root / "state.db", readonly=True), result["id"], "train")[1:]
    return {"s_per_step": statistics.median(p.seconds_per_step for p in points),
            "tokens_per_s": statistics.median(p.tokens_per_s for p in points),
            "rank0_peak_rss_mb": max(p.resources["rss_mb"] for p in points)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    found: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                found[name].append(run(name, args.steps, Path(tmp) / f"r{round_}"))
                print(f"round {round_ + 1}: {name}: {found[name][-1]}", flush=True)
    print(f"\n| variant | s/step | tokens/s | rank 0 peak RSS (MB) |\n|---|---|---|---|")
    for name, rows in found.items():
        print(f"| {name} | {statistics.median(r['s_per_step'] for r in rows):.2f} | "
              f"{statistics.median(r['tokens_per_s'] for r in rows):.0f} | "
              f"{max(r['rank0_peak_rss_mb'] for r in rows):,.0f} |")


if __name__ == "__main__":
    main()
