"""Every console action: one binding with an id, overridable by id from po.toml
(`[console.keys]`, as Posting does). Keys that terminals or SSH eat are refused."""

from __future__ import annotations

from textual.binding import Binding

from pipeline.config import ConfigError

# (id, default key, action, footer label, tooltip, show in footer)
ACTIONS: list[tuple[str, str, str, str, str, bool]] = [
    ("show-overview", "1", "show('overview')", "Overview", "Pipeline overview: every stage", True),
    ("show-runs", "2", "show('runs')", "Runs", "Run history and logs", True),
    ("show-baseline", "3", "show('baseline')", "Baseline", "Baseline results of the latest (or chosen) run", True),
    ("show-mipro", "4", "show('mipro')", "MIPROv2", "MIPROv2 trials, score chart and candidates", True),
    ("show-teacher", "5", "show('teacher')", "Teacher", "Teacher data set: accepted / target, score histogram, "
     "rejection reasons, recent records", True),
    ("launch-run", "l", "launch", "Launch", "Launch the selected stage (detached)", True),
    ("cancel-run", "c", "cancel", "Cancel", "Cancel the selected run (asks first)", True),
    # Resume is off the footer too (80 columns): the overview's hint line and the teacher pane offer r
    # where a run can be resumed, and the palette lists it.
    ("resume-run", "r", "resume", "Resume", "Resume the selected failed/cancelled/stale run", False),
    ("open-run", "enter", "open", "Open", "Open the selected run, example, MIPROv2 program or teacher record", False),
    ("filter-stage", "f", "filter_stage", "Stage filter", "Runs: cycle the stage filter", False),
    ("filter-state", "s", "filter_state", "State filter", "Runs: cycle the state filter", False),
    ("sort-results", "o", "sort_results", "Sort", "Baseline: cycle the sort column", False),
    ("review-program", "p", "review_program", "Program", "MIPROv2: the saved program, diff from the baseline", False),
    ("refresh", "ctrl+r", "refresh", "Refresh", "Read the store now", False),
    # Quit is off the footer (q quits, as in most TUIs) so that 80 columns hold every pane key.
    ("quit", "q", "quit", "Quit", "Leave the console; runs go on", False),
]

# Terminals and SSH clients eat these (flow control, newline, carriage return, suspend).
EATEN = {"ctrl+s", "ctrl+q", "ctrl+j", "ctrl+m", "ctrl+z", "ctrl+c"}


def bindings() -> list[Binding]:
    return [
        Binding(key, action, label, show=show, id=binding_id, tooltip=tooltip)
        for binding_id, key, action, label, tooltip, show in ACTIONS
    ]


def check_keymap(keys: dict[str, str], source: str = "po.toml") -> dict[str, str]:
    """Validate `[console.keys]`: known ids, usable keys. Returns the keymap for App.set_keymap."""
    known = {a[0] for a in ACTIONS}
    for binding_id, key in keys.items():
        if binding_id not in known:
            raise ConfigError(f"{source}: console.keys.{binding_id} is not an action (known: {', '.join(sorted(known))})")
        for one in key.split(","):
            if one.strip().lower() in EATEN:
                raise ConfigError(f"{source}: console.keys.{binding_id} = {key!r}: terminals eat {one.strip()}, pick another key")
    return dict(keys)
