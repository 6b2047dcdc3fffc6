"""Evaluating a program example by example.

Unlike `dspy.Evaluate(failure_score=0)`, a parse failure, an exception of the program and
an error of the metric are recorded as such and kept out of the quality mean (reported
beside it): a broken parse never looks like a bad answer. Results are yielded one at a time so the caller stores each as soon
as it exists.
"""

from __future__ import annotations

import contextvars
import math
import statistics
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from pipeline.datasets import Example
from pipeline.providers.remote import ProviderError, redact
from state.read import EvalResult


@dataclass
class _Calls:
    calls: int = 0


_current_calls: contextvars.ContextVar[_Calls | None] = contextvars.ContextVar("po_lm_calls", default=None)


def lm_call_counter():
    """A DSPy callback counting LM calls (cache hits included) for the example in progress."""
    from dspy.utils.callback import BaseCallback

    class LMCallCounter(BaseCallback):
        def on_lm_start(self, call_id, instance, inputs):
            counter = _current_calls.get()
            if counter is not None:
                counter.calls += 1

    return LMCallCounter()


def evaluate_one(program, example: Example, project, position: int, judge=None) -> dict:
    """Run the program on one example and score it with the project's metric (`project.score`:
    pipeline.project.Project). Never raises but for a final provider error: a parse failure,
    an error of the program and an error of the metric are results, each its own status.

    The row keeps the program's output fields and its trace: each predictor's inputs and
    outputs, as DSPy records them (what a fine-tune trains on, one example per call). LM calls
    the metric makes (on `judge`, a dspy.LM, when one is configured) are counted apart.
    """
    import dspy
    from dspy.utils.exceptions import AdapterParseError
    from dspy.utils.usage_tracker import track_usage

    counter = _Calls()
    token = _current_calls.set(counter)
    row = {"example_id": example.id, "position": position, "status": "ok", "outputs": {}, "parts": {},
           "judge_calls": 0, "judge_input_tokens": 0, "judge_output_tokens": 0}
    prediction = None
    started = time.perf_counter()
    with track_usage() as usage, dspy.context(trace=[]):
        try:
            prediction = program(**example.inputs)
            row["trace"] = trace_of(program, dspy.settings.trace)
        except AdapterParseError as exc:
            row.update(status="parse_failure", error=str(exc).splitlines()[0][:300], outputs={"raw": exc.lm_response})
        except Exception as exc:  # noqa: BLE001 - an error is a result, counted apart
            final = provider_failure(exc)
            if final is not None:
                raise final from None  # the provider is down or refuses us: the run stops, resumable
            row.update(status="error", error=redact(f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
        finally:
            _current_calls.reset(token)
    if prediction is None and row["status"] == "ok":
        row.update(status="error", error="the program returned None, not a dspy.Prediction")
    if prediction is not None:
        row["outputs"] = {k: getattr(prediction, k, None) for k in project.fields.outputs}
        # The metric sees the example as written: inputs and, where the data has them, reference outputs.
        scored, judged = _score(project, example, prediction, judge)
        row.update(judged)
        if scored.error:
            row.update(status="metric_error", error=scored.error[:300])
        else:
            row.update(score=scored.score, parts=scored.parts, feedback=scored.feedback)
    row["latency_s"] = time.perf_counter() - started
    # The usage tracker records one entry per call that reached the model; cache hits add none.
    uncached = [u for entries in usage.usage_data.values() for u in entries]
    row["lm_calls"] = counter.calls
    row["cache_hits"] = max(0, counter.calls - len(uncached))
    row["input_tokens"] = sum(u.get("prompt_tokens") or 0 for u in uncached)
    row["output_tokens"] = sum(u.get("completion_tokens") or 0 for u in uncached)
    return row


def _score(project, example: Example, prediction, judge) -> tuple:
    """The metric's verdict, and the LM calls it made itself (on `judge` when given), apart
    from the program's: they reach the judge's model and the workspace cache like any call."""
    import dspy
    from dspy.utils.usage_tracker import track_usage

    counter = _Calls()
    token = _current_calls.set(counter)
    try:
        with track_usage() as usage, dspy.context(**({"lm": judge} if judge is not None else {})):
            scored = project.score(example.to_dspy(), prediction)
    finally:
        _current_calls.reset(token)
    uncached = [u for entries in usage.usage_data.values() for u in entries]
    return scored, {"judge_calls": max(counter.calls, len(uncached)),
                    "judge_input_tokens": sum(u.get("prompt_tokens") or 0 for u in uncached),
                    "judge_output_tokens": sum(u.get("completion_tokens") or 0 for u in uncached)}


def trace_of(program, trace: list) -> list[dict]:
    """DSPy's trace of one program call as data: which predictor, its inputs, its outputs."""
    names = {id(predictor): name for name, predictor in program.named_predictors()}
    return [{"predictor": names.get(id(predictor), type(predictor).__name__), "inputs": dict(inputs),
             "outputs": dict(prediction.items())} for predictor, inputs, prediction in trace]


def provider_failure(exc: BaseException) -> ProviderError | None:
    """The final provider error behind an exception (DSPy wraps what engines raise)."""
    while exc is not None:
        if isinstance(exc, ProviderError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def evaluate_examples(
    work: Callable[[Example, int], dict],
    examples: Iterable[tuple[int, Example]],
    *,
    threads: int,
    stop: threading.Event,
) -> Iterator[dict]:
    """Yield results as they complete, with at most `threads` examples in flight.

    Examples are submitted lazily, so when `stop` is set nothing new starts; what is
    already in flight finishes and is yielded (its model time is paid, so it is kept).
    """
    pending = iter(examples)
    in_flight: set[Future] = set()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="po-eval") as pool:
        def fill() -> None:
            while len(in_flight) < threads and not stop.is_set():
                item = next(pending, None)
                if item is None:
                    return
                position, example = item
                ctx = contextvars.copy_context()
                in_flight.add(pool.submit(ctx.run, work, example, position))

        fill()
        while in_flight:
            done, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
            in_flight.difference_update(done)
            if not any(f.exception() for f in done):  # a failure stops the run: start nothing more
                fill()  # before the caller stores the results: the freed slots work meanwhile
            for future in done:
                yield future.result()
            fill()


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (Cornish-Fisher expansion; within 0.3% for df >= 3)."""
    z = 1.959963984540054
    if df <= 0:
        return math.inf
    exact = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}
    if df in exact:
        return exact[df]
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summarize(rows: list[EvalResult]) -> dict:
    """Quality over the examples that produced an answer; failures counted beside it."""
    scored = [r for r in rows if r.status == "ok"]
    scores = [r.score for r in scored]
    mean = statistics.fmean(scores) if scores else None
    half = None
    if len(scores) >= 2:
        half = t_quantile_975(len(scores) - 1) * statistics.stdev(scores) / math.sqrt(len(scores))
    part_names = sorted({k for r in scored for k in r.parts})
    latencies = [r.latency_s for r in rows]
    return {
        "examples": len(rows),
        "scored": len(scores),
        "mean": mean,
        "ci95": [mean - half, mean + half] if half is not None else None,
        "ci95_half_width": half,
        # Each part over the answers the metric gave it for (a missing part is not a 0).
        "parts": {p: statistics.fmean(r.parts[p] for r in scored if p in r.parts) for p in part_names},
        "parse_failures": sum(r.status == "parse_failure" for r in rows),
        "errors": sum(r.status == "error" for r in rows),
        "metric_errors": sum(r.status == "metric_error" for r in rows),
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p95_s": percentile(latencies, 0.95),
        "lm_calls": sum(r.lm_calls for r in rows),
        "cache_hits": sum(r.cache_hits for r in rows),
        "input_tokens": sum(r.input_tokens for r in rows),
        "output_tokens": sum(r.output_tokens for r in rows),
        # Unknown when any example's price was unknown, rather than a misleading partial sum.
        "cost_usd": None if any(r.cost_usd is None for r in rows) else sum(r.cost_usd for r in rows),
        "judge_calls": sum(r.judge_calls for r in rows),
        "judge_input_tokens": sum(r.judge_input_tokens for r in rows),
        "judge_output_tokens": sum(r.judge_output_tokens for r in rows),
        "judge_cost_usd": None if any(r.judge_calls and r.judge_cost_usd is None for r in rows)
        else sum(r.judge_cost_usd or 0.0 for r in rows),
    }
