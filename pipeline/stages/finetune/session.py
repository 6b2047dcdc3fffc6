"""One training process of a fine-tune run: the examples, the model with its LoRA, the loop,
and what reaches the store. The stage runs it in its own process (one process), or each rank
runs it under `torchrun` / `accelerate launch` (several, worker.py; accelerate wraps the model,
distributed.py): then rank 0 writes the curves and checkpoints, every rank its own progress,
and the ranks decide to stop together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from pipeline.stages.finetune import model as base
from pipeline.stages.finetune import store


@dataclass
class Session:
    ws: object  # the Workspace
    db: object
    run_id: int
    run_dir: Path
    cfg: object  # FinetuneRun
    log: Callable[[str], None]
    cancel_requested: Callable[[], bool]  # asks the store
    progress: Callable[[int, int, str], None] = lambda done, total, message: None
    rank: int = 0
    world: int = 1


def train(s: Session):
    """Train from the newest complete checkpoint (or from the start) to the end or a cancel.
    Returns (the position it stopped at, the exported files: none unless it finished)."""
    import torch

    from pipeline.stages.finetune import STAGE
    from pipeline.stages.finetune import train as loop
    from pipeline.stages.finetune.data import split
    from pipeline.stages.finetune.resources import Sampler

    cfg, lead = s.cfg, s.rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    place = base.placement(cfg.device, cfg.dtype)
    examples, _ = STAGE.examples(s.ws, cfg, STAGE.records(s.ws, cfg)[0])
    train_set, held = split(examples, cfg.eval_fraction, cfg.seed)
    tokenizer = base.load_tokenizer(cfg.base_directory)
    torch.manual_seed(cfg.seed)  # the LoRA's initial weights: the same seed, the same student
    # FSDP2 shards a base that may not fit one GPU: each rank loads it into CPU memory and
    # fully_shard moves only its shard to its GPU.
    loaded = replace(place, device="cpu") if s.world > 1 and cfg.distribution == "FSDP2" else place
    model = base.load_for_training(cfg.base_directory, loaded, {"r": cfg.lora_r, "alpha": cfg.lora_alpha,
                                   "dropout": cfg.lora_dropout, "target_modules": cfg.target_modules},
                                   cfg.load_in_4bit)
    device = torch.device(place.device)
    checkpoints = loop.Checkpoints(s.run_dir / "checkpoints", cfg.keep_checkpoints)
    complete = checkpoints.complete()
    resume = complete[-1] if complete else None
    if resume is not None and lead:
        store.forget_after(s.db, s.run_id, int(resume.name.split("-")[1]))
    if lead:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        s.log(f"fine-tune {cfg.base_model} on {place.label}" + (f" × {s.world} processes" if s.world > 1 else "")
              + f": {len(train_set)} train / {len(held)} eval examples, {cfg.total_steps} steps, LoRA r={cfg.lora_r} "
              f"alpha={cfg.lora_alpha} ({trainable:,} trainable parameters)")
    sampler = Sampler()

    def on_log(point: loop.Logged) -> None:
        if point.kind == "train":
            store.put_rank(s.db, s.run_id, s.rank, point.step, point.loss)
        if not lead:
            return
        store.put_point(s.db, s.run_id, point)
        if point.kind == "train":
            s.progress(point.step, cfg.total_steps, f"loss {point.loss:.4f}")
            s.log(f"step {point.step}/{cfg.total_steps}: loss {point.loss:.4f}, lr {point.learning_rate:.2e}, "
                  f"{point.tokens_per_s or 0:.1f} tokens/s")
        else:
            s.log(f"step {point.step}: eval loss {point.loss:.4f}")
        sync_checkpoints(s, checkpoints)

    run = loop.Loop(model, tokenizer, train_set, held, STAGE.settings(cfg, loop.Settings), checkpoints, device,
                    place.autocast, on_log, _stop_together(s), sampler.sample, rank=s.rank, world=s.world, log=s.log)
    position = loop.run_loop(run, resume)
    files = []
    finished = position.step >= cfg.total_steps
    weights = None
    if finished and s.world > 1:
        from pipeline.stages.finetune.distributed import gather_weights

        weights = gather_weights(run.model)  # every rank takes part
    if lead:
        sync_checkpoints(s, checkpoints)
        if finished:
            files = base.export(run.model, tokenizer, s.run_dir / "adapter",
                                s.run_dir / "merged" if cfg.merge else None, weights, cfg.base_directory)
    return position, files


def _stop_together(s: Session) -> Callable[[], bool]:
    """Rank 0 asks the store; with several processes every rank learns its answer, so that they
    stop at the same step (a collective call, once a step)."""
    if s.world == 1:
        return s.cancel_requested

    def ask() -> bool:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if s.rank == 0 and s.cancel_requested() else 0])
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    return ask


def sync_checkpoints(s: Session, checkpoints) -> None:
    """The checkpoints on disk, with the loss of their step, into the store."""
    kept = []
    losses = {p.step: p.loss for p in store.points(s.db, s.run_id, "train")}
    for path in checkpoints.complete():
        step = json.loads((path / "state.json").read_text())["position"]["step"]
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        kept.append((step, str(path.relative_to(s.ws.root)), losses.get(step), size))
    store.sync_checkpoints(s.db, s.run_id, kept)
