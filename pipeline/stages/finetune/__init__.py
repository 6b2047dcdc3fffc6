"""Fine-tune: a LoRA student trained (transformers + peft) on the teacher's accepted answers,
each rendered as the prompt the program's adapter will send it (data.py), in a loop that
checkpoints adapter, optimizer, scheduler, RNG and data position (train.py) and logs its
curves and resources to the store (store.py, resources.py); the adapter is exported for
peft, the local provider and vLLM (model.py).

Unit of resume: a checkpoint. A run killed at any moment continues from its newest complete
checkpoint at the same step with the same next batch; what the lost attempt logged after
that step is logged again, once.
"""

from __future__ import annotations

from typing import Literal

from pipeline.config import ConfigError, Float, Int
from pipeline.datasets import DatasetError
from pipeline.stages.base import Details, RunConfig, Stage, StageConfig, option
from pipeline.stages.finetune import model as base
from pipeline.stages.finetune import store
from pipeline.units import duration, figure


class FinetuneConfig(StageConfig):
    base_model: str = option("embedded", "the base: \"embedded\" (SmolLM2, offline), a model directory, or a "
                             "model id already in the Hugging Face cache (e.g. mistralai/Mistral-7B-Instruct-v0.3)")
    teacher_runs: list[int] = option([], "teacher runs whose accepted records train it (default: the newest "
                                     "succeeded teacher run)")
    data: str | None = option(None, "a teacher data set file (po teacher export's JSONL) instead of teacher runs")
    program: str | None = option(None, "the program whose prompts the student learns (programs/NAME; default: "
                                 "as written)")
    lora_r: Int = option(32, "LoRA rank", ge=1, le=512)
    lora_alpha: Int = option(64, "LoRA alpha (the update is scaled by alpha / r)", ge=1)
    lora_dropout: Float = option(0.05, "dropout on the LoRA input", ge=0.0, lt=1.0)
    target_modules: list[str] = option(list(base.PROJECTIONS), "the modules LoRA adapts (all attention and MLP "
                                       "projections)")
    epochs: Float = option(2.0, "passes over the training records", gt=0)
    max_steps: Int | None = option(None, "stop after this many optimizer steps (instead of epochs)", ask=True, ge=1)
    learning_rate: Float = option(2e-4, "peak learning rate", gt=0)
    schedule: Literal["linear", "cosine", "constant", "constant_with_warmup"] = option("linear", "learning-rate "
                                                                                       "schedule")
    warmup_ratio: Float = option(0.03, "share of the steps the learning rate warms up over", ge=0.0, lt=1.0)
    batch_size: Int = option(4, "examples per forward pass", ask=True, ge=1)
    gradient_accumulation: Int = option(4, "forward passes per optimizer step", ge=1)
    max_grad_norm: Float = option(1.0, "gradient clipping", gt=0)
    max_length: Int = option(1024, "tokens of prompt + answer; longer records are refused (or dropped with "
                             "--drop-long)", ge=16)
    drop_long: bool = option(False, "leave out the records longer than max_length instead of refusing")
    eval_fraction: Float = option(0.1, "records held out to measure eval loss", ge=0.0, lt=1.0)
    eval_every: Int = option(50, "evaluate every N steps (and at the end)", ge=1)
    log_every: Int = option(1, "log the curves every N steps", ge=1)
    checkpoint_every: Int = option(50, "checkpoint every N steps (and on cancel, and at the end)", ge=1)
    keep_checkpoints: Int = option(3, "checkpoints kept on disk", ge=1)
    seed: Int = option(0, "data order, split and initialisation")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "where to train (auto: a CUDA GPU when there is one)")
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = option("auto", "auto: bf16 on a GPU that has it, bf16 "
                                                            "autocast on a CPU")
    load_in_4bit: bool = option(False, "QLoRA: the base in 4 bits (a CUDA GPU and bitsandbytes)")
    threads: Int | None = option(None, "torch threads on a CPU (default: torch's own)", ge=1)
    merge: bool = option(False, "also export the merged model (base + adapter)")
    processes: Int = option(1, "training processes: more than one trains data-parallel (one per GPU, or gloo "
                            "on CPUs)", ge=1, le=64)
    launcher: Literal["torchrun", "accelerate"] = option("torchrun", "what starts several processes (both train "
                                                         "through accelerate: DDP unless accelerate_config says FSDP)")
    accelerate_config: str | None = option(None, "an accelerate config file (`accelerate config`'s YAML) for several "
                                           "processes: distributed_type MULTI_GPU (DDP) or FSDP with fsdp_version 2; "
                                           "starts them with accelerate launch")


