"""Fine-tune benchmarks, on the embedded SmolLM2 (LoRA r=32, alpha=64, all seven projections).

1. Throughput of the stage's loop (the store, the curves, the resource sampling, the cancel
   check every step) vs a plain transformers `Trainer` on the same examples and settings, in
   the same process, alternating which goes first (ABBA). Goal: ratio >= 0.95.
2. SmolLM2 on this CPU: seconds a step, tokens a second, peak RSS; 400 records x 2 epochs
   extrapolated from the measured steps (and said so).

Examples: the demo training set's reference answers rendered as teacher records would be
(the PO program's prompt through SmolLM2's chat template, loss on the answer).

    .venv/bin/python bench/bench_finetune.py [--steps 12] [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def examples(n: int):
    from pipeline.datasets import load_examples
    from pipeline.product_owner import ProductOwnerProgram
    from pipeline.project import SHIPPED_FIELDS, Fields
    from pipeline.stages.finetune import model as base
    from pipeline.stages.finetune.data import Call, render

    data = Path(__file__).resolve().parent.parent / "pipeline" / "demo_data" / "train.jsonl"
    program, tokenizer = ProductOwnerProgram(), base.load_tokenizer(base.base_directory("embedded"))
    rows = load_examples(data, Fields.from_json(SHIPPED_FIELDS), with_outputs=True)[:n]
    return [render(Call(e.id, "generate", e.inputs, e.outputs), program, tokenizer) for e in rows], tokenizer


def fresh_model():
    import torch

    from pipeline.stages.finetune import model as base

    torch.manual_seed(0)
    place = base.placement("cpu", "auto")
    lora = {"r": 32, "alpha": 64, "dropout": 0.05, "target_modules": list(base.PROJECTIONS)}
    return base.load_for_training(base.base_directory("embedded"), place, lora, False), place


def stage_loop(train, tokenizer, steps: int, db_dir: Path) -> float:
    """The stage's loop with everything it does per step: store writes, resources, cancel checks."""
    import torch

    from pipeline.stages.finetune import store
    from pipeline.stages.finetune.resources import Sampler
    from pipeline.stages.finetune.train import Checkpoints, Loop, Settings, run_loop
    from state.db import open_db
    from state.schema import migrate_stage
    from state.write import cancel_requested, create_run

    db = open_db(db_dir / "state.db")
    migrate_stage(db.conn, "finetune", store.MIGRATIONS)
    run_id = create_run(db, "finetune", {})
    model, place = fresh_model()
    settings = Settings(1.0, steps, 2e-4, "linear", 0.0, 1, 1, 1.0, 0, 1, 10**9, 10**9, 1)
    sampler = Sampler()
    loop = Loop(model, tokenizer, train, [], settings, Checkpoints(db_dir / "ck", 1), torch.device("cpu"),
                place.autocast, lambda point: store.put_point(db, run_id, point), lambda: cancel_requested(db, run_id),
                sampler.sample, log=lambda text: None)
    started = time.perf_counter()
    run_loop(loop, None)  # its final checkpoint included: the stage always writes one; Trainer saves nothing
    return time.perf_counter() - started


def plain_trainer(train, tokenizer, steps: int, out: Path) -> float:
    """transformers' Trainer on the same examples, batch 1, bf16 autocast, no saving, no reports."""
    import torch
    from transformers import Trainer, TrainingArguments

    from pipeline.stages.finetune.train import collate

    model, _ = fresh_model()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def collator(batch):
        ids, labels, mask = collate(batch, pad, torch.device("cpu"))
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=1, max_steps=steps, learning_rate=2e-4,
                             lr_scheduler_type="linear", bf16=True, use_cpu=True, logging_steps=1, save_strategy="no",
                             report_to=[], disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
                             max_grad_norm=1.0, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its per-step log lines, not this benchmark's JSON
        trainer.train()
    return time.perf_counter() - started


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--records", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    train, tokenizer = examples(args.records)
    tokens = [len(e.input_ids) for e in train]
    times = {"stage": [], "trainer": []}
    for i in range(args.rounds):
        for variant in (("stage", "trainer") if i % 2 == 0 else ("trainer", "stage")):
            with tempfile.TemporaryDirectory() as tmp:
                run = stage_loop if variant == "stage" else plain_trainer
                times[variant].append(run(train, tokenizer, args.steps, Path(tmp)))
    stage, trainer = statistics.median(times["stage"]), statistics.median(times["trainer"])
    per_step = stage / args.steps
    mean_tokens = statistics.fmean(tokens[: args.steps] * (args.steps // len(tokens) + 1))
    steps_400x2 = 400 * 2  # batch 1, no accumulation: one step a record and epoch
    print(json.dumps({
        "steps": args.steps, "rounds": args.rounds, "threads": args.threads, "load_avg_1m_at_start": load,
        "examples_tokens_min_mean_max": [min(tokens), round(statistics.fmean(tokens)), max(tokens)],
        "seconds_stage": [round(t, 2) for t in times["stage"]],
        "seconds_trainer": [round(t, 2) for t in times["trainer"]],
        "throughput_ratio_stage_over_trainer": round(trainer / stage, 3),
        "stage_seconds_per_step": round(per_step, 2),
        "stage_tokens_per_s": round(mean_tokens / per_step, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "extrapolated_400_records_x_2_epochs_min": round(steps_400x2 * per_step / 60, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
