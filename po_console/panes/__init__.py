"""The console's panes, registered in one place: the built-in ones below, then any that an
installed package adds through the `po_console.panes` entry-point group (a team's stage
and its pane come together). The contract every pane follows is `base.Pane`.

Number keys follow this order: the overview, the runs, then each stage's pane in the
pipeline's order. A pane that cannot be loaded is a one-line warning naming it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import import_module, metadata

from pipeline import stages
from po_console.panes.base import Pane

ENTRY_POINT_GROUP = "po_console.panes"
BUILT_IN = ("po_console.panes.overview:OverviewPane", "po_console.panes.runs:RunsPane",
            "po_console.panes.baseline:BaselinePane", "po_console.panes.mipro:MiproPane",
            "po_console.panes.teacher:TeacherPane", "po_console.panes.finetune:FinetunePane",
            "po_console.panes.validation:ValidationPane", "po_console.panes.serve:ServePane")


@dataclass
class Registry:
    panes: list[type[Pane]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _load(path: str) -> type[Pane]:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def _check(pane) -> type[Pane]:
    if not (isinstance(pane, type) and issubclass(pane, Pane)):
        raise TypeError(f"{pane!r} is not a po_console.panes.base.Pane subclass")
    for attribute in ("name", "title", "description"):
        if not hasattr(pane, attribute):
            raise TypeError(f"it has no {attribute}")
    if pane.stage is not None and pane.stage not in stages.names():
        raise LookupError(f"its stage {pane.stage!r} is not installed")
    return pane


@functools.cache
def registry() -> Registry:
    found = [_check(_load(path)) for path in BUILT_IN]
    warnings = []
    taken = {pane.name for pane in found} | {"run"}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            pane = _check(entry.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the console
            warnings.append(f"pane plugin {entry.name!r} ({entry.value}) not loaded: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
            continue
        if pane.name in taken:
            warnings.append(f"pane plugin {entry.name!r} ({entry.value}) not loaded: the name {pane.name!r} is taken")
            continue
        taken.add(pane.name)
        found.append(pane)
    order = {stage.name: stage.order for stage in stages.stages()}
    found.sort(key=lambda pane: (pane.stage is not None, order.get(pane.stage, pane.order)))
    return Registry(found, warnings)


def reload() -> Registry:
    registry.cache_clear()
    return registry()


def panes() -> list[type[Pane]]:
    return registry().panes


def warnings() -> list[str]:
    return registry().warnings


def by_name(name: str) -> type[Pane] | None:
    return next((pane for pane in panes() if pane.name == name), None)


def for_stage(stage: str) -> type[Pane] | None:
    return next((pane for pane in panes() if pane.stage == stage), None)
