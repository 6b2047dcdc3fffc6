"""The promotion gate: conditions on the systems' figures, written as people write them —
`student.mean >= baseline.mean - 0.02`, `student.p95_latency_s <= 10` — and a verdict: pass
(every condition holds), fail (one does not), or not decidable (a system or a figure is
missing and nothing failed), each condition with its numbers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

METRICS = ("mean", "ci_low", "ci_high", "parse_failure_rate", "error_rate", "p50_latency_s", "p95_latency_s",
           "examples_per_min", "cost_per_100", "win_rate", "mean_difference", "p_value", "effect_size", "wins",
           "losses", "ties", "paired", "scored")
CLOSE = 1e-9  # figures this close are equal: 0.10 - 0.01 must satisfy `>= 0.09`


def _holds(op: str, left: float, right: float) -> bool:
    close = math.isclose(left, right, rel_tol=CLOSE, abs_tol=CLOSE)
    return {">=": left > right or close, "<=": left < right or close, ">": left > right and not close,
            "<": left < right and not close, "==": close}[op]


OPS = (">=", "<=", ">", "<", "==")
_TERM = r"(?:(?P<{p}sys>[A-Za-z_][\w-]*)\.(?P<{p}metric>\w+)(?:\s*(?P<{p}sign>[+-])\s*(?P<{p}offset>\d+(?:\.\d+)?))?" \
        r"|(?P<{p}num>-?\d+(?:\.\d+)?))"
CONDITION = re.compile(rf"^\s*{_TERM.format(p='l')}\s*(?P<op>>=|<=|==|>|<)\s*{_TERM.format(p='r')}\s*$")


@dataclass(frozen=True)
class Check:
    condition: str
    outcome: str  # pass, fail, not decidable
    reason: str


def parse(condition: str) -> re.Match:
    """The condition, checked; ValueError with what is wrong."""
    match = CONDITION.match(condition)
    if not match:
        raise ValueError(f"{condition!r} is not `system.figure OP system.figure [+|- number]` or a number "
                         f"(OP: {', '.join(OPS)})")
    for side in ("l", "r"):
        metric = match.group(f"{side}metric")
        if metric and metric not in METRICS:
            raise ValueError(f"{condition!r}: {metric} is not a figure (figures: {', '.join(METRICS)})")
    return match


def _side(match: re.Match, side: str, figures: dict) -> tuple[float | None, str]:
    if match.group(f"{side}num") is not None:
        value = float(match.group(f"{side}num"))
        return value, f"{value:g}"
    system, metric = match.group(f"{side}sys"), match.group(f"{side}metric")
    if system not in figures:
        return None, f"{system}.{metric} (no system {system!r})"
    value = getattr(figures[system], metric)
    if value is None:
        return None, f"{system}.{metric} (unknown)"
    text = f"{system}.{metric} {value:.4g}"
    if match.group(f"{side}sign"):
        offset = float(match.group(f"{side}offset")) * (1 if match.group(f"{side}sign") == "+" else -1)
        value += offset
        text += f" {match.group(f'{side}sign')} {match.group(f'{side}offset')} = {value:.4g}"
    return value, text


def evaluate(conditions: list[str], figures: dict) -> tuple[str, list[Check]]:
    """(verdict, each condition's check) for the systems' figures (name -> stats.SystemFigures)."""
    checks = []
    for condition in conditions:
        match = parse(condition)
        left, left_text = _side(match, "l", figures)
        right, right_text = _side(match, "r", figures)
        reason = f"{left_text} {match.group('op')} {right_text}"
        if left is None or right is None:
            checks.append(Check(condition, "not decidable", reason))
        else:
            checks.append(Check(condition, "pass" if _holds(match.group("op"), left, right) else "fail", reason))
    outcomes = {c.outcome for c in checks}
    verdict = "fail" if "fail" in outcomes else "not decidable" if "not decidable" in outcomes or not checks \
        else "pass"
    return verdict, checks
