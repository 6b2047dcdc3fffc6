"""The comparison of systems on the same examples, with its uncertainty said: a mean with its
95 % bootstrap interval (scipy), each metric part, and against a reference system the paired
wins / ties / losses with a Wilcoxon signed-rank test (its p-value and the matched-pairs
rank-biserial effect size). Parse failures and errors are rates of their own, never scores."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from pipeline.evaluation import percentile

UNDERPOWERED_BELOW = 20  # paired examples under which a comparison says it cannot tell much
TIE = 1e-9


@dataclass
class SystemFigures:
    system: str
    examples: int
    scored: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    parts: dict[str, float]
    parse_failure_rate: float
    error_rate: float  # errors of the program and of the metric
    p50_latency_s: float | None
    p95_latency_s: float | None
    examples_per_min: float | None  # one at a time: 60 / mean latency
    cost_per_100: float | None
    # Against the reference (None for the reference itself):
    paired: int | None = None
    wins: int | None = None
    ties: int | None = None
    losses: int | None = None
    win_rate: float | None = None
    mean_difference: float | None = None
    p_value: float | None = None
    effect_size: float | None = None  # rank-biserial, -1..1; > 0: this system scores higher
    underpowered: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def bootstrap_ci(scores: list[float], seed: int = 0) -> tuple[float | None, float | None]:
    """95 % interval of the mean, percentile bootstrap (10,000 resamples; None under 2 scores)."""
    if len(scores) < 2:
        return None, None
    if max(scores) - min(scores) < TIE:
        return scores[0], scores[0]
    import numpy as np
    from scipy import stats

    result = stats.bootstrap((np.asarray(scores),), np.mean, n_resamples=10_000, confidence_level=0.95,
                             method="percentile", random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_test(differences: list[float]) -> tuple[float | None, float | None]:
    """(p-value, rank-biserial effect) of a Wilcoxon signed-rank test on paired differences
    (this system minus the reference). Zero differences are ties: left out of the ranks."""
    nonzero = [d for d in differences if abs(d) > TIE]
    if not nonzero:
        return (1.0 if differences else None), (0.0 if differences else None)
    from scipy import stats

    ranks = stats.rankdata([abs(d) for d in nonzero])
    positive = sum(r for r, d in zip(ranks, nonzero) if d > 0)
    negative = sum(r for r, d in zip(ranks, nonzero) if d < 0)
    effect = (positive - negative) / (positive + negative)
    p = float(stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided").pvalue)
    return p, float(effect)


def figures(system: str, rows: list, reference: dict[str, float] | None = None) -> SystemFigures:
    """A system's figures from its results (state-like rows with example_id, status, score,
    parts, latency_s, cost_usd); `reference`: the reference system's scores by example."""
    scored = [r for r in rows if r.status == "ok"]
    scores = [r.score for r in scored]
    low, high = bootstrap_ci(scores)
    names = list(dict.fromkeys(n for r in scored for n in r.parts))
    latencies = [r.latency_s for r in rows]
    costs = [r.cost_usd for r in rows]
    n = len(rows)
    out = SystemFigures(
        system=system, examples=n, scored=len(scored), mean=statistics.fmean(scores) if scores else None,
        ci_low=low, ci_high=high,
        parts={p: statistics.fmean(r.parts[p] for r in scored if p in r.parts) for p in names},
        parse_failure_rate=sum(r.status == "parse_failure" for r in rows) / n if n else 0.0,
        error_rate=sum(r.status in ("error", "metric_error") for r in rows) / n if n else 0.0,
        p50_latency_s=percentile(latencies, 0.5), p95_latency_s=percentile(latencies, 0.95),
        examples_per_min=60 / statistics.fmean(latencies) if latencies and statistics.fmean(latencies) else None,
        cost_per_100=None if any(c is None for c in costs) or not n else 100 * sum(costs) / n)
    if reference is not None:
        mine = {r.example_id: r.score for r in scored}
        pairs = [(mine[k], reference[k]) for k in mine if k in reference]
        diffs = [a - b for a, b in pairs]
        out.paired = len(pairs)
        out.wins = sum(d > TIE for d in diffs)
        out.losses = sum(d < -TIE for d in diffs)
        out.ties = len(diffs) - out.wins - out.losses
        out.win_rate = out.wins / len(diffs) if diffs else None
        out.mean_difference = statistics.fmean(diffs) if diffs else None
        out.p_value, out.effect_size = paired_test(diffs)
        unpaired = sum(1 for r in rows if r.status != "ok" and r.example_id in reference)
        if unpaired:  # failures are rates of their own, not losses: say how many left the pairs
            out.notes.append(f"{unpaired} examples this system failed are not in the paired comparison")
        out.underpowered = len(pairs) < UNDERPOWERED_BELOW
        if out.underpowered:
            out.notes.append(f"underpowered: {len(pairs)} paired examples (under {UNDERPOWERED_BELOW}), the "
                             "comparison cannot tell small differences from chance")
    return out
