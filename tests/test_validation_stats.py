"""The validation stage's statistics (`stats`) and promotion gate (`gate`), on constructed data
with known answers: seeded draws, hand-counted rows and figures written out by hand."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pipeline.stages.validation import gate, stats
from pipeline.stages.validation.stats import UNDERPOWERED_BELOW, SystemFigures


def row(example_id: str, status: str = "ok", score: float = 0.0, parts: dict | None = None,
        latency_s: float = 1.0, cost_usd: float | None = 0.01) -> SimpleNamespace:
    """One result row, shaped like the state's eval results."""
    return SimpleNamespace(example_id=example_id, status=status, score=score, parts=parts or {},
                           latency_s=latency_s, cost_usd=cost_usd)


def fig(system: str, **values) -> SystemFigures:
    """A system's figures, every figure unknown unless given."""
    base = {"system": system, "examples": 0, "scored": 0, "mean": None, "ci_low": None, "ci_high": None,
            "parts": {}, "parse_failure_rate": 0.0, "error_rate": 0.0, "p50_latency_s": None,
            "p95_latency_s": None, "examples_per_min": None, "cost_per_100": None}
    base.update(values)
    return SystemFigures(**base)


# --- bootstrap_ci -----------------------------------------------------------------------------

def test_bootstrap_ci_covers_the_true_mean():
    """200 draws from N(0.6, 0.2): the 95 % interval holds the true mean and the sample mean."""
    scores = list(np.random.default_rng(0).normal(0.6, 0.2, 200))
    low, high = stats.bootstrap_ci(scores)
    assert low < 0.6 < high
    assert low < float(np.mean(scores)) < high
    assert 0.0 < high - low < 0.15  # about 4 standard errors (0.2 / sqrt(200) = 0.014) wide


def test_bootstrap_ci_is_deterministic_for_a_seed():
    """The same scores and seed give the same interval."""
    scores = list(np.random.default_rng(1).uniform(0, 1, 30))
    assert stats.bootstrap_ci(scores, seed=3) == stats.bootstrap_ci(scores, seed=3)


def test_bootstrap_ci_coverage_is_about_95_percent():
    """Over 200 seeded replications of 50 draws, the interval holds the true mean ~95 % of the time."""
    rng = np.random.default_rng(12345)
    true_mean = 0.5
    covered = 0
    for i in range(200):
        scores = list(rng.normal(true_mean, 0.2, 50))
        low, high = stats.bootstrap_ci(scores, seed=i)
        covered += low <= true_mean <= high
    assert 0.88 <= covered / 200 <= 0.99


def test_bootstrap_ci_of_constant_scores_is_zero_width():
    """Identical scores: the interval is that value at both ends."""
    assert stats.bootstrap_ci([0.7] * 10) == (0.7, 0.7)
    assert stats.bootstrap_ci([0.0, 0.0]) == (0.0, 0.0)


def test_bootstrap_ci_needs_two_scores():
    """Under 2 scores there is no interval."""
    assert stats.bootstrap_ci([]) == (None, None)
    assert stats.bootstrap_ci([0.5]) == (None, None)


# --- paired_test ------------------------------------------------------------------------------

def test_paired_test_detects_a_known_shift():
    """Differences ~ N(0.1, 0.05), n=40: significant, with a large positive effect."""
    diffs = list(np.random.default_rng(2).normal(0.1, 0.05, 40))
    p, effect = stats.paired_test(diffs)
    assert p < 0.01
    assert effect > 0.5


def test_paired_test_effect_sign_follows_direction():
    """A negative shift gives a negative effect of the same size as the mirrored positive one."""
    diffs = list(np.random.default_rng(2).normal(0.1, 0.05, 40))
    p_up, up = stats.paired_test(diffs)
    p_down, down = stats.paired_test([-d for d in diffs])
    assert down < -0.5
    assert down == pytest.approx(-up)
    assert p_down == pytest.approx(p_up)


def test_paired_test_null_is_not_significant():
    """Symmetric differences (each value and its negative): no effect, a large p-value."""
    half = np.random.default_rng(4).normal(0.0, 0.1, 20)
    diffs = list(half) + list(-half)
    p, effect = stats.paired_test(diffs)
    assert p > 0.05
    assert effect == pytest.approx(0.0, abs=1e-12)


