"""Baseline: the program, as written, scored by its metric on the validation set.

Unit of work: one evaluated example, stored as soon as it exists; a resumed run skips
every example the store already has.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import Int
from pipeline.datasets import check_unchanged, file_sha256
from pipeline.stages.base import RunConfig, Stage, StageConfig, option
from pipeline.units import figure


class BaselineConfig(StageConfig):
    provider: str = option("task", "a [providers.*] table; task: the task model (local until `po promote`)")
    threads: Int = option(4, "examples evaluated concurrently", ask=True, ge=1, le=64)
    limit: Int | None = option(None, "evaluate only the first N validation examples", ask=True, ge=1)


class BaselineRun(BaselineConfig, RunConfig):
    provider_config: dict
    val: str
    val_sha256: str
    examples: int


TOML = """
[baseline]
provider = "task"            # the task model: local until `po promote` makes the student it
threads = 4                  # examples evaluated concurrently (the local provider batches them)
# limit = 10                 # evaluate only the first N validation examples
"""


class BaselineStage(Stage):
    name = "baseline"
    title = "Baseline evaluation"
    short_title = "Baseline"
    Config = BaselineConfig
    RunConfig = BaselineRun
    order = 10
    progress_label = "evaluating"
    limit_key = "limit"
    toml_real = TOML

    def plan(self, ws, cfg: BaselineConfig) -> BaselineRun:
        provider = ws.provider_config(cfg.provider, key=f"{ws.config_path}: baseline.provider")
        val = ws.resolve(ws.config.data.val)
        examples = ws.examples(val)  # refuse bad data (and a broken program or metric) now, not after model time
        return BaselineRun(**cfg.model_dump(), **self.project_keys(ws), provider_config=provider,
                           val=str(val), val_sha256=file_sha256(val),
                           examples=min(len(examples), cfg.limit or len(examples)))

    def check_resumable(self, ws, cfg: BaselineRun) -> None:
        self.check_project(ws, cfg)
        check_unchanged(Path(cfg.val), cfg.val_sha256)

    def run(self, ctx, cfg: BaselineRun) -> dict:
        import dspy

        from pipeline.evaluation import evaluate_examples, evaluate_one, lm_call_counter, summarize
        from pipeline.providers.pricing import cost
        from state import read
        from state import write as store

        self.check_resumable(ctx.workspace, cfg)
        project = ctx.workspace.project
        examples = ctx.workspace.examples(Path(cfg.val))[: cfg.examples]
        lm, price, judge, judge_price = self.models(ctx, cfg)
        ctx.log.info("model %s, %s examples, %s threads", lm.model, len(examples), cfg.threads)
        dspy.configure(
            lm=lm,
            adapter=dspy.ChatAdapter(use_json_adapter_fallback=False),  # a parse failure stays one
            callbacks=[lm_call_counter()],
            track_usage=True,
        )
        program = project.new_program()
        done = read.done_example_ids(ctx.db, ctx.run.id)
        todo = [(i, ex) for i, ex in enumerate(examples) if ex.id not in done]
        total = len(examples)
        count = total - len(todo)
        if count:
            ctx.log.info("resuming: %s of %s examples already stored", count, total)
        ctx.progress(count, total)
        work = lambda example, position: evaluate_one(program, example, project, position, judge)  # noqa: E731
        for row in evaluate_examples(work, todo, threads=cfg.threads, stop=ctx.cancel_event):
            row["cost_usd"] = cost(price, row["input_tokens"], row["output_tokens"])
            row["judge_cost_usd"] = cost(judge_price, row["judge_input_tokens"], row["judge_output_tokens"])
            if store.put_eval_result(ctx.db, ctx.run.id, row):
                count += 1
            outcome = f"{row['score']:.3f}" if row["status"] == "ok" else row["status"]
            ctx.log.info("example %s: %s (%.1f s)", row["example_id"], outcome, row["latency_s"])
            ctx.progress(count, total)
        ctx.check_cancelled()

        summary = summarize(read.eval_results(ctx.db, ctx.run.id))
        summary["model"] = lm.model
        engine = lm.engine
        summary["provider_requests"] = getattr(engine, "requests", getattr(engine, "generated_calls", None))
        summary["retries"] = getattr(engine, "retries", 0)
        path = ctx.run_dir / "summary.json"
        path.write_text(json.dumps(summary, indent=2) + "\n")
        ctx.add_artifact(path, "summary")
        return summary

    def headline(self, summary: dict | None) -> str:
        if not summary or summary.get("mean") is None:
            return ""
        text = f"mean {summary['mean']:.3f}"
        if summary.get("ci95_half_width") is not None:
            text += f" ± {summary['ci95_half_width']:.3f}"
        failures = summary.get("parse_failures", 0) + summary.get("errors", 0) + summary.get("metric_errors", 0)
        return text + (f", {failures} failed" if failures else "")

    def summary_rows(self, summary: dict) -> list[tuple[str, str]]:
        ci = summary.get("ci95")
        cost = summary.get("cost_usd")
        rows = [
            ("mean score (parsed answers)", figure(summary.get("mean"))),
            ("95% CI", f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"),
            ("examples scored / evaluated", f"{summary['scored']} / {summary['examples']}"),
            ("parse failures (not in mean)", str(summary["parse_failures"])),
            ("errors (not in mean)", str(summary["errors"])),
            *([("metric errors (not in mean)", str(summary["metric_errors"]))] if summary.get("metric_errors") else []),
            *[(f"  part: {name}", figure(value)) for name, value in summary.get("parts", {}).items()],
            ("latency p50 / p95", f"{figure(summary.get('latency_p50_s'), '.1f')} s / "
                                  f"{figure(summary.get('latency_p95_s'), '.1f')} s"),
            ("LM calls (cache hits)", f"{summary['lm_calls']} ({summary['cache_hits']})"),
            ("tokens in / out", f"{summary['input_tokens']} / {summary['output_tokens']}"),
            ("estimated cost", "unknown (no price for this model)" if cost is None else f"${cost:.4f}"),
        ]
        if summary.get("judge_calls"):  # the metric's own LM calls, apart from the program's
            judge_cost = summary.get("judge_cost_usd")
            rows += [("metric's LM calls (judge)", str(summary["judge_calls"])),
                     ("  judge tokens in / out", f"{summary['judge_input_tokens']} / {summary['judge_output_tokens']}"),
                     ("  judge cost", "unknown" if judge_cost is None else f"${judge_cost:.4f}")]
        if summary.get("retries"):
            rows.append(("provider retries", str(summary["retries"])))
        if summary.get("model"):
            rows.append(("model", summary["model"]))
        return rows


STAGE = BaselineStage()
