"""`po promote RUN`: make the system a run judged (the student) the workspace's task model,
the provider of baseline, MIPROv2 and validation runs that name `task`; recorded with who,
when and the gate's verdict, and reversible (`po promote --undo`). A run whose gate did not
pass is refused unless forced, and a forced promotion says so for ever."""

from __future__ import annotations

from pipeline.control import ControlError
from state import read
from state import write as store


def offer(run: read.Run) -> dict | None:
    """What the run's stage would promote (Stage.promotion), or None."""
    from pipeline import stages

    try:
        stage = stages.get(run.stage)
    except stages.UnknownStage:
        return None
    return stage.promotion(run)


def promote(ws, run_id: int, *, who: str, force: bool = False) -> read.Promotion:
    db = ws.db()
    run = read.get_run(db, run_id)
    if run is None:
        raise ControlError(f"no run {run_id} in this workspace (see `po runs`)")
    what = offer(run)
    if what is None:
        reason = "it has not succeeded" if run.state != "succeeded" else "its stage judges no system to promote"
        raise ControlError(f"run {run_id} ({run.stage}) cannot be promoted: {reason}")
    if what.get("system") is None:
        raise ControlError(f"run {run_id} cannot be promoted: {what.get('why', 'it judged no system')}")
    if what["verdict"] != "pass" and not force:
        raise ControlError(f"run {run_id}: the gate says {what['verdict']}, so {what['system']} is not promoted "
                           f"(see `po status {run_id}`); --force promotes it anyway, recorded as forced")
    store.promote(db, run_id, what["system"], what["provider_config"], what["verdict"],
                  forced=what["verdict"] != "pass", who=who)
    return read.active_promotion(db)


def undo(ws, *, who: str) -> tuple[read.Promotion, read.Promotion | None]:
    """Undo the promotion in force: (the one undone, the one in force now or None)."""
    db = ws.db()
    current = read.active_promotion(db)
    if current is None:
        raise ControlError("nothing to undo: no promotion is in force (the task model is po.toml's)")
    store.undo_promotion(db, current.id, who)
    return current, read.active_promotion(db)


def describe(promotion: read.Promotion | None) -> str:
    """The task model, in one line."""
    if promotion is None:
        return "task model: po.toml's (providers.task, else local); nothing promoted"
    table = promotion.provider_config
    model = table.get("adapter") or table.get("model") or table.get("base_model") or "?"
    forced = " (forced: the gate said " + promotion.verdict + ")" if promotion.forced else ""
    return (f"task model: {promotion.system} of run {promotion.run_id} ({table.get('kind', 'local')} "
            f"{model}), promoted by {promotion.promoted_by}{forced}")
