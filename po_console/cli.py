"""The `po` command line: the same operations as the console, for shells and scripts."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console

from po_console import render

app = typer.Typer(
    name="po",
    help="Operate the Product Owner distillation pipeline: baseline, MIPROv2, teacher data, "
    "fine-tune, validation, integration. Runs live in a workspace (po.toml, state.db, artifacts/).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(markup=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, highlight=False)


class Options:
    workspace: Optional[str] = None
    debug: bool = False


OPTIONS = Options()

# Exit codes: 0 success, 1 a run failed or an operation failed, 2 bad usage/config/data,
# 130 the run was cancelled.
EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130


@app.callback()
def main_options(
    workspace: Optional[str] = typer.Option(
        None, "--workspace", "-w", envvar="PO_WORKSPACE", help="workspace directory [default: ./po-workspace]"
    ),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks on errors"),
) -> None:
    OPTIONS.workspace = workspace
    OPTIONS.debug = debug


def _ws():
    from pipeline.workspace import locate

    return locate(OPTIONS.workspace)


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def init(
    demo: bool = typer.Option(False, "--demo", help="copy the shipped demo data: runs fully offline on the embedded model"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing po.toml"),
) -> None:
    """Create a workspace: po.toml, state.db, artifacts/, cache/ (and data/ with --demo)."""
    from pipeline.workspace import init_workspace

    ws = init_workspace(OPTIONS.workspace, demo=demo, force=force)
    out.print(f"workspace ready: {ws.root}")
    if demo:
        out.print("demo data in data/ (60 train, 34 validation, 520 pool inputs). Next: po run baseline, or po run all")
    else:
        out.print("put your JSONL data sets where po.toml's [data] says, then: po run baseline")


@app.command("run")
def run_stage(
    stage: str = typer.Argument(..., help="baseline, mipro, teacher, or all of them in order "
                                "(finetune, validation, integration: later)"),
    detach: bool = typer.Option(False, "--detach", "-d", help="run in the background; survives logout; prints the run id"),
    resume_run: Optional[int] = typer.Option(None, "--resume", metavar="RUN", help="continue this run instead of starting one"),
    threads: Optional[int] = typer.Option(None, "--threads", help="examples evaluated concurrently"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only the first N (validation) examples"),
    candidates: Optional[int] = typer.Option(None, "--candidates", help="mipro: instruction/demo candidates"),
    trials: Optional[int] = typer.Option(None, "--trials", help="mipro: optimization trials"),
    auto: Optional[str] = typer.Option(None, "--auto", help="mipro: light, medium or heavy"),
    max_records: Optional[int] = typer.Option(None, "--max-records", help="teacher: stop at N accepted records"),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="teacher: accept answers scoring >= S"),
    attempts: Optional[int] = typer.Option(None, "--attempts", help="teacher: answers tried per input (best of k)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the config and print the plan (for mipro: "
                                 "evaluations, LM calls, projected time and money); start nothing"),
) -> None:
    """Run a stage in the foreground (progress bar) or detached.

    \b
    Examples:
      po run baseline                  # evaluate the program, show a table
      po run baseline --limit 5        # a quick look
      po run baseline --detach         # keep going after you log out; then: po logs RUN -f
      po run mipro --dry-run           # what an optimization will cost, before paying for it
      po run teacher --max-records 400 --min-score 0.85 --detach
      po run all --detach              # every stage in order, settings from po.toml
    """
    from pipeline import control

    ws = _ws()
    from pipeline.stages import LIMIT_KEY

    given = {"threads": threads, LIMIT_KEY.get(stage, "limit"): limit, "num_candidates": candidates,
             "num_trials": trials, "auto": auto, "max_records": max_records, "min_score": min_score,
             "attempts_per_input": attempts}
    if stage == "all":
        options = resume_run is not None or dry_run or any(v is not None for v in given.values())
        return _run_all(ws, detach, as_json, options)
    if stage != "mipro" and any(given[k] is not None for k in ("num_candidates", "num_trials", "auto")):
        raise click.UsageError("--candidates, --trials and --auto are options of `po run mipro`")
    if stage != "teacher" and any(given[k] is not None for k in ("max_records", "min_score", "attempts_per_input")):
        raise click.UsageError("--max-records, --min-score and --attempts are options of `po run teacher`")
    overrides = {k: v for k, v in given.items() if v is not None}
    if resume_run is not None:
        if overrides or dry_run:
            raise click.UsageError("--resume continues a run with its own config: drop the other options")
        return _finish(ws, resume_run, detach, as_json, lambda cb: control.resume(ws, resume_run, detach=detach, on_progress=cb))
    if dry_run:
        config = control.plan(ws, stage, overrides)
        if as_json:
            return _print_json(config)
        return _print_plan(out, stage, config)
    show = None if as_json else (lambda config: _print_plan(err, stage, config))
    return _finish(ws, None, detach, as_json,
                   lambda cb: control.launch(ws, stage, overrides, detach=detach, on_progress=cb, on_plan=show), stage)


def _run_all(ws, detach: bool, as_json: bool, options: bool) -> None:
    """Every built stage in order with po.toml's settings; stops at the first that fails."""
    from pipeline import control

    if options:
        raise click.UsageError("`po run all` takes its settings from po.toml: drop the stage options")
    stages = control.chain()
    if detach:
        pid = control.spawn_chain(ws)
        if as_json:
            return _print_json({"pid": pid, "stages": stages, "log": str(ws.artifacts_dir / "pipeline.log")})
        out.print(f"pipeline ({', '.join(stages)}) started in the background (pid {pid}). "
                  "Watch: po console, or po status --watch")
        return
    for stage in stages:
        if not as_json:
            err.print(f"== {stage} ==", style="bold", highlight=False)
        _finish(ws, None, False, as_json, lambda cb, stage=stage: control.launch(ws, stage, on_progress=cb), stage)


