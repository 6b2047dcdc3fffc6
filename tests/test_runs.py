"""Runs as an operator lives them: on the real embedded model, in real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from state import read
from state.db import open_db
from tests.conftest import po, po_env, wait_for


def _db(ws):
    return open_db(ws / "state.db", readonly=True)


def _results(ws, run_id):
    return read.eval_results(_db(ws), run_id)


def test_demo_workspace_runs_a_baseline_and_prints_its_table(demo_ws):
    proc = po("run", "baseline", "--limit", "3", "--threads", "2", ws=demo_ws)
    assert "mean score (parsed answers)" in proc.stdout
    assert "95% CI" in proc.stdout
    run = read.list_runs(_db(demo_ws))[0]
    assert run.state == "succeeded" and (run.done, run.total) == (3, 3)
    rows = _results(demo_ws, run.id)
    assert [r.position for r in rows] == [0, 1, 2]
    # The grammar makes every answer parse (the metric is then about content, not format).
    assert all(r.status == "ok" for r in rows), [r.error for r in rows]
    assert all(r.outputs["product_vision"] and r.outputs["product_owner_review"] for r in rows)
    summary = json.loads((demo_ws / "artifacts" / str(run.id) / "summary.json").read_text())
    assert summary == run.summary
    assert summary["examples"] == 3 and summary["lm_calls"] == 3 and summary["output_tokens"] > 0
    assert 0.0 <= summary["mean"] <= 1.0
    assert read.artifacts(_db(demo_ws), run.id)[0].path.endswith("summary.json")


def test_rerun_is_served_from_the_workspace_cache(demo_ws):
    po("run", "baseline", "--limit", "2", ws=demo_ws)
    second = json.loads(po("run", "baseline", "--limit", "2", "--json", ws=demo_ws).stdout)
    assert second["summary"]["lm_calls"] == 2
    assert second["summary"]["cache_hits"] == 2
    assert second["summary"]["output_tokens"] == 0


def test_detached_run_outlives_the_shell_that_started_it(demo_ws):
    # The shell runs in its own session, launches, and is then hung up on like a dropped SSH link.
    shell = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} -m po_console.cli -w {demo_ws} run baseline --limit 2 --detach --json; sleep 30"],
        stdout=subprocess.PIPE, text=True, env=po_env(), start_new_session=True,
    )
    line = ""
    while not line.strip().endswith("}"):
        line += shell.stdout.readline()
    run_id = json.loads(line)["run_id"]
    os.killpg(shell.pid, signal.SIGHUP)
    shell.wait(timeout=10)
    run = wait_for(lambda: (r := read.get_run(_db(demo_ws), run_id)).state in ("succeeded", "failed") and r,
                   timeout=180, what="the detached run to end")
    assert run.state == "succeeded", run.error
    assert run.detached
    log = (demo_ws / "artifacts" / str(run_id) / "run.log").read_text()
    assert "succeeded" in log


def test_kill_9_then_resume_keeps_every_result_exactly_once(demo_ws):
    out = po("run", "baseline", "--limit", "6", "--threads", "1", "--detach", "--json", ws=demo_ws).stdout
    run_id = json.loads(out)["run_id"]
    wait_for(lambda: len(_results(demo_ws, run_id)) >= 2, timeout=180, what="two stored results")
    pid = read.get_run(_db(demo_ws), run_id).pid
    os.kill(pid, signal.SIGKILL)
    before = {r.example_id: r for r in _results(demo_ws, run_id)}

    wait_for(lambda: read.get_run(_db(demo_ws), run_id).status == "stale", timeout=10, what="stale status")
    assert "stale" in po("status", ws=demo_ws).stdout

    po("resume", str(run_id), ws=demo_ws)
    run = read.get_run(_db(demo_ws), run_id)
    assert run.state == "succeeded" and run.attempt == 2
    after = _results(demo_ws, run_id)
    assert sorted(r.position for r in after) == list(range(6))  # none lost, none duplicated
    for row in after:  # none re-evaluated that was already stored
        if row.example_id in before:
            assert row == before[row.example_id]
    assert run.summary["examples"] == 6


def test_cancel_stops_the_run_within_seconds_and_resume_finishes_it(demo_ws):
    out = po("run", "baseline", "--limit", "12", "--threads", "1", "--detach", "--json", ws=demo_ws).stdout
    run_id = json.loads(out)["run_id"]
    wait_for(lambda: len(_results(demo_ws, run_id)) >= 1, timeout=180, what="a first result")
    started = time.monotonic()
    proc = po("cancel", str(run_id), ws=demo_ws)
    took = time.monotonic() - started
    assert "cancelled" in proc.stdout
    run = read.get_run(_db(demo_ws), run_id)
    assert run.state == "cancelled"
    assert took < 30  # generous: one in-flight example finishes first (its model time is kept)
    stored = len(_results(demo_ws, run_id))
    assert stored < 12

    proc = po("resume", str(run_id), ws=demo_ws)
    assert read.get_run(_db(demo_ws), run_id).state == "succeeded"
    assert len(_results(demo_ws, run_id)) == 12


def test_resume_refuses_a_run_that_succeeded(demo_ws):
    po("run", "baseline", "--limit", "1", ws=demo_ws)
    proc = po("resume", "1", ws=demo_ws, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: run 1 cannot be resumed: it already succeeded"


def test_bad_validation_data_is_refused_before_a_run_starts(demo_ws):
    path = demo_ws / "data" / "val.jsonl"
    lines = path.read_text().splitlines()
    lines[4] = '{"id": "broken", "concept": "x"'
    path.write_text("\n".join(lines) + "\n")
    proc = po("run", "baseline", ws=demo_ws, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: {path}:5: not valid JSON")
    assert read.list_runs(_db(demo_ws)) == []


def test_bad_config_names_the_key_and_exits_2(demo_ws):
    proc = po("run", "baseline", "--threads", "0", ws=demo_ws, check=False)
    assert proc.returncode == 2
    assert "baseline: threads must be >= 1 (got 0)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["runs", "--json"], ["status", "--json"]])
def test_json_output_is_machine_readable(demo_ws, command):
    po("run", "baseline", "--limit", "1", ws=demo_ws)
    data = json.loads(po(*command, ws=demo_ws).stdout)
    assert data


def test_logs_prints_and_follows_a_run_log_until_the_run_ends(demo_ws):
    out = po("run", "baseline", "--limit", "2", "--detach", "--json", ws=demo_ws).stdout
    run_id = json.loads(out)["run_id"]
    followed = po("logs", str(run_id), "-f", ws=demo_ws, timeout=240).stdout  # returns when the run ends
    assert "started, attempt 1" in followed and f"run {run_id} succeeded" in followed
    assert po("logs", str(run_id), ws=demo_ws).stdout == followed


def test_debug_shows_the_traceback_that_the_one_line_error_hides(demo_ws):
    (demo_ws / "po.toml").write_text("[baseline]\nthreads = 'many'\n")
    plain = po("run", "baseline", ws=demo_ws, check=False)
    debug = po("--debug", "run", "baseline", ws=demo_ws, check=False)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert "baseline.threads" in plain.stderr
    assert "Traceback" in debug.stderr


def test_unknown_and_unbuilt_stages_are_named(demo_ws, monkeypatch):
    proc = po("run", "nonsense", ws=demo_ws, check=False)
    assert proc.returncode == 2 and "stages: baseline, mipro, teacher, finetune, validation, serve" in proc.stderr
    # Every stage of the plan is built; a planned one (a stage in the overview before its
    # module lands) is named as such.
    from pipeline import stages

    monkeypatch.setattr(stages, "PLANNED", (("deploy", "Deployment", 70),))
    with pytest.raises(stages.UnknownStage, match="'deploy' \\(Deployment\\) is not built yet"):
        stages.get("deploy")


def test_the_workspace_option_comes_before_or_after_the_command(tmp_path):
    import subprocess as sp

    ws = tmp_path / "after"
    cli = [sys.executable, "-m", "po_console.cli"]
    done = sp.run([*cli, "init", "--demo", "--workspace", str(ws)], capture_output=True, text=True, env=po_env())
    assert done.returncode == 0 and (ws / "po.toml").exists(), done.stderr
    shown = sp.run([*cli, "status", "-w", str(ws)], capture_output=True, text=True, env=po_env())
    assert shown.returncode == 0 and "Baseline evaluation" in shown.stdout
    listed = sp.run([*cli, "program", "list", "--json", "-w", str(ws)], capture_output=True, text=True, env=po_env())
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_po_status_answers_for_several_workspaces_at_once(tmp_path):
    """One workspace per role: `po status -w a -w b`, or a glob, shows where every role is."""
    import subprocess as sp

    cli = [sys.executable, "-m", "po_console.cli"]
    for role in ("product_owner", "architect"):
        sp.run([*cli, "init", "--demo", "-w", str(tmp_path / "roles" / role)], check=True, capture_output=True,
               env=po_env())
    both = sp.run([*cli, "status", "--json", "-w", str(tmp_path / "roles" / "*")], capture_output=True, text=True,
                  env=po_env())
    data = json.loads(both.stdout)
    assert sorted(data) == [str(tmp_path / "roles" / "architect"), str(tmp_path / "roles" / "product_owner")]
    assert all(rows[0]["stage"] == "baseline" for rows in data.values())
    text = sp.run([*cli, "status", "-w", str(tmp_path / "roles" / "architect"), "-w",
                   str(tmp_path / "roles" / "product_owner")], capture_output=True, text=True, env=po_env()).stdout
    assert text.count("== ") == 2 and text.count("Baseline evaluation") == 2
    none = sp.run([*cli, "status", "-w", str(tmp_path / "nothing" / "*")], capture_output=True, text=True,
                  env=po_env())
    assert none.returncode == 2 and "matches no workspace" in none.stderr