class FinetuneRun(FinetuneConfig, RunConfig):
    base_directory: str
    records: int
    calls: int
    train_examples: int
    eval_examples: int
    dropped_long: int
    steps_per_epoch: int
    total_steps: int
    placement: str
    sources: list[str]
    resolved_runs: list[int] = []  # the teacher runs it trains on, fixed at plan time (a resume reads the same)
    data_sha256: str | None = None  # of the `data` file, when it trains on one
    distribution: str = "DDP"  # several processes: DDP or FSDP2 (the accelerate config's)


TOML_REAL = """
[finetune]
# base_model = "mistralai/Mistral-7B-Instruct-v0.3"   # a directory, or a model in the HF cache
base_model = "embedded"      # SmolLM2-135M (offline); see the README for a GPU box
lora_r = 32
lora_alpha = 64
epochs = 2
batch_size = 4
gradient_accumulation = 4
max_length = 1024
checkpoint_every = 50
# processes = 2                     # several GPUs: DDP; FSDP2 with an accelerate config file:
# accelerate_config = "fsdp.yaml"   # (see the README, "Several processes")
"""

# The embedded model on this CPU: ~1.5 s a step at batch 1 (field-notes); the demo's six
# teacher records train for 12 steps, a checkpoint every 4.
TOML_DEMO = """
[finetune]
# Demo settings: a few steps on the embedded model, on the demo's teacher records.
# A GPU box: base_model = "mistralai/Mistral-7B-Instruct-v0.3", epochs = 2, batch_size = 4.
base_model = "embedded"
lora_r = 32
lora_alpha = 64
max_steps = 12
batch_size = 1
gradient_accumulation = 1
max_length = 2048             # a PO prompt and its answer: 700-1,300 tokens
eval_fraction = 0.2
eval_every = 4
checkpoint_every = 4
"""


# The distillation demo: ~100 records, 2 epochs at an effective batch of 4 (~45 steps, ~5 min).
TOML_DISTILL = """
[finetune]
# Distillation demo: the student of the embedded model on its own best answers.
# A GPU box: base_model = "mistralai/Mistral-7B-Instruct-v0.3", epochs = 2, batch_size = 4.
base_model = "embedded"
lora_r = 32
lora_alpha = 64
epochs = 2
batch_size = 1
gradient_accumulation = 4
max_length = 2048             # a PO prompt and its answer: 700-1,300 tokens
eval_fraction = 0.1
eval_every = 10
checkpoint_every = 10
"""


def trained_on(placement: str, processes: int, distribution: str) -> str:
    """"cpu fp32 + bf16 autocast", or with several processes "… × 2 processes (FSDP2)"."""
    return placement + (f" × {processes} processes ({distribution})" if processes > 1 else "")


