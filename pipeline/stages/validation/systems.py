"""The systems a validation run compares: each a program answered by a model. Named in
po.toml (`[validation.systems.NAME]`), or found in the workspace: the program as written on
the task model (`baseline`), the newest optimized program (`optimized`: a succeeded run whose
summary names a saved `program`) and the newest student (`student`: a succeeded run whose
summary names an `adapter`, answered through the local provider on the base it was trained on).

Everything is resolved when the run is planned: the program's fingerprint and the adapter's
sha256 are stored with the run, so a resume answers with the same systems or refuses.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from pipeline.config import ConfigError, Strict
from pipeline.saved_programs import (
    AS_WRITTEN,
    ProgramError,
    fingerprint,
    load_ref,
    program_dir,
)


class SystemConfig(Strict):
    """`[validation.systems.NAME]`: a program on a provider, optionally with a LoRA adapter."""

    program: str = AS_WRITTEN  # the program as written, programs/NAME, or a directory
    provider: str = "task"  # a [providers.*] table
    adapter: str | None = None  # a LoRA adapter directory the local provider serves on its base


class System(BaseModel):
    """A system as a run stores it."""

    name: str
    program: str
    program_dir: str | None  # None: the program as written
    program_fingerprint: str
    provider: str
    provider_config: dict
    source: str  # where it came from, for people: "po.toml", "run 12 (fine-tune)"


def _system(ws, name: str, program: str, provider: str, provider_config: dict, source: str) -> System:
    try:
        loaded, directory = load_ref(ws, program)
    except ProgramError as exc:
        raise ConfigError(f"validation.systems.{name}.program: {exc}") from None
    return System(name=name, program=program, program_dir=str(directory) if directory else None,
                  program_fingerprint=fingerprint(loaded), provider=provider, provider_config=provider_config,
                  source=source)


def _with_adapter(ws, name: str, provider: str, base_table: dict, adapter: str, base_model: str | None) -> dict:
    """A local provider table serving `adapter` (on `base_model`, when given)."""
    if base_table.get("kind", "local") != "local":
        raise ConfigError(f"validation.systems.{name}.adapter: provider {provider!r} is {base_table['kind']}; an "
                          "adapter is answered by a local provider here (a server that serves it is a provider "
                          "of its own)")
    path = ws.resolve(adapter)
    if not (Path(path) / "adapter_config.json").exists():
        raise ConfigError(f"validation.systems.{name}.adapter: no LoRA adapter at {path}")
    table = {**base_table, "adapter": str(path)}
    if base_model:
        table["base_model"] = base_model
    return table


def configured(ws, systems: dict[str, SystemConfig]) -> list[System]:
    found = []
    for name, spec in systems.items():
        table = ws.provider_config(spec.provider, key=f"validation.systems.{name}.provider")
        if spec.adapter:
            table = _with_adapter(ws, name, spec.provider, table, spec.adapter, None)
        found.append(_system(ws, name, spec.program, spec.provider, table, "po.toml"))
    return found


def discovered(ws, db, task: str, titles: dict[str, str]) -> tuple[list[System], list[str]]:
    """baseline, optimized and student as the workspace has them, and notes on what is missing.
    `titles`: stage name -> title, for the `source` people read."""
    from state import read

    task_table = ws.provider_config(task, key="validation.provider")
    found = [_system(ws, "baseline", AS_WRITTEN, task, task_table, "the program as written")]
    notes = []
    optimized = read.newest_succeeded(db, "program")
    if optimized is None:
        notes.append("no optimized program: no succeeded run saved one (run MIPROv2 first)")
    else:
        try:
            program_dir(ws, optimized.summary["program"])
        except ProgramError:
            notes.append(f"no optimized program: {optimized.summary['program']} of run {optimized.id} is gone")
        else:
            found.append(_system(ws, "optimized", optimized.summary["program"], task, task_table,
                                 f"run {optimized.id} ({titles.get(optimized.stage, optimized.stage)})"))
    student = read.newest_succeeded(db, "adapter")
    if student is None:
        notes.append("no student: no succeeded run exported an adapter (run the fine-tune first)")
    else:
        local = ws.provider_config("local", key="providers.local")
        table = _with_adapter(ws, "student", "local", local, student.summary["adapter"],
                              student.summary.get("base_model") or student.config.get("base_model"))
        # The student answers the program whose prompts it learned.
        program = student.config.get("program") or AS_WRITTEN
        found.append(_system(ws, "student", program, "local", table,
                             f"run {student.id} ({titles.get(student.stage, student.stage)})"))
        if table == task_table:  # promoted already: the incumbent and the challenger are one model
            notes.append(f"the student of run {student.id} is the task model already (promoted): baseline and "
                         "student answer through the same model")
    return found, notes


def check_unchanged(ws, systems: list[System]) -> None:
    """A resume answers with the systems the run started with."""
    for system in systems:
        try:
            loaded, _ = load_ref(ws, system.program_dir or system.program)
        except ProgramError as exc:
            raise ConfigError(f"system {system.name}: {exc}") from None
        if fingerprint(loaded) != system.program_fingerprint:
            raise ConfigError(f"system {system.name}: its program {system.program} changed since this run started: "
                              "start a new run instead of resuming")
        adapter = system.provider_config.get("adapter")
        if adapter and not Path(adapter).exists():
            raise ConfigError(f"system {system.name}: its adapter {adapter} is gone")
