"""Executing one run in this process: heartbeat, cancel flag, log, progress, final state."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from state import read
from state import write as store
from state.write import EventBuffer

HEARTBEAT_S = 2.0

ProgressCallback = Callable[[int, int | None, str | None], None]


class RunCancelled(Exception):
    """Raised by a stage between units when a cancel was requested; may carry what was achieved."""

    def __init__(self, summary: dict | None = None):
        super().__init__("cancelled")
        self.summary = summary


@dataclass
class RunContext:
    workspace: object  # pipeline.workspace.Workspace
    run: read.Run
    db: object
    events: EventBuffer
    log: logging.Logger
    cancel_event: threading.Event = field(default_factory=threading.Event)
    on_progress: ProgressCallback | None = None

    @property
    def config(self) -> dict:
        """The run's config as stored; stages read it typed (the `cfg` given to `Stage.run`)."""
        return self.run.config

    @property
    def run_dir(self) -> Path:
        return self.workspace.run_dir(self.run.id)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel_requested_now(self) -> bool:
        """Asks the store now rather than waiting for the next heartbeat (for stages whose
        units are seconds apart and costly, like MIPROv2's trials)."""
        if not self.cancel_event.is_set() and store.cancel_requested(self.db, self.run.id):
            self.cancel_event.set()
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise RunCancelled()

    def progress(self, done: int, total: int | None, message: str | None = None, *, stored: bool = False) -> None:
        """Report progress; `stored` when the stage already wrote done/total with its unit."""
        if not stored:
            store.set_progress(self.db, self.run.id, done, total, message)
        self.events.emit("progress", {"done": done, "total": total, "message": message})
        if self.on_progress:
            self.on_progress(done, total, message)

    def add_artifact(self, path: Path, kind: str) -> None:
        data = path.read_bytes()
        relative = str(path.relative_to(self.workspace.root))
        store.put_artifact(self.db, self.run.id, relative, kind, hashlib.sha256(data).hexdigest(), len(data))


class _Redact(logging.Filter):
    """No secret reaches run.log or the events table, whatever a library put in a message."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pipeline.providers.remote import redact

        record.msg, record.args = redact(record.getMessage()), ()
        return True


class _EventLogHandler(logging.Handler):
    def __init__(self, events: EventBuffer):
        super().__init__(logging.INFO)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.emit("log", {"level": record.levelname.lower(), "message": record.getMessage()})


class _PrintsToLog(io.TextIOBase):
    """Libraries that print (DSPy's MIPROv2 prints programs and bootstrapping steps) write to
    the run's log instead of the stdout of the `po` command, which may be --json."""

    def __init__(self, log: logging.Logger):
        self.log = log
        self.partial = ""

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                self.log.info("%s", line.rstrip())
        return len(text)


def _heartbeat(ctx: RunContext, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            if store.heartbeat(ctx.db, ctx.run.id):
                ctx.cancel_event.set()
            ctx.events.flush()
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the run goes on
            ctx.log.warning("heartbeat failed: %s", exc)


def execute(workspace, run_id: int, *, on_progress: ProgressCallback | None = None, log_to_stderr: bool = False) -> read.Run:
    """Run a queued run to its end in this process. Returns the run as it ended."""
    from pipeline import stages

    db = workspace.db()
    run = read.get_run(db, run_id)
    stage = stages.get(run.stage)
    store.start_run(db, run_id, os.getpid(), socket.gethostname())
    run = read.get_run(db, run_id)
    events = EventBuffer(db, run_id)
    log = logging.getLogger(f"po.run.{run_id}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handlers: list[logging.Handler] = [_EventLogHandler(events)]
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    if log_to_stderr:  # detached: stderr is run.log
        handlers.append(logging.StreamHandler())
    else:
        handlers.append(logging.FileHandler(workspace.run_dir(run_id) / "run.log"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_Redact())
        log.addHandler(handler)
    # Provider retries (pipeline.providers) and DSPy's own progress (MIPROv2's trials) belong
    # in this run's log, not on the terminal of a foreground run.
    # DSPy's own stderr handler is set aside meanwhile: detached, stderr *is* run.log, and
    # every line would be written twice. DSPy adds that handler when imported: import it first.
    import dspy  # noqa: F401

    library_logs = [logging.getLogger("po.providers"), logging.getLogger("dspy")]
    set_aside = {library_log: library_log.handlers[:] for library_log in library_logs}
    for library_log in library_logs:
        library_log.setLevel(logging.INFO)
        library_log.propagate = False
        library_log.handlers = handlers[:]

    ctx = RunContext(workspace, run, db, events, log, on_progress=on_progress)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(ctx, stop), name="po-heartbeat", daemon=True)
    beat.start()
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM is the fallback of `po cancel`: it asks for the same cooperative stop.
        previous_term = signal.signal(signal.SIGTERM, lambda *_: ctx.cancel_event.set())

    events.emit("state", {"state": "running", "attempt": run.attempt})
    log.info("run %s (%s) started, attempt %s, pid %s", run_id, run.stage, run.attempt, os.getpid())
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(_PrintsToLog(log)):
            summary = stage.run(ctx, stage.run_config(run.config))
    except (RunCancelled, KeyboardInterrupt) as exc:
        log.info("run %s cancelled after %.1f s; stored units are kept for resume", run_id, time.monotonic() - started)
        _end(ctx, "cancelled", summary=getattr(exc, "summary", None))
    except Exception as exc:  # noqa: BLE001 - recorded as the run's failure
        log.error("run %s failed: %s\n%s", run_id, exc, traceback.format_exc())
        _end(ctx, "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    else:
        log.info("run %s succeeded in %.1f s", run_id, time.monotonic() - started)
        _end(ctx, "succeeded", summary=summary)
    finally:
        stop.set()
        beat.join(timeout=5)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        events.flush()
        for library_log, own in set_aside.items():
            library_log.handlers = own
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
    return read.get_run(db, run_id)


def _end(ctx: RunContext, state: str, *, summary: dict | None = None, error: str | None = None) -> None:
    from pipeline.providers.remote import redact

    error = redact(error) if error else None
    ctx.events.emit("state", {"state": state, "error": error})
    ctx.events.flush()
    store.finish_run(ctx.db, ctx.run.id, state, summary=summary, error=error)