def test_paired_test_false_positive_rate_under_the_null():
    """Differences ~ N(0, 0.1), n=40, over 200 seeded replications: p < 0.05 about 5 % of the time."""
    rng = np.random.default_rng(5)
    rejections = sum(stats.paired_test(list(rng.normal(0.0, 0.1, 40)))[0] < 0.05 for _ in range(200))
    assert 0.01 <= rejections / 200 <= 0.10


def test_paired_test_all_ties():
    """Only zero differences (or differences within the tie tolerance): p = 1, effect 0."""
    assert stats.paired_test([0.0] * 5) == (1.0, 0.0)
    assert stats.paired_test([1e-12, -1e-12, 0.0]) == (1.0, 0.0)


def test_paired_test_leaves_ties_out_of_the_ranks():
    """Zeros mixed in are dropped: p matches scipy's Wilcoxon on the nonzero differences, and the
    rank-biserial effect is the hand-counted one."""
    diffs = [0.3, -0.1, 0.0, 0.2, 0.0, 0.5, -0.05, 0.4, 0.0, 0.15]
    nonzero = [d for d in diffs if d != 0.0]
    p, effect = stats.paired_test(diffs)
    assert p == pytest.approx(scipy_stats.wilcoxon(nonzero).pvalue)
    assert p == pytest.approx(stats.paired_test(nonzero)[0])
    # |d| ranks: 0.05→1 (−), 0.1→2 (−), 0.15→3, 0.2→4, 0.3→5, 0.4→6, 0.5→7: W+ = 25, W− = 3.
    assert effect == pytest.approx((25 - 3) / 28)


def test_paired_test_empty():
    """No pairs: no p-value and no effect."""
    assert stats.paired_test([]) == (None, None)


# --- figures ----------------------------------------------------------------------------------

def mixed_rows(costs: list[float | None] | None = None) -> list[SimpleNamespace]:
    """Three scored rows, a parse failure, a program error and a metric error (latencies 1..6 s).
    The failed rows carry scores and parts that must not count."""
    costs = costs or [0.01] * 6
    return [
        row("a", "ok", 1.0, {"x": 1.0, "y": 0.5}, 1.0, costs[0]),
        row("b", "ok", 0.5, {"x": 0.0}, 2.0, costs[1]),
        row("c", "ok", 0.0, {"x": 0.5, "y": 1.0}, 3.0, costs[2]),
        row("d", "parse_failure", 0.9, {"x": 0.9, "z": 0.9}, 4.0, costs[3]),
        row("e", "error", 0.9, {}, 5.0, costs[4]),
        row("f", "metric_error", 0.9, {"y": 0.0}, 6.0, costs[5]),
    ]


def test_figures_mean_over_scored_rows_only():
    """The mean and its interval come from status 'ok' rows; failures are rates of their own."""
    out = stats.figures("student", mixed_rows())
    assert out.system == "student"
    assert out.examples == 6
    assert out.scored == 3
    assert out.mean == pytest.approx(0.5)
    assert (out.ci_low, out.ci_high) == stats.bootstrap_ci([1.0, 0.5, 0.0])
    assert out.ci_low <= out.mean <= out.ci_high
    assert out.parse_failure_rate == pytest.approx(1 / 6)
    assert out.error_rate == pytest.approx(2 / 6)


def test_figures_parts_mean_over_rows_that_have_the_part():
    """Each part's mean is over the scored rows carrying it; parts only failed rows carry are absent."""
    out = stats.figures("student", mixed_rows())
    assert out.parts == pytest.approx({"x": 0.5, "y": 0.75})
    assert "z" not in out.parts


def test_figures_latency_and_throughput():
    """p50 / p95 latency (linear interpolation, over all rows) and examples per minute."""
    out = stats.figures("student", mixed_rows())
    assert out.p50_latency_s == pytest.approx(3.5)
    assert out.p95_latency_s == pytest.approx(5.75)
    assert out.p95_latency_s == pytest.approx(float(np.percentile([1, 2, 3, 4, 5, 6], 95)))
    assert out.examples_per_min == pytest.approx(60 / 3.5)


