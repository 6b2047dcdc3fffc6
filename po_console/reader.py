"""Reading the store for the visible pane (no Textual here): the console's polling worker
calls `StoreReader.read(view)`, which asks the pane (or the run screen) registered for the
view to read what it shows. It returns None when the store did not change since the last
read (`PRAGMA data_version`), so an idle console costs one tiny query per tick.
"""

from __future__ import annotations

import time
from typing import Any

from po_console.panes import by_name
from po_console.panes.base import View
from po_console.screens import RunScreen
from state.db import data_version

# Re-read even without writes this often: a crashed run writes nothing, yet becomes stale,
# and ages (heartbeat, ETA) move with the clock.
FORCE_EVERY_S = 5.0


class StoreReader:
    def __init__(self, workspace):
        self.workspace = workspace
        self.db = workspace.db(readonly=True)
        self._version: int | None = None
        self._view: View | None = None
        self._last = 0.0
        self._memos: dict[str, dict] = {}  # each pane's own, kept between reads

    def read(self, view: View, *, force: bool = False) -> Any | None:
        """The payload of the view's pane, or None when nothing changed since the last read."""
        version = data_version(self.db)
        now = time.monotonic()
        fresh = force or view != self._view or version != self._version or now - self._last > FORCE_EVERY_S
        if not fresh:
            return None
        self._version, self._view, self._last = version, view, now
        reader = RunScreen if view.pane == "run" else by_name(view.pane)
        return reader.read(self.db, view, self._memos.setdefault(view.pane, {"workspace": self.workspace}))
