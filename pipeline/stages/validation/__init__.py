"""Validation: is the student good enough? Several systems (a program on a model: the program
as written, the optimized one, the fine-tuned student, any configured pair) answer the same
held-out examples; the comparison says each one's mean with a 95 % bootstrap interval, its
parts, failure rates apart, latency, throughput and cost, and against a reference system the
paired wins / ties / losses with a Wilcoxon test (stats.py). A promotion gate turns that into
a verdict with its reasons (gate.py); report.md and report.png say it without the console
(report.py).

Unit of work: one system's answer to one example, stored as soon as it exists; a resumed run
never asks a stored answer again. Systems answer one after another (a local model is loaded
once per system), each at `threads` examples at a time.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

from pydantic import Field, field_validator

from pipeline.config import ConfigError, Int
from pipeline.datasets import check_unchanged as file_unchanged
from pipeline.datasets import file_sha256
from pipeline.stages.base import Details, RunConfig, Stage, StageConfig, option
from pipeline.stages.validation import gate, stats
from pipeline.stages.validation.systems import System, SystemConfig
from pipeline.units import figure

# Quality no worse than the program as written (within 0.02), no more parse failures or errors
# than it (within 5 points: the mean leaves failed answers out), and fast enough.
DEFAULT_GATE = ["student.mean >= baseline.mean - 0.02",
                "student.parse_failure_rate <= baseline.parse_failure_rate + 0.05",
                "student.error_rate <= baseline.error_rate + 0.05", "student.p95_latency_s <= 10"]


class ValidationConfig(StageConfig):
    provider: str = option("task", "the model the program as written and the optimized program answer on "
                           "(task: the task model — po.toml's, or the student promoted last)")
    reference: str = option("baseline", "the system every other one is compared with, example by example")
    threads: Int = option(4, "examples answered concurrently by each system", ask=True, ge=1, le=64)
    limit: Int | None = option(None, "validate on the first N validation examples only", ask=True, ge=1)
    use_cache: bool = option(False, "take answers from the workspace's LM cache (latencies then measure the cache)")
    gate: list[str] = option(DEFAULT_GATE, "the promotion gate: conditions such as \"student.mean >= "
                             "baseline.mean - 0.02\" (figures: " + ", ".join(gate.METRICS) + ")")
    systems: dict[str, SystemConfig] = option({}, "the systems to compare (program, provider, adapter); empty: "
                                              "baseline, the newest optimized program, the newest student")

    @field_validator("gate")
    @classmethod
    def _conditions(cls, conditions: list[str]) -> list[str]:
        for condition in conditions:
            gate.parse(condition)  # ValueError -> one line naming validation.gate
        return conditions


class ValidationRun(ValidationConfig, RunConfig):
    provider_config: dict  # the task model's table, for `po doctor`'s checks
    resolved: list[System]
    notes: list[str] = Field(default_factory=list)
    val: str
    val_sha256: str
    examples: int


TOML = """
[validation]
provider = "task"            # the task model: the new student is compared with it (po.toml's, or the promoted one)
reference = "baseline"       # the others are compared with it, example by example
threads = 4
# limit = 20                 # validate on the first N validation examples
# The promotion gate (`po promote` refuses a run that did not pass it, unless --force):
gate = ["student.mean >= baseline.mean - 0.02",
        "student.parse_failure_rate <= baseline.parse_failure_rate + 0.05",
        "student.error_rate <= baseline.error_rate + 0.05",
        "student.p95_latency_s <= 10"]
