"""`python -m pipeline.worker WORKSPACE RUN_ID`: the process of a detached run."""

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

    workspace, run_id = Workspace(Path(argv[0])), int(argv[1])
    run = execute(workspace, run_id, log_to_stderr=True)
    return 0 if run.state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
