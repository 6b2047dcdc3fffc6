"""The `po` command line: the same operations as the console, for shells and scripts.

Built with click, as sqlite-utils and Harlequin are: each command calls the Python function
the console calls too; `po run STAGE` and each stage's own commands are generated from the
stage registry (stage_commands.py).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console

from pipeline import stages
from pipeline.control import CANCEL_WAIT_S
from po_console import render
from po_console.stage_commands import RUN_HELP, Group, RunCommands, command_group, shortcut_command

out = Console(markup=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

# Exit codes: 0 success, 1 a run failed or an operation failed, 2 bad usage/config/data,
# 130 the run was cancelled.
EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130


class Options:
    workspace: str | None = None
    debug: bool = False


OPTIONS = Options()
CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(cls=Group, context_settings=CONTEXT, no_args_is_help=True)
@click.option("--workspace", "-w", envvar="PO_WORKSPACE", help="workspace directory [default: ./po-workspace]")
@click.option("--debug", is_flag=True, help="show tracebacks on errors")
def cli(workspace: str | None, debug: bool) -> None:
    """Operate the Product Owner distillation pipeline: baseline, MIPROv2, teacher data,
    fine-tune, validation, integration. Runs live in a workspace (po.toml, state.db, artifacts/)."""
    OPTIONS.workspace = workspace
    OPTIONS.debug = debug


def _workspace_dir() -> str | None:
    """-w after the command wins over -w before it, which wins over $PO_WORKSPACE."""
    ctx = click.get_current_context(silent=True)
    given = ctx.find_root().meta.get("workspace") if ctx else None
    return given or OPTIONS.workspace


def _ws():
    from pipeline.workspace import locate

    return locate(_workspace_dir())


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@cli.command()
@click.option("--demo", type=click.Choice(["pipeline", "distill"]), is_flag=False, flag_value="pipeline",
              default=None, help="copy the shipped demo data: runs fully offline on the embedded model. --demo "
              "(pipeline): every stage small, about 10 min; --demo=distill: sized to tell with a confidence "
              "interval whether the student beats the program as written (about 45 min)")
@click.option("--force", is_flag=True, help="overwrite an existing po.toml")
@click.option("--program", metavar="MODULE:NAME", help="your dspy.Module class (or a function returning one)")
@click.option("--metric", metavar="MODULE:NAME", help="your metric(example, prediction, trace=None)")
@click.option("--python-path", multiple=True, metavar="DIR", help="where your package lives (repeatable)")
@click.option("--train", metavar="FILE", help="training examples, with reference outputs (JSONL)")
@click.option("--val", metavar="FILE", help="validation examples (JSONL)")
@click.option("--pool", metavar="FILE", help="inputs for the teacher data set (JSONL)")
@click.option("--field", "fields", multiple=True, metavar="KEY=FIELD",
              help="a key of your data files holds this field of the program (repeatable)")
def init(demo: str | None, force: bool, program: str | None, metric: str | None, python_path: tuple[str, ...],
         train: str | None, val: str | None, pool: str | None, fields: tuple[str, ...]) -> None:
    """Create a workspace: po.toml, state.db, artifacts/, cache/ (and data/ with --demo).

    \b
    For your own DSPy project (its program, metric and data are imported and checked
    first; nothing is written when they fail):
      po init -w ws --program my_pkg.roles:ProductOwnerModule --metric my_pkg.metrics:po_metric \\
              --python-path ../my-repo/src --train ../my-repo/data/train.jsonl \\
              --val ../my-repo/data/val.jsonl --field idea=concept
    """
    from pipeline.workspace import ProjectSpec, init_workspace

    spec = None
    if program or metric:
        if demo:
            raise click.UsageError("--demo runs the shipped program on its demo data: drop --program/--metric")
        if not (program and metric):
            raise click.UsageError("give both --program and --metric (your program and the metric that scores it)")
        pairs = []
        for item in fields:
            key, _, field = item.partition("=")
            if not key or not field:
                raise click.UsageError(f"--field {item!r}: write KEY=FIELD, e.g. --field idea=concept")
            pairs.append((key.strip(), field.strip()))
        spec = ProjectSpec(program, metric, python_path, train, val, pool, tuple(pairs))
    elif python_path or train or val or pool or fields:
        raise click.UsageError("--python-path, --train, --val, --pool and --field go with --program and --metric")
    ws = init_workspace(_workspace_dir(), demo=demo, force=force, project=spec)
    out.print(f"workspace ready: {ws.root}")
    if demo:
        out.print(f"demo data in data/ (60 train, 34 validation, 520 pool inputs), {demo} profile. Next: "
                  "po run baseline, or po run all")
    elif spec:
        f = ws.project.fields
        out.print(f"program {spec.program}: inputs {', '.join(f.inputs)} -> outputs {', '.join(f.outputs)}")
        out.print("Next: po doctor (checks the project), then po run baseline --limit 5")
    else:
        out.print("put your JSONL data sets where po.toml's [data] says, then: po run baseline")


# -- running ---------------------------------------------------------------------------------

def run_stage(stage, overrides: dict, *, detach: bool, resume_run: int | None, as_json: bool, dry_run: bool) -> None:
    """`po run STAGE [options]`: plan (and show the plan), then run here or detached."""
    from pipeline import control

    ws = _ws()
    if resume_run is not None:
        if overrides or dry_run:
            raise click.UsageError("--resume continues a run with its own config: drop the other options")
        return _finish(ws, resume_run, detach, as_json,
                       lambda cb: control.resume(ws, resume_run, detach=detach, on_progress=cb))
    if dry_run:
        config = control.plan(ws, stage.name, overrides)
        if as_json:
            return _print_json(config)
        return _print_plan(out, stage, config)
    show = None if as_json else (lambda config: _print_plan(err, stage, config))
    return _finish(ws, None, detach, as_json, lambda cb: control.launch(
        ws, stage.name, overrides, detach=detach, on_progress=cb, on_plan=show), stage.name)


def run_all(detach: bool, as_json: bool, promote: bool = False) -> None:
    """`po run all`: every stage of the chain in order with po.toml's settings, as one
    resumable pipeline."""
    from pipeline import chain

    if click.get_current_context().args:
        raise click.UsageError("`po run all` takes its settings from po.toml: drop the stage options")
    ws = _ws()
    chain_id = chain.start(ws, promote=promote)
    _run_chain(ws, chain_id, detach, as_json)


def _run_chain(ws, chain_id: int, detach: bool, as_json: bool) -> None:
    from pipeline import chain
    from state import read

    stages = read.get_chain(ws.db(readonly=True), chain_id).stages
    if detach:
        pid = chain.spawn(ws, chain_id)
        if as_json:
            return _print_json({"chain": chain_id, "pid": pid, "stages": stages,
                                "log": str(ws.artifacts_dir / "pipeline.log")})
        out.print(f"pipeline {chain_id} ({', '.join(stages)}) running in the background (pid {pid}). "
                  "Watch: po console, or po status --watch. Continue after a failure: po resume")
        return
    runs = []

    def execute(stage: str, begin):
        run = _watch(ws, begin, stage, as_json)
        runs.append(run)
        return run

    say = (lambda text: None) if as_json else (lambda text: err.print(text, style="bold", highlight=False))
    ended = chain.run(ws, chain_id, say=say, execute=execute)
    if as_json:
        _print_json({"chain": chain_id, "state": ended.state, "error": ended.error,
                     "runs": [r.to_json() for r in runs]})
    if ended.state == "cancelled":
        raise click.exceptions.Exit(EXIT_CANCELLED)
    if ended.state != "succeeded":
        raise click.exceptions.Exit(EXIT_FAILED)


def _print_plan(console, stage, config: dict) -> None:
    lines = stage.plan_lines(config)
    for line in lines:
        console.print(line, highlight=False)
    if not lines and console is out:
        console.print(f"{stage.name}: config is valid")


@cli.command()
@click.argument("run_id", metavar="[RUN]", type=int, required=False)
@click.option("--detach", "-d", is_flag=True, help="continue in the background")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def resume(run_id: int | None, detach: bool, as_json: bool) -> None:
    """Continue a failed, cancelled or stale run from its last stored unit; without RUN,
    continue the last pipeline (`po run all`) from where it stopped."""
    from pipeline import chain, control

    ws = _ws()
    if run_id is None:
        return _run_chain(ws, chain.resumable(ws).id, detach, as_json)
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
    run = _watch(ws, start, stage, as_json)
    if as_json:
        _print_json(run.to_json())
    if run.state == "failed":
        raise click.exceptions.Exit(EXIT_FAILED)
    if run.state == "cancelled":
        raise click.exceptions.Exit(EXIT_CANCELLED)


def _watch(ws, start, stage: str | None, as_json: bool):
    """Run `start(on_progress)` here with a progress bar labelled for the stage; print the run."""
    from state import read

    with render.RunProgress(err, enabled=not as_json, stage=stage) as progress:
        run_id = start(progress.update)
    run = read.get_run(ws.db(readonly=True), run_id)
    if not as_json:
        render.print_run(out, run)
    return run


@cli.command()
@click.argument("run_id", metavar="RUN", type=int, required=False)
@click.option("--undo", is_flag=True, help="undo the promotion in force (the task model goes back)")
@click.option("--force", is_flag=True, help="promote although the gate did not pass (recorded as forced)")
@click.option("--json", "as_json", is_flag=True, help="print the promotion in force as JSON")
def promote(run_id: int | None, undo: bool, force: bool, as_json: bool) -> None:
    """Make the system a validation run judged (the student) the task model: the provider
    of baseline, MIPROv2 and validation runs that name `task`. Refused when the run's gate
    did not pass, unless --force. Without RUN: show the task model."""
    import dataclasses
    import getpass

    from pipeline import promotion

    ws = _ws()
    if undo and run_id is not None:
        raise click.UsageError("--undo takes no RUN: it undoes the promotion in force")
    if undo:
        undone, current = promotion.undo(ws, who=getpass.getuser())
        if not as_json:
            out.print(f"undone: {undone.system} of run {undone.run_id}", highlight=False)
    elif run_id is not None:
        current = promotion.promote(ws, run_id, who=getpass.getuser(), force=force)
    else:
        current = ws.promoted()
    if as_json:
        return _print_json(dataclasses.asdict(current) if current else None)
    out.print(promotion.describe(current), highlight=False)


@cli.group(cls=Group, no_args_is_help=True)
def export() -> None:
    """Serve a fine-tuned student elsewhere."""


@export.command("ollama")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--from", "base", metavar="MODEL", help="the fine-tune's base as the Ollama server names it (required)")
@click.option("--name", metavar="NAME", help="the Ollama model, and the provider name [default: po-student-RUN]")
@click.option("--host", metavar="URL", help="the Ollama server [default: $OLLAMA_HOST, else a po.toml ollama "
              "provider's host, else http://127.0.0.1:11434]")
@click.option("--create/--no-create", default=None, help="create the model on the server [default: when it answers]; "
              "--no-create only writes the files")
@click.option("--template", "template_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="an Ollama Go template, for a base whose chat template is not recognised")
@click.option("--stop", multiple=True, metavar="TEXT", help="a stop token for --template (repeatable) [default: EOS]")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def export_ollama(run_id: int, base: str | None, name: str | None, host: str | None, create: bool | None,
                  template_file: Path | None, stop: tuple[str, ...], as_json: bool) -> None:
    """Serve the student of fine-tune run RUN on an Ollama server. Its LoRA adapter is converted
    to GGUF and written with a Modelfile (FROM the base, ADAPTER, the base's chat TEMPLATE) to
    artifacts/RUN/ollama/; then the model is created on the server, checked with one prompt, and
    registered: `provider = "NAME"` then works in every stage.

    \b
    Examples:
      po export ollama 7 --from smollm2:135m                 # the embedded SmolLM2's student
      po export ollama 7 --from mistral:7b-instruct --host http://gpu-box:11434 --name po-pv
      po export ollama 7 --from mistral:7b-instruct --no-create   # files only; copy
          artifacts/7/ollama/ to the server, then there: ollama create po-student-7 -f ollama/Modelfile
    """
    import dataclasses

    from pipeline.serving import ollama_export

    show = (lambda line: None) if as_json else (lambda line: out.print(line, highlight=False))
    try:
        result = ollama_export.export_ollama(_ws(), run_id, base=base, name=name, host=host, create=create,
                                             template_file=template_file, stop=stop, progress=show)
    except ollama_export.ServerError as exc:  # the server failed: an operation that failed, not bad usage
        if OPTIONS.debug:
            raise
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None
    if as_json:
        return _print_json(dataclasses.asdict(result))
    if result.created:
        out.print(f"{result.name} on {result.host}: use it with provider = \"{result.name}\"", highlight=False)


@cli.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--wait", type=float, default=CANCEL_WAIT_S, show_default=True,
              help="seconds to wait for a cooperative stop before SIGTERM")
def cancel(run_id: int, wait: float) -> None:
    """Stop a run between two units of work; what is stored stays (resume it later)."""
    from pipeline import control

    run = control.cancel(_ws(), run_id, wait_s=wait)
    out.print(f"run {run_id}: {run.status}")
    if run.status not in ("cancelled", "succeeded", "failed", "stale"):
        raise click.exceptions.Exit(EXIT_FAILED)


# -- watching ---------------------------------------------------------------------------------

@cli.command()
@click.option("--stage", help="only this stage")
@click.option("--limit", "-n", type=int, default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the runs as JSON")
def runs(stage: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    from state import read

    items = read.list_runs(_ws().db(readonly=True), stage=stage, limit=limit)
    if as_json:
        _print_json([r.to_json() for r in items])
    else:
        out.print(render.runs_table(items))


@cli.command()
@click.argument("run_id", metavar="[RUN]", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="print it as JSON")
@click.option("--watch", is_flag=True, help="refresh every 2 s (plain text; Ctrl-C to stop)")
@click.option("--workspace", "-w", "workspaces", multiple=True, metavar="DIR",
              help="a workspace, or several (-w a -w b, or a glob: -w 'roles/*'): one overview each")
def status(run_id: int | None, as_json: bool, watch: bool, workspaces: tuple[str, ...]) -> None:
    """Where each stage stands (of one workspace or several), or one run in detail."""
    from pipeline import overview
    from pipeline.workspace import locate

    chosen = [locate(path) for path in _expand(workspaces)] if workspaces else [_ws()]
    if run_id is not None:
        if len(chosen) > 1:
            raise click.UsageError("a run number names a run of one workspace: give one -w with RUN")
        found = overview.run_status(chosen[0].db(readonly=True), run_id)
        if found is None:
            raise click.UsageError(f"no run {run_id} in this workspace (see `po runs`)")
        if as_json:
            return _print_json(found.to_json())
        return render.print_run(out, found.run, found.artifacts, found.details.lines if found.details else None)
    dbs = [(ws, ws.db(readonly=True)) for ws in chosen]
    while True:
        rows = [(str(ws.root), overview.stage_rows(db), db) for ws, db in dbs]
        if as_json:
            data = {root: [row.to_json() for row in found] for root, found, _ in rows}
            _print_json(data if len(dbs) > 1 else next(iter(data.values())))
        for root, found, db in rows if not as_json else ():
            if len(dbs) > 1:
                out.print(f"== {root} ==", style="bold")
            out.print(render.overview_table(found))
            chain = overview.chain_status(db, found)
            if chain is not None:
                out.print(chain.text(), highlight=False)
            if db.execute("SELECT 1 FROM promotions LIMIT 1").fetchone() if "promotions" in db.table_names() \
                    else None:
                out.print(overview.task_model(db), highlight=False)
        if not watch:
            return
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return
        out.print()


def _expand(patterns: tuple[str, ...]) -> list[str]:
    """Workspace paths, a glob expanded to the workspaces it matches (directories with a po.toml)."""
    import glob

    found = []
    for pattern in patterns:
        if any(c in pattern for c in "*?[") and not Path(pattern).exists():
            matches = sorted(p for p in glob.glob(pattern) if (Path(p) / "po.toml").exists())
            if not matches:
                raise click.UsageError(f"-w {pattern!r} matches no workspace (no directory with a po.toml)")
            found += matches
        else:
            found.append(pattern)
    return list(dict.fromkeys(found))


@cli.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--follow", "-f", is_flag=True, help="keep printing as the run writes")
def logs(run_id: int, follow: bool) -> None:
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


# -- programs ---------------------------------------------------------------------------------

@cli.group(cls=Group, no_args_is_help=True)
def program() -> None:
    """Review, compare, verify, import and export PO programs."""


def _program(ref: str, allow_pickle: bool = False):
    """(program, its directory or None) for a reference."""
    from pipeline.saved_programs import load_ref

    return load_ref(_ws(), ref, allow_pickle=allow_pickle)


@program.command("list")
@click.option("--json", "as_json", is_flag=True, help="print them as JSON")
def program_list(as_json: bool) -> None:
    """Programs saved in this workspace (programs/)."""
    from pipeline.saved_programs import list_programs

    items = list_programs(_ws())
    if as_json:
        return _print_json([asdict(item) for item in items])
    if not items:
        out.print("(none yet)")
    for item in items:
        out.print(f"{item.name:20} {item.fingerprint:12} demos {item.demos}  {item.source}".rstrip())


@program.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="print it as JSON")
@click.option("--allow-pickle", is_flag=True, help="load a pickled program (runs its code)")
def program_show(ref: str, as_json: bool, allow_pickle: bool) -> None:
    """Instructions, fields and demos of a program, with its prompt fingerprint.

    REF: baseline (the program as written), a name under programs/, or a directory."""
    from pipeline.saved_programs import review_data

    found, path = _program(ref, allow_pickle)
    data = review_data(found, ref, path)
    if as_json:
        return _print_json(data)
    render.print_program(out, data)


@program.command("diff")
@click.argument("a")
@click.argument("b")
def program_diff(a: str, b: str) -> None:
    """What changed from program A to program B: instructions, field texts, demos.
    Each is baseline (the program as written), a name under programs/, or a directory."""
    from pipeline.saved_programs import diff_programs

    lines = diff_programs(_program(a)[0], _program(b)[0], (a, b))
    out.print("\n".join(lines) if lines else render.SAME_PROGRAMS)


@program.command("verify")
@click.argument("ref")
def program_verify(ref: str) -> None:
    """Reload a saved program in a fresh program and compare its prompt fingerprint."""
    from pipeline.saved_programs import verify_program

    _, path = _program(ref)
    if path is None:
        raise click.UsageError("the baseline program is not saved: nothing to verify")
    fingerprint = verify_program(path, _ws().project.new_program)
    out.print(f"{ref}: ok, fingerprint {fingerprint[:12]} (fields, instructions and demos intact)")


@program.command("export")
@click.argument("ref")
@click.option("--to", type=click.Path(path_type=Path), required=True,
              help="directory to write program.json + manifest.json")
def program_export(ref: str, to: Path) -> None:
    """Write a program where another pipeline can load it with plain DSPy."""
    from pipeline.saved_programs import save_program

    ws = _ws()
    found, _ = _program(ref)
    manifest = save_program(found, to, ws.project.new_program, {"exported_from": ref})
    out.print(f"wrote {to}/program.json and manifest.json (fingerprint {manifest['fingerprint'][:12]}).")
    name = ws.project.program_ref.rpartition(":")[2]
    out.print(f"Load it with plain DSPy: program = {name}(); program.load('program.json')")


@program.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--metadata", type=click.Path(path_type=Path), help="the fallback files' metadata.json")
@click.option("--name", default="imported", show_default=True, help="name under programs/")
@click.option("--allow-pickle", is_flag=True, help="read a `save_program=True` directory (runs its code)")
def program_import(source: Path, metadata: Path | None, name: str, allow_pickle: bool) -> None:
    """Bring a program saved elsewhere into this workspace (programs/NAME), checked against
    its program, and say what it lacks. SOURCE is one of:

    \b
      a JSON saved by plain DSPy: program.save("x.json")
      the program_components.json the old tune_dspy.py fallback wrote (with --metadata)
      a directory saved with program.save(dir, save_program=True) (with --allow-pickle)
    """
    from pipeline.saved_programs import import_components, import_dspy_json, load_program, save_program

    ws = _ws()
    new_program, lacks, meta = ws.project.new_program, [], {}
    if source.is_dir():
        found = load_program(source, new_program, allow_pickle=allow_pickle)
    elif _is_components(source):
        found, lacks, meta = import_components(source, new_program, metadata)
    else:
        found = import_dspy_json(source, new_program)
    manifest = save_program(found, ws.programs_dir / name, new_program,
                            {"source": f"import of {source}", **({"original": meta} if meta else {})})
    demos = ", ".join(f"{k} {v}" for k, v in manifest["demos"].items())
    out.print(f"imported as programs/{name} (fingerprint {manifest['fingerprint'][:12]}; demos: {demos})")
    for item in lacks:
        out.print(f"  lacks {item}")


def _is_components(path: Path) -> bool:
    """The old fallback's program_components.json has a `modules` table; DSPy's own JSON does not."""
    try:
        return "modules" in json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return False


# -- the machine and the console ---------------------------------------------------------------

@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
def doctor(as_json: bool) -> None:
    """Check each configured provider (credentials, endpoint, model) and this machine
    (torch device and dtype, free disk, model cache). Each failure comes with its fix."""
    from pipeline.doctor import run_doctor

    checks = run_doctor(_ws())
    if as_json:
        _print_json([c.to_json() for c in checks])
    else:
        render.print_doctor(out, checks)
    if any(c.status == "fail" for c in checks):
        raise click.exceptions.Exit(EXIT_FAILED)


@cli.command()
@click.option("--low-bandwidth/--full", default=None, help="no animations, refresh every 3 s (also PO_LOW_BANDWIDTH=1)")
def console(low_bandwidth: bool | None) -> None:
    """Open the operations console (Textual): the pipeline, runs and logs, and a pane per stage.

    Keys are shown in the footer and in the command palette (ctrl+p); q leaves, and
    every run goes on.
    """
    from po_console.app import run_console

    run_console(_ws(), low_bandwidth=low_bandwidth)


# -- built from the stage registry --------------------------------------------------------------

def _stage_command(command, as_json: bool, **params) -> None:
    result = command.function(_ws(), **params)
    if as_json:
        return _print_json(result.data)
    for line in result.lines:
        out.print(line, highlight=False)
    for line in result.warnings:
        err.print(line, highlight=False)


def build() -> click.Group:
    """`po`: the commands above, `po run STAGE`, and each stage's own commands, `-w` on every command."""
    cli.add_command(RunCommands(run_stage, run_all, name="run", help=RUN_HELP,
                                short_help="Run a stage in the foreground or detached.", no_args_is_help=True))
    for stage in stages.stages():
        if stage.commands and stage.name not in cli.commands:
            cli.add_command(command_group(stage, _stage_command))
        elif stage.run_argument and stage.name not in cli.commands:
            cli.add_command(shortcut_command(stage, run_stage))
    return cli


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
    from pipeline.saved_programs import ProgramError
    from pipeline.stages import UnknownStage
    from pipeline.workspace import WorkspaceError
    from state.schema import SchemaTooNew

    user_errors = (ConfigError, DatasetError, WorkspaceError, ControlError, UnknownStage, ModelNotFound,
                   SchemaTooNew, ProgramError)
    try:
        for warning in stages.warnings():  # a broken plugin: named, never a crash
            err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        code = build().main(standalone_mode=False, prog_name="po")
        if isinstance(code, int) and code:  # click returns an Exit's code when not standalone
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
        if not isinstance(exc, user_errors):
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
