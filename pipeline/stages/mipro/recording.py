"""Recording MIPROv2 as it runs: a row per evaluation (numbered as MIPROv2's log numbers
its trials), the candidates it proposed, LM calls and parse failures, and a cancel read at
each trial. Nothing here is global: callbacks sit on MIPROv2's own Evaluate, and calls are
counted by the adapter (DSPy's global callbacks alone cost ~9 % of a run, bench/bench_mipro.py).
"""

from __future__ import annotations

import json
import threading
import time


class TrialRecorder:
    """One row per evaluation MIPROv2 makes, written as it ends.

    Evaluations are seen through DSPy's callbacks (`on_evaluate_start/end`, attached to
    MIPROv2's Evaluate by the subclass). Calls and parse failures are counted by the
    adapter (`adapter()`), not by callbacks: DSPy would dispatch every LM and parse call to
    a callback, which costs more than the whole recording (bench/bench_mipro.py).
    """

    def __init__(self, ctx, engines: list, planned: int | None = None):
        from dspy.utils.callback import BaseCallback

        recorder = self

        class Callback(BaseCallback):
            def on_evaluate_start(self, call_id, instance, inputs):
                recorder.started(call_id, inputs)

            def on_evaluate_end(self, call_id, outputs, exception=None):
                recorder.ended(call_id, outputs, exception)

        self.callback = Callback()
        self.ctx = ctx
        self.planned = planned  # evaluations the plan expects: the progress total
        # Filled by the MIPROv2 subclass's hooks: the trial being evaluated and the candidates
        # each trial chose; while a periodic full evaluation runs, its number and candidates.
        self.current_trial: int | None = None
        self.chosen: dict[int, tuple] = {}
        self.full_check: tuple | None = None
        self.candidates_stored = False
        self.lock = threading.Lock()
        self.open: dict[str, tuple] = {}
        self.engines = engines
        self.counts = {"calls": 0, "parse_failures": 0}
        self.evaluation = 0
        self.best_full: float | None = None
        self.default_score: float | None = None

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def adapter(self):
        """DSPy's ChatAdapter (no JSON fallback), counting each call and each parse failure."""
        import dspy
        from dspy.utils.exceptions import AdapterParseError

        recorder = self

        class CountingChatAdapter(dspy.ChatAdapter):
            def __call__(self, *args, **kwargs):
                recorder.count("calls")  # one LM call: no fallback adapter, n = 1
                return super().__call__(*args, **kwargs)

            def parse(self, signature, completion):
                try:
                    return super().parse(signature, completion)
                except AdapterParseError:
                    recorder.count("parse_failures")
                    raise

        return CountingChatAdapter(use_json_adapter_fallback=False)

    def snapshot(self) -> dict:
        """Counts so far. `lm_calls` reached the model; the other calls were answered by the cache."""
        made = sum(engine.generated_calls for engine in self.engines)
        return {"lm_calls": made, "cache_hits": max(0, self.counts["calls"] - made),
                "parse_failures": self.counts["parse_failures"]}

    def started(self, call_id, inputs) -> None:
        metadata = inputs.get("callback_metadata") or {}
        examples = len(inputs.get("devset") or [])
        with self.lock:
            self.open[call_id] = (metadata.get("metric_key"), time.monotonic(), examples, self.snapshot())

    def ended(self, call_id, outputs, exception) -> None:
        from state import write as store

        with self.lock:
            now = self.snapshot()
            key, started, examples, before = self.open.pop(call_id, (None, time.monotonic(), 0, now))
            self.evaluation += 1
            evaluation = self.evaluation
            kind = "minibatch" if key == "eval_minibatch" else "full"
            score = None if exception is not None or outputs is None else round(outputs.score / 100, 6)
            if kind == "full" and score is not None:
                self.best_full = score if self.best_full is None else max(self.best_full, score)
            parse_failures = now["parse_failures"] - before["parse_failures"]
            # Evaluate scores a failed example 0 with an empty prediction; parse failures are counted apart.
            failed = sum(1 for _, prediction, _ in (getattr(outputs, "results", None) or [])
                         if prediction is None or not list(prediction.keys()))
            # Trial numbers are MIPROv2's own (its log's "Trial 4 / 12"): 1 is the unoptimized
            # program; with minibatches, a full evaluation is its periodic check of the
            # best-averaging candidate, numbered after the trial that triggered it.
            if self.full_check is not None:
                trial, chosen = self.full_check
            elif self.current_trial is None:
                trial, chosen = 1, (None, None)
            else:
                trial, chosen = self.current_trial, self.chosen[self.current_trial]
            if evaluation == 1:
                self.default_score = score
            row = {"evaluation": evaluation, "trial": trial, "kind": kind, "score": score,
                   "best_full": self.best_full, "examples": examples, "instruction": chosen[0], "demos": chosen[1],
                   "duration_s": time.monotonic() - started,
                   "lm_calls": now["lm_calls"] - before["lm_calls"],
                   "cache_hits": now["cache_hits"] - before["cache_hits"],
                   "parse_failures": parse_failures, "errors": max(0, failed - parse_failures)}
        store.put_trial(self.ctx.db, self.ctx.run.id, row, done=evaluation, total=self.planned)
        failures = f", {row['parse_failures']} parse failures" if row["parse_failures"] else ""
        self.ctx.log.info("evaluation %s (%s, trial %s): %s%s", evaluation, kind, trial,
                          "failed" if score is None else f"{score:.3f}", failures)
        self.ctx.progress(evaluation, self.planned, stored=True)


