"""What a reviewer reads without the console: `report.md` (the comparison table, the verdict
with its reasons, the examples where the systems disagree most) and `report.png` (each
system's score distribution with its 95 % interval, and its latency), drawn headless."""

from __future__ import annotations

from pathlib import Path

from pipeline.saved_programs import AS_WRITTEN
from pipeline.units import figure

FAILED = 0.0  # where a system gave no score (parse failure, error), for ranking disagreement only


def disagreements(results: dict[str, list], limit: int | None = None) -> list[tuple[str, float]]:
    """(example id, spread) sorted by how far the systems' scores are apart, most first. An
    example a system failed counts as 0 for that system here (and only here)."""
    by_example: dict[str, dict[str, float]] = {}
    order: dict[str, int] = {}
    for system, rows in results.items():
        for row in rows:
            by_example.setdefault(row.example_id, {})[system] = row.score if row.status == "ok" else FAILED
            order.setdefault(row.example_id, row.position)
    spread = [(example, max(s.values()) - min(s.values())) for example, s in by_example.items() if len(s) > 1]
    spread.sort(key=lambda item: (-item[1], order[item[0]]))
    return spread[:limit] if limit else spread


def _cell(row) -> str:
    if row is None:
        return "-"
    return f"{row.score:.3f}" if row.status == "ok" else row.status.replace("_", " ")


def markdown(summary: dict, results: dict[str, list], inputs: dict[str, dict], run_id: int) -> str:
    systems = summary["systems"]
    reference = summary["reference"]
    lines = [f"# Validation run {run_id}", "",
             f"{summary['examples']} validation examples; reference: **{reference}**. Means are over the answers "
             "that parsed; parse failures and errors are counted apart. 95 % intervals: percentile bootstrap "
             "(10,000 resamples). Paired test: Wilcoxon signed-rank against the reference (ties left out); effect: "
             "matched-pairs rank-biserial (-1..1).", "",
             "| system | mean [95 % CI] | scored | parse fail | errors | p50 / p95 latency | ex/min | "
             "cost/100 | vs reference: W / T / L | p | effect |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in systems.items():
        ci = f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s["ci_low"] is not None else ""
        paired = "reference" if name == reference else \
            f"{s['wins']} / {s['ties']} / {s['losses']}" if s.get("paired") is not None else "-"
        cost = "unknown" if s["cost_per_100"] is None else f"${s['cost_per_100']:.4f}"
        lines.append(f"| {name} | {figure(s['mean'])} {ci} | {s['scored']}/{s['examples']} | "
                     f"{s['parse_failure_rate']:.0%} | {s['error_rate']:.0%} | {figure(s['p50_latency_s'], '.1f')} / "
                     f"{figure(s['p95_latency_s'], '.1f')} s | {figure(s.get('throughput_per_min'), '.1f')} | {cost} | "
                     f"{paired} | {figure(s.get('p_value'), '.3g')} | {figure(s.get('effect_size'), '+.2f')} |")
    parts = list(dict.fromkeys(p for s in systems.values() for p in s["parts"]))
    if parts:
        lines += ["", "Metric parts (means over the answers the metric scored):", "",
                  "| part | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
        for part in parts:
            lines.append(f"| {part} | " + " | ".join(figure(s["parts"].get(part)) for s in systems.values()) + " |")
    lines += ["", f"## Verdict: {summary['verdict']}", ""]
    for check in summary["checks"]:
        lines.append(f"- **{check['outcome']}**: `{check['condition']}` — {check['reason']}")
    if not summary["checks"]:
        lines.append("- no gate configured (validation.gate)")
    notes = summary.get("notes", []) + [n for s in systems.values() for n in s.get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    lines += ["", "Systems:", ""]
    for name, s in systems.items():
        program = "as written" if s["program"] == AS_WRITTEN else s["program"]
        lines.append(f"- **{name}**: program {program} on {s['model']} ({s['source']})")
    worst = disagreements(results, 5)
    if worst:
        lines += ["", "## Where the systems disagree most", ""]
        by_system = {name: {r.example_id: r for r in rows} for name, rows in results.items()}
        for example, spread in worst:
            lines += [f"### {example} (spread {spread:.3f})", ""]
            for key, value in inputs.get(example, {}).items():
                lines.append(f"- *{key}*: {_short(value, 300)}")
            lines.append("")
            for name, rows in by_system.items():
                row = rows.get(example)
                lines.append(f"**{name}** — {_cell(row)}")
                if row is not None:
                    text = row.outputs if row.status == "ok" else {"output": row.outputs.get("raw") or row.error}
                    for key, value in text.items():
                        lines.append(f"> *{key}*: {_short(value, 400)}")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _short(value, limit: int) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot(summary: dict, results: dict[str, list], path: Path) -> None:
    """Scores (each answer a dot, the mean and its 95 % interval a bar) and latency per system."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display over SSH or in CI
    import matplotlib.pyplot as plt

    names = list(summary["systems"])
    fig, (scores, latency) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, name in enumerate(names):
        s = summary["systems"][name]
        values = [r.score for r in results.get(name, []) if r.status == "ok"]
        jitter = [i + 0.15 * ((k * 7919) % 13 / 12 - 0.5) for k in range(len(values))]  # spread, deterministic
        scores.scatter(jitter, values, s=10, alpha=0.5)
        if s["mean"] is not None:
            low = s["ci_low"] if s["ci_low"] is not None else s["mean"]
            high = s["ci_high"] if s["ci_high"] is not None else s["mean"]
            scores.errorbar([i + 0.3], [s["mean"]], yerr=[[s["mean"] - low], [high - s["mean"]]], fmt="o", color="k",
                            capsize=4)
        latency.boxplot([r.latency_s for r in results.get(name, [])] or [0], positions=[i], widths=0.5)
    scores.set_xticks(range(len(names)), names)
    scores.set_title("score per example; mean and 95 % CI (black)")
    latency.set_xticks(range(len(names)), names)
    latency.set_ylabel("seconds per example")
    latency.set_title("latency")
    fig.savefig(path, dpi=100)
    plt.close(fig)
