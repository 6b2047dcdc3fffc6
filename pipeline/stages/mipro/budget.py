"""What a MIPROv2 run will cost, worked out before it starts: evaluations, LM calls, and the
time and money they take at the speed and price measured on this workspace's own runs.

The counts follow DSPy 3.4.1's MIPROv2 (`AUTO_RUN_SETTINGS`, `_set_num_trials_from_num_candidates`,
the minibatch schedule of `_optimize_prompt_parameters`). Program calls are an upper bound:
a candidate evaluated twice on the same example is answered by the cache. Bootstrapping and
instruction proposals are estimates (a range), and say so.
"""

from __future__ import annotations

import math

from pipeline.units import duration

# DSPy's presets: candidates and the validation examples used (more than 50 turns minibatches on).
AUTO = {"light": (6, 100), "medium": (12, 300), "heavy": (18, 1000)}
MIN_MINIBATCH_SIZE = 50
DATA_VIEW_BATCH = 10  # the proposer summarises the training set ten examples per call


def schedule(num_trials: int, minibatch: bool, full_eval_steps: int) -> list[str]:
    """The kinds of MIPROv2's evaluations in order: the default program, then its trials."""
    if not minibatch:
        return ["full"] * (num_trials + 1)
    extra_at_end = 1 if num_trials % full_eval_steps else 0
    adjusted = num_trials + num_trials // full_eval_steps + 1 + extra_at_end
    kinds, number = ["full"], 1  # optuna trial 0 is the default program
    for _ in range(num_trials):
        number += 1
        kinds.append("minibatch")
        if number % (full_eval_steps + 1) == 0 or number == adjusted - 1:
            kinds.append("full")
            number += 1  # the full evaluation is added to the study as a trial of its own
    return kinds


