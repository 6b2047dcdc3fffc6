"""MIPROv2: DSPy's prompt optimizer on the workspace's program, with every evaluation recorded as it
ends (recording.py), a plan of what it will cost before it starts (budget.py), and the best
program saved so it reloads anywhere with its demos.

Scores: DSPy's Evaluate reports percentages (the team's "1.56" next to "0.53125"); here
every score is the mean of the metric itself, on the metric's own scale.
Cancel stops after the trial in progress (optuna's `study.stop()` from the trial hook)
and keeps the best program found so far. Resume re-runs the optimization with the same
seed and data: DSPy's workspace cache answers every LM call already paid for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pipeline.config import ConfigError, Int
from pipeline.datasets import check_unchanged, file_sha256
from pipeline.stages.base import RunConfig, Stage, StageConfig, option
from pipeline.stages.mipro import budget
from pipeline.units import figure


class MiproConfig(StageConfig):
    provider: str = option("task", "the task model (the program runs on it; task: local until `po promote`)")
    prompt_provider: str | None = option(None, "the model that proposes instructions (default: provider)")
    auto: Literal["light", "medium", "heavy"] | None = option(
        None, "DSPy's presets (6/12/18 candidates, 10/18/27 trials); leave out to set the counts")
    num_trials: Int | None = option(6, "optimization trials", ask=True, flag="--trials", ge=1, le=1000)
    num_candidates: Int | None = option(4, "instruction candidates and demo sets", ask=True, flag="--candidates",
                                        ge=1, le=100)
    max_bootstrapped_demos: Int = option(3, "demos bootstrapped from the program's own answers", ge=0, le=20)
    max_labeled_demos: Int = option(4, "demos taken from the training set as written", ge=0, le=20)
    minibatch: bool = option(False, "score trials on a minibatch of the validation set")
    minibatch_size: Int = option(25, "examples in a minibatch", ge=1)
    minibatch_full_eval_steps: Int = option(5, "a full evaluation after this many minibatch trials", ge=1)
    threads: Int = option(4, "examples evaluated concurrently", ask=True, ge=1, le=64)
    seed: Int = option(0, "the optimizer's seed (a resume replays it)")
    train_limit: Int | None = option(None, "use only the first N training examples", ge=2)
    val_limit: Int | None = option(None, "use only the first N validation examples", ask=True, ge=1)


class MiproRun(MiproConfig, RunConfig):
    provider_config: dict
    prompt_provider_config: dict
    train: str
    train_sha256: str
    train_examples: int
    val: str
    val_sha256: str
    val_examples: int
    projection: dict
    planned_evaluations: int | None


TOML_REAL = """
[mipro]
# auto = "light"             # DSPy's presets (light/medium/heavy), or the counts below
num_candidates = 4           # instruction candidates and demo sets
num_trials = 6
# prompt_provider = "vertex" # the model that proposes instructions (default: the task model)
# minibatch = true           # score trials on minibatches of the validation set
# minibatch_size = 25
"""

TOML_DEMO = """
[mipro]
# Demo settings: a small optimization the embedded model finishes in about two minutes.
# Real runs: auto = "light" (or medium/heavy), or num_candidates / num_trials; full data.
provider = "task"            # the task model: local until `po promote` makes the student it
num_candidates = 2
num_trials = 3
max_bootstrapped_demos = 1
max_labeled_demos = 1
train_limit = 6
val_limit = 3
threads = 4
"""


class MiproStage(Stage):
    name = "mipro"
    title = "MIPROv2 optimization"
    short_title = "MIPROv2"
    Config = MiproConfig
    RunConfig = MiproRun
    order = 20
    progress_label = "evaluations"
    limit_key = "val_limit"
    volatile_keys = ("projection", "planned_evaluations")  # estimates from earlier runs' timings
    toml_real = TOML_REAL
    toml_demo = TOML_DEMO

    def check_overrides(self, current: MiproConfig, overrides: dict) -> None:
        if current.auto and overrides.get("auto", current.auto) and \
                (overrides.get("num_candidates") or overrides.get("num_trials")):
            raise ConfigError("mipro: auto sets the candidate and trial counts itself: drop --candidates/--trials "
                              "or auto")

    def plan(self, ws, cfg: MiproConfig) -> MiproRun:
        if not cfg.auto and not (cfg.num_candidates and cfg.num_trials):
            raise ConfigError("mipro: set auto (light/medium/heavy) or both num_candidates and num_trials")
        try:
            import optuna  # noqa: F401 - without it MIPROv2 fails only after spending LM calls
        except ImportError:
            raise ConfigError("mipro: MIPROv2 needs optuna: pip install 'dspy[optuna]==3.4.1'") from None
        config = ws.config
        provider = ws.provider_config(cfg.provider, key="mipro.provider")
        prompt = ws.provider_config(cfg.prompt_provider or cfg.provider, key="mipro.prompt_provider")
        train, val = ws.resolve(config.data.train), ws.resolve(config.data.val)
        n_train = len(ws.examples(train, with_outputs=True)[: cfg.train_limit])
        n_val = len(ws.examples(val)[: cfg.val_limit])
        if cfg.minibatch and cfg.minibatch_size > n_val:
            raise ConfigError(f"mipro: minibatch_size {cfg.minibatch_size} is larger than the validation set "
                              f"({n_val}): lower it or set minibatch = false")
        planned = {
            **cfg.model_dump(),
            **self.project_keys(ws),
            "provider_config": provider,
            "prompt_provider_config": prompt,
            "train": str(train), "train_sha256": file_sha256(train), "train_examples": n_train,
            "val": str(val), "val_sha256": file_sha256(val), "val_examples": n_val,
        }
        projection = budget.projection(ws.db(), planned)
        return MiproRun(**planned, projection=projection, planned_evaluations=projection["evaluations"])

    def check_resumable(self, ws, cfg: MiproRun) -> None:
        self.check_project(ws, cfg)
        for path, sha in ((Path(cfg.train), cfg.train_sha256), (Path(cfg.val), cfg.val_sha256)):
            check_unchanged(path, sha)

    def run(self, ctx, cfg: MiproRun) -> dict:
        from pipeline.providers import build_lm, configure_dspy_cache
        from pipeline.runner import RunCancelled
        from pipeline.saved_programs import save_program
        from pipeline.stages.mipro.recording import TrialRecorder, optimize, optimizer_class
        from state import write as store

        self.check_resumable(ctx.workspace, cfg)
        ws = ctx.workspace
        train = [e.to_dspy() for e in ws.examples(Path(cfg.train), with_outputs=True)[: cfg.train_limit]]
        val = [e.to_dspy() for e in ws.examples(Path(cfg.val))[: cfg.val_limit]]
        configure_dspy_cache(ctx.workspace.cache_dir / "dspy")
        task_lm = build_lm(cfg.provider_config, cfg.provider)
        prompt_lm = build_lm(cfg.prompt_provider_config, cfg.prompt_provider or cfg.provider)
        store.clear_trials(ctx.db, ctx.run.id)
        engines = [task_lm.engine] + ([prompt_lm.engine] if prompt_lm.engine is not task_lm.engine else [])
        recorder = TrialRecorder(ctx, engines, cfg.planned_evaluations)
        ctx.log.info("MIPROv2: %s train, %s validation examples, task %s, proposer %s", len(train), len(val),
                     task_lm.model, prompt_lm.model)
        judge, _ = self.judge_lm(cfg, None)
        best = optimize(optimizer_class(ctx, recorder), cfg, ws.project, task_lm, prompt_lm, train, val, recorder,
                        judge=judge)
        name = f"mipro-{ctx.run.id}"
        manifest = save_program(best, ctx.run_dir / "program", ws.project.new_program, {
            "source": f"run {ctx.run.id} (MIPROv2)",
            "score": round(best.score / 100, 6) if best.score is not None else None,
            "train": cfg.train, "train_sha256": cfg.train_sha256, "val": cfg.val, "val_sha256": cfg.val_sha256,
            "seed": cfg.seed, "task_model": task_lm.model, "prompt_model": prompt_lm.model,
            "parameters": cfg.model_dump(include={"auto", "num_candidates", "num_trials", "max_bootstrapped_demos",
                                                  "max_labeled_demos", "minibatch", "minibatch_size"}),
        })
        save_program(best, ws.programs_dir / name, ws.project.new_program, manifest["metadata"])
        for path in sorted((ctx.run_dir / "program").iterdir()):
            ctx.add_artifact(path, "program")
        summary = {
            "best_score": manifest["metadata"]["score"],
            "evaluations": recorder.evaluation,
            **recorder.snapshot(),
            "demos": manifest["demos"],
            "program": f"programs/{name}",
            "fingerprint": manifest["fingerprint"],
            "default_score": recorder.default_score,
        }
        if ctx.cancelled:
            ctx.log.info("cancelled: the best program so far is saved as programs/%s", name)
            raise RunCancelled(summary)
        return summary

    def headline(self, summary: dict | None) -> str:
        if not summary or summary.get("best_score") is None:
            return ""
        demos = sum(summary.get("demos", {}).values())
        return f"best {summary['best_score']:.3f} after {summary['evaluations']} evals, {demos} demos"

    def summary_rows(self, summary: dict) -> list[tuple[str, str]]:
        best, default = summary.get("best_score"), summary.get("default_score")
        gain = f" ({best - default:+.3f})" if best is not None and default is not None else ""
        rows = [("best full score", figure(best) + gain), ("program as written (default)", figure(default)),
                ("evaluations", str(summary.get("evaluations", "-"))),
                ("LM calls (cache hits)", f"{summary.get('lm_calls', '-')} ({summary.get('cache_hits', '-')})")]
        if summary.get("parse_failures"):
            rows.append(("parse failures", str(summary["parse_failures"])))
        rows += [(f"  demos: {name}", str(count)) for name, count in (summary.get("demos") or {}).items()]
        if summary.get("program"):
            rows.append(("program", summary["program"]))
        return rows

    def plan_lines(self, config: dict) -> list[str]:
        return budget.describe(config["projection"], config) if config.get("projection") else []

    def launch_values(self, cfg: MiproConfig) -> dict:
        # With a preset in po.toml the counts are left empty: typed in, they replace it.
        values = super().launch_values(cfg)
        if cfg.auto:
            values["num_trials"] = (None, f"empty = auto {cfg.auto}")
            values["num_candidates"] = (None, "")
        else:
            values["num_trials"] = (cfg.num_trials, "empty = po.toml")
        return values

    def launch_overrides(self, cfg: MiproConfig, typed: dict) -> dict:
        if cfg.auto and ("num_trials" in typed or "num_candidates" in typed):
            return {**typed, "auto": None}  # MIPROv2 takes a preset or the counts, not both
        return typed


STAGE = MiproStage()
