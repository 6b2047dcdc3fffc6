"""The training loop: LoRA on a causal LM, checkpointed so that a run killed at any moment
continues from its newest complete checkpoint at the same step, with the same next batch.

A hand loop rather than transformers' Trainer: the data order is a pure function of (seed,
epoch), a checkpoint holds the adapter, optimizer, scheduler, RNG states and the position in
the epoch, and nothing else decides what comes next. Checkpoints are written under a
temporary name and renamed (a reader never sees half of one), the oldest pruned.
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.stages.finetune.data import IGNORE, Tokenized

STATE = "state.json"  # written last: a checkpoint without it is incomplete and skipped


class TrainingError(RuntimeError):
    """A training failure a user can act on, in one line (out of memory, disk full)."""


@dataclass
class Settings:
    """What the loop needs of the stage's config."""

    epochs: float
    max_steps: int | None
    learning_rate: float
    schedule: str
    warmup_ratio: float
    batch_size: int
    gradient_accumulation: int
    max_grad_norm: float
    seed: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    keep_checkpoints: int
    total_steps: int | None = None  # as planned: a resume trains to the same end


@dataclass
class Position:
    """Where training stands: optimizer steps done, the epoch, and the micro-batches of that
    epoch already consumed (the data order of an epoch is fixed by the seed)."""

    step: int = 0
    epoch: int = 0
    micro: int = 0
    tokens: int = 0  # tokens seen so far (prompt and answer), for throughput


@dataclass
class Logged:
    """One row of the curves: a training step or an evaluation."""

    step: int
    kind: str  # train, eval
    epoch: float
    loss: float
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    seconds_per_step: float | None = None
    eta_s: float | None = None
    resources: dict = field(default_factory=dict)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the training examples in `epoch`: the same seed, the same order, always."""
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def micro_batches(examples: list[Tokenized], order: list[int], size: int, rank: int = 0, world: int = 1):
    """The epoch's micro-batches for this rank: rank r takes every world-th batch, and every rank
    the same number of them (the remainder is left out, as DistributedSampler's drop_last does:
    processes that step together must take the same number of steps)."""
    batches = [order[i:i + size] for i in range(0, len(order), size)]
    batches = batches[: len(batches) // world * world]
    return [[examples[i] for i in batch] for batch in batches[rank::world]]


def plan_steps(n_train: int, s: Settings, world: int = 1) -> tuple[int, int]:
    """(optimizer steps per epoch, total steps)."""
    micro = math.ceil(n_train / s.batch_size) // world
    per_epoch = max(1, math.ceil(micro / s.gradient_accumulation))
    total = s.max_steps or max(1, math.ceil(per_epoch * s.epochs))
    return per_epoch, total


def collate(batch: list[Tokenized], pad_id: int, device):
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return ids.to(device), labels.to(device), mask.to(device)


class Checkpoints:
    def __init__(self, directory: Path, keep: int):
        self.directory = directory
        self.keep = keep

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first: a directory with its state written last and every
        file its state lists, of the sizes it lists (a truncated one is skipped)."""
        found = []
        for path in self.directory.glob("step-*"):
            if path.name.endswith(".tmp") or not (path / STATE).exists():
                continue
            try:
                state = json.loads((path / STATE).read_text())
                if all((path / name).stat().st_size == size for name, size in state["files"].items()):
                    found.append((state["position"]["step"], path))
            except (OSError, ValueError, KeyError):
                continue
        return [path for _, path in sorted(found)]

    def save(self, position: Position, model, optimizer, scheduler, extra: dict, gathered=None) -> Path:
        """`gathered`: the LoRA weights and optimizer state several processes gathered
        (distributed.gather); one process saves its own."""
        import torch

        final = self.directory / f"step-{position.step:06d}"
        tmp = self.directory / f"step-{position.step:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            weights = gathered[0] if gathered else None
            model.save_pretrained(tmp / "adapter", state_dict=weights)
            torch.save(gathered[1] if gathered else optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            torch.save(random_state(), tmp / "rng.pt")
            for each in self.directory.glob(f"rng-{position.step}-*.pt"):  # the other ranks' (several processes)
                os.replace(each, tmp / f"rng-{each.stem.rsplit('-', 1)[1]}.pt")
            files = {str(p.relative_to(tmp)): p.stat().st_size for p in tmp.rglob("*") if p.is_file()}
            state = {"position": asdict(position), "files": files, **extra}
            with open(tmp / STATE, "w") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except Exception as exc:  # noqa: BLE001 - torch.save reports a full disk as a RuntimeError
            shutil.rmtree(tmp, ignore_errors=True)
            if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc) \
                    or shutil.disk_usage(self.directory).free < 1 << 20:
                last = self.complete()
                kept = f"step {json.loads((last[-1] / STATE).read_text())['position']['step']}" if last else "none"
                raise TrainingError(f"disk full while writing the checkpoint of step {position.step} in "
                                    f"{self.directory}; the last good checkpoint ({kept}) stays usable: free "
                                    "space, then po resume") from None
            raise
        for old in self.complete()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self, path: Path, model, optimizer, scheduler, rank: int = 0, world: int = 1) -> Position:
        """`model`: the peft model (one process) or the wrapped one (several: each rank takes
        its part of the saved weights and optimizer state)."""
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(path / "adapter" / "adapter_model.safetensors"))
        optimizer_state = torch.load(path / "optimizer.pt", weights_only=False)
        if world > 1:
            from pipeline.stages.finetune import distributed

            distributed.scatter(model, optimizer, weights, optimizer_state)
        else:
            set_peft_model_state_dict(model, weights)
            optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
        own = path / f"rng-{rank}.pt"
        rng = torch.load(own if own.exists() else path / "rng.pt", weights_only=False)
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        return Position(**json.loads((path / STATE).read_text())["position"])


