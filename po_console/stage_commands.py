"""The `po` commands built from the stage registry, as Harlequin builds its CLI from each
adapter's declared options: `po run STAGE` with one option per field of the stage's config
(name, type, description, bounds), `po run all`, and `po STAGE COMMAND` for the commands a
stage declares. Nothing here names a stage."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline import stages
from pipeline.stages.base import Command, Stage

RUN_HELP = """Run a stage in the foreground (progress bar) or detached.

\b
Examples:
  po run baseline                  # evaluate the program, show a table
  po run baseline --limit 5        # a quick look
  po run baseline --detach         # keep going after you log out; then: po logs RUN -f
  po run mipro --dry-run           # what an optimization will cost, before paying for it
  po run teacher --max-records 400 --min-score 0.85 --detach
  po run all --detach              # every stage in order, settings from po.toml

`po run STAGE --help` lists the stage's options: each overrides its key in po.toml for this run.
"""


def _remember_workspace(ctx, param, value):
    if value is not None:
        ctx.find_root().meta["workspace"] = value


class Group(click.Group):
    """A group whose every command takes `-w/--workspace` after its name too (`po init --demo
    -w DIR`), as well as before it (`po -w DIR init --demo`), generated commands included."""

    def get_command(self, ctx, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None and not any("--workspace" in p.opts for p in command.params):
            command.params.append(click.Option(
                ["--workspace", "-w"], expose_value=False, callback=_remember_workspace,
                help="workspace directory [default: $PO_WORKSPACE or ./po-workspace]"))
        return command


def stage_options(stage: Stage) -> list[click.Parameter]:
    """One option per config field: `--max-records N  stop at this many accepted records
    [>= 1] (po.toml: teacher.max_records)`."""
    params: list[click.Parameter] = []
    for o in stage.options():
        text = " ".join(filter(None, [o.description, f"[{o.bounds}]" if o.bounds else "",
                                      f"(po.toml: {stage.name}.{o.key})"]))
        if o.kind == "bool":
            params.append(click.Option([f"{o.flag}/--no-{o.flag[2:]}", o.dest], default=None, help=text))
            continue
        kind = {"int": click.INT, "float": click.FLOAT, "text": click.STRING}.get(o.kind) or click.Choice(o.choices)
        metavar = {"int": "N", "float": "X", "text": "TEXT"}.get(o.kind)
        params.append(click.Option([o.flag, o.dest], type=kind, default=None, metavar=metavar, help=text))
    return params


def run_command(stage: Stage, run) -> click.Command:
    """`po run STAGE`: `run(stage, overrides, detach, resume_run, as_json, dry_run)` does the work."""
    keys = {o.dest: o.key for o in stage.options()}

    def invoke(detach: bool, resume_run: int | None, as_json: bool, dry_run: bool, **given) -> None:
        overrides = {keys[dest]: value for dest, value in given.items() if value is not None}
        run(stage, overrides, detach=detach, resume_run=resume_run, as_json=as_json, dry_run=dry_run)

    limit = f" `--limit N`: only the first N examples ({stage.name}.{stage.limit_key})." if stage.limit_key else ""
    params = stage_options(stage) + [
        click.Option(["--detach", "-d"], is_flag=True, help="run in the background; survives logout; prints the run id"),
        click.Option(["--resume", "resume_run"], type=int, metavar="RUN", help="continue this run instead of "
                     "starting one"),
        click.Option(["--json", "as_json"], is_flag=True, help="print the result as JSON"),
        click.Option(["--dry-run"], is_flag=True, help="check the config and print the plan (what the run will "
                     "take, where the stage can tell); start nothing"),
    ]
    return click.Command(stage.name, callback=invoke, params=params, short_help=stage.title,
                         help=f"{stage.title}, with po.toml's [{stage.name}] settings; each option overrides one "
                              f"of them for this run.{limit}")


def shortcut_command(stage: Stage, run) -> click.Command:
    """`po NAME [VALUE] [options]`: `po run NAME`, VALUE filling the stage's `run_argument` key."""
    command = run_command(stage, run)
    key = stage.run_argument
    dest = next(o.dest for o in stage.options() if o.key == key)
    option = next(p for p in command.params if p.name == dest)
    inner = command.callback

    def invoke(**given):
        value = given.pop("value", None)
        if value is not None:
            if given.get(dest) is not None:
                raise click.UsageError(f"give {key} once: as the argument or as {option.opts[0]}")
            given[dest] = value
        inner(**given)

    command.params.insert(0, click.Argument(["value"], type=option.type, required=False, metavar=key.upper()))
    command.callback = invoke
    command.help = f"`po {stage.name} {key.upper()}` is `po run {stage.name} {option.opts[0]} {key.upper()}`. " + (
        command.help or "")
    return command