def test_figures_cost_per_100():
    """Cost per 100 examples; unknown when any row's cost is unknown."""
    assert stats.figures("s", mixed_rows()).cost_per_100 == pytest.approx(1.0)
    assert stats.figures("s", mixed_rows([0.01, 0.02, 0.03, 0.0, 0.0, 0.0])).cost_per_100 == pytest.approx(1.0)
    assert stats.figures("s", mixed_rows([0.01, 0.01, None, 0.01, 0.01, 0.01])).cost_per_100 is None


def test_figures_without_reference_has_no_comparison():
    """No reference: the paired figures stay unknown and nothing is flagged."""
    out = stats.figures("baseline", mixed_rows())
    assert out.paired is None and out.wins is None and out.p_value is None and out.effect_size is None
    assert out.underpowered is False
    assert out.notes == []
    assert out.to_json()["mean"] == pytest.approx(0.5)


def test_figures_of_no_rows():
    """No rows: nothing to say, and no division by zero."""
    out = stats.figures("empty", [])
    assert (out.examples, out.scored, out.mean, out.ci_low, out.ci_high) == (0, 0, None, None, None)
    assert out.parse_failure_rate == 0.0 and out.error_rate == 0.0
    assert out.p50_latency_s is None and out.examples_per_min is None and out.cost_per_100 is None


def test_figures_paired_against_reference():
    """Wins / ties / losses over examples both systems scored (this system's failures and the
    reference's extra examples are left out)."""
    reference = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.0, "zz": 1.0}
    out = stats.figures("student", mixed_rows(), reference)
    assert out.paired == 3
    assert (out.wins, out.ties, out.losses) == (1, 1, 1)
    assert out.win_rate == pytest.approx(1 / 3)
    assert out.mean_difference == pytest.approx(0.0)
    assert (out.p_value, out.effect_size) == stats.paired_test([0.5, 0.0, -0.5])


def test_figures_paired_direction():
    """A system better on every example: all wins, positive mean difference and effect."""
    rows = [row(f"e{i}", "ok", 0.9) for i in range(UNDERPOWERED_BELOW)]
    reference = {f"e{i}": 0.5 + i / 100 for i in range(UNDERPOWERED_BELOW)}
    out = stats.figures("student", rows, reference)
    assert (out.wins, out.ties, out.losses) == (UNDERPOWERED_BELOW, 0, 0)
    assert out.win_rate == 1.0
    assert out.mean_difference > 0
    assert out.effect_size == pytest.approx(1.0)
    assert out.p_value < 0.01


def test_figures_underpowered_below_threshold():
    """Under UNDERPOWERED_BELOW paired examples the comparison is flagged with a note."""
    n = UNDERPOWERED_BELOW - 1
    rows = [row(f"e{i}", "ok", 0.6) for i in range(n)]
    out = stats.figures("student", rows, {f"e{i}": 0.5 for i in range(n)})
    assert out.paired == n
    assert out.underpowered is True
    assert len(out.notes) == 1
    assert "underpowered" in out.notes[0]
    assert f"{n} paired" in out.notes[0]
    assert str(UNDERPOWERED_BELOW) in out.notes[0]


def test_figures_not_underpowered_at_threshold():
    """At (and above) UNDERPOWERED_BELOW paired examples there is no flag and no note."""
    for n in (UNDERPOWERED_BELOW, UNDERPOWERED_BELOW + 5):
        rows = [row(f"e{i}", "ok", 0.6) for i in range(n)]
        out = stats.figures("student", rows, {f"e{i}": 0.5 for i in range(n)})
        assert out.paired == n
        assert out.underpowered is False
        assert out.notes == []


def test_figures_counts_only_paired_examples_for_power():
    """Rows the reference lacks do not count towards the paired examples."""
    rows = [row(f"e{i}", "ok", 0.6) for i in range(UNDERPOWERED_BELOW + 10)]
    reference = {f"e{i}": 0.5 for i in range(UNDERPOWERED_BELOW - 1)}
    out = stats.figures("student", rows, reference)
    assert out.paired == UNDERPOWERED_BELOW - 1
    assert out.underpowered is True


# --- gate -------------------------------------------------------------------------------------

