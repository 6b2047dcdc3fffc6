"""Several training processes without a home-made distribution: `torchrun` or `accelerate
launch` starts one worker per process, and accelerate wraps the model in each (DDP, or FSDP2
when the accelerate config file the user names says so; gloo on CPUs, nccl on GPUs); the
stage watches them, forwards a cancel (the ranks read it from the store and stop together,
after a checkpoint), and reads where they stopped from the newest checkpoint."""

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
    if cfg.launcher == "accelerate" or cfg.accelerate_config:
        # Without a config file, --multi_gpu: accelerate's torchrun launcher, which starts CPU
        # processes too (its CPU launcher needs MPI). Port 0: a free one, two runs side by side.
        config = ["--config_file", str(workspace / cfg.accelerate_config)] if cfg.accelerate_config else ["--multi_gpu"]
        return [sys.executable, "-m", "accelerate.commands.launch", *config, "--num_processes", str(cfg.processes),
                "--num_machines", "1", "--main_process_port", "0", "-m", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.processes}",
            "-m", *args]


def _die_with_parent() -> None:
    """Linux: the launcher gets SIGTERM when the stage's process dies (kill -9 included)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _last_error(log_path) -> str:
    """The line of the ranks' log that names the error (a TrainingError says what to do): a
    rank's own error first (the others then only report that a peer closed), else the last."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()[-400:]
    except OSError:
        return ""
    errors = [line for line in lines if "Error:" in line or "error:" in line]
    own = [line for line in errors if line.startswith("[rank") and "closed by peer" not in line]
    chosen = own[0] if own else errors[-1] if errors else ""
    return f" ({chosen.strip()[:300]})" if chosen else ""


def train_in_processes(ctx, cfg) -> tuple[Position, list]:
    env = {"PO_FINETUNE_DEVICE": "cpu"} if cfg.placement.startswith("cpu") else {}
    import os

    cmd = command(cfg, ctx.workspace.root, ctx.run.id)
    ctx.log.info("starting %s training processes: %s", cfg.processes, " ".join(cmd[2:]))
    ctx.events.flush()
    log_path = ctx.run_dir / "run.log"
    with open(log_path, "ab") as log:
        # Its own process group (stopped as one), and it dies with this process: a launcher that
        # outlived a killed stage would train beside the resumed one.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ctx.workspace.root,
                                env={**os.environ, **env}, start_new_session=True, preexec_fn=_die_with_parent)
    cancelled_at = None
    signalled = None
    while proc.poll() is None:
        time.sleep(0.5)
        if ctx.cancelled and cancelled_at is None:
            cancelled_at = time.monotonic()  # the ranks saw the flag in the store; give them time to checkpoint
        if cancelled_at is not None and signalled is None and time.monotonic() - cancelled_at > GRACE_S:
            os.killpg(proc.pid, signal.SIGTERM)
            signalled = time.monotonic()
        if signalled is not None and time.monotonic() - signalled > 30:
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0 and not ctx.cancelled:
        raise TrainingError(f"the {cfg.processes} training processes stopped with exit code {proc.returncode}"
                            f"{_last_error(log_path)}: see artifacts/{ctx.run.id}/run.log")
    complete = Checkpoints(ctx.run_dir / "checkpoints", cfg.keep_checkpoints).complete()
    position = Position(**json.loads((complete[-1] / STATE).read_text())["position"]) if complete else Position()
    adapter = ctx.run_dir / "adapter"
    files = sorted(p for p in adapter.iterdir() if p.is_file()) if position.step >= cfg.total_steps and \
        adapter.exists() else []
    merged = ctx.run_dir / "merged"
    if files and merged.exists():
        files += sorted(p for p in merged.iterdir() if p.is_file())
    return position, files
