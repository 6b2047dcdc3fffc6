"""Teacher dataset: a strong model answers pool inputs; answers scoring at least min_score
are kept until max_records are accepted.

Unit of work: one attempt (an answer to one input), stored with its decision before it is
counted; an accepted one is numbered in the same transaction (state.runs.put_teacher_record).
A resumed run skips every input that has an accepted record and every attempt already
stored; an attempt paid for but not stored (kill -9 between the two) is answered again by
the workspace's LM cache, for free. Attempts still in flight when the target is reached are
stored as `surplus`. A final provider error stops the run (resumable).
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

from pipeline.config import ConfigError, with_overrides
from pipeline.datasets import DatasetError, load_examples

NAME = "teacher"
TITLE = "Teacher dataset"


class PoolExhausted(RuntimeError):
    pass


def plan(ws, overrides: dict) -> dict:
    config = ws.config
    stage = with_overrides(config.teacher, "teacher", overrides)
    provider = config.provider(stage.provider, key="teacher.provider")
    temperature = stage.temperature if stage.temperature is not None else getattr(provider, "temperature", None)
    if stage.attempts_per_input > 1 and temperature == 0:
        raise ConfigError("teacher: attempts_per_input > 1 needs temperature > 0 (at 0 every attempt gives the "
                          "same answer): set teacher.temperature")
    pool = ws.resolve(config.data.pool)
    inputs = len(load_examples(pool)[: stage.pool_limit])  # bad lines are refused now, not mid-run
    if stage.program:
        from pipeline.programs import load_program

        load_program(ws.root / "programs" / stage.program)  # refuses a missing or damaged program now
    return {**stage.model_dump(), "provider_config": provider.model_dump(), "pool": str(pool),
            "pool_inputs": inputs, "effective_temperature": temperature}


def check_resumable(ws, config: dict) -> None:
    # The pool may grow between runs (new inputs are simply new); it must still be readable.
    if not Path(config["pool"]).exists():
        raise DatasetError(f"{config['pool']}: not found (the run's input pool is gone)")


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


def run(ctx) -> dict:
    import dspy

    from pipeline import teacher
    from pipeline.evaluation import evaluate_examples, evaluate_one
    from pipeline.metric import product_owner_metric
    from pipeline.providers import build_lm, configure_dspy_cache
    from pipeline.providers.pricing import cost, price_for
    from pipeline.providers.remote import ProviderError, redact
    from pipeline.runner import RunCancelled
    from state import read
    from state import runs as store

    cfg = ctx.config
    check_resumable(ctx.workspace, cfg)
    target, k = cfg["max_records"], cfg["attempts_per_input"]
    pool = load_examples(Path(cfg["pool"]))[: cfg["pool_limit"]]
    configure_dspy_cache(ctx.workspace.cache_dir / "dspy")
    provider = cfg["provider_config"]
    lm = build_lm(provider, cfg["provider"])
    price = price_for(provider.get("kind", "local"), provider.get("model"), provider.get("price"))
    temperature = cfg["effective_temperature"]
    dspy.configure(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), track_usage=True)
    program = _program(ctx.workspace, cfg["program"])

    # What the store already holds decides what is left to do.
    tried: dict[str, int] = collections.Counter()
    done_inputs: set[str] = set()
    accepted = 0
    for r in read.teacher_records(ctx.db, ctx.run.id):
        if r["status"] in ("accepted", "surplus"):
            done_inputs.add(r["input_key"])
            accepted += r["status"] == "accepted"
        elif r["status"] == "rejected":
            tried[r["input_key"]] = max(tried[r["input_key"]], r["attempt"])
    seen, todo = set(), []
    for example in pool:
        key = teacher.input_key(example.inputs)
        if key in done_inputs or key in seen or tried[key] >= k:
            continue  # accepted already, a duplicate in the pool, or out of attempts
        seen.add(key)
        todo.append((tried[key] + 1, (key, example)))
    ctx.log.info("teacher %s: %s of %s accepted so far, %s inputs left to try (best of %s, min score %s)",
                 lm.model, accepted, target, len(todo), k, cfg["min_score"])
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
                row = evaluate_one(program, example, product_owner_metric, number)
        except ProviderError as exc:
            row = {"status": "provider_error", "error": redact(str(exc)), "latency_s": 0.0, "outputs": {},
                   "parts": {}, "input_tokens": 0, "output_tokens": 0, "exc": exc}
        return {**row, "item": item, "number": number}

    attempts = 0
    if accepted < target:
        for row in evaluate_examples(attempt, queue, threads=cfg["threads"], stop=stop):
            key, example = row["item"]
            if row["status"] == "provider_error":
                failure.append(row["exc"])
                stop.set()  # not stored: the input is tried again on resume
                continue
            status, reason = teacher.decide(row, cfg["min_score"])
            record = {"input_key": key, "attempt": row["number"], "example_id": example.id, "status": status,
                      "score": row.get("score"), "reason": reason, "parts": row.get("parts"),
                      "inputs": example.inputs, "outputs": row.get("outputs"), "latency_s": row["latency_s"],
                      "input_tokens": row.get("input_tokens"), "output_tokens": row.get("output_tokens"),
                      "cost_usd": cost(price, row.get("input_tokens") or 0, row.get("output_tokens") or 0),
                      "model": lm.model}
            status, seq = store.put_teacher_record(ctx.db, ctx.run.id, record, target=target)
            attempts += 1
            accepted = max(accepted, seq or 0)
            shown = "failed" if row.get("score") is None else f"{row['score']:.3f}"
            ctx.log.info("%s attempt %s: %s %s%s", example.id, row["number"], shown, status,
                         f" #{seq}" if seq else f" ({reason})" if reason else "")
            ctx.progress(accepted, target, f"{attempts} attempts this session")
            if status == "rejected" and row["number"] < k and not stop.is_set():
                queue.push_front((row["number"] + 1, row["item"]))
            if accepted >= target or ctx.cancelled:
                stop.set()  # in flight: finished, stored as surplus, not counted

    stats = read.teacher_stats(ctx.db, ctx.run.id)
    summary = _summary(stats, target, cfg, lm.model)
    path = teacher.write_export(read.teacher_records(ctx.db, ctx.run.id, accepted_only=True),
                                ctx.run_dir / teacher.EXPORT_NAME)
    ctx.add_artifact(path, "dataset")
    if failure:
        raise failure[0]
    if ctx.cancelled and stats["accepted"] < target:
        raise RunCancelled(summary)
    if stats["accepted"] < target:
        raise PoolExhausted(
            f"pool exhausted: {stats['accepted']} of {target} records with score >= {cfg['min_score']} after "
            f"{stats['attempts']} attempts on {stats['inputs']} inputs; the {stats['accepted']} are in "
            f"artifacts/{ctx.run.id}/{teacher.EXPORT_NAME}. Add inputs to {cfg['pool']} and `po resume "
            f"{ctx.run.id}`, or start a run with a lower --min-score or more --attempts")
    return summary


def _program(ws, name: str | None):
    from pipeline.program import ProductOwnerProgram
    from pipeline.programs import load_program

    return load_program(ws.root / "programs" / name) if name else ProductOwnerProgram()


def _summary(stats: dict, target: int, cfg: dict, model: str) -> dict:
    from pipeline import teacher

    rate = teacher.projection(stats, target)["rate"]  # the one definition, shared with po status and the console
    return {"accepted": stats["accepted"], "target": target, "attempts": stats["attempts"],
            "rejected": stats["rejected"], "surplus": stats["surplus"], "inputs": stats["inputs"],
            "imported": stats["imported"], "min_score": cfg["min_score"],
            "acceptance_rate": round(rate, 4) if rate is not None else None,
            "input_tokens": stats["input_tokens"], "output_tokens": stats["output_tokens"],
            "cost_usd": stats["cost_usd"], "model": model, "dataset": teacher.EXPORT_NAME,
            "reasons": stats["reasons"][:5]}


def headline(summary: dict | None) -> str:
    if not summary:
        return ""
    rate = summary.get("acceptance_rate")
    return f"{summary['accepted']}/{summary['target']} accepted" + (f", {rate:.0%} of attempts" if rate else "")


def import_dataset(ws, path: Path, *, run_id: int | None = None, skip_bad: bool = False,
                   overrides: dict | None = None) -> dict:
    """Bring a data set made elsewhere (the old script's JSONL) into a teacher run, so that
    `po resume RUN` continues from it. Each record is scored again with this workspace's
    metric: it is accepted only if it passes min_score now. Returns what happened."""
    import dspy

    from pipeline import teacher
    from pipeline.metric import product_owner_metric
    from state import read
    from state import runs as store

    records, bad = teacher.read_import(path, skip_bad=skip_bad)
    db = ws.db()
    if run_id is None:
        run_id = store.create_run(db, NAME, plan(ws, overrides or {}))
    else:
        run = read.get_run(db, run_id)
        if run is None or run.stage != NAME:
            raise ConfigError(f"run {run_id} is not a teacher run (see `po runs --stage teacher`)")
        if run.status in ("running", "queued"):
            raise ConfigError(f"run {run_id} is {run.status}: cancel it before importing into it")
    cfg = read.get_run(db, run_id).config
    counts = collections.Counter()
    for rec in records:
        score = product_owner_metric(dspy.Example(**rec.inputs), dspy.Prediction(**rec.outputs))
        row = {"status": "ok", "score": float(score), "parts": dict(score.parts)}
        status, reason = teacher.decide(row, cfg["min_score"])
        status, _ = store.put_teacher_record(db, run_id, {
            "input_key": teacher.input_key(rec.inputs), "attempt": 0, "example_id": rec.example_id,
            "status": status, "score": row["score"], "reason": f"imported: {reason}" if reason else None,
            "parts": row["parts"], "inputs": rec.inputs, "outputs": rec.outputs, "latency_s": 0.0,
            "model": rec.model or f"imported from {path.name}"}, target=cfg["max_records"])
        counts[status] += 1
    stats = read.teacher_stats(db, run_id)
    store.set_progress(db, run_id, stats["accepted"], cfg["max_records"],
                       f"imported {len(records)} records from {path.name}; continue: po resume {run_id}")
    if read.get_run(db, run_id).state == "queued":  # a new run: stopped before generating, resumable
        store.finish_run(db, run_id, "cancelled", summary=_summary(stats, cfg["max_records"], cfg, "imported"))
    return {"run_id": run_id, "read": len(records), "bad_lines": bad, **{k: counts[k] for k in
            ("accepted", "rejected", "surplus")}, "accepted_total": stats["accepted"], "target": cfg["max_records"]}
