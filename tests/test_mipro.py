"""MIPROv2 on the embedded model: trials recorded as they end, the best program saved with
its demos and reloadable anywhere, bad settings refused before any LM call."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from state import read
from state.db import open_db
from tests.conftest import po, set_tables

SMALL = """
[mipro]
num_candidates = 2
num_trials = 2
max_bootstrapped_demos = 1
max_labeled_demos = 1
train_limit = 4
val_limit = 2
threads = 2
"""


@pytest.fixture
def mipro_ws(demo_ws):
    set_tables(demo_ws, SMALL)
    return demo_ws


def test_a_real_mipro_run_records_every_evaluation_and_saves_a_program_that_reloads(mipro_ws):
    run = json.loads(po("run", "mipro", "--json", ws=mipro_ws, timeout=600).stdout)
    assert run["state"] == "succeeded", run["error"]
    db = open_db(mipro_ws / "state.db", readonly=True)
    trials = read.trials(db, run["id"])
    assert [t.evaluation for t in trials] == [1, 2, 3]  # the unoptimized program, then 2 trials
    assert [t.trial for t in trials] == [1, 2, 3] and {t.kind for t in trials} == {"full"}
    assert all(0.0 <= t.score <= 1.0 for t in trials)  # one scale: the metric's, never a percentage
    assert [t.best_full for t in trials] == [max(t.score for t in trials[: i + 1]) for i in range(3)]
    assert all(t.instruction in (0, 1) and t.demos in (0, 1) for t in trials[1:])
    assert all(t.lm_calls + t.cache_hits == 2 and t.parse_failures == 0 for t in trials)
    assert len(read.candidates(db, run["id"], "instruction")) == 2
    summary = run["summary"]
    assert summary["best_score"] == max(t.score for t in trials)
    assert summary["default_score"] == trials[0].score

    # The saved program reloads in a fresh process with the same prompt, demos included.
    program_dir = mipro_ws / summary["program"]
    manifest = json.loads((program_dir / "manifest.json").read_text())
    assert manifest["metadata"]["seed"] == 0 and manifest["metadata"]["train_sha256"]
    code = ("from pipeline.saved_programs import load_program, fingerprint; "
            "from pipeline.product_owner import ProductOwnerProgram; "
            f"print(fingerprint(load_program({str(program_dir)!r}, ProductOwnerProgram)))")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert fresh == summary["fingerprint"] == manifest["fingerprint"]
    assert "intact" in po("program", "verify", f"mipro-{run['id']}", ws=mipro_ws).stdout
    log = (mipro_ws / "artifacts" / str(run["id"]) / "run.log").read_text()
    assert "evaluation 3 (full, trial 3)" in log and "Returning best identified program" in log


@pytest.mark.parametrize("toml, args, message", [
    ("[mipro]\nauto = \"light\"\n", ["--trials", "3"], "auto sets the candidate and trial counts itself"),
    ("[mipro]\nminibatch = true\nminibatch_size = 50\n", [], "minibatch_size 50 is larger than the validation set (34)"),
    ("[mipro]\nnum_trials = 0\n", [], "mipro.num_trials must be >= 1 (got 0)"),
])
def test_bad_settings_are_refused_before_any_lm_call(demo_ws, toml, args, message):
    set_tables(demo_ws, toml)
    proc = po("run", "mipro", *args, ws=demo_ws, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert read.list_runs(open_db(demo_ws / "state.db", readonly=True)) == []
