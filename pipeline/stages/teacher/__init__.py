"""Teacher dataset: a strong model answers pool inputs with the workspace's program; answers
its metric scores at least min_score are kept, with each predictor's trace, until
max_records are accepted.

Unit of work: one attempt (an answer to one input), stored with its decision before it is
counted; an accepted one is numbered in the same transaction (state.write.put_teacher_record).
A resumed run skips every input that has an accepted record and every attempt already
stored; an attempt paid for but not stored (kill -9 between the two) is answered again by
the workspace's LM cache, for free. Attempts still in flight when the target is reached are
stored as `surplus`. A final provider error stops the run (resumable).

The decision, the JSONL data set and its import, and the projection live in records.py;
`po teacher import|export` in commands.py.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

from pipeline.config import ConfigError, Float, Int
from pipeline.datasets import DatasetError, file_sha256
from pipeline.stages.base import Details, RunConfig, Stage, StageConfig, option
from pipeline.stages.teacher import records


class PoolExhausted(RuntimeError):
    pass


class TeacherConfig(StageConfig):
    provider: str = option("local", "the teacher model (a [providers.*] table, e.g. vertex)")
    program: str | None = option(None, "a saved program (programs/NAME) to answer with; default: the program "
                                 "as written")
    max_records: Int = option(400, "stop at this many accepted records", ask=True, ge=1)
    min_score: Float = option(0.85, "accept an answer scoring at least this", ask=True, label="min score (0-1)",
                              ge=0.0, le=1.0)
    attempts_per_input: Int = option(1, "best-of-k: answers tried per input until one is accepted (needs "
                                     "temperature > 0)", flag="--attempts", ge=1, le=20)
    temperature: Float | None = option(None, "sampling temperature (default: the provider's)", ge=0.0, le=2.0)
    threads: Int = option(8, "inputs answered concurrently (also capped by the provider's limits.concurrency)",
                          ask=True, ge=1, le=256)
    pool_limit: Int | None = option(None, "use only the first N pool inputs", ask=True, label="pool limit", ge=1)


class TeacherRun(TeacherConfig, RunConfig):
    provider_config: dict
    pool: str
    pool_inputs: int
    effective_temperature: float | None
    # What the pool held when planned: `po run all` reruns the stage when it changed. A resume
    # does not check it (inputs added to a pool are what a resume after exhaustion needs).
    pool_sha256: str | None = None


TOML_REAL = """
[teacher]
# provider = "vertex"        # the teacher model: a [providers.*] table (gemini-2.5-pro on Vertex AI)
max_records = 400            # stop at this many accepted records
min_score = 0.85             # accept an answer scoring at least this
attempts_per_input = 1       # best of k (k > 1 needs temperature > 0)
threads = 8                  # inputs answered concurrently
"""

# The embedded model is no teacher: 0.85 would accept nothing (measured, see the comment).
TOML_DEMO = """
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


# The distillation demo needs ~100 records to train on. 0.5 rather than 0.55 keeps it near
# 20 minutes on a 2-core CPU (about one attempt in three); chosen for time, before any result.
TOML_DISTILL = """
[teacher]
# Distillation demo: the embedded model is its own teacher (best of 3 attempts at temperature
# 0.8, kept when the metric gives >= 0.5): the student learns from its best answers.
# A real teacher (gemini-2.5-pro) uses max_records = 400, min_score = 0.85.
provider = "local"
max_records = 100
min_score = 0.5
attempts_per_input = 3
temperature = 0.8
threads = 4
"""


class _Queue:
    """Attempts to make, in pool order; a rejected attempt queues the input's next one.
    An iterator that may run dry and fill again (evaluate_examples asks again after each result)."""

    def __init__(self, items, should_stop):
        self.items = collections.deque(items)
        self.lock = threading.Lock()
        self.should_stop = should_stop  # checked before each new attempt: cancel, target reached

    def push_front(self, item) -> None:
        with self.lock:
            self.items.appendleft(item)

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:
            if not self.items or self.should_stop():
                raise StopIteration
            return self.items.popleft()