class FinetuneStage(Stage):
    name = "finetune"
    title = "LoRA fine-tune"
    short_title = "Fine-tune"
    Config = FinetuneConfig
    RunConfig = FinetuneRun
    order = 40
    progress_label = "steps"
    toml_real = TOML_REAL
    toml_profiles = {"distill": TOML_DISTILL}
    toml_demo = TOML_DEMO
    migrations = store.MIGRATIONS

    def plan(self, ws, cfg: FinetuneConfig) -> FinetuneRun:
        """Everything checked before any training: records, the base model, the rendering and the
        lengths, the eval split, the device."""
        from pipeline.stages.finetune.train import Settings, plan_steps

        place = base.placement(cfg.device, cfg.dtype)
        distribution = "DDP"
        if cfg.accelerate_config:
            from pipeline.stages.finetune.distributed import accelerate_distribution

            if cfg.processes < 2:
                raise ConfigError("finetune.accelerate_config is for several processes: set processes = 2 or more "
                                  "(one per GPU)")
            distribution = accelerate_distribution(ws.resolve(cfg.accelerate_config))
            if distribution == "FSDP2" and cfg.load_in_4bit:
                raise ConfigError("finetune: load_in_4bit with FSDP is not supported (sharding 4-bit weights needs "
                                  "bitsandbytes' quant storage set up for it): use one or the other")
        records, sources = self.records(ws, cfg)
        examples, long = self.examples(ws, cfg, records)
        if long and not cfg.drop_long:
            raise ConfigError(f"finetune: {long} of {len(examples) + long} calls would be cut at {cfg.max_length} "
                              "tokens: raise max_length or drop them with --drop-long")
        from pipeline.stages.finetune.data import split

        train, held = split(examples, cfg.eval_fraction, cfg.seed)
        if not train:
            raise ConfigError("finetune: no training examples left (every record held out or too long)")
        if -(-len(train) // cfg.batch_size) < cfg.processes:
            raise ConfigError(f"finetune: {len(train)} training examples in batches of {cfg.batch_size} give fewer "
                              f"batches than the {cfg.processes} processes: lower batch_size or processes")
        per_epoch, total = plan_steps(len(train), self.settings(cfg, Settings), cfg.processes)
        from pipeline.datasets import file_sha256

        resolved = [int(s.split()[-1]) for s in sources if s.startswith("teacher run ")]
        return FinetuneRun(**cfg.model_dump(), **self.project_keys(ws), base_directory=base.base_directory(cfg.base_model),
                           records=len(records), calls=len(examples) + long, train_examples=len(train),
                           eval_examples=len(held), dropped_long=long, steps_per_epoch=per_epoch, total_steps=total,
                           placement=place.label, sources=sources, resolved_runs=resolved, distribution=distribution,
                           data_sha256=file_sha256(ws.resolve(cfg.data)) if cfg.data else None)

    def check_resumable(self, ws, cfg: FinetuneRun) -> None:
        """A resume trains on the records the run started with, in the same order, or not at all."""
        from pipeline.datasets import check_unchanged

        self.check_project(ws, cfg)
        if cfg.data:
            check_unchanged(ws.resolve(cfg.data), cfg.data_sha256)
        if cfg.accelerate_config:  # the checkpoints are the same for DDP and FSDP2, not for what else it could say
            from pipeline.stages.finetune.distributed import accelerate_distribution

            now = accelerate_distribution(ws.resolve(cfg.accelerate_config))
            if now != cfg.distribution:
                raise ConfigError(f"finetune.accelerate_config: {cfg.accelerate_config} now asks for {now}; the run "
                                  f"started with {cfg.distribution}: put it back, or start a new run")

    @staticmethod
    def settings(cfg, cls):
        return cls(cfg.epochs, cfg.max_steps, cfg.learning_rate, cfg.schedule, cfg.warmup_ratio, cfg.batch_size,
                   cfg.gradient_accumulation, cfg.max_grad_norm, cfg.seed, cfg.log_every, cfg.eval_every,
                   cfg.checkpoint_every, cfg.keep_checkpoints, getattr(cfg, "total_steps", None))

    def records(self, ws, cfg: FinetuneConfig) -> tuple[list[dict], list[str]]:
        """The accepted teacher records it trains on, and where they come from."""
        from pipeline.stages.finetune.data import read_jsonl
        from state import read

        if cfg.data:
            path = ws.resolve(cfg.data)
            records = read_jsonl(path)
            sources = [str(path)]
        else:
            db = ws.db(readonly=True)
            run_ids = getattr(cfg, "resolved_runs", None) or cfg.teacher_runs or [
                r.id for r in read.list_runs(db, stage="teacher", limit=500) if r.state == "succeeded"][:1]
            if not run_ids:
                raise ConfigError("finetune: no succeeded teacher run to train on: run `po run teacher` first, or "
                                  "name teacher_runs / data in [finetune]")
            records = []
            for run_id in run_ids:
                run = read.get_run(db, run_id)
                if run is None or run.stage != "teacher":
                    raise ConfigError(f"finetune.teacher_runs: run {run_id} is not a teacher run (see `po runs`)")
                records += [{"id": f"{run_id}/{r.example_id}", "inputs": r.inputs, "outputs": r.outputs,
                             "trace": r.trace} for r in read.teacher_records(db, run_id, accepted_only=True)]
            sources = [f"teacher run {run_id}" for run_id in run_ids]
        if not records:
            raise DatasetError(f"finetune: no accepted records in {', '.join(sources)}")
        return records, sources

    def examples(self, ws, cfg, records: list[dict]):
        """(the rendered calls within max_length, how many are longer)."""
        from pipeline.saved_programs import load_ref
        from pipeline.stages.finetune.data import calls_from_records, render

        program, _ = load_ref(ws, cfg.program or "baseline")
        tokenizer = base.load_tokenizer(base.base_directory(cfg.base_model))
        calls = calls_from_records(records, [name for name, _ in program.named_predictors()])
        rendered = [render(call, program, tokenizer) for call in calls]
        kept = [e for e in rendered if len(e.input_ids) <= cfg.max_length]
        return kept, len(rendered) - len(kept)

    def run(self, ctx, cfg: FinetuneRun) -> dict:
        from pipeline.runner import RunCancelled
        from pipeline.stages.finetune.session import Session, train

        if cfg.processes > 1:
            from pipeline.stages.finetune.launch import train_in_processes

            position, files = train_in_processes(ctx, cfg)
        else:
            position, files = train(Session(ctx.workspace, ctx.db, ctx.run.id, ctx.run_dir, cfg, ctx.log.info,
                                            ctx.cancel_requested_now, ctx.progress))
        if position.step < cfg.total_steps:
            raise RunCancelled(self._summary(ctx, cfg, position, []))
        for path in files:
            ctx.add_artifact(path, "adapter" if path.parent.name == "adapter" else "merged")
        return self._summary(ctx, cfg, position, files)

    def _summary(self, ctx, cfg: FinetuneRun, position, files) -> dict:
        train = store.points(ctx.db, ctx.run.id, "train")
        evals = store.points(ctx.db, ctx.run.id, "eval")
        adapter = ctx.run_dir / "adapter"
        # Epochs trained (2.0 after two), not the index of the epoch the loop was in.
        return {"steps": position.step, "total_steps": cfg.total_steps,
                "epochs": round(position.step / max(1, cfg.steps_per_epoch), 2),
                "first_loss": train[0].loss if train else None, "final_loss": train[-1].loss if train else None,
                "eval_loss": evals[-1].loss if evals else None, "tokens": position.tokens,
                "placement": trained_on(cfg.placement, cfg.processes, cfg.distribution),
                "base_model": cfg.base_model,
                "adapter": str(adapter.relative_to(ctx.workspace.root)) if files else None,
                "merged": cfg.merge and bool(files)}

    def headline(self, summary: dict | None) -> str:
        if not summary or summary.get("final_loss") is None:
            return ""
        text = f"loss {summary['first_loss']:.3f} → {summary['final_loss']:.3f}"
        if summary.get("eval_loss") is not None:
            text += f", eval {summary['eval_loss']:.3f}"
        return text + f" after {summary['steps']} steps"

    def summary_rows(self, summary: dict) -> list[tuple[str, str]]:
        rows = [("steps", f"{summary['steps']} of {summary['total_steps']}"),
                ("train loss first → last", f"{figure(summary.get('first_loss'))} → {figure(summary.get('final_loss'))}"),
                ("eval loss", figure(summary.get("eval_loss"))), ("tokens seen", f"{summary.get('tokens', 0):,}"),
                ("base model", summary.get("base_model") or "-"), ("trained on", summary.get("placement") or "-")]
        if summary.get("adapter"):
            rows.append(("adapter (peft)", summary["adapter"]))
        return rows

    def plan_lines(self, config: dict) -> list[str]:
        per = f"{config['steps_per_epoch']} steps an epoch" if not config.get("max_steps") else "max_steps"
        on = trained_on(config["placement"], config.get("processes", 1), config.get("distribution", "DDP"))
        lines = [f"fine-tune plan: {config['records']} records, {config['calls']} calls → {config['train_examples']} "
                 f"train / {config['eval_examples']} eval examples; {config['total_steps']} steps ({per}), batch "
                 f"{config['batch_size']} × {config['gradient_accumulation']}, on {on}"]
        if config.get("dropped_long"):
            lines.append(f"  {config['dropped_long']} calls longer than {config['max_length']} tokens left out")
        return lines

    def details(self, db, run) -> Details:
        points = store.points(db, run.id, "train")
        evals = store.points(db, run.id, "eval")
        kept = store.checkpoints(db, run.id)
        lines = []
        if points:
            last = points[-1]
            lines.append(f"step {last.step}/{run.total or '?'} · loss {last.loss:.4f} · lr {last.learning_rate:.2e}"
                         + (f" · {last.tokens_per_s:,.0f} tokens/s" if last.tokens_per_s else "")
                         + (f" · ETA {duration(last.eta_s)}" if last.eta_s and run.status == "running" else ""))
        if evals:
            lines.append(f"eval loss {evals[-1].loss:.4f} at step {evals[-1].step}")
        if kept:
            lines.append("checkpoints: " + ", ".join(f"step {c.step}" for c in kept))
        return Details({"finetune": {"points": len(points), "last": points[-1].__dict__ if points else None,
                                     "evals": [e.__dict__ for e in evals],
                                     "checkpoints": [c.__dict__ for c in kept]}}, lines)

    def eta(self, db, run):
        points = store.points(db, run.id, "train")
        return (points[-1].eta_s, None) if points and points[-1].eta_s is not None else None


STAGE = FinetuneStage()