class RunCommands(Group):
    """`po run STAGE` for each registered stage, and `po run all`."""

    def __init__(self, run, run_all, **kwargs):
        super().__init__(**kwargs)
        self.run, self.run_all = run, run_all

    def list_commands(self, ctx) -> list[str]:
        return [*stages.names(), "all"]

    def get_command(self, ctx, name: str) -> click.Command | None:
        if name not in self.commands:
            made = self._make(name)
            if made is None:
                return None
            self.add_command(made)
        return super().get_command(ctx, name)

    def _make(self, name: str) -> click.Command | None:
        if name == "all":
            chain = ", ".join(s.name for s in stages.chain())
            return click.Command(
                "all", callback=self.run_all, short_help="every stage in order, settings from po.toml",
                help=f"Every stage in order ({chain}), each a run of its own, with po.toml's settings, as one "
                     "pipeline: a stage that already succeeded with the same inputs (config, data, program, models) "
                     "is skipped; it stops at the first run that does not succeed, and `po resume` (no RUN) "
                     "continues it from there.",
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                params=[click.Option(["--detach", "-d"], is_flag=True, help="run the chain in the background "
                                     "(its own output: artifacts/pipeline.log)"),
                        click.Option(["--promote"], is_flag=True, help="at the end, make the student the task "
                                     "model when the validation gate passed (po promote)"),
                        click.Option(["--json", "as_json"], is_flag=True, help="print the results as JSON")])
        return run_command(stages.get(name), self.run) if name in stages.names() else None

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            stages.get(args[0])  # raises UnknownStage: "not built yet", or the stages there are
        return super().resolve_command(ctx, args)


PARAM_TYPES = {"int": click.INT, "float": click.FLOAT, "path": click.Path(path_type=Path), "text": click.STRING}


def command_group(stage: Stage, call) -> click.Group:
    """`po STAGE COMMAND`: the commands a stage declares; `call(command, as_json, **params)` runs one."""
    group = Group(stage.name, no_args_is_help=True,
                        help=f"{stage.title}: " + ", ".join(c.name for c in stage.commands) + ".")
    for command in stage.commands:
        group.add_command(_command(command, call))
    return group


def _command(command: Command, call) -> click.Command:
    params: list[click.Parameter] = []
    for param in command.params:
        kind = PARAM_TYPES[param.kind] if param.kind in PARAM_TYPES else click.STRING
        flag = param.flag or "--" + param.name.replace("_", "-")
        if param.argument:
            params.append(click.Argument([param.name], type=kind, metavar=param.metavar))
        elif param.kind == "bool":
            params.append(click.Option([flag, param.name], is_flag=True, help=param.help))
        else:
            params.append(click.Option([flag, param.name], type=kind, default=param.default, metavar=param.metavar,
                                       help=param.help))
    if command.json:
        params.append(click.Option(["--json", "as_json"], is_flag=True, help="print the result as JSON"))
    return click.Command(command.name, params=params, help=command.help,
                         callback=lambda as_json=False, **given: call(command, as_json, **given))