def _print_plan(console, stage: str, config: dict) -> None:
    if config.get("projection"):
        from pipeline.stages.mipro_budget import describe

        for line in describe(config["projection"], config):
            console.print(line, highlight=False)
    elif console is out:
        console.print(f"{stage}: config is valid")


@app.command()
def resume(
    run_id: int = typer.Argument(..., metavar="RUN"),
    detach: bool = typer.Option(False, "--detach", "-d", help="continue in the background"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Continue a failed, cancelled or stale run from its last stored unit."""
    from pipeline import control

    ws = _ws()
    _finish(ws, run_id, detach, as_json, lambda cb: control.resume(ws, run_id, detach=detach, on_progress=cb))


def _finish(ws, run_id, detach: bool, as_json: bool, start, stage: str | None = None) -> None:
    """Start a run (`start(on_progress)` returns its id) and report it: at once when detached,
    else with a progress bar labelled for the stage, then the run."""
    from state import read

    if detach:
        run_id = start(None)
        if as_json:
            _print_json({"run_id": run_id, "log": str(ws.run_dir(run_id) / "run.log")})
        else:
            out.print(f"run {run_id} started in the background. Watch: po logs {run_id} -f   Stop: po cancel {run_id}")
        return
    if stage is None and run_id is not None:  # a resume: the stored run's stage (unknown ids fail below)
        stage = getattr(read.get_run(ws.db(readonly=True), run_id), "stage", None)
    with render.RunProgress(err, enabled=not as_json, stage=stage) as progress:
        run_id = start(progress.update)
    run = read.get_run(ws.db(readonly=True), run_id)
    if as_json:
        _print_json(run.to_json())
    else:
        render.print_run(out, run)
    if run.state == "failed":
        raise typer.Exit(EXIT_FAILED)
    if run.state == "cancelled":
        raise typer.Exit(EXIT_CANCELLED)


@app.command()
def cancel(
    run_id: int = typer.Argument(..., metavar="RUN"),
    wait: float = typer.Option(15.0, "--wait", help="seconds to wait for a cooperative stop before SIGTERM"),
) -> None:
    """Stop a run between two units of work; what is stored stays (resume it later)."""
    from pipeline import control

    run = control.cancel(_ws(), run_id, wait_s=wait)
    out.print(f"run {run_id}: {run.status}")
    if run.status not in ("cancelled", "succeeded", "failed", "stale"):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def runs(
    stage: Optional[str] = typer.Option(None, "--stage", help="only this stage"),
    limit: int = typer.Option(30, "--limit", "-n"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, newest first."""
    from state import read

    items = read.list_runs(_ws().db(readonly=True), stage=stage, limit=limit)
    if as_json:
        _print_json([r.to_json() for r in items])
    else:
        out.print(render.runs_table(items))


@app.command()
def status(
    run_id: Optional[int] = typer.Argument(None, metavar="[RUN]"),
    as_json: bool = typer.Option(False, "--json"),
    watch: bool = typer.Option(False, "--watch", help="refresh every 2 s (plain text; Ctrl-C to stop)"),
) -> None:
    """Where each stage stands, or one run in detail."""
    from state import read

    ws = _ws()
    db = ws.db(readonly=True)
    if run_id is not None:
        run = read.get_run(db, run_id)
        if run is None:
            raise click.UsageError(f"no run {run_id} in this workspace (see `po runs`)")
        extra = {}
        if run.stage == "teacher":
            from pipeline import teacher

            stats = read.teacher_stats(db, run_id)
            target = run.config["max_records"]
            extra = {"teacher": {**stats, "projection": teacher.projection(stats, target)}}
        if as_json:
            _print_json({**run.to_json(), "artifacts": read.artifacts(db, run_id), **extra})
        else:
            render.print_run(out, run, artifacts=read.artifacts(db, run_id))
            if extra:
                for line in teacher.progress_lines(stats, target, run.config["min_score"]):
                    out.print("  " + line, highlight=False)
        return
    while True:
        latest = read.latest_run_per_stage(db)
        teacher = latest.get("teacher")
        stats = read.teacher_stats(db, teacher.id) if teacher and teacher.status == "running" else None
        if as_json:
            _print_json(render.overview_rows(latest, stats))
        else:
            out.print(render.overview_table(latest, stats))
        if not watch:
            return
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return
        out.print()


@app.command()
def logs(
    run_id: int = typer.Argument(..., metavar="RUN"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing as the run writes"),
) -> None:
    """Print a run's log (run.log)."""
    from state import read

    ws = _ws()
    db = ws.db(readonly=True)
    if read.get_run(db, run_id) is None:
        raise click.UsageError(f"no run {run_id} in this workspace (see `po runs`)")
    path = ws.artifacts_dir / str(run_id) / "run.log"
    offset = 0
    while True:
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
        if not follow:
            return
        run = read.get_run(db, run_id)
        if run.status not in ("queued", "running") and path.exists() and path.stat().st_size == offset:
            return
        time.sleep(0.5)


program_app = typer.Typer(help="Review, compare, verify, import and export PO programs.", no_args_is_help=True)
app.add_typer(program_app, name="program")

PROGRAM_REF = "baseline (the program as written), a name under programs/, or a directory"


def _program(ref: str, allow_pickle: bool = False):
    """(program, its directory or None) for a reference."""
    from pipeline.program import ProductOwnerProgram
    from pipeline.programs import ProgramError, load_program

    if ref == "baseline":
        return ProductOwnerProgram(), None
    ws_dir = _ws().root / "programs" / ref if "/" not in ref else None
    path = ws_dir if ws_dir is not None and ws_dir.exists() else Path(ref)
    if not path.exists():
        raise ProgramError(f"no program {ref!r}: give {PROGRAM_REF}")
    return load_program(path, allow_pickle=allow_pickle), path


@program_app.command("list")
def program_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Programs saved in this workspace (programs/)."""
    root = _ws().root / "programs"
    items = []
    for manifest in sorted(root.glob("*/manifest.json")):
        data = json.loads(manifest.read_text())
        items.append({"name": manifest.parent.name, "fingerprint": data["fingerprint"][:12], "demos": data["demos"],
                      "source": data["metadata"].get("source", "")})
    if as_json:
        _print_json(items)
    else:
        for item in items or [{"name": "(none yet)", "fingerprint": "", "demos": "", "source": ""}]:
            out.print(f"{item['name']:20} {item['fingerprint']:12} demos {item['demos']}  {item['source']}".rstrip())


@program_app.command("show")
def program_show(
    ref: str = typer.Argument(..., help=PROGRAM_REF),
    as_json: bool = typer.Option(False, "--json"),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="load a pickled program (runs its code)"),
) -> None:
    """Instructions, fields and demos of a program, with its prompt fingerprint."""
    from pipeline.programs import review_data

    program, path = _program(ref, allow_pickle)
    data = review_data(program, ref, path)
    if as_json:
        _print_json(data)
        return
    render.print_program(out, data)


@program_app.command("diff")
def program_diff(a: str = typer.Argument(..., help=PROGRAM_REF), b: str = typer.Argument(..., help=PROGRAM_REF)) -> None:
    """What changed from program A to program B: instructions, field texts, demos."""
    from pipeline.programs import diff_programs

    lines = diff_programs(_program(a)[0], _program(b)[0], (a, b))
    out.print("\n".join(lines) if lines else render.SAME_PROGRAMS)


@program_app.command("verify")
def program_verify(ref: str = typer.Argument(..., help=PROGRAM_REF)) -> None:
    """Reload a saved program in a fresh program and compare its prompt fingerprint."""
    from pipeline.programs import verify_program

    _, path = _program(ref)
    if path is None:
        raise click.UsageError("the baseline program is not saved: nothing to verify")
    out.print(f"{ref}: ok, fingerprint {verify_program(path)[:12]} (fields, instructions and demos intact)")


@program_app.command("export")
def program_export(ref: str = typer.Argument(..., help=PROGRAM_REF),
                   to: Path = typer.Option(..., "--to", help="directory to write program.json + manifest.json")) -> None:
    """Write a program where another pipeline can load it with plain DSPy."""
    from pipeline.programs import save_program

    program, _ = _program(ref)
    manifest = save_program(program, to, {"exported_from": ref})
    out.print(f"wrote {to}/program.json and manifest.json (fingerprint {manifest['fingerprint'][:12]}).")
    out.print("Load it with: program = ProductOwnerProgram(); program.load('program.json')")


@program_app.command("import")
def program_import(
    components: Path = typer.Argument(..., help="program_components.json written by the old tune_dspy.py fallback"),
    metadata: Optional[Path] = typer.Option(None, "--metadata", help="its metadata.json"),
    name: str = typer.Option("imported", "--name", help="name under programs/"),
) -> None:
    """Read the team's fallback files into a program in this workspace, and say what they lack."""
    from pipeline.programs import import_components, save_program

    program, lacks, meta = import_components(components, metadata)
    target = _ws().root / "programs" / name
    manifest = save_program(program, target, {"source": f"import of {components}", "original": meta})
    out.print(f"imported as programs/{name} (fingerprint {manifest['fingerprint'][:12]})")
    for item in lacks:
        out.print(f"  lacks {item}")


teacher_app = typer.Typer(help="Import and export teacher data sets.", no_args_is_help=True)
app.add_typer(teacher_app, name="teacher")


@teacher_app.command("import")
def teacher_import(
    path: Path = typer.Argument(..., help="a JSONL data set, e.g. the old script's po_teacher_dataset.jsonl"),
    run_id: Optional[int] = typer.Option(None, "--run", metavar="RUN", help="import into this teacher run "
                                         "(default: a new one with [teacher] from po.toml)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="import the good lines even when some are bad"),
    max_records: Optional[int] = typer.Option(None, "--max-records", help="target of a new run"),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="threshold of a new run"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Continue a data set made elsewhere: each record is scored again with this workspace's
    metric and kept when it passes; `po resume RUN` then generates the rest.

    \b
    Lines are {"inputs": {...}, "outputs": {...}} or the six fields at the top level
    (concept, requirements_yaml, existing_vision, product_vision, product_owner_review),
    optional "id" and "teacher_model".
    """
    from pipeline.stages.teacher import import_dataset

    overrides = {k: v for k, v in (("max_records", max_records), ("min_score", min_score)) if v is not None}
    if overrides and run_id is not None:
        raise click.UsageError("--max-records/--min-score set up a new run: drop them with --run")
    result = import_dataset(_ws(), path, run_id=run_id, skip_bad=skip_bad, overrides=overrides)
    if as_json:
        return _print_json(result)
    out.print(f"run {result['run_id']}: read {result['read']} records: {result['accepted']} accepted, "
              f"{result['rejected']} below min_score now, {result['surplus']} beyond the target or repeated; "
              f"{result['accepted_total']} of {result['target']} accepted in all")
    for line in result["bad_lines"]:
        err.print(f"skipped {line}", highlight=False)
    out.print(f"continue: po resume {result['run_id']}")


@teacher_app.command("export")
def teacher_export(
    run_id: int = typer.Argument(..., metavar="RUN"),
    to: Optional[Path] = typer.Option(None, "--out", help="default: artifacts/RUN/po_teacher_dataset.jsonl"),
) -> None:
    """Write a teacher run's accepted records as JSONL, from the store (same store, same bytes)."""
    from pipeline import teacher
    from state import read

    ws = _ws()
    db = ws.db(readonly=True)
    run = read.get_run(db, run_id)
    if run is None or run.stage != "teacher":
        raise click.UsageError(f"run {run_id} is not a teacher run (see `po runs`)")
    records = read.teacher_records(db, run_id, accepted_only=True)
    path = teacher.write_export(records, to or ws.run_dir(run_id) / teacher.EXPORT_NAME)
    out.print(f"wrote {len(records)} records to {path}")


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json")) -> None:
    """Check each configured provider (credentials, endpoint, model) and this machine
    (torch device and dtype, free disk, model cache). Each failure comes with its fix."""
    from pipeline.doctor import run_doctor

    checks = run_doctor(_ws())
    if as_json:
        _print_json([c.to_json() for c in checks])
    else:
        render.print_doctor(out, checks)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def console(
    low_bandwidth: bool = typer.Option(
        None, "--low-bandwidth/--full", help="no animations, refresh every 3 s (also PO_LOW_BANDWIDTH=1)"
    ),
) -> None:
    """Open the operations console (Textual): overview, runs and logs, baseline results.

    Keys are shown in the footer and in the command palette (ctrl+p); q leaves, and
    every run goes on.
    """
    from po_console.app import run_console

    run_console(_ws(), low_bandwidth=low_bandwidth)


def console_main() -> None:
    """Entry point of `po-console`: `po [-w DIR] [--debug] console [OPTIONS]`."""
    args, front, rest = sys.argv[1:], [], []
    while args:
        arg = args.pop(0)
        if arg in ("-w", "--workspace") and args:
            front += [arg, args.pop(0)]
        elif arg.startswith("--workspace=") or arg == "--debug":
            front.append(arg)
        else:
            rest.append(arg)
    sys.argv[1:] = [*front, "console", *rest]
    main()


def main() -> None:
    """Entry point of `po`: user errors are one line and a non-zero exit; --debug shows tracebacks."""
    from pipeline.config import ConfigError
    from pipeline.control import ControlError
    from pipeline.datasets import DatasetError
    from pipeline.providers.local_model import ModelNotFound
    from pipeline.stages import UnknownStage
    from pipeline.workspace import WorkspaceError
    from state.schema import SchemaTooNew

    user_errors = (ConfigError, DatasetError, WorkspaceError, ControlError, UnknownStage, ModelNotFound, SchemaTooNew)
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit's code when not standalone
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(EXIT_CANCELLED)
    except Exception as exc:  # noqa: BLE001 - sorted below
        # pipeline.programs imports DSPy (0.4 s): a ProgramError exists only if a command loaded it.
        programs = sys.modules.get("pipeline.programs")
        if not isinstance(exc, user_errors + ((programs.ProgramError,) if programs else ())):
            _unexpected(exc)
        if OPTIONS.debug:
            raise
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)


def _unexpected(exc: Exception) -> None:
    """One line for users, the traceback with --debug."""
    if OPTIONS.debug:
        raise exc
    err.print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", markup=False, soft_wrap=True)
    sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