def test_gate_metrics_are_figures():
    """Every figure a condition may name is a field of SystemFigures."""
    fields = {f.name for f in dataclasses.fields(SystemFigures)}
    assert set(gate.METRICS) <= fields


def test_gate_pass_with_numbers_in_reasons():
    """Every condition holds: pass, and each reason carries the numbers compared."""
    figures = {"student": fig("student", mean=0.81, p95_latency_s=4.2, parse_failure_rate=0.01),
               "baseline": fig("baseline", mean=0.8)}
    conditions = ["student.mean >= baseline.mean - 0.02", "student.p95_latency_s <= 10",
                  "student.parse_failure_rate < 0.05"]
    verdict, checks = gate.evaluate(conditions, figures)
    assert verdict == "pass"
    assert [c.outcome for c in checks] == ["pass", "pass", "pass"]
    assert [c.condition for c in checks] == conditions
    assert all(isinstance(c, gate.Check) for c in checks)
    assert "0.81" in checks[0].reason and "0.8" in checks[0].reason and "0.78" in checks[0].reason
    assert checks[0].reason == "student.mean 0.81 >= baseline.mean 0.8 - 0.02 = 0.78"
    assert "4.2" in checks[1].reason and "10" in checks[1].reason
    assert "0.01" in checks[2].reason and "0.05" in checks[2].reason


def test_gate_fail_wins_over_not_decidable():
    """One condition fails and another cannot be decided: the verdict is fail."""
    figures = {"student": fig("student", mean=0.7, cost_per_100=None), "baseline": fig("baseline", mean=0.8)}
    verdict, checks = gate.evaluate(["student.mean >= baseline.mean", "student.cost_per_100 <= 1"], figures)
    assert verdict == "fail"
    assert [c.outcome for c in checks] == ["fail", "not decidable"]
    assert "0.7" in checks[0].reason and "0.8" in checks[0].reason


def test_gate_missing_system_is_not_decidable():
    """A system without figures: not decidable, and the reason names it."""
    figures = {"student": fig("student", mean=0.8)}
    verdict, checks = gate.evaluate(["student.mean >= teacher.mean - 0.05"], figures)
    assert verdict == "not decidable"
    assert checks[0].outcome == "not decidable"
    assert "no system" in checks[0].reason
    assert "teacher" in checks[0].reason


def test_gate_unknown_figure_is_not_decidable():
    """A figure that is None: not decidable, the reason says unknown; passing checks do not rescue it."""
    figures = {"student": fig("student", mean=0.9, p95_latency_s=None)}
    verdict, checks = gate.evaluate(["student.mean >= 0.5", "student.p95_latency_s <= 10"], figures)
    assert verdict == "not decidable"
    assert [c.outcome for c in checks] == ["pass", "not decidable"]
    assert "unknown" in checks[1].reason
    assert "student.p95_latency_s" in checks[1].reason


def test_gate_offset_boundary():
    """`student.mean >= baseline.mean - 0.02`: exactly at the margin passes, just under fails."""
    condition = ["student.mean >= baseline.mean - 0.02"]
    baseline = fig("baseline", mean=0.80)
    assert gate.evaluate(condition, {"student": fig("student", mean=0.78), "baseline": baseline})[0] == "pass"
    assert gate.evaluate(condition, {"student": fig("student", mean=0.7799), "baseline": baseline})[0] == "fail"
    assert gate.evaluate(condition, {"student": fig("student", mean=0.95), "baseline": baseline})[0] == "pass"


def test_gate_offset_plus_and_left_side():
    """A `+` offset, and an offset on the left-hand side."""
    figures = {"student": fig("student", mean=0.70), "baseline": fig("baseline", mean=0.80)}
    assert gate.evaluate(["student.mean + 0.15 >= baseline.mean"], figures)[0] == "pass"
    assert gate.evaluate(["student.mean + 0.05 >= baseline.mean"], figures)[0] == "fail"
    verdict, checks = gate.evaluate(["baseline.mean <= student.mean + 0.2"], figures)
    assert verdict == "pass"
    assert "+ 0.2 = 0.9" in checks[0].reason


