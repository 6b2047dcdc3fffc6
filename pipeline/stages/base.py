"""The stage contract: everything the rest of po-console knows about a stage, in code.

A stage is a `Stage` subclass in one module (or package) under `pipeline/stages/`, or in a
team's own package registered through the `po_console.stages` entry-point group. It carries:

- its name, title, place in the pipeline and progress label;
- its `[section]` of po.toml as a pydantic model (`Config`), with the real and demo
  template text; each field is a `po run NAME --flag` option, and the ones declared with
  `option(ask=True)` are asked by the console's launch dialog;
- `plan` (the complete, checked config of a new run, typed as `RunConfig` and stored with
  the run), `check_resumable` and `run(ctx, cfg)`, which works in resumable units;
- what people read: the headline of a finished run, the rows of its summary table, the
  lines printed before a run starts, the overview's ETA, the details of `po status RUN`;
- extra commands (`po NAME ...`), declared as plain functions with their parameters.

Nothing here imports the console: the CLI and the console build their options, dialogs and
commands from these declarations.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field

from pipeline.config import ConfigError, Strict, with_overrides
from pipeline.project import SHIPPED_FIELDS, SHIPPED_METRIC, SHIPPED_PROGRAM


class StageConfig(Strict):
    """A stage's table in po.toml. Unknown keys are errors that name the key."""


class RunConfig(BaseModel):
    """What `plan` stores with a run and `run` reads back: the stage's config plus what the
    plan resolved (files and their hashes, provider tables, counts). Keys a newer version
    added are ignored when an older run is resumed. Declare it as
    `class TeacherRun(TeacherConfig, RunConfig)`: the last base's `extra` wins.

    Every run also records the project it runs (`Stage.project_keys`): the program and metric
    by import path (runs from before they were configurable ran the shipped ones) and the
    program's fields, which the panes show in the program's order."""

    model_config = ConfigDict(extra="ignore")
    program_module: str = SHIPPED_PROGRAM
    metric_function: str = SHIPPED_METRIC
    fields: dict = SHIPPED_FIELDS  # pipeline.project.Fields.to_json()
    judge: str | None = None  # the provider the metric's own LM calls go to ([metric] judge)
    judge_config: dict | None = None


