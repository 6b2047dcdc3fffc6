"""What the CLI and the console ask for: launch, resume, cancel. Both call these functions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from state import read
from state import write as store

RESUMABLE = ("failed", "cancelled", "stale")
# How long a cancel waits for the run to stop between two units before it sends SIGTERM
# (the same cooperative stop, for a step that cannot poll). `po cancel --wait` changes it.
CANCEL_WAIT_S = 15.0


class ControlError(RuntimeError):
    """A request that cannot be carried out, with the reason in one line."""


def plan(ws, stage_name: str, overrides: dict | None = None) -> dict:
    """The complete config of a run of `stage_name`, checked before any model time is spent,
    its providers included."""
    from pipeline import stages

    stage = stages.get(stage_name)
    config = stage.plan(ws, stage.configure(ws, overrides or {})).model_dump()
    _check_providers(config)
    return config


def _check_providers(config: dict) -> None:
    from pipeline.doctor import unusable

    problems = unusable(config)
    if problems:
        raise ControlError("cannot start: " + "; ".join(problems))


def launch(ws, stage_name: str, overrides: dict | None = None, *, detach: bool = False, on_progress=None,
           on_plan=None, config: dict | None = None, chain_id: int | None = None,
           fingerprint: str | None = None) -> int:
    """Plan a run of `stage_name` (or take the `config` planned already, and its inputs
    `fingerprint` when computed already), show the plan (`on_plan(config)`), then run it here
    or detached. Returns the run id."""
    from pipeline import stages

    config = config if config is not None else plan(ws, stage_name, overrides)
    if on_plan is not None:
        on_plan(config)
    db = ws.db()
    run_id = store.create_run(db, stage_name, config, detached=detach, chain_id=chain_id,
                              inputs_sha256=fingerprint or inputs_fingerprint(ws, stages.get(stage_name), config))
    _start(ws, run_id, detach=detach, on_progress=on_progress)
    return run_id


def inputs_fingerprint(ws, stage, config: dict) -> str:
    """What a run reads, as one hash: its planned config (data hashes, resolved runs and
    providers included; the stage's estimates left out), the source of the program and the
    metric, and the weights of every LoRA adapter a provider table serves. Two runs of a stage
    with the same fingerprint answer the same question."""
    import hashlib
    import importlib.util
    import json

    from pipeline.providers.local_model import adapter_revision

    stable = {k: v for k, v in config.items() if k not in stage.volatile_keys}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode())
    project = ws.project
    for ref in (project.program_ref, project.metric_ref):  # module:name -> the module's source file
        spec = importlib.util.find_spec(ref.partition(":")[0])
        origin = Path(spec.origin) if spec and spec.origin else None
        digest.update(origin.read_bytes() if origin and origin.is_file() else ref.encode())
    from pipeline.saved_programs import fingerprint

    digest.update(fingerprint(project.new_program()).encode())  # what it renders, wherever that is written
    for adapter in sorted(_adapters(config)):
        if Path(adapter).is_dir():
            digest.update(adapter_revision(Path(adapter)).encode())
    return digest.hexdigest()


def _adapters(value) -> set[str]:
    """Every `adapter` path anywhere in a config (provider tables, resolved systems)."""
    if isinstance(value, dict):
        found = {value["adapter"]} if isinstance(value.get("adapter"), str) else set()
        return found.union(*(_adapters(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_adapters(v) for v in value))
    return set()


def resume(ws, run_id: int, *, detach: bool = False, on_progress=None) -> int:
    from pipeline import stages

    db = ws.db()
    run = _get(db, run_id)
    status = run.status
    if status not in RESUMABLE:
        hint = {"running": "it is still running", "queued": "it is about to start", "succeeded": "it already succeeded"}
        raise ControlError(f"run {run_id} cannot be resumed: {hint.get(status, status)}")
    stage = stages.get(run.stage)
    stage.check_resumable(ws, stage.run_config(run.config))
    _check_providers(run.config)
    store.reopen_run(db, run_id, detached=detach)
    _start(ws, run_id, detach=detach, on_progress=on_progress)
    return run_id


def cancel(ws, run_id: int, *, wait_s: float = CANCEL_WAIT_S) -> read.Run:
    """Ask a run to stop between units; SIGTERM its process if it has not stopped in `wait_s`."""
    db = ws.db()
    run = _get(db, run_id)
    if run.status == "stale":
        store.finish_run(db, run_id, "cancelled", error="cancelled while stale (its process was gone)")
        return read.get_run(db, run_id)
    if run.state not in store.ACTIVE:
        raise ControlError(f"run {run_id} is not running (it {run.status})")
    store.request_cancel(db, run_id)
    attempt = run.attempt
    deadline = time.monotonic() + wait_s
    signalled = False
    while True:
        run = read.get_run(db, run_id)
        # A new attempt means it stopped and was resumed meanwhile: never signal that one.
        if run.state not in store.ACTIVE or run.is_stale() or run.attempt != attempt:
            return run
        if time.monotonic() > deadline:
            if signalled or not run.pid or not read.process_alive(run.pid, run.host):
                return run
            os.kill(run.pid, signal.SIGTERM)  # the same cooperative stop, for a step that cannot poll
            signalled, deadline = True, time.monotonic() + wait_s
        time.sleep(0.2)


def _get(db, run_id: int) -> read.Run:
    run = read.get_run(db, run_id)
    if run is None:
        raise ControlError(f"no run {run_id} in this workspace (see `po runs`)")
    return run


def _start(ws, run_id: int, *, detach: bool, on_progress) -> None:
    if detach:
        spawn_worker(ws, run_id)
    else:
        from pipeline.runner import execute

        execute(ws, run_id, on_progress=on_progress)


def detached_worker(ws, args: list[str], log_path) -> subprocess.Popen:
    """`python -m pipeline.worker WORKSPACE ARGS…` in a new session (it survives the shell,
    the terminal and SSH closing), its output appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "pipeline.worker", str(ws.root), *args],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ws.root, close_fds=True)


def spawn_worker(ws, run_id: int) -> int:
    """Start the run in a worker of its own (detached_worker), its output in its run.log."""
    proc = detached_worker(ws, [str(run_id)], ws.run_dir(run_id) / "run.log")
    # Record the pid now, so the run is never "queued with no process" in between.
    with_pid = ws.db()
    from state.db import write

    with write(with_pid) as conn:
        conn.execute("UPDATE runs SET pid=?, heartbeat_at=? WHERE id=? AND state='queued'", (proc.pid, time.time(), run_id))
    return proc.pid