def counts(stage: dict, n_train: int, n_val: int) -> dict:
    """Resolved settings and call counts for a mipro config (as `plan` stores it)."""
    zero_shot = stage["max_bootstrapped_demos"] == 0 and stage["max_labeled_demos"] == 0
    minibatch, val = stage["minibatch"], n_val
    if stage["auto"]:
        n, val_size = AUTO[stage["auto"]]
        val = min(n_val, val_size)
        minibatch = val > MIN_MINIBATCH_SIZE
        instructions, demo_sets = (n if zero_shot else n // 2), n
        num_vars = 1 if zero_shot else 2  # one predictor: its instruction, and its demos
        trials = int(max(2 * num_vars * math.log2(n), 1.5 * n))
    else:
        instructions = demo_sets = stage["num_candidates"]
        trials = stage["num_trials"]
    kinds = schedule(trials, minibatch, stage["minibatch_full_eval_steps"])
    batch = min(stage["minibatch_size"], val) if minibatch else val
    program_calls = sum(val if k == "full" else batch for k in kinds)
    # Demo sets 1 and 2 are zero-shot and labeled-only; each other set runs the program on
    # training examples until it has its demos (at least max_bootstrapped_demos calls, at most n_train).
    bootstrapping = 0 if zero_shot else max(0, demo_sets - 2)
    boot_low = bootstrapping * min(stage["max_bootstrapped_demos"], n_train)
    boot_high = bootstrapping * n_train
    # The proposer: the data summary, the program and module descriptions, one call per new instruction.
    proposals = math.ceil(n_train / DATA_VIEW_BATCH) + 1 + 2 + max(0, instructions - 1)
    return {
        "num_trials": trials, "instruction_candidates": instructions, "demo_sets": demo_sets,
        "minibatch": minibatch, "val_examples_used": val, "minibatch_size": batch if minibatch else None,
        "evaluations": len(kinds), "full_evaluations": kinds.count("full"),
        "minibatch_evaluations": kinds.count("minibatch"),
        "program_calls": program_calls, "bootstrap_calls": [boot_low, boot_high], "proposer_calls": proposals,
    }


def measured(db, provider: str) -> dict | None:
    """Seconds and dollars per model call, from the newest baseline run on `provider` that
    made real calls (cache hits excluded). None when nothing was measured yet."""
    row = db.execute(
        """SELECT r.id, json_extract(r.config, '$.threads') AS threads, COUNT(*) AS calls,
                  AVG(e.latency_s) AS seconds, AVG(e.cost_usd) AS cost, COUNT(e.cost_usd) AS priced
           FROM runs r JOIN eval_results e ON e.run_id = r.id
           WHERE r.stage = 'baseline' AND json_extract(r.config, '$.provider') = ?
             AND e.lm_calls > 0 AND e.cache_hits = 0 AND e.status != 'error'
           GROUP BY r.id ORDER BY r.id DESC LIMIT 1""", [provider]).fetchone()
    if row is None:
        return None
    run_id, threads, calls, seconds, cost, priced = row
    return {"run": run_id, "calls": calls, "threads": threads or 1, "seconds_per_call": seconds,
            "usd_per_call": cost if priced == calls else None}


def projection(db, config: dict) -> dict:
    """Counts plus time and money, for `po run mipro` to print before it starts."""
    c = counts(config, config["train_examples"], config["val_examples"])
    task = measured(db, config["provider"])
    prompt_name = config["prompt_provider"] or config["provider"]
    prompt = task if prompt_name == config["provider"] else measured(db, prompt_name)
    out = {**c, "task_speed": task, "prompt_speed": prompt, "seconds": None, "usd": None}
    if task and prompt:
        # Evaluations run on `threads` threads; bootstrapping and proposals one call at a time.
        sequential = [c["bootstrap_calls"][i] * task["seconds_per_call"] + c["proposer_calls"] *
                      prompt["seconds_per_call"] for i in (0, 1)]
        parallel = c["program_calls"] * task["seconds_per_call"] / max(1, config["threads"])
        out["seconds"] = [round(parallel + s) for s in sequential]
        if task["usd_per_call"] is not None and prompt["usd_per_call"] is not None:
            out["usd"] = [round((c["program_calls"] + c["bootstrap_calls"][i]) * task["usd_per_call"]
                                + c["proposer_calls"] * prompt["usd_per_call"], 4) for i in (0, 1)]
    return out


def describe(p: dict, config: dict) -> list[str]:
    """The projection in plain lines, for the CLI and the console's launch dialog."""
    mb = f"{p['minibatch_evaluations']} on minibatches of {p['minibatch_size']}, " if p["minibatch"] else ""
    boot = p["bootstrap_calls"]
    lines = [
        f"MIPROv2 plan: {p['instruction_candidates']} instruction candidates, {p['demo_sets']} demo sets, "
        f"{p['num_trials']} trials",
        f"  evaluations: {p['evaluations']} ({mb}{p['full_evaluations']} full on {p['val_examples_used']} examples)",
        f"  LM calls: at most {p['program_calls']} for evaluations, {boot[0]}-{boot[1]} bootstrapping demos, "
        f"about {p['proposer_calls']} proposing instructions",
    ]
    task, prompt = p["task_speed"], p["prompt_speed"]
    if p["seconds"] is None:
        missing = [name for name, speed in ((config["provider"], task),
                                            (config["prompt_provider"] or config["provider"], prompt)) if not speed]
        lines.append(f"  time and money: not measured yet for {', '.join(dict.fromkeys(missing))}: "
                     f"a baseline run on it measures them ([baseline] provider, then `po run baseline --limit 5`)")
        return lines
    lo, hi = (duration(s) for s in p["seconds"])
    lines.append(f"  time: {lo}-{hi} at {task['seconds_per_call']:.2f} s per call (baseline run {task['run']}), "
                 f"{config['threads']} threads; cache hits make it shorter")
    if p["usd"] is None:
        lines.append("  money: unknown (no price for this model in [providers.*.price])")
    else:
        lines.append(f"  money: ${p['usd'][0]:.2f}-${p['usd'][1]:.2f} at ${task['usd_per_call']:.4f} per call")
    return lines

