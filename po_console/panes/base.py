"""The pane contract, and the table helpers every pane shares.

A pane is one screen of the console, in one module under `po_console/panes/` (or in a
team's package, through the `po_console.panes` entry-point group). It owns:

- `read(db, view, memo)`: its read of the store, in the polling thread (no Textual there),
  returning a typed payload; called only while the pane is visible;
- `show(payload)`: drawing it, in the UI;
- its formatters, its drill-down (`open_selected`, enter) and its bindings, each with an
  id so that `[console.keys]` in po.toml can rebind it;
- `selected_run_id()`: the run that launch / cancel / resume act on while it is visible.

The app builds its number keys and palette entries from the registry of panes, and keeps
navigation, polling and the control workers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import DataTable


@dataclass(frozen=True)
class View:
    """What the visible pane needs read: its name and its parameters."""

    pane: str
    run_id: int | None = None  # a run chosen elsewhere (the Runs pane), else the stage's latest
    stage: str | None = None  # the Runs pane's filters
    state: str | None = None


class Pane(Vertical):
    name: ClassVar[str]  # the widget id, and the binding id `show-<name>`
    title: ClassVar[str]  # its name in the palette
    key_label: ClassVar[str | None] = None  # its number key's label in the footer, when shorter than the title
    description: ClassVar[str]  # the palette's line for it
    stage: ClassVar[str | None] = None  # the stage whose runs it shows, if any
    order: ClassVar[int] = 1000  # panes of stages follow their stage's order

    DEFAULT_CSS = """
    Pane .pane-title { height: auto; max-height: 3; padding: 0 1; text-style: bold; }
    Pane .hint { height: 1; padding: 0 1; color: $text-muted; }
    Pane DataTable { height: 1fr; }
    """

    @classmethod
    def read(cls, db, view: View, memo: dict) -> Any:
        """What the pane shows, read from the store (a read-only connection). `memo` is the
        pane's own, kept between reads (rows that only grow need not be parsed again); it
        starts with `workspace` (for files beside the store, like a run's log)."""
        raise NotImplementedError

    def show(self, payload: Any) -> None:
        raise NotImplementedError

    def selected_run_id(self) -> int | None:
        return None

    def open_selected(self) -> None:
        """enter: the drill-down of the selected row."""

    def on_show_pane(self) -> None:
        """Called when the pane becomes visible (focus its table)."""
        tables = self.query(DataTable)
        if tables:
            tables.first().focus()


def row_table(table_id: str, columns: list[tuple[str, str]]) -> DataTable:
    """A table of rows selected whole (cursor on rows), with (label, key) columns."""
    table = DataTable(id=table_id, cursor_type="row")
    for label, key in columns:
        table.add_column(label, key=key)
    return table


def latest_run_id(db, view: View, stage: str) -> int | None:
    """The run chosen in the Runs pane, else the stage's latest."""
    from state import read

    if view.run_id is not None:
        return view.run_id
    latest = read.list_runs(db, stage=stage, limit=1)
    return latest[0].id if latest else None


STATUS_STYLE = {"stale": "bold red", "failed": "red", "running": "green", "queued": "yellow",
                "succeeded": "", "cancelled": "dim"}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, "dim"))


def sync_table(table: DataTable, rows: dict[str, tuple]) -> None:
    """Keyed diff: update changed cells, add new rows, drop gone ones; never a full reload."""
    columns = [c.key for c in table.ordered_columns]
    current = {key.value: key for key in table.rows}
    for key in [k for k in current if k not in rows]:
        table.remove_row(current[key])
    for key, cells in rows.items():
        if key not in current:
            table.add_row(*cells, key=key)
            continue
        old = table.get_row(current[key])
        for column, before, after in zip(columns, old, cells):
            if str(before) != str(after):
                table.update_cell(current[key], column, after, update_width=True)


def sync_ordered(table: DataTable, rows: dict[str, tuple]) -> None:
    """sync_table, for rows whose order matters. Rows dropped or added at the end are a keyed
    diff; a new order (a sort, a filter, a row back in the middle) rebuilds the table,
    keeping the cursor on its row."""
    order = list(rows)
    kept = [k.value for k in table.rows if k.value in rows]
    if order[: len(kept)] == kept:
        sync_table(table, rows)
        return
    keep = selected_key(table)
    table.clear()
    for key in order:
        table.add_row(*rows[key], key=key)
    if keep in rows:
        table.move_cursor(row=order.index(keep))


def selected_key(table: DataTable) -> str | None:
    if table.row_count == 0:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
