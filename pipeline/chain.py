"""`po run all`: the pipeline as one chain of runs, recorded in the store so it can be
resumed as a whole (`po resume` with no run). Each stage of the chain, in order:

- a run of it this chain started and that succeeded: done, go on;
- one that failed, was cancelled or lost its process: resumed where it stopped;
- otherwise it is planned, and when a succeeded run of the stage read exactly the same
  inputs (`control.inputs_fingerprint`) it is skipped, saying which run it reuses;
- else a new run starts.

The chain stops at the first run that does not succeed, with what to do. At the end, with
`promote`, a run whose stage can promote (validation) and whose gate passed is promoted.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable

from pipeline import control
from pipeline.config import ConfigError
from pipeline.datasets import DatasetError
from state import read
from state import write as store

# execute(stage name, start) runs `start(on_progress)` (which returns a run id) and returns the
# finished run: the CLI draws a progress bar, the background worker logs.
Execute = Callable[[str, Callable], read.Run]


def stage_names() -> list[str]:
    """The stages `po run all` runs, in pipeline order."""
    from pipeline import stages

    return [stage.name for stage in stages.chain()]


def start(ws, *, promote: bool = False) -> int:
    """A new pipeline; refused while the last one is still running (two would race for the
    same stages)."""
    current = read.latest_chain(ws.db(readonly=True))
    if current is not None and current.status == "running":
        raise control.ControlError(f"pipeline {current.id} is still running (pid {current.pid}): watch it with "
                                   "`po status`, or stop its run with `po cancel RUN`")
    return store.create_chain(ws.db(), stage_names(), promote=promote)


def resumable(ws) -> read.Chain:
    """The newest chain, when it can be continued; ControlError saying why not otherwise."""
    chain = read.latest_chain(ws.db(readonly=True))
    if chain is None:
        raise control.ControlError("no pipeline to resume: start one with `po run all`")
    status = chain.status
    if status == "succeeded":
        raise control.ControlError(f"the last pipeline (chain {chain.id}) succeeded: nothing to resume "
                                   "(`po run all` starts a new one; stages with the same inputs are skipped)")
    if status == "running":
        raise control.ControlError(f"the pipeline (chain {chain.id}) is still running (pid {chain.pid})")
    return chain


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a stage's plan or resume refuses with: one line for people, the chain stops there."""
    from pipeline.providers.local_model import ModelNotFound
    from pipeline.saved_programs import ProgramError

    return control.ControlError, ConfigError, DatasetError, ProgramError, ModelNotFound


def run(ws, chain_id: int, *, say: Callable[[str], None] = print, execute: Execute | None = None) -> read.Chain:
    """Run (or continue) chain `chain_id` in this process; returns it as it ended."""
    db = ws.db()
    execute = execute or (lambda stage, begin: read.get_run(db, begin(None)))
    chain = read.get_chain(db, chain_id)
    store.chain_started(db, chain_id, os.getpid(), socket.gethostname())

    def end(state: str, error: str | None) -> read.Chain:
        store.chain_ended(db, chain_id, state, error)
        say(error or "pipeline succeeded")
        return read.get_chain(db, chain_id)

    used = []  # the run each stage ended with: its own, resumed, or the one it reused
    try:
        for name in chain.stages:
            try:
                run, stop = _step(ws, db, chain, name, say, execute)
            except _user_errors() as exc:
                return end("failed", f"{name}: {exc}. Fix it, then `po resume` continues the pipeline")
            if stop is not None:
                return end(*stop)
            used.append(run)
        if chain.promote:
            _promote(ws, used, say)
    except BaseException as exc:  # an interrupt, a crash: the chain is not running any more
        store.chain_ended(db, chain_id, "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed",
                          f"{type(exc).__name__}: {exc}")
        raise
    return end("succeeded", None)


def _step(ws, db, chain: read.Chain, name: str, say, execute: Execute):
    """Do one stage of the chain: (the run it ended with, None) to go on, or (that run,
    (chain state, what to do)) when the chain must stop there."""
    from pipeline import stages

    mine = [r for r in read.chain_runs(db, chain.id) if r.stage == name]
    last = mine[-1] if mine else None
    if last is not None and last.state == "succeeded":
        say(f"{name}: done (run {last.id})")
        return last, None
    if last is not None and last.status not in control.RESUMABLE:
        raise control.ControlError(f"run {last.id} is {last.status}")
    config = control.plan(ws, name)
    fingerprint = control.inputs_fingerprint(ws, stages.get(name), config)
    if last is not None and last.inputs_sha256 == fingerprint:
        say(f"{name}: resuming run {last.id} ({last.status})")
        run = execute(name, lambda on_progress: control.resume(ws, last.id, on_progress=on_progress))
    else:
        if last is not None:  # po.toml, the data or an earlier stage changed since: what it says now
            say(f"{name}: its inputs changed since run {last.id} stopped: a new run")
        same = read.same_inputs_run(db, name, fingerprint)
        if same is not None:
            say(f"{name}: skipped: run {same.id} succeeded with the same inputs")
            return same, None
        say(f"{name}: starting")
        run = execute(name, lambda on_progress: control.launch(ws, name, config=config, chain_id=chain.id,
                                                               fingerprint=fingerprint, on_progress=on_progress))
    if run.state == "succeeded":
        say(f"{name}: run {run.id} succeeded")
        return run, None
    if run.state == "cancelled":
        return run, ("cancelled", f"{name}: run {run.id} was cancelled; `po resume` continues the pipeline from it")
    why = f": {run.error}" if run.error else ""
    return run, ("failed", f"{name}: run {run.id} {run.state}{why}. See `po logs {run.id}`; fix the cause, then "
                           "`po resume` continues the pipeline (the run resumes, or starts anew if its inputs "
                           "changed)")


def _promote(ws, used: list[read.Run], say) -> None:
    from pipeline import promotion

    for run in reversed(used):
        offer = promotion.offer(run)
        if offer is None or offer.get("system") is None:
            continue
        if offer["verdict"] != "pass":
            say(f"not promoted: the gate of run {run.id} says {offer['verdict']} (see its report.md)")
            return
        promotion.promote(ws, run.id, who=getpass.getuser())
        say(f"promoted: {offer['system']} of run {run.id} is the task model")
        return
    say("not promoted: no stage of this pipeline judged a system (no validation run)")


def spawn(ws, chain_id: int) -> int:
    """The chain in a new session (it survives the shell and SSH); its own output goes to
    artifacts/pipeline.log, each run's to its run.log."""
    ws.artifacts_dir.mkdir(parents=True, exist_ok=True)
    proc = control.detached_worker(ws, ["chain", str(chain_id)], ws.artifacts_dir / "pipeline.log")
    store.chain_started(ws.db(), chain_id, proc.pid, socket.gethostname())
    return proc.pid