def test_gate_plain_number():
    """A plain number on the right (and on the left), at and past the boundary."""
    def verdict(p95, condition="student.p95_latency_s <= 10"):
        return gate.evaluate([condition], {"student": fig("student", p95_latency_s=p95)})[0]
    assert verdict(9.0) == "pass"
    assert verdict(10.0) == "pass"
    assert verdict(10.5) == "fail"
    assert verdict(9.0, "student.p95_latency_s < 9") == "fail"
    assert verdict(9.0, "12 > student.p95_latency_s") == "pass"
    assert gate.evaluate(["student.effect_size > -0.1"], {"student": fig("student", effect_size=0.0)})[0] == "pass"


def test_gate_integer_figures():
    """Counts (wins, paired) compare as numbers too."""
    figures = {"student": fig("student", wins=12, losses=3, paired=25)}
    verdict, checks = gate.evaluate(["student.wins > student.losses", "student.paired >= 20"], figures)
    assert verdict == "pass"
    assert "12" in checks[0].reason and "3" in checks[0].reason


def test_gate_no_conditions_is_not_decidable():
    """An empty list of conditions decides nothing."""
    assert gate.evaluate([], {"student": fig("student", mean=1.0)}) == ("not decidable", [])


def test_gate_parse_names_a_bad_figure():
    """A figure that is not one: ValueError naming it (on either side)."""
    with pytest.raises(ValueError, match="nonsense"):
        gate.parse("student.nonsense >= 1")
    with pytest.raises(ValueError, match="bogus"):
        gate.parse("student.mean >= baseline.bogus - 0.02")
    with pytest.raises(ValueError, match="nonsense"):
        gate.evaluate(["student.nonsense >= 1"], {"student": fig("student")})


@pytest.mark.parametrize("text", ["", "student.mean", "student.mean >=", "student.mean => 0.5",
                                  "mean >= 0.5", "student.mean >= baseline.mean - ", "student.mean ! 1",
                                  "student.mean >= 0.5 and student.mean <= 1"])
def test_gate_parse_rejects_malformed_text(text):
    """Text that is not `system.figure OP system.figure [+|- number]` or a number: ValueError."""
    with pytest.raises(ValueError, match="is not"):
        gate.parse(text)


def test_gate_parse_accepts_written_forms():
    """The forms people write parse, with their parts."""
    match = gate.parse("student.mean >= baseline.mean - 0.02")
    assert (match.group("lsys"), match.group("lmetric"), match.group("op")) == ("student", "mean", ">=")
    assert (match.group("rsys"), match.group("rmetric"), match.group("rsign"), match.group("roffset")) == \
        ("baseline", "mean", "-", "0.02")
    assert gate.parse("student.p95_latency_s <= 10").group("rnum") == "10"
    assert gate.parse("student-v2.mean==1").group("lsys") == "student-v2"


def test_figures_feed_the_gate():
    """End to end: figures from rows, then the gate on them."""
    ids = [f"e{i}" for i in range(UNDERPOWERED_BELOW)]
    baseline_rows = [row(k, "ok", 0.5, latency_s=2.0) for k in ids]
    student_rows = [row(k, "ok", 0.6, latency_s=1.0) for k in ids]
    base = stats.figures("baseline", baseline_rows)
    student = stats.figures("student", student_rows, {r.example_id: r.score for r in baseline_rows})
    verdict, checks = gate.evaluate(
        ["student.mean >= baseline.mean - 0.02", "student.p95_latency_s <= baseline.p95_latency_s",
         "student.win_rate >= 0.5", "student.p_value < 0.05"],
        {"baseline": base, "student": student})
    assert verdict == "pass", checks


def test_gate_offset_boundary_is_exact_in_decimal():
    """Figures exactly at a decimal margin pass, whatever the float rounding of the offset."""
    assert 0.09 < 0.10 - 0.01 and 0.3 < 0.2 + 0.1  # the rounding this test is about
    figures = {"student": fig("student", mean=0.09), "baseline": fig("baseline", mean=0.10)}
    assert gate.evaluate(["student.mean >= baseline.mean - 0.01"], figures)[0] == "pass"
    figures = {"student": fig("student", mean=0.3), "baseline": fig("baseline", mean=0.2)}
    assert gate.evaluate(["student.mean >= baseline.mean + 0.1"], figures)[0] == "pass"
