"""Several training processes without a home-made distribution: `torchrun` (DDP; gloo on
CPUs, nccl on GPUs) or `accelerate launch` (DDP, or FSDP / DeepSpeed through the config file
the user names) starts one worker per process; the stage watches them, forwards a cancel
(the ranks read it from the store and stop together, after a checkpoint), and reads where
they stopped from the newest checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from pipeline.stages.finetune.train import STATE, Checkpoints, Position, TrainingError

WORKER = "pipeline.stages.finetune.worker"
GRACE_S = 120.0  # after a cancel, how long the ranks have to checkpoint and stop before SIGTERM


def command(cfg, workspace, run_id: int) -> list[str]:
    args = [WORKER, str(workspace), str(run_id)]
    if cfg.launcher == "accelerate":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.processes)]
        if cfg.accelerate_config:
            cmd += ["--config_file", str(cfg.accelerate_config)]
        return cmd + ["-m", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.processes}",
            "-m", *args]


def train_in_processes(ctx, cfg) -> tuple[Position, list]:
    env = {"PO_FINETUNE_DEVICE": "cpu"} if cfg.placement.startswith("cpu") else {}
    import os

    cmd = command(cfg, ctx.workspace.root, ctx.run.id)
    ctx.log.info("starting %s training processes: %s", cfg.processes, " ".join(cmd[2:]))
    ctx.events.flush()
    with open(ctx.run_dir / "run.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ctx.workspace.root,
                                env={**os.environ, **env})
    cancelled_at = None
    while proc.poll() is None:
        time.sleep(0.5)
        if ctx.cancelled and cancelled_at is None:
            cancelled_at = time.monotonic()  # the ranks saw the flag in the store; give them time to checkpoint
        if cancelled_at is not None and time.monotonic() - cancelled_at > GRACE_S:
            proc.send_signal(signal.SIGTERM)
    if proc.returncode != 0 and not ctx.cancelled:
        raise TrainingError(f"the {cfg.processes} training processes stopped with exit code {proc.returncode}: see "
                            f"artifacts/{ctx.run.id}/run.log")
    complete = Checkpoints(ctx.run_dir / "checkpoints", cfg.keep_checkpoints).complete()
    position = Position(**json.loads((complete[-1] / STATE).read_text())["position"]) if complete else Position()
    adapter = ctx.run_dir / "adapter"
    files = sorted(p for p in adapter.iterdir() if p.is_file()) if position.step >= cfg.total_steps and \
        adapter.exists() else []
    merged = ctx.run_dir / "merged"
    if files and merged.exists():
        files += sorted(p for p in merged.iterdir() if p.is_file())
    return position, files