# Systems default to: baseline (the program as written), optimized (the newest MIPROv2
# program) and student (the newest fine-tuned adapter). Or name them:
# [validation.systems.student]
# program = "programs/mipro-3"
# provider = "local"
# adapter = "artifacts/7/adapter"
"""

# The demos answer one example at a time: the latencies the gate reads are then seconds per
# example, as the team's table has them (four at a time share a batch and each waits longer).
TOML_DEMO = TOML.replace("threads = 4\n# limit = 20                 # validate on the first N validation examples",
                         "threads = 1                  # one at a time: latency = seconds per example\n"
                         "limit = 8                    # the first 8 validation examples (distill demo: all 34)")
TOML_DISTILL = TOML.replace("threads = 4\n", "threads = 1                  # one at a time: latency = seconds per "
                            "example\n")


class ValidationStage(Stage):
    name = "validation"
    title = "Validation"
    short_title = "Validation"
    Config = ValidationConfig
    RunConfig = ValidationRun
    order = 50
    progress_label = "answers"
    limit_key = "limit"
    toml_real = TOML
    toml_demo = TOML_DEMO
    toml_profiles = {"distill": TOML_DISTILL}

    # -- planning ----------------------------------------------------------------------------
    def plan(self, ws, cfg: ValidationConfig) -> ValidationRun:
        from pipeline import stages
        from pipeline.stages.validation import systems

        key = f"{ws.config_path}: validation.provider"
        provider_config = ws.provider_config(cfg.provider, key=key)
        if cfg.systems:
            resolved, notes = systems.configured(ws, cfg.systems), []
        else:
            titles = {s.name: s.title for s in stages.stages()}
            resolved, notes = systems.discovered(ws, ws.db(), cfg.provider, titles)
        names = [s.name for s in resolved]
        if cfg.reference not in names:
            raise ConfigError(f"{ws.config_path}: validation.reference names {cfg.reference!r}, not one of the "
                              f"systems ({', '.join(names)})")
        resolved.sort(key=lambda s: s.name != cfg.reference)  # the reference answers first
        val = ws.resolve(ws.config.data.val)
        examples = ws.examples(val)
        return ValidationRun(**cfg.model_dump(exclude={"systems"}), systems=cfg.systems, **self.project_keys(ws),
                             provider_config=provider_config, resolved=resolved, notes=notes, val=str(val),
                             val_sha256=file_sha256(val), examples=min(len(examples), cfg.limit or len(examples)))

    def check_resumable(self, ws, cfg: ValidationRun) -> None:
        from pipeline.stages.validation.systems import check_unchanged

        self.check_project(ws, cfg)
        file_unchanged(Path(cfg.val), cfg.val_sha256)
        check_unchanged(ws, cfg.resolved)

    def plan_lines(self, config: dict) -> list[str]:
        cfg = self.run_config(config)
        total = cfg.examples * len(cfg.resolved)
        lines = [f"{len(cfg.resolved)} systems x {cfg.examples} examples = {total} answers, reference "
                 f"{cfg.reference}:"]
        for s in cfg.resolved:
            where = s.provider_config.get("adapter") or s.provider_config.get("model") or \
                s.provider_config.get("base_model", "embedded")
            lines.append(f"  {s.name}: program {s.program} on {s.provider} ({where}), {s.source}")
        lines += [f"  note: {n}" for n in cfg.notes]
        lines.append("gate: " + ("; ".join(cfg.gate) or "none"))
        return lines

    # -- running -----------------------------------------------------------------------------
    def run(self, ctx, cfg: ValidationRun) -> dict:
        import dspy

        from pipeline.evaluation import lm_call_counter
        from pipeline.providers import configure_dspy_cache

        self.check_resumable(ctx.workspace, cfg)
        examples = ctx.workspace.examples(Path(cfg.val))[: cfg.examples]
        configure_dspy_cache(ctx.workspace.cache_dir / "dspy")
        dspy.configure(adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), callbacks=[lm_call_counter()],
                       track_usage=True)
        total = len(examples) * len(cfg.resolved)
        count = sum(len(self._done(ctx, s.name)) for s in cfg.resolved)
        if count:
            ctx.log.info("resuming: %s of %s answers already stored", count, total)
        ctx.progress(count, total)
        for system in cfg.resolved:
            count = self._answer(ctx, cfg, system, examples, count, total)
            ctx.check_cancelled()
        return self._finish(ctx, cfg, examples)

    @staticmethod
    def _done(ctx, system: str) -> set[str]:
        from state import read

        return read.done_example_ids(ctx.db, ctx.run.id, system)

    def _answer(self, ctx, cfg: ValidationRun, system: System, examples, count: int, total: int) -> int:
        import dspy

        from pipeline.evaluation import evaluate_examples, evaluate_one
        from pipeline.providers import build_lm
        from pipeline.providers.pricing import cost, price_for
        from pipeline.saved_programs import load_ref
        from state import write as store

        done = self._done(ctx, system.name)
        todo = [(i, ex) for i, ex in enumerate(examples) if ex.id not in done]
        if not todo:
            return count
        ws, project = ctx.workspace, ctx.workspace.project
        table = system.provider_config
        lm = build_lm(table, system.provider, cache=cfg.use_cache)
        price = price_for(table.get("kind", "local"), table.get("model"), table.get("price"))
        judge, judge_price = self.judge_lm(cfg, price)
        program, _ = load_ref(ws, system.program_dir or system.program)
        program.set_lm(lm)
        # A metric that calls an LM without a configured judge calls this system's model.
        dspy.configure(lm=lm)
        ctx.log.info("%s: %s on %s, %s examples to answer, %s threads", system.name, system.program, lm.model,
                     len(todo), cfg.threads)
        work = lambda example, position: evaluate_one(program, example, project, position, judge)
        for row in evaluate_examples(work, todo, threads=cfg.threads, stop=ctx.cancel_event):
            row["cost_usd"] = cost(price, row["input_tokens"], row["output_tokens"])
            row["judge_cost_usd"] = cost(judge_price, row["judge_input_tokens"], row["judge_output_tokens"])
            if store.put_eval_result(ctx.db, ctx.run.id, row, system=system.name):
                count += 1
            outcome = f"{row['score']:.3f}" if row["status"] == "ok" else row["status"]
            ctx.log.info("%s / %s: %s (%.1f s)", system.name, row["example_id"], outcome, row["latency_s"])
            ctx.progress(count, total, system.name)
        return count

    def _finish(self, ctx, cfg: ValidationRun, examples) -> dict:
        from pipeline.stages.validation import report
        from state import read

        results = {s.name: read.eval_results(ctx.db, ctx.run.id, s.name) for s in cfg.resolved}
        summary = compare(cfg, results)
        inputs = {ex.id: ex.inputs for ex in examples}
        (ctx.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (ctx.run_dir / "report.md").write_text(report.markdown(summary, results, inputs, ctx.run.id))
        report.plot(summary, results, ctx.run_dir / "report.png")
        for name in ("summary.json", "report.md", "report.png"):
            ctx.add_artifact(ctx.run_dir / name, "report" if name != "summary.json" else "summary")
        ctx.log.info("verdict: %s", summary["verdict"])
        for check in summary["checks"]:
            ctx.log.info("  %s: %s (%s)", check["outcome"], check["condition"], check["reason"])
        return summary

    # -- what people read --------------------------------------------------------------------
    def headline(self, summary: dict | None) -> str:
        if not summary or not summary.get("systems"):
            return ""
        reference = summary["reference"]
        others = [n for n in summary["systems"] if n != reference]
        main = "student" if "student" in others else (others[0] if others else reference)
        s, r = summary["systems"][main], summary["systems"][reference]
        text = f"{main} {figure(s['mean'])}"
        if main != reference:
            text += f" vs {reference} {figure(r['mean'])}"
            if s.get("p_value") is not None:
                text += f" (p {s['p_value']:.2g})"
        return text + f"; gate {summary['verdict']}"

    def summary_rows(self, summary: dict) -> list[tuple[str, str]]:
        rows = []
        for name, s in summary["systems"].items():
            ci = f" [{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s["ci_low"] is not None else ""
            rows.append((name, f"{figure(s['mean'])}{ci}, {s['scored']}/{s['examples']} scored, "
                               f"p95 {figure(s['p95_latency_s'], '.1f')} s"))
            if s.get("paired") is not None:
                rows.append((f"  vs {summary['reference']}",
                             f"{s['wins']} wins / {s['ties']} ties / {s['losses']} losses, difference "
                             f"{figure(s['mean_difference'], '+.3f')}, p {figure(s['p_value'], '.3g')}, effect "
                             f"{figure(s['effect_size'], '+.2f')}" + (" (underpowered)" if s["underpowered"] else "")))
        rows.append(("verdict", summary["verdict"]))
        rows += [(f"  {c['outcome']}", f"{c['condition']}: {c['reason']}") for c in summary["checks"]]
        rows += [("note", n) for n in summary.get("notes", [])]
        return rows

    def details(self, db, run) -> Details | None:
        if not run.summary or "systems" not in run.summary:
            return None
        # The summary table says it all already: no lines of its own, the verdict for scripts.
        return Details({"validation": {"verdict": run.summary["verdict"], "checks": run.summary["checks"]}}, [])

    # -- promotion ---------------------------------------------------------------------------
    def promotion(self, run) -> dict | None:
        """What `po promote` makes the task model: the gate's subject (the system the gate's
        conditions name first other than the reference; `student` by default), its provider
        table, and the gate's verdict."""
        if run.state != "succeeded" or not run.summary or "systems" not in run.summary:
            return None
        cfg = self.run_config(run.config)
        subject = _subject(cfg.gate, cfg.reference, [s.name for s in cfg.resolved])
        if subject is None:
            return {"system": None, "verdict": run.summary["verdict"],
                    "why": "it judged no system but the reference (no student, and the gate names no other)"}
        system = next(s for s in cfg.resolved if s.name == subject)
        return {"system": subject, "provider_config": system.provider_config, "verdict": run.summary["verdict"],
                "program": system.program}