def option(default: Any = ..., description: str = "", *, ask: bool = False, flag: str | None = None,
           label: str | None = None, **constraints) -> Any:
    """A config field that is also a `po run` option (`--flag`, by default from its name) and,
    with `ask`, a field of the console's launch dialog (`label`, by default from its flag)."""
    extra = {"ask": ask, "flag": flag, "label": label}
    return Field(default, description=description, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class Option:
    """One field of a stage's config, as the CLI and the launch dialog present it."""

    key: str  # the po.toml key
    flag: str  # --max-records
    kind: str  # int, float, bool, text, choice
    description: str
    default: Any
    optional: bool  # None is a value (e.g. "no limit")
    choices: tuple[str, ...] = ()
    bounds: str = ""  # "1-64", ">= 1"
    ask: bool = False
    label: str = ""

    @property
    def dest(self) -> str:
        """The flag as an identifier: the CLI's parameter name and the dialog's input id."""
        return self.flag.lstrip("-").replace("-", "_")


def _unwrap(annotation) -> tuple[Any, bool]:
    """(the base type, whether None is allowed) of `Annotated[int, ...] | None` and the like."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return annotation, optional
            annotation = args[0]
        else:
            return annotation, optional


def _bounds(metadata: list) -> str:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"{item.ge:g}"
        elif isinstance(item, annotated_types.Gt):
            low = f"> {item.gt:g}"
        elif isinstance(item, annotated_types.Le):
            high = f"{item.le:g}"
        elif isinstance(item, annotated_types.Lt):
            high = f"< {item.lt:g}"
    if low is not None and high is not None and not low.startswith(">") and not high.startswith("<"):
        return f"{low}-{high}"
    parts = [low if low is None or low.startswith(">") else f">= {low}",
             high if high is None or high.startswith("<") else f"<= {high}"]
    return ", ".join(p for p in parts if p)


def options(model: type[BaseModel], limit_key: str | None = None) -> list[Option]:
    """The fields of a stage config that take a single value, in declaration order. The
    stage's "first N examples" field answers to `--limit`."""
    found = []
    for key, info in model.model_fields.items():
        base, optional = _unwrap(info.annotation)
        if typing.get_origin(base) is Literal:
            kind, choices = "choice", tuple(str(c) for c in typing.get_args(base))
        elif base in (bool, int, float, str):
            kind, choices = {bool: "bool", int: "int", float: "float", str: "text"}[base], ()
        else:
            continue  # tables and lists are po.toml only
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        flag = "--limit" if key == limit_key else extra.get("flag") or "--" + key.replace("_", "-")
        label = extra.get("label") or flag.lstrip("-").replace("-", " ")
        found.append(Option(key, flag, kind, info.description or "", info.get_default(call_default_factory=True),
                            optional, choices, _bounds(info.metadata), bool(extra.get("ask")), label))
    return found


@dataclass(frozen=True)
class Param:
    """A parameter of a stage command: an argument when `argument`, else `--flag`."""

    name: str
    kind: str = "text"  # text, int, float, bool, path
    help: str = ""
    default: Any = None
    argument: bool = False
    metavar: str | None = None
    flag: str | None = None


@dataclass(frozen=True)
class Output:
    """What a stage command did: `data` for --json, `lines` for people, `warnings` on stderr."""

    data: Any
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Command:
    """`po STAGE NAME ...`: `function(ws, **params)` returns an Output."""

    name: str
    help: str
    function: Callable[..., Output]
    params: tuple[Param, ...] = ()
    json: bool = True  # takes --json


@dataclass(frozen=True)
class Details:
    """What `po status RUN` adds for a run of this stage: JSON under `data`, lines for people."""

    data: dict
    lines: list[str]


class Stage:
    name: ClassVar[str]
    title: ClassVar[str]  # "Teacher dataset": the overview's row
    short_title: ClassVar[str]  # "Teacher": the footer key, the summary table's title
    Config: ClassVar[type[StageConfig]]
    RunConfig: ClassVar[type[RunConfig]]
    order: ClassVar[int] = 100  # place in the pipeline; the built-in stages are 10, 20, 30 …
    progress_label: ClassVar[str] = "working"  # what done / total counts, for progress bars
    limit_key: ClassVar[str | None] = None  # the "only the first N examples" field (`--limit`)
    in_chain: ClassVar[bool] = True  # a step of `po run all`
    # A config key that `po NAME VALUE` fills: `po NAME [VALUE] [options]` is then `po run NAME`
    # (`po serve 7` = `po run serve --run 7`). Only for a stage without its own commands.
    run_argument: ClassVar[str | None] = None
    # Keys of the run config that are estimates, not inputs (left out of the inputs fingerprint
    # that lets `po run all` skip a stage already done with the same inputs).
    volatile_keys: ClassVar[tuple[str, ...]] = ()
    toml_real: ClassVar[str] = ""  # the po.toml section `po init` writes
    toml_demo: ClassVar[str | None] = None  # ... and `po init --demo` (None: the same)
    # ... and other demo profiles (`po init --demo=distill`); a profile it lacks takes toml_demo.
    toml_profiles: ClassVar[dict[str, str]] = {}
    commands: ClassVar[tuple[Command, ...]] = ()  # po NAME COMMAND
    # Its own tables: SQL scripts (statements separated by ";\n") or functions of a connection,
    # applied in order by every writable open of the store; add at the end, never edit one that shipped.
    migrations: ClassVar[tuple] = ()

    # -- config ------------------------------------------------------------------------------
    def options(self) -> list[Option]:
        return options(self.Config, self.limit_key)

    def configure(self, ws, overrides: dict) -> StageConfig:
        """po.toml's section with the command line's (or the dialog's) overrides, validated."""
        current = ws.config.stage(self.name)
        self.check_overrides(current, overrides)
        return with_overrides(current, self.name, overrides)

    def check_overrides(self, current: StageConfig, overrides: dict) -> None:
        """Refuse overrides that contradict po.toml in a way validation cannot see."""

    def toml(self, demo: bool | str) -> str:
        """The section `po init` writes: real, or of a demo profile (True: the pipeline demo)."""
        if not demo:
            return self.toml_real
        if isinstance(demo, str) and demo in self.toml_profiles:
            return self.toml_profiles[demo]
        return self.toml_demo if self.toml_demo is not None else self.toml_real

    # -- running -----------------------------------------------------------------------------
    def plan(self, ws, cfg: StageConfig) -> RunConfig:
        """The complete config of a new run; checks everything it can (data, programs,
        settings) before any model time is spent. Raises ConfigError / DatasetError."""
        raise NotImplementedError

    def check_resumable(self, ws, cfg: RunConfig) -> None:
        """Refuse a resume whose inputs changed since the run started."""
        self.check_project(ws, cfg)

    @staticmethod
    def fields_of(run) -> dict:
        """The fields of the program a stored run ran (inputs, outputs), in its order."""
        return run.config.get("fields") or SHIPPED_FIELDS

    @staticmethod
    def project_keys(ws) -> dict:
        """What a run records of the project it runs (RunConfig's program_module, metric_function, fields)."""
        project, judge = ws.project, ws.config.metric.judge
        return {"program_module": project.program_ref, "metric_function": project.metric_ref,
                "fields": project.fields.to_json(), "judge": judge,
                "judge_config": ws.provider_config(judge, key="metric.judge") if judge else None}

    def models(self, ctx, cfg: RunConfig):
        """The program's LM (DSPy's cache in the workspace) and its price, and the metric's judge
        LM and its price: (lm, price, judge, judge_price). For stages with `provider`."""
        from pipeline.providers import build_lm, configure_dspy_cache
        from pipeline.providers.pricing import price_for

        configure_dspy_cache(ctx.workspace.cache_dir / "dspy")
        provider = cfg.provider_config
        lm = build_lm(provider, cfg.provider)
        price = price_for(provider.get("kind", "local"), provider.get("model"), provider.get("price"))
        return (lm, price, *self.judge_lm(cfg, price))

    @staticmethod
    def judge_lm(cfg: RunConfig, program_price):
        """(the LM the metric's own calls go to, its price): the configured judge, or (None, the
        program's price) when the metric's calls go to the program's model."""
        if not cfg.judge:
            return None, program_price
        from pipeline.providers import build_lm
        from pipeline.providers.pricing import price_for

        config = cfg.judge_config
        return build_lm(config, cfg.judge), price_for(config.get("kind", "local"), config.get("model"),
                                                      config.get("price"))

    @staticmethod
    def check_project(ws, cfg: RunConfig) -> None:
        """A run resumes with the program and metric it started with, or not at all."""
        project = ws.project
        if (cfg.program_module, cfg.metric_function) != (project.program_ref, project.metric_ref):
            raise ConfigError(f"this run used program {cfg.program_module} and metric {cfg.metric_function}; "
                              f"po.toml now names {project.program_ref} and {project.metric_ref}: start a new run "
                              "instead of resuming")

    def run(self, ctx, cfg: RunConfig) -> dict:
        """Do the work in resumable units (each stored before it is counted); return the summary."""
        raise NotImplementedError

    def run_config(self, config: dict) -> RunConfig:
        try:
            return self.RunConfig.model_validate(config)
        except Exception as exc:  # noqa: BLE001 - a run stored by another version
            raise ConfigError(f"the stored config of this {self.name} run cannot be read: {exc}") from None

    # -- what people read --------------------------------------------------------------------
    def headline(self, summary: dict | None) -> str:
        """The key figure of a finished run, for overviews and run lists."""
        return ""

    def summary_rows(self, summary: dict) -> list[tuple[str, str]]:
        """(figure, value) rows of a finished run's table (`po run`, `po status RUN`)."""
        return []

    def plan_lines(self, config: dict) -> list[str]:
        """What a run will take, printed before it starts and by `--dry-run`."""
        return []

    def eta(self, db, run) -> tuple[float | None, float | None] | None:
        """The overview's ETA of a running run as (low, high) seconds; None: a straight line
        from done / total."""
        return None

    def details(self, db, run) -> Details | None:
        """Where a run stands beyond done / total, for `po status RUN`."""
        return None

    def promotion(self, run) -> dict | None:
        """What `po promote RUN` would make the task model, for a stage that judges systems:
        {"system", "provider_config", "verdict" (the gate's: pass, fail, not decidable),
        "program"}; None when its runs promote nothing."""
        return None

    # -- launching from the console ----------------------------------------------------------
    def launch_values(self, cfg: StageConfig) -> dict[str, tuple[Any, str]]:
        """The dialog's fields (those marked `ask`), prefilled from po.toml: key -> (value, hint),
        threads and the limit first."""
        asked = sorted((o for o in self.options() if o.ask), key=lambda o: o.key not in ("threads", self.limit_key))
        return {o.key: (getattr(cfg, o.key), "empty = all" if o.key == self.limit_key else "") for o in asked}

    def launch_overrides(self, cfg: StageConfig, typed: dict) -> dict:
        """The overrides of what was typed in the dialog (empty fields left out)."""
        return typed
