"""Teacher records: the accept/reject decision, the JSONL data set the fine-tune stage
reads, the import of a data set made by the team's old script, and the projection of
what reaching the target will take.

An input is identified by a hash of its input fields, not by its id: the old script's
files and a grown pool name inputs differently, and an input must never be accepted twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.datasets import DatasetError, jsonl_lines, read_text
from pipeline.units import duration
from state.read import TeacherRecord, TeacherStats

EXPORT_NAME = "po_teacher_dataset.jsonl"


def input_key(inputs: dict, names) -> str:
    """The identity of an input: a hash of the program's input fields (`names`), empty ones included."""
    canonical = json.dumps({k: inputs.get(k) or "" for k in names}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def accepts(score: float, min_score: float) -> bool:
    """Scores are rounded to 4 decimals by the metric; the threshold is compared the same way,
    so 0.85 passes 0.85 and 0.8499 does not, whatever the float sum behind them."""
    return round(score, 4) >= round(min_score, 4)


@dataclass(frozen=True)
class Decision:
    status: str  # accepted, rejected
    reason: str | None = None  # why rejected, for people
    kind: str | None = None  # what rejections are ranked by: a metric part, parse failure, error


def decide(row: dict, min_score: float, weights: dict | None = None) -> Decision:
    """The decision on one evaluated attempt (a row from `evaluate_one`). `weights`: the
    metric's `part_weights`, when it declares them."""
    if row["status"] == "parse_failure":
        return Decision("rejected", f"parse failure: {row.get('error') or 'the answer lacks a field'}", "parse failure")
    if row["status"] == "error":
        return Decision("rejected", f"error: {row.get('error')}", "error")
    if row["status"] == "metric_error":
        return Decision("rejected", row.get("error") or "metric error", "metric error")
    if accepts(row["score"], min_score):
        return Decision("accepted")
    return Decision("rejected", *failed_parts(row["parts"], weights))


def failed_parts(parts: dict, weights: dict | None = None) -> tuple[str, str]:
    """(`requirement_coverage: 0.25 (length_bounds 0.50)`, `requirement_coverage`): the part
    that cost the most score first (weighted, when the metric says how), and its name."""
    weight = (lambda name: weights.get(name, 0)) if weights else (lambda name: 1.0)  # noqa: E731
    lost = sorted(((weight(name) * (1 - value), name, value) for name, value in parts.items() if value < 1),
                  reverse=True)
    if not lost:
        return "below threshold", "below threshold"
    (_, name, value), rest = lost[0], lost[1:]
    others = ", ".join(f"{n} {v:.2f}" for _, n, v in rest)
    return f"{name}: {value:.2f}" + (f" ({others})" if others else ""), name


# -- the data set ------------------------------------------------------------------------------

def export_lines(records: list[TeacherRecord]) -> bytes:
    """The JSONL the fine-tune stage consumes, from the store's accepted records in order:
    inputs, outputs and, when recorded, the per-predictor trace (one training example per
    predictor call). Same records, same bytes: keys sorted, no timestamps."""
    lines = []
    for r in records:
        line = {"seq": r.seq, "id": r.example_id, "inputs": r.inputs, "outputs": r.outputs, "score": r.score,
                "parts": r.parts, "teacher_model": r.model}
        if r.trace is not None:
            line["trace"] = r.trace
        lines.append(json.dumps(line, sort_keys=True, ensure_ascii=False, default=str))
    return "".join(line + "\n" for line in lines).encode()


def write_export(records: list[TeacherRecord], path: Path) -> Path:
    """Written to a temporary file and renamed: a reader never sees half a data set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(export_lines(records))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


# -- importing the old script's data set -------------------------------------------------------

@dataclass
class Imported:
    example_id: str
    inputs: dict
    outputs: dict
    model: str | None
    line: int


def read_import(path: Path, fields, *, skip_bad: bool = False) -> tuple[list[Imported], list[str]]:
    """Records of a JSONL data set for a program with `fields`: `{"inputs": {...}, "outputs":
    {...}}` or the fields at the top level, optional `id` and `teacher_model`. Bad lines are
    named; they stop the import unless `skip_bad` (then they come back as the second value)."""
    text = read_text(path)
    records, bad = [], []
    lines = jsonl_lines(text)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            cut = ", cut short?" if number == len(lines) and not text.endswith("\n") else ""
            bad.append(f"line {number}: not JSON ({exc.msg}{cut})")
            continue
        if not isinstance(obj, dict):
            bad.append(f"line {number}: not a JSON object")
            continue
        inputs = obj.get("inputs") if isinstance(obj.get("inputs"), dict) else obj
        outputs = obj.get("outputs") if isinstance(obj.get("outputs"), dict) else obj
        required = [k for k in fields.inputs if k not in fields.optional]
        missing = [k for k in required if not isinstance(inputs.get(k), str) or not inputs[k]]
        missing += [k for k in fields.outputs if not isinstance(outputs.get(k), str) or not outputs[k]]
        if missing:
            bad.append(f"line {number}: missing {', '.join(missing)}")
            continue
        records.append(Imported(str(obj.get("id") or obj.get("example_id") or f"import-{number}"),
                                {k: inputs.get(k) or "" for k in fields.inputs},
                                {k: outputs[k] for k in fields.outputs}, obj.get("teacher_model"), number))
    if bad and not skip_bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DatasetError(f"{path}: {len(bad)} bad line{'s' if len(bad) > 1 else ''} ({shown}): fix them, "
                           f"or pass --skip-bad to import the other {len(records)}")
    return records, bad


# -- projection ------------------------------------------------------------------------------

def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a rate (Wilson): honest with few attempts, never outside [0, 1]."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def projection(stats: TeacherStats, target: int) -> dict:
    """Attempts, time and money still needed to reach `target`, as a range: the acceptance
    rate's 95% interval, at the attempt rate and cost per attempt measured so far. Imported
    records count toward the target, not toward the rate."""
    generated = stats.attempts - stats.imported - stats.errors
    passed = stats.accepted + stats.surplus - stats.accepted_imported
    remaining = max(0, target - stats.accepted)
    out = {"remaining": remaining, "rate": None, "rate_low": None, "rate_high": None,
           "attempts_low": None, "attempts_high": None, "seconds_low": None, "seconds_high": None,
           "usd_low": None, "usd_high": None}
    if generated <= 0:
        return out
    low, high = wilson(passed, generated)
    out.update(rate=passed / generated, rate_low=low, rate_high=high)
    if remaining == 0:
        return out
    out["attempts_low"] = math.ceil(remaining / high)
    out["attempts_high"] = math.ceil(remaining / low) if low > 0 else None  # nothing accepted yet: no bound
    per_attempt_usd = stats.cost_usd / generated if stats.cost_usd is not None else None
    for end in ("low", "high"):
        attempts = out[f"attempts_{end}"]
        if attempts is not None and stats.seconds_per_attempt is not None:
            out[f"seconds_{end}"] = attempts * stats.seconds_per_attempt
        if attempts is not None and per_attempt_usd is not None:
            out[f"usd_{end}"] = attempts * per_attempt_usd
    return out


def progress_lines(stats: TeacherStats, target: int, min_score: float) -> list[str]:
    """Where a teacher run stands and what reaching the target will take, in plain lines
    (for `po status RUN`; the console draws the same figures)."""
    p = projection(stats, target)
    generated = stats.attempts - stats.imported - stats.errors
    lines = [f"accepted {stats.accepted} of {target} (score >= {min_score}) after {stats.attempts} attempts "
             f"on {stats.inputs} inputs" + (f", {stats.imported} imported" if stats.imported else "")]
    if p["rate"] is not None:
        lines.append(f"acceptance {p['rate']:.0%} of {generated} attempts (95% CI {p['rate_low']:.0%}-"
                     f"{p['rate_high']:.0%})")
    if stats.seconds_per_attempt:
        lines.append(f"throughput {60 / stats.seconds_per_attempt:.1f} attempts/min")
    cost = "unknown (no price)" if stats.cost_usd is None else f"${stats.cost_usd:.2f}"
    lines.append(f"tokens {stats.input_tokens:,} in / {stats.output_tokens:,} out, cost so far {cost}")
    if p["remaining"] and p["attempts_low"] is not None:
        high = f"{p['attempts_high']:,}" if p["attempts_high"] is not None else "?"
        text = f"to reach {target}: {p['attempts_low']:,}-{high} more attempts"
        if p["seconds_low"] is not None:
            text += f", {duration(p['seconds_low'])}-" + (duration(p["seconds_high"]) if p["seconds_high"] else "?")
        if p["usd_low"] is not None:
            text += f", ${p['usd_low']:.2f}-" + (f"${p['usd_high']:.2f}" if p["usd_high"] is not None else "?")
        lines.append(text)
    if stats.reasons:
        lines.append("rejected for: " + ", ".join(f"{why} {n}" for why, n in stats.reasons[:4]))
    return lines