def _subject(conditions: list[str], reference: str, names: list[str]) -> str | None:
    for condition in conditions:
        match = gate.parse(condition)
        for side in ("l", "r"):
            name = match.group(f"{side}sys")
            if name and name != reference and name in names:
                return name
    return "student" if "student" in names else None


def compare(cfg: ValidationRun, results: dict[str, list]) -> dict:
    """The comparison and the verdict, from the stored answers."""
    reference_scores = {r.example_id: r.score for r in results.get(cfg.reference, []) if r.status == "ok"}
    figures = {}
    for system in cfg.resolved:
        rows = results.get(system.name, [])
        f = stats.figures(system.name, rows, None if system.name == cfg.reference else reference_scores)
        figures[system.name] = f
    verdict, checks = gate.evaluate(cfg.gate, figures)
    systems = {}
    for system in cfg.resolved:
        rows = results.get(system.name, [])
        systems[system.name] = {**figures[system.name].to_json(), "program": system.program,
                                "provider": system.provider, "source": system.source,
                                "model": _model_name(system.provider_config),
                                "throughput_per_min": throughput(rows)}
    return {"reference": cfg.reference, "examples": cfg.examples, "threads": cfg.threads, "systems": systems,
            "verdict": verdict, "gate": cfg.gate,
            "checks": [{"condition": c.condition, "outcome": c.outcome, "reason": c.reason} for c in checks],
            "notes": cfg.notes}


def _model_name(table: dict) -> str:
    kind = table.get("kind", "local")
    if kind == "local":
        base = table.get("base_model") or "embedded"
        adapter = Path(table["adapter"]) if table.get("adapter") else None  # artifacts/RUN/adapter -> RUN/adapter
        return f"local {base}" + (f" + LoRA {adapter.parent.name}/{adapter.name}" if adapter else "")
    return f"{kind} {table.get('model')}"


def throughput(rows: list) -> float | None:
    """Answers per minute of wall time at the run's concurrency: the time between consecutive
    answers, each gap capped at the longest single answer (a longer gap is the run stopped and
    resumed, not work), plus the first answer's own time."""
    stamped = sorted((r.created_at, r.latency_s) for r in rows if r.created_at is not None)
    if len(stamped) < 2:
        return None
    longest = max(latency for _, latency in stamped)
    wall = stamped[0][1] + sum(min(b[0] - a[0], longest) for a, b in pairwise(stamped))
    return 60 * len(stamped) / wall if wall > 0 else None


STAGE = ValidationStage()
