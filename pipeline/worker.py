"""`python -m pipeline.worker WORKSPACE RUN_ID|chain CHAIN_ID`: the process of a detached
run, or of a whole pipeline (`po run all --detach`, `po resume --detach`)."""

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
    if argv[1] == "chain":  # every stage of the pipeline in turn, in this one process (one model load)
        from pipeline import chain

        ended = chain.run(workspace, int(argv[2]), say=lambda text: print(text, flush=True))
        return 0 if ended.state == "succeeded" else 1
    run = execute(workspace, int(argv[1]), log_to_stderr=True)
    return 0 if run.state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
