"""`po run all`: every built stage in order, each its own run, stopping at the first that
does not succeed; detached, one background process runs the chain (the demo's path)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from state import read
from state.db import open_db
from tests.conftest import po, set_tables, wait_for
from tests.fake_lm import PROVIDER_TOML, openai_responder
from tests.loopback import OPENAI_CHAT, Loopback

FAKE = PROVIDER_TOML + """
[baseline]
provider = "fake"
limit = 6

[mipro]
provider = "fake"
num_candidates = 2
num_trials = 2
train_limit = 4
val_limit = 4

[teacher]
provider = "fake"
max_records = 3
min_score = 0.8
pool_limit = {pool}

[finetune]
max_steps = 2
batch_size = 1
gradient_accumulation = 1
max_length = 2048
eval_fraction = 0.0
threads = 1

[validation]
provider = "fake"
limit = 3
threads = 2
"""


@pytest.fixture
def fake_ws(demo_ws, monkeypatch):
    monkeypatch.setenv("PO_TEST_FAKE_KEY", "sk-fake")
    with Loopback() as server:
        server.default(OPENAI_CHAT, openai_responder())
        yield demo_ws, server


def stages_and_states(ws) -> list[tuple[str, str]]:
    return [(r.stage, r.state) for r in reversed(read.list_runs(open_db(ws / "state.db", readonly=True)))]


def test_run_all_runs_each_built_stage_in_order(fake_ws):
    ws, server = fake_ws
    set_tables(ws, FAKE.format(url=server.url, pool=40))
    po("run", "all", ws=ws)
    assert stages_and_states(ws) == [("baseline", "succeeded"), ("mipro", "succeeded"), ("teacher", "succeeded"),
                                     ("finetune", "succeeded"), ("validation", "succeeded")]


def test_run_all_stops_at_the_first_stage_that_fails(fake_ws):
    """It stops with what to do; once po.toml is fixed, `po resume` starts the stage anew (its
    inputs changed) and finishes the pipeline."""
    ws, server = fake_ws
    set_tables(ws, FAKE.format(url=server.url, pool=1).replace("max_records = 3", "max_records = 50"))
    proc = po("run", "all", ws=ws, check=False)
    assert proc.returncode == 1
    assert stages_and_states(ws) == [("baseline", "succeeded"), ("mipro", "succeeded"), ("teacher", "failed")]
    assert "pool exhausted" in proc.stdout + proc.stderr
    assert "po resume` continues the pipeline" in proc.stderr
    assert "pipeline 1 failed: teacher: run 3 failed" in po("status", ws=ws).stdout

    set_tables(ws, FAKE.format(url=server.url, pool=40))
    proc = po("resume", ws=ws)
    assert "teacher: its inputs changed since run 3 stopped: a new run" in proc.stderr
    assert stages_and_states(ws)[2:] == [("teacher", "failed"), ("teacher", "succeeded"), ("finetune", "succeeded"),
                                         ("validation", "succeeded")]


def test_run_all_detached_is_one_background_process_for_the_chain(fake_ws):
    ws, server = fake_ws
    set_tables(ws, FAKE.format(url=server.url, pool=40))
    out = json.loads(po("run", "all", "--detach", "--json", ws=ws).stdout)
    assert out["stages"] == ["baseline", "mipro", "teacher", "finetune", "validation"]
    second = po("run", "all", ws=ws, check=False)  # two pipelines would race for the same stages
    assert second.returncode != 0 and f"pipeline {out['chain']} is still running" in second.stderr
    wait_for(lambda: [s for _, s in stages_and_states(ws)] == ["succeeded"] * 5, timeout=300, what="the chain")
    log = (ws / "artifacts" / "pipeline.log").read_text()
    assert "baseline: starting" in log and "teacher: run 3 succeeded" in log and "pipeline succeeded" in log
    runs = read.list_runs(open_db(ws / "state.db", readonly=True))
    assert len({r.pid for r in runs}) == 1  # one process, one model load


def test_run_all_takes_no_stage_options(demo_ws):
    proc = po("run", "all", "--limit", "3", ws=demo_ws, check=False)
    assert proc.returncode == 2 and "takes its settings from po.toml" in proc.stderr


def _chain(ws):
    return read.latest_chain(open_db(ws / "state.db", readonly=True))


def _running(ws, stage: str, at_least: int):
    """The run of `stage`, once it has stored `at_least` units."""
    runs = [r for r in read.list_runs(open_db(ws / "state.db", readonly=True), stage=stage)
            if r.state == "running" and r.done >= at_least]
    return runs[0] if runs else None


def _kill_chain(ws) -> None:
    os.kill(_chain(ws).pid, signal.SIGKILL)
    wait_for(lambda: _chain(ws).status == "stale", timeout=30, what="the chain's process to be gone")


def test_run_all_killed_in_finetune_and_in_validation_resumes_to_a_verdict(fake_ws):
    """kill -9 of the whole pipeline mid-fine-tune and mid-validation: `po resume` (no run)
    continues each from where it stopped, to a report and a verdict; a second `po run all`
    then skips every stage, each with the run it reuses."""
    ws, server = fake_ws
    set_tables(ws, FAKE.format(url=server.url, pool=40).replace("max_steps = 2", "max_steps = 6\ncheckpoint_every = 2")
               .replace("limit = 3\nthreads = 2", "limit = 6\nthreads = 1\ngate = [\"student.scored >= 1\"]"))
    po("run", "all", "--detach", ws=ws)
    wait_for(lambda: _running(ws, "finetune", 3), timeout=400, interval=0.05, what="the fine-tune's third step")
    _kill_chain(ws)
    (finetune,) = read.list_runs(open_db(ws / "state.db", readonly=True), stage="finetune")
    assert finetune.status == "stale"
    assert "pipeline 1 stale at finetune (4 of 5) — po resume continues it" in po("status", ws=ws).stdout

    po("resume", "--detach", ws=ws)
    wait_for(lambda: _running(ws, "validation", 2), timeout=400, interval=0.05, what="two validation answers")
    _kill_chain(ws)

    proc = po("resume", ws=ws)  # the rest of it here, in the foreground
    assert "validation: resuming run" in proc.stderr
    db = open_db(ws / "state.db", readonly=True)
    assert stages_and_states(ws) == [(s, "succeeded") for s in ("baseline", "mipro", "teacher", "finetune",
                                                                 "validation")]
    finetune = read.get_run(db, finetune.id)
    assert finetune.attempt == 2 and finetune.summary["steps"] == 6
    steps = [row["step"] for row in db.query("SELECT step FROM finetune_metrics WHERE run_id = ? AND kind = 'train' "
                                             "ORDER BY step", [finetune.id])]
    assert steps == [1, 2, 3, 4, 5, 6]  # the curve continues after the kill: no step missing
    (validation,) = read.list_runs(db, stage="validation")
    assert validation.attempt == 2
    summary = validation.summary
    assert set(summary["systems"]) == {"baseline", "optimized", "student"}
    assert summary["verdict"] in ("pass", "fail", "not decidable") and summary["checks"]
    rows = read.eval_results(db, validation.id)
    assert len(rows) == 18 == len({(r.system, r.example_id) for r in rows})  # 3 systems x 6, each once
    report = (ws / "artifacts" / str(validation.id) / "report.md").read_text()
    assert "## Verdict: " + summary["verdict"] in report
    assert (ws / "artifacts" / str(validation.id) / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _chain(ws).state == "succeeded"
    assert "pipeline 1 succeeded" in po("status", ws=ws).stdout

    before = len(read.list_runs(db))
    again = po("run", "all", ws=ws)
    assert again.stderr.count("skipped: run") == 5
    assert f"validation: skipped: run {validation.id} succeeded with the same inputs" in again.stderr
    assert len(read.list_runs(open_db(ws / "state.db", readonly=True))) == before

    promoted = po("run", "all", "--promote", ws=ws)  # every stage skipped; the reused validation run promotes
    assert f"promoted: student of run {validation.id} is the task model" in promoted.stderr
    assert read.active_promotion(open_db(ws / "state.db", readonly=True)).run_id == validation.id
