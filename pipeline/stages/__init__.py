"""The pipeline's stages, registered in one place: the built-in ones below, then any that
an installed package adds through the `po_console.stages` entry-point group (the way
pytest and Harlequin find plugins). The contract every stage follows is `base.Stage`.

A plugin that cannot be loaded is a one-line warning naming it, never a crash: `po` prints
the warnings on stderr and the console shows them when it opens.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import import_module, metadata

from pipeline.stages.base import Stage

ENTRY_POINT_GROUP = "po_console.stages"
BUILT_IN = ("pipeline.stages.baseline", "pipeline.stages.mipro", "pipeline.stages.teacher", "pipeline.stages.finetune",
            "pipeline.stages.validation", "pipeline.stages.serve")
# Stages of the pipeline not built yet, shown in the overview in their place (name, title, order).
PLANNED: tuple[tuple[str, str, int], ...] = ()
# Names a stage cannot take: commands of `po` and `po run`, tables of po.toml, words of the console.
RESERVED = {"all", "overview", "runs", "run", "program", "metric", "data", "providers", "console", "init", "status",
            "logs", "doctor", "resume", "cancel", "promote", "task"}
# Options every `po run STAGE` has: a stage's config field may not take their names.
RUN_OPTIONS = {"detach", "resume", "resume_run", "json", "as_json", "dry_run", "workspace"}


class UnknownStage(ValueError):
    pass


@dataclass
class Registry:
    stages: dict[str, Stage] = field(default_factory=dict)  # in pipeline order
    warnings: list[str] = field(default_factory=list)


def _as_stage(obj) -> Stage:
    stage = obj() if isinstance(obj, type) else obj
    if not isinstance(stage, Stage):
        raise TypeError(f"{type(stage).__name__} is not a pipeline.stages.base.Stage")
    for attribute in ("name", "title", "short_title", "Config", "RunConfig"):
        if not hasattr(stage, attribute):
            raise TypeError(f"it has no {attribute}")
    clash = sorted(set(stage.Config.model_fields) & RUN_OPTIONS)
    if clash:
        raise TypeError(f"its config field {clash[0]!r} takes the name of an option of every `po run`")
    return stage


@functools.cache
def registry() -> Registry:
    found, warnings = [], []
    for path in BUILT_IN:
        found.append(_as_stage(import_module(path).STAGE))
    taken = {s.name for s in found} | {name for name, _, _ in PLANNED}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            stage = _as_stage(entry.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break po
            warnings.append(f"stage plugin {entry.name!r} ({entry.value}) not loaded: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
            continue
        if stage.name in taken or stage.name in RESERVED:
            warnings.append(f"stage plugin {entry.name!r} ({entry.value}) not loaded: the name {stage.name!r} "
                            "is taken")
            continue
        taken.add(stage.name)
        found.append(stage)
    found.sort(key=lambda s: s.order)
    return Registry({s.name: s for s in found}, warnings)


def reload() -> Registry:
    """Look for plugins again (after installing one in this process, as tests do)."""
    registry.cache_clear()
    return registry()


def stages() -> list[Stage]:
    return list(registry().stages.values())


def warnings() -> list[str]:
    return registry().warnings


def names() -> list[str]:
    return list(registry().stages)


def pipeline() -> list[tuple[str, str, Stage | None]]:
    """Every stage in order, built or planned: (name, title, the stage or None)."""
    rows = [(s.order, s.name, s.title, s) for s in stages()]
    rows += [(order, name, title, None) for name, title, order in PLANNED]
    return [(name, title, stage) for _, name, title, stage in sorted(rows, key=lambda r: r[0])]


def chain() -> list[Stage]:
    """`po run all`: the stages it runs, in order."""
    return [s for s in stages() if s.in_chain]


def get(name: str) -> Stage:
    known = registry().stages
    if name in known:
        return known[name]
    planned = {n: title for n, title, _ in PLANNED}
    if name in planned:
        raise UnknownStage(f"stage {name!r} ({planned[name]}) is not built yet; available: {', '.join(known)}")
    raise UnknownStage(f"no stage {name!r}; stages: {', '.join(n for n, _, _ in pipeline())}")