def random_state() -> dict:
    """This process's random state: Python's, torch's CPU generator, its current GPU's."""
    import torch

    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def make_optimizer(model, s: Settings, total_steps: int):
    import torch
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s.learning_rate)
    scheduler = get_scheduler(s.schedule, optimizer, num_warmup_steps=round(total_steps * s.warmup_ratio),
                              num_training_steps=total_steps)
    return optimizer, scheduler


@dataclass
class Loop:
    """Everything one training process needs; `on_log` and `should_stop` connect it to the run."""

    model: object  # a peft model; with several processes, accelerate's wrapping of it once the loop runs
    tokenizer: object
    train: list[Tokenized]
    eval: list[Tokenized]
    settings: Settings
    checkpoints: Checkpoints
    device: object
    autocast: object  # a torch dtype to autocast to, or None
    on_log: Callable[[Logged], None]
    should_stop: Callable[[], bool]
    sample_resources: Callable[[], dict]
    rank: int = 0
    world: int = 1
    log: Callable[[str], None] = print


def run_loop(loop: Loop, resume_from: Path | None) -> Position:
    """Train to the planned number of steps (or until `should_stop`, after a checkpoint).
    Returns where it stopped."""
    import torch

    s = loop.settings
    per_epoch, total = plan_steps(len(loop.train), s, loop.world)
    total = s.total_steps or total
    model = loop.model
    optimizer, scheduler = make_optimizer(model, s, total)
    if loop.world > 1:
        from pipeline.stages.finetune import distributed

        model, optimizer, kind = distributed.prepare(model, optimizer, loop.device.type == "cpu")
        loop.model = model
        loop.log(f"{loop.world} processes, {kind} (accelerate)")
    core = getattr(model, "module", model)  # DDP wraps; checkpoints hold the peft model's adapter
    random.seed(s.seed)
    torch.manual_seed(s.seed)
    position = Position()
    if resume_from is not None:
        position = loop.checkpoints.load(resume_from, core if loop.world == 1 else model, optimizer, scheduler,
                                         loop.rank, loop.world)
        loop.log(f"resumed from {resume_from.name}: step {position.step}, epoch {position.epoch}, "
                 f"micro-batch {position.micro}")
    pad = loop.tokenizer.pad_token_id if loop.tokenizer.pad_token_id is not None else loop.tokenizer.eos_token_id
    model.train()
    window_started, window_steps, window_tokens = time.perf_counter(), 0, 0
    last_checkpoint = position.step
    while position.step < total:
        batches = micro_batches(loop.train, epoch_order(len(loop.train), s.seed, position.epoch), s.batch_size,
                                loop.rank, loop.world)
        if not batches:
            raise TrainingError(f"{len(loop.train)} training examples in batches of {s.batch_size} leave no batch "
                                f"for each of {loop.world} processes: lower batch_size or processes")
        if position.micro >= len(batches):
            position.epoch, position.micro = position.epoch + 1, 0
            continue
        group = batches[position.micro:position.micro + s.gradient_accumulation]
        losses, step_tokens = [], 0
        for batch in group:
            ids, labels, mask = collate(batch, pad, loop.device)
            try:
                with torch.autocast(loop.device.type, dtype=loop.autocast, enabled=loop.autocast is not None):
                    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                (loss / len(group)).backward()
            except torch.OutOfMemoryError:
                raise TrainingError(_out_of_memory(s, ids.shape[1])) from None
            losses.append(loss.item())
            step_tokens += int(mask.sum())
        window_tokens += step_tokens
        grad_norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                                   s.max_grad_norm)
        if hasattr(grad_norm, "full_tensor"):  # FSDP2: a sharded norm
            grad_norm = grad_norm.full_tensor()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        position.step += 1
        position.micro += len(group)
        position.tokens += step_tokens * loop.world  # the ranks' shards are the same size
        window_steps += 1
        if position.step % s.log_every == 0 or position.step == total:
            elapsed = time.perf_counter() - window_started
            per_step = elapsed / window_steps
            loss = _mean_over_ranks(sum(losses) / len(losses), loop.world)
            loop.on_log(Logged(position.step, "train", position.epoch + position.micro / max(1, len(batches)),
                               loss, scheduler.get_last_lr()[0], float(grad_norm),
                               window_tokens * loop.world / elapsed if elapsed else None, per_step,
                               per_step * (total - position.step), loop.sample_resources()))
            window_started, window_steps, window_tokens = time.perf_counter(), 0, 0
        if loop.eval and (position.step % s.eval_every == 0 or position.step == total):
            loop.on_log(Logged(position.step, "eval", position.epoch, evaluate(loop, pad)))
        stopping = loop.should_stop()
        if position.step - last_checkpoint >= s.checkpoint_every or position.step == total or stopping:
            gathered = None
            if loop.world > 1:  # each rank's random state (its dropout masks), gathered into rank 0's checkpoint
                import torch.distributed as dist

                rng = loop.checkpoints.directory / f"rng-{position.step}-{loop.rank}.pt"
                rng.parent.mkdir(parents=True, exist_ok=True)
                torch.save(random_state(), rng)
                gathered = distributed.gather(model, optimizer)  # every rank takes part
                dist.barrier()
            if loop.rank == 0:
                loop.checkpoints.save(position, core, optimizer, scheduler, {"total_steps": total, "world": loop.world},
                                      gathered)
            if loop.world > 1:
                dist.barrier()
            last_checkpoint = position.step
        if stopping:
            break
    return position