def optimizer_class(ctx, recorder: TrialRecorder):
    import dspy

    from state import write as store

    class RecordedMIPROv2(dspy.MIPROv2):
        def _select_and_insert_instructions_and_demos(self, candidate_program, instruction_candidates,
                                                      demo_candidates, trial, trial_logs, trial_num):
            if not recorder.candidates_stored:
                store.put_candidates(ctx.db, ctx.run.id, "instruction", list(instruction_candidates[0]))
                if demo_candidates:
                    store.put_candidates(ctx.db, ctx.run.id, "demos", [
                        json.dumps([dict(d) for d in demos], default=str) for demos in demo_candidates[0]])
                recorder.candidates_stored = True
            if ctx.cancel_requested_now():
                trial.study.stop()  # finishes this trial, then returns the best program so far
            chosen = super()._select_and_insert_instructions_and_demos(
                candidate_program, instruction_candidates, demo_candidates, trial, trial_logs, trial_num)
            raw = chosen[1]
            recorder.chosen[trial_num] = (raw.get("0_predictor_instruction"), raw.get("0_predictor_demos"))
            recorder.current_trial = trial_num
            return chosen

        def _optimize_prompt_parameters(self, program, instruction_candidates, demo_candidates, evaluate,
                                        *args, **kwargs):
            evaluate.callbacks = [recorder.callback]  # each evaluation reports to the recorder
            return super()._optimize_prompt_parameters(program, instruction_candidates, demo_candidates,
                                                        evaluate, *args, **kwargs)

        def _perform_full_evaluation(self, trial_num, adjusted_num_trials, param_score_dict,
                                     fully_evaled_param_combos, *args, **kwargs):
            from dspy.teleprompt.utils import get_program_with_highest_avg_score

            # The same (pure) choice MIPROv2 is about to make, to name the candidates evaluated.
            try:
                params = get_program_with_highest_avg_score(param_score_dict, fully_evaled_param_combos)[3]
                chosen = (params.get("0_predictor_instruction"), params.get("0_predictor_demos"))
            except ValueError:
                chosen = (None, None)
            recorder.full_check = (trial_num + 1, chosen)
            try:
                return super()._perform_full_evaluation(trial_num, adjusted_num_trials, param_score_dict,
                                                        fully_evaled_param_combos, *args, **kwargs)
            finally:
                recorder.full_check = None

    return RecordedMIPROv2


def optimize(optimizer_class, cfg, project, task_lm, prompt_lm, train: list, val: list, recorder=None, judge=None):
    """MIPROv2 itself, as configured (`cfg`: the stage's config) on the project's program and
    metric: the one place its parameters are passed (the benchmark of the recording overhead
    calls it with and without the recorder). An error of the metric is raised to DSPy, which
    counts the example as failed; it is never turned into a 0 here.

    No global DSPy callbacks: DSPy would dispatch every module call of every example to
    them, which alone costs ~9 % of a run on an instant LM (bench/bench_mipro.py)."""
    import dspy

    adapter = recorder.adapter() if recorder else dspy.ChatAdapter(use_json_adapter_fallback=False)
    dspy.configure(lm=task_lm, adapter=adapter, callbacks=[])
    optimizer = optimizer_class(
        metric=project.dspy_metric(judge), prompt_model=prompt_lm, task_model=task_lm, auto=cfg.auto,
        num_candidates=None if cfg.auto else cfg.num_candidates,
        max_bootstrapped_demos=cfg.max_bootstrapped_demos, max_labeled_demos=cfg.max_labeled_demos,
        num_threads=cfg.threads, seed=cfg.seed, verbose=False)
    return optimizer.compile(project.new_program(), trainset=train, valset=val, seed=cfg.seed,
                             num_trials=None if cfg.auto else cfg.num_trials, minibatch=cfg.minibatch,
                             minibatch_size=cfg.minibatch_size,
                             minibatch_full_eval_steps=cfg.minibatch_full_eval_steps)
