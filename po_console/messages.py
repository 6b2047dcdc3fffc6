"""Messages the console's workers post to the UI, all in one place (a pane's own workers post
theirs from its module)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from po_console.panes.base import View
from state.read import Run


class StoreSnapshot(Message):
    """Fresh data for the visible pane: what its `read` returned for `view`. A newer one
    replaces an unprocessed older one."""

    def __init__(self, view: View, payload: Any) -> None:
        super().__init__()
        self.view = view
        self.payload = payload

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreSnapshot)


class RunEnded(Message):
    """A run the console saw running has ended (succeeded, failed or cancelled)."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run


class ActionDone(Message):
    """A launch / cancel / resume asked from the console finished (in a worker)."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error
