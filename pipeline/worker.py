"""`python -m pipeline.worker WORKSPACE RUN_ID|all`: the process of a detached run, or of
the whole chain of built stages (`po run all --detach`)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    # A new session has no controlling terminal, but ignore SIGHUP anyway: a run must
    # outlive the SSH session that launched it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from pipeline.runner import execute
    from pipeline.workspace import Workspace

    workspace = Workspace(Path(argv[0]))
    if argv[1] == "all":  # `po run all --detach`: every built stage in turn
        from pipeline.control import run_chain

        runs = run_chain(workspace, on_launch=lambda stage: print(f"starting {stage}", flush=True))
        for run in runs:
            print(f"run {run.id} ({run.stage}): {run.state}", flush=True)
        return 0 if runs and runs[-1].state == "succeeded" else 1
    run = execute(workspace, int(argv[1]), log_to_stderr=True)
    return 0 if run.state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
