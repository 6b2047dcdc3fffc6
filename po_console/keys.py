"""Every console action: one binding with an id, overridable by id from po.toml
(`[console.keys]`, as Posting does). The app's own actions are here; each pane brings its
own bindings (with ids) and gets a number key from the pane registry. Keys that terminals
or SSH eat are refused."""

from __future__ import annotations

from textual.binding import Binding

from pipeline.config import ConfigError

# (id, default key, action, footer label, tooltip, show in footer)
ACTIONS: list[tuple[str, str, str, str, str, bool]] = [
    ("launch-run", "l", "launch", "Launch", "Launch the selected stage (detached)", True),
    # Cancel and resume are off the footer (80 columns hold eight pane keys and launch): the
    # overview's hint line offers c and r, the panes' summaries say where a run can be resumed,
    # and the palette lists both.
    ("cancel-run", "c", "cancel", "Cancel", "Cancel the selected run (asks first)", False),
    ("resume-run", "r", "resume", "Resume", "Resume the selected failed/cancelled/stale run", False),
    ("open-run", "enter", "open", "Open", "Open the selected run, example, program or record", False),
    ("refresh", "ctrl+r", "refresh", "Refresh", "Read the store now", False),
    # Quit is off the footer (q quits, as in most TUIs) so that 80 columns hold every pane key.
    ("quit", "q", "quit", "Quit", "Leave the console; runs go on", False),
]

# Terminals and SSH clients eat these (flow control, newline, carriage return, suspend).
EATEN = {"ctrl+s", "ctrl+q", "ctrl+j", "ctrl+m", "ctrl+z", "ctrl+c"}


def pane_keys(panes) -> list[Binding]:
    """1, 2, 3 …: one number key per pane, in the registry's order (the palette has them all)."""
    return [Binding(str(number), f"show('{pane.name}')", pane.key_label or pane.title, id=f"show-{pane.name}",
                    tooltip=pane.description) for number, pane in enumerate(panes, 1) if number <= 9]


def bindings(panes) -> list[Binding]:
    return pane_keys(panes) + [Binding(key, action, label, show=show, id=binding_id, tooltip=tooltip)
                               for binding_id, key, action, label, tooltip, show in ACTIONS]


def check_keymap(keys: dict[str, str], panes, source: str = "po.toml") -> dict[str, str]:
    """Validate `[console.keys]`: known ids (the app's, and every pane's), usable keys.
    Returns the keymap for App.set_keymap."""
    known = {b.id for b in bindings(panes)} | {b.id for pane in panes for b in pane_bindings(pane)}
    for binding_id, key in keys.items():
        if binding_id not in known:
            raise ConfigError(f"{source}: console.keys.{binding_id} is not an action (known: {', '.join(sorted(known))})")
        for one in key.split(","):
            if one.strip().lower() in EATEN:
                raise ConfigError(f"{source}: console.keys.{binding_id} = {key!r}: terminals eat {one.strip()}, pick another key")
    return dict(keys)


def pane_bindings(pane) -> list[Binding]:
    """A pane's own bindings that have ids (those a user may rebind)."""
    return [b for b in pane.BINDINGS if isinstance(b, Binding) and b.id]