def evaluate(loop: Loop, pad: int) -> float:
    """Mean loss over the eval split's answer tokens."""
    import torch

    model = loop.model
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(loop.eval), loop.settings.batch_size):
            ids, labels, mask = collate(loop.eval[i:i + loop.settings.batch_size], pad, loop.device)
            with torch.autocast(loop.device.type, dtype=loop.autocast, enabled=loop.autocast is not None):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            n = int((labels[:, 1:] != IGNORE).sum())
            total, count = total + loss.item() * n, count + n
    model.train()
    return total / count if count else float("nan")


def _mean_over_ranks(value: float, world: int) -> float:
    """The loss every process saw, averaged (each rank trains on its own batches)."""
    if world == 1:
        return value
    import torch
    import torch.distributed as dist

    total = torch.tensor([value], dtype=torch.float64)  # a CPU tensor: the group has gloo for those
    dist.all_reduce(total)
    return float(total.item()) / world


def _out_of_memory(s: Settings, width: int) -> str:
    smaller = max(1, s.batch_size // 2)
    return (f"out of GPU memory at batch {s.batch_size} × {width} tokens: try batch_size {smaller}, "
            f"gradient_accumulation {s.gradient_accumulation * (s.batch_size // smaller)}, a lower max_length "
            "or load_in_4bit")
