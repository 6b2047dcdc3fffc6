"""Messages the console's workers post to the UI, all in one place."""

from __future__ import annotations

from textual.message import Message

from po_console.snapshots import Snapshot
from state.read import Run


class StoreSnapshot(Message):
    """Fresh data for the visible pane. A newer one replaces an unprocessed older one."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

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


class ProgramLoaded(Message):
    """A run's saved program, loaded and compared with the baseline (or why it could not be)."""

    def __init__(self, review: dict) -> None:
        super().__init__()
        self.review = review
