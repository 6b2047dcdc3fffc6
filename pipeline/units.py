"""Figures in the units people read them in."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.2 h`: as precise as a projection deserves."""
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
