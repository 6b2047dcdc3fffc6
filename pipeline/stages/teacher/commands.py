"""`po teacher import` and `po teacher export`: data sets in and out of teacher runs."""

from __future__ import annotations

import collections
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.stages.base import Command, Output, Param
from pipeline.stages.teacher import STAGE, records, summarize


def import_dataset(ws, path: Path, *, run_id: int | None = None, skip_bad: bool = False,
                   overrides: dict | None = None) -> dict:
    """Bring a data set made elsewhere (the old script's JSONL) into a teacher run, so that
    `po resume RUN` continues from it. Each record is scored again with this workspace's
    metric: it is accepted only if it passes min_score now. Returns what happened."""
    import dspy

    from state import read
    from state import write as store

    project = ws.project
    found, bad = records.read_import(path, project.fields, skip_bad=skip_bad)
    db = ws.db()
    if run_id is None:
        # No LM call here: the teacher's provider is checked when the run is resumed.
        planned = STAGE.plan(ws, STAGE.configure(ws, overrides or {}))
        run_id = store.create_run(db, STAGE.name, planned.model_dump())
    else:
        run = read.get_run(db, run_id)
        if run is None or run.stage != STAGE.name:
            raise ConfigError(f"run {run_id} is not a teacher run (see `po runs --stage teacher`)")
        if run.status in ("running", "queued"):
            raise ConfigError(f"run {run_id} is {run.status}: cancel it before importing into it")
    cfg = STAGE.run_config(read.get_run(db, run_id).config)
    counts = collections.Counter()
    for rec in found:
        scored = project.score(dspy.Example(**rec.inputs).with_inputs(*rec.inputs), dspy.Prediction(**rec.outputs))
        row = ({"status": "metric_error", "error": scored.error} if scored.error else
               {"status": "ok", "score": scored.score, "parts": scored.parts})
        decision = records.decide(row, cfg.min_score, getattr(project.metric, "part_weights", None))
        status, _ = store.put_teacher_record(db, run_id, {
            "input_key": records.input_key(rec.inputs, project.fields.inputs), "attempt": 0,
            "example_id": rec.example_id, "status": decision.status, "score": row.get("score"),
            "reason": f"imported: {decision.reason}" if decision.reason else None,
            "reason_kind": "imported" if decision.reason else None, "parts": row.get("parts"),
            "feedback": scored.feedback, "inputs": rec.inputs, "outputs": rec.outputs, "latency_s": 0.0,
            "model": rec.model or f"imported from {path.name}"}, target=cfg.max_records)
        counts[status] += 1
    stats = read.teacher_stats(db, run_id)
    store.set_progress(db, run_id, stats.accepted, cfg.max_records,
                       f"imported {len(found)} records from {path.name}; continue: po resume {run_id}")
    if read.get_run(db, run_id).state == "queued":  # a new run: stopped before generating, resumable
        store.finish_run(db, run_id, "cancelled", summary=summarize(stats, cfg.max_records, cfg.min_score, "imported"))
    return {"run_id": run_id, "read": len(found), "bad_lines": bad, **{k: counts[k] for k in
            ("accepted", "rejected", "surplus")}, "accepted_total": stats.accepted, "target": cfg.max_records}


def import_command(ws, path: Path, run: int | None = None, skip_bad: bool = False, max_records: int | None = None,
                   min_score: float | None = None) -> Output:
    overrides = {k: v for k, v in (("max_records", max_records), ("min_score", min_score)) if v is not None}
    if overrides and run is not None:
        raise ConfigError("--max-records/--min-score set up a new run: drop them with --run")
    result = import_dataset(ws, path, run_id=run, skip_bad=skip_bad, overrides=overrides)
    lines = [f"run {result['run_id']}: read {result['read']} records: {result['accepted']} accepted, "
             f"{result['rejected']} below min_score now, {result['surplus']} beyond the target or repeated; "
             f"{result['accepted_total']} of {result['target']} accepted in all",
             f"continue: po resume {result['run_id']}"]
    return Output(result, lines, [f"skipped {line}" for line in result["bad_lines"]])


def export_command(ws, run: int, out: Path | None = None) -> Output:
    from state import read

    db = ws.db(readonly=True)
    found = read.get_run(db, run)
    if found is None or found.stage != STAGE.name:
        raise ConfigError(f"run {run} is not a teacher run (see `po runs`)")
    accepted = read.teacher_records(db, run, accepted_only=True)
    path = records.write_export(accepted, out or ws.run_dir(run) / records.EXPORT_NAME)
    return Output({"records": len(accepted), "path": str(path)}, [f"wrote {len(accepted)} records to {path}"])


COMMANDS = (
    Command("import", "Continue a data set made elsewhere: each record is scored again with this workspace's "
            "metric and kept when it passes; `po resume RUN` then generates the rest.\n\n\b\nLines are "
            '{"inputs": {...}, "outputs": {...}} or the program\'s fields at the top level\n(for the shipped '
            'program: concept, requirements_yaml, existing_vision,\nproduct_vision, product_owner_review), '
            'optional "id" and "teacher_model".',
            import_command, (
                Param("path", "path", "a JSONL data set, e.g. the old script's po_teacher_dataset.jsonl",
                      argument=True),
                Param("run", "int", "import into this teacher run (default: a new one with [teacher] from po.toml)",
                      metavar="RUN"),
                Param("skip_bad", "bool", "import the good lines even when some are bad"),
                Param("max_records", "int", "target of a new run"),
                Param("min_score", "float", "threshold of a new run"),
            )),
    Command("export", "Write a teacher run's accepted records as JSONL, from the store (same store, same bytes).",
            export_command, (
                Param("run", "int", argument=True, metavar="RUN"),
                Param("out", "path", "default: artifacts/RUN/po_teacher_dataset.jsonl"),
            ), json=False),
)
