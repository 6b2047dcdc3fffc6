"""`python -m pipeline.stages.finetune.worker WORKSPACE RUN_ID`: one rank of a multi-process
fine-tune, started by `torchrun` or `accelerate launch` (which set RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous). gloo on CPUs, nccl on GPUs; accelerate wraps the model: DDP,
or FSDP2 through the accelerate config file the user names (distributed.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    import torch
    import torch.distributed as dist

    from pipeline.stages.finetune import STAGE
    from pipeline.stages.finetune.session import Session, train
    from pipeline.workspace import Workspace
    from state import read
    from state import write as store

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available() and os.environ.get("PO_FINETUNE_DEVICE") != "cpu"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    # gloo for the few CPU tensors (the stop flag, the logged loss) beside nccl's GPU traffic.
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    try:
        ws = Workspace(Path(argv[0]))
        db = ws.db()
        run_id = int(argv[1])
        if rank == 0:
            _only_training(ws.run_dir(run_id))
        cfg = STAGE.run_config(read.get_run(db, run_id).config)

        def log(text: str) -> None:
            if rank == 0:
                print(text, flush=True)

        session = Session(ws, db, run_id, ws.run_dir(run_id), cfg, log,
                          lambda: store.cancel_requested(db, run_id),
                          lambda done, total, message: store.set_progress(db, run_id, done, total, message),
                          rank=rank, world=world)
        position, _ = train(session)
        log(f"rank {rank} of {world} stopped at step {position.step}")
        return 0
    finally:
        dist.destroy_process_group()


def _only_training(run_dir: Path) -> None:
    """One training of a run at a time: a launcher left over from a killed stage process must not
    train beside a resumed one on the same checkpoints (the lock goes with the process)."""
    import fcntl

    global _LOCK
    _LOCK = open(run_dir / "training.lock", "w")
    try:
        fcntl.flock(_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"another training of this run is still running (lock {run_dir / 'training.lock'}): "
                         "wait for it to stop, or stop it") from None


_LOCK = None

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