class TeacherStage(Stage):
    name = "teacher"
    title = "Teacher dataset"
    short_title = "Teacher"
    Config = TeacherConfig
    RunConfig = TeacherRun
    order = 30
    progress_label = "accepted"
    limit_key = "pool_limit"
    toml_real = TOML_REAL
    toml_profiles = {"distill": TOML_DISTILL}
    toml_demo = TOML_DEMO

    @property
    def commands(self):
        from pipeline.stages.teacher.commands import COMMANDS

        return COMMANDS

    def plan(self, ws, cfg: TeacherConfig) -> TeacherRun:
        provider = ws.provider_config(cfg.provider, key="teacher.provider")
        temperature = cfg.temperature if cfg.temperature is not None else provider.get("temperature")
        if cfg.attempts_per_input > 1 and temperature == 0:
            raise ConfigError("teacher: attempts_per_input > 1 needs temperature > 0 (at 0 every attempt gives the "
                              "same answer): set teacher.temperature")
        pool = ws.resolve(ws.config.data.pool)
        inputs = len(ws.examples(pool)[: cfg.pool_limit])  # bad lines are refused now, not mid-run
        if cfg.program:
            from pipeline.saved_programs import load_ref

            load_ref(ws, cfg.program)  # refuses a missing or damaged program now
        return TeacherRun(**cfg.model_dump(), **self.project_keys(ws), provider_config=provider,
                          pool=str(pool), pool_inputs=inputs, effective_temperature=temperature,
                          pool_sha256=file_sha256(pool))

    def check_resumable(self, ws, cfg: TeacherRun) -> None:
        self.check_project(ws, cfg)
        # The pool may grow between runs (new inputs are simply new); it must still be readable.
        if not Path(cfg.pool).exists():
            raise DatasetError(f"{cfg.pool}: not found (the run's input pool is gone)")

    def run(self, ctx, cfg: TeacherRun) -> dict:
        import dspy

        from pipeline.evaluation import evaluate_examples, evaluate_one
        from pipeline.providers.pricing import cost
        from pipeline.providers.remote import ProviderError, redact
        from pipeline.runner import RunCancelled
        from pipeline.saved_programs import load_ref
        from state import read
        from state import write as store

        self.check_resumable(ctx.workspace, cfg)
        target, k = cfg.max_records, cfg.attempts_per_input
        project = ctx.workspace.project
        names, weights = project.fields.inputs, getattr(project.metric, "part_weights", None)
        pool = ctx.workspace.examples(Path(cfg.pool))[: cfg.pool_limit]
        lm, price, judge, judge_price = self.models(ctx, cfg)
        temperature = cfg.effective_temperature
        dspy.configure(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), track_usage=True)
        program, _ = load_ref(ctx.workspace, cfg.program or "baseline")

        # What the store already holds decides what is left to do.
        tried: dict[str, int] = collections.Counter()
        done_inputs: set[str] = set()
        accepted = 0
        for r in read.teacher_records(ctx.db, ctx.run.id):
            if r.status in ("accepted", "surplus"):
                done_inputs.add(r.input_key)
                accepted += r.status == "accepted"
            elif r.status == "rejected":
                tried[r.input_key] = max(tried[r.input_key], r.attempt)
        seen, todo = set(), []
        for example in pool:
            key = records.input_key(example.inputs, names)
            if key in done_inputs or key in seen or tried[key] >= k:
                continue  # accepted already, a duplicate in the pool, or out of attempts
            seen.add(key)
            todo.append((tried[key] + 1, (key, example)))
        ctx.log.info("teacher %s: %s of %s accepted so far, %s inputs left to try (best of %s, min score %s)",
                     lm.model, accepted, target, len(todo), k, cfg.min_score)
        ctx.progress(accepted, target)
        stop = threading.Event()
        queue = _Queue(todo, lambda: stop.is_set() or ctx.cancelled)
        failure: list[ProviderError] = []

        def attempt(item, number: int) -> dict:
            key, example = item
            # Each attempt of an input is its own rollout: a different sample, its own cache entry.
            model = lm.copy(rollout_id=number, temperature=temperature) if temperature else lm
            try:
                with dspy.context(lm=model):
                    row = evaluate_one(program, example, project, number, judge)
            except ProviderError as exc:
                row = {"status": "provider_error", "error": redact(str(exc)), "latency_s": 0.0, "outputs": {},
                       "parts": {}, "input_tokens": 0, "output_tokens": 0, "exc": exc}
            return {**row, "item": item, "number": number}

        attempts = 0
        if accepted < target:
            for row in evaluate_examples(attempt, queue, threads=cfg.threads, stop=stop):
                key, example = row["item"]
                if row["status"] == "provider_error":
                    failure.append(row["exc"])
                    stop.set()  # not stored: the input is tried again on resume
                    continue
                decision = records.decide(row, cfg.min_score, weights)
                record = {"input_key": key, "attempt": row["number"], "example_id": example.id,
                          "status": decision.status, "score": row.get("score"), "reason": decision.reason,
                          "reason_kind": decision.kind, "parts": row.get("parts"), "feedback": row.get("feedback"),
                          "inputs": example.inputs, "outputs": row.get("outputs"), "trace": row.get("trace"),
                          "latency_s": row["latency_s"],
                          "input_tokens": row.get("input_tokens"), "output_tokens": row.get("output_tokens"),
                          "cost_usd": cost(price, row.get("input_tokens") or 0, row.get("output_tokens") or 0),
                          **{k: row.get(k) for k in ("judge_calls", "judge_input_tokens", "judge_output_tokens")},
                          "judge_cost_usd": cost(judge_price, row.get("judge_input_tokens") or 0,
                                                 row.get("judge_output_tokens") or 0),
                          "model": lm.model}
                status, seq = store.put_teacher_record(ctx.db, ctx.run.id, record, target=target)
                attempts += 1
                accepted = max(accepted, seq or 0)
                shown = "failed" if row.get("score") is None else f"{row['score']:.3f}"
                ctx.log.info("%s attempt %s: %s %s%s", example.id, row["number"], shown, status,
                             f" #{seq}" if seq else f" ({decision.reason})" if decision.reason else "")
                ctx.progress(accepted, target, f"{attempts} attempts this session")
                if status == "rejected" and row["number"] < k and not stop.is_set():
                    queue.push_front((row["number"] + 1, row["item"]))
                if accepted >= target or ctx.cancelled:
                    stop.set()  # in flight: finished, stored as surplus, not counted

        stats = read.teacher_stats(ctx.db, ctx.run.id)
        summary = summarize(stats, target, cfg.min_score, lm.model)
        path = records.write_export(read.teacher_records(ctx.db, ctx.run.id, accepted_only=True),
                                    ctx.run_dir / records.EXPORT_NAME)
        ctx.add_artifact(path, "dataset")
        if failure:
            raise failure[0]
        if ctx.cancelled and stats.accepted < target:
            raise RunCancelled(summary)
        if stats.accepted < target:
            raise PoolExhausted(
                f"pool exhausted: {stats.accepted} of {target} records with score >= {cfg.min_score} after "
                f"{stats.attempts} attempts on {stats.inputs} inputs; the {stats.accepted} are in "
                f"artifacts/{ctx.run.id}/{records.EXPORT_NAME}. Add inputs to {cfg.pool} and `po resume "
                f"{ctx.run.id}`, or start a run with a lower --min-score or more --attempts")
        return summary

    def headline(self, summary: dict | None) -> str:
        if not summary:
            return ""
        rate = summary.get("acceptance_rate")
        return f"{summary['accepted']}/{summary['target']} accepted" + (f", {rate:.0%} of attempts" if rate else "")

    def eta(self, db, run) -> tuple[float | None, float | None]:
        # A range from the acceptance rate's interval, not a straight line.
        from state import read

        p = records.projection(read.teacher_stats(db, run.id), run.total or run.config.get("max_records", 0))
        return p["seconds_low"], p["seconds_high"]

    def details(self, db, run) -> Details:
        from state import read

        stats = read.teacher_stats(db, run.id)
        target = run.config["max_records"]
        return Details({"teacher": {**stats.to_json(), "projection": records.projection(stats, target)}},
                       records.progress_lines(stats, target, run.config["min_score"]))


def summarize(stats, target: int, min_score: float, model: str) -> dict:
    """A teacher run's summary, from its stats (also what an import leaves on a new run)."""
    rate = records.projection(stats, target)["rate"]  # the one definition, shared with po status and the console
    return {"accepted": stats.accepted, "target": target, "attempts": stats.attempts,
            "rejected": stats.rejected, "surplus": stats.surplus, "inputs": stats.inputs,
            "imported": stats.imported, "min_score": min_score,
            "acceptance_rate": round(rate, 4) if rate is not None else None,
            "input_tokens": stats.input_tokens, "output_tokens": stats.output_tokens,
            "cost_usd": stats.cost_usd, "model": model, "dataset": records.EXPORT_NAME,
            "reasons": stats.reasons[:5]}


STAGE = TeacherStage()
