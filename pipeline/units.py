"""Figures in the units people read them in."""

from __future__ import annotations


def duration(seconds: float | None, *, compact: bool = False) -> str:
    """How long something took or will take, as precise as it deserves.

    `45 s`, `12 min`, `3.2 h` in sentences (projections, plans); `compact` for table cells
    (ages, ETAs, run times): `45s`, `12m`, `3.2h`, and `-` when unknown.
    """
    if seconds is None:
        return "-"
    if compact:
        if seconds < 60:
            return f"{seconds:.0f}s"
        if seconds < 3600:
            return f"{seconds / 60:.0f}m"
        return f"{seconds / 3600:.1f}h"
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def figure(value: float | None, spec: str = ".3f") -> str:
    """A number for a table cell (scores on the one [0, 1] scale by default), `-` when unknown."""
    return "-" if value is None else format(value, spec)
