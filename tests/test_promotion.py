"""Validation of systems named in po.toml, and promotion: `po promote RUN` makes the student
the task model (the next baseline run answers through it), `--undo` gives the base back; a
run whose gate did not pass is refused unless forced, and a forced promotion says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from state import read
from state.db import open_db
from tests.conftest import po, set_tables


def _adapter(directory: Path) -> Path:
    """A LoRA adapter on the embedded base (random, not trained: a different model, quickly)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from pipeline.providers.local_model import ensure_converted

    base = AutoModelForCausalLM.from_pretrained(ensure_converted()[0])
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(directory)
    return directory


VALIDATION = """
[baseline]
limit = 1
threads = 1

[validation]
limit = 2
threads = 1
gate = ["{gate}"]

[validation.systems.baseline]
provider = "local"

[validation.systems.student]
provider = "local"
adapter = "adapter"
"""


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory) -> Path:
    return _adapter(tmp_path_factory.mktemp("student") / "adapter")


def _validate(ws: Path, gate: str) -> dict:
    set_tables(ws, VALIDATION.format(gate=gate))
    return json.loads(po("run", "validation", "--json", ws=ws).stdout)


def _baseline_model(ws: Path) -> tuple[dict, str]:
    run = json.loads(po("run", "baseline", "--json", ws=ws).stdout)
    return run["config"]["provider_config"], run["summary"]["model"]


def test_promote_makes_the_student_the_task_model_and_undo_gives_the_base_back(demo_ws, adapter_dir):
    import shutil

    shutil.copytree(adapter_dir, demo_ws / "adapter")
    run = _validate(demo_ws, "student.scored >= 0")
    assert run["state"] == "succeeded" and run["summary"]["verdict"] == "pass"
    assert run["summary"]["systems"]["student"]["model"] == "local embedded + LoRA ws/adapter"
    db = open_db(demo_ws / "state.db", readonly=True)
    assert {r.system for r in read.eval_results(db, run["id"])} == {"baseline", "student"}

    table, model = _baseline_model(demo_ws)
    assert table.get("adapter") is None and "+lora" not in model

    promoted = po("promote", str(run["id"]), ws=demo_ws).stdout
    assert f"task model: student of run {run['id']}" in promoted and "forced" not in promoted
    table, model = _baseline_model(demo_ws)
    assert table["adapter"] == str(demo_ws / "adapter") and "+lora@" in model  # the student answered
    set_tables(demo_ws, "[validation]\nlimit = 1\n")  # the next validation: a challenger meets the incumbent
    plan = json.loads(po("run", "validation", "--dry-run", "--json", ws=demo_ws).stdout)
    (incumbent,) = [s for s in plan["resolved"] if s["name"] == "baseline"]
    assert incumbent["provider"] == "task" and incumbent["provider_config"]["adapter"] == str(demo_ws / "adapter")

    undone = po("promote", "--undo", ws=demo_ws).stdout
    assert "undone: student" in undone and "nothing promoted" in undone
    table, model = _baseline_model(demo_ws)
    assert table.get("adapter") is None and "+lora" not in model

    (row,) = read.promotions(open_db(demo_ws / "state.db", readonly=True))
    assert (row.verdict, row.forced, row.undone_at is not None) == ("pass", False, True)
    assert row.promoted_by and row.undone_by


def test_a_failed_gate_is_refused_unless_forced_and_forced_is_recorded(demo_ws, adapter_dir):
    import shutil

    shutil.copytree(adapter_dir, demo_ws / "adapter")
    run = _validate(demo_ws, "student.mean >= baseline.mean + 2")
    assert run["summary"]["verdict"] == "fail"
    check = run["summary"]["checks"][0]
    assert check["outcome"] == "fail" and "+ 2 =" in check["reason"]

    refused = po("promote", str(run["id"]), ws=demo_ws, check=False)
    assert refused.returncode != 0 and "the gate says fail" in refused.stderr and "--force" in refused.stderr
    assert read.active_promotion(open_db(demo_ws / "state.db", readonly=True)) is None

    forced = po("promote", str(run["id"]), "--force", ws=demo_ws).stdout
    assert "forced: the gate said fail" in forced
    status = json.loads(po("promote", "--json", ws=demo_ws).stdout)
    assert status["forced"] is True and status["verdict"] == "fail" and status["system"] == "student"


def test_validation_config_mistakes_are_one_line_naming_the_key(demo_ws):
    set_tables(demo_ws, "[validation]\ngate = [\"student.speed >= 1\"]\n")
    proc = po("run", "validation", "--dry-run", ws=demo_ws, check=False)
    assert proc.returncode == 2 and "validation.gate" in proc.stderr and "speed is not a figure" in proc.stderr

    set_tables(demo_ws, "[validation]\nreference = \"teacher\"\n")
    proc = po("run", "validation", "--dry-run", ws=demo_ws, check=False)
    assert proc.returncode == 2 and "validation.reference names 'teacher'" in proc.stderr

    set_tables(demo_ws, "[validation.systems.student]\nadapter = \"nowhere\"\n")
    proc = po("run", "validation", "--dry-run", ws=demo_ws, check=False)
    assert proc.returncode == 2 and "validation.systems.student.adapter: no LoRA adapter at" in proc.stderr


def test_promote_refuses_a_run_that_judges_nothing(demo_ws):
    set_tables(demo_ws, "[baseline]\nlimit = 1\nthreads = 1\n")
    run = json.loads(po("run", "baseline", "--json", ws=demo_ws).stdout)
    proc = po("promote", str(run["id"]), ws=demo_ws, check=False)
    assert proc.returncode != 0 and "cannot be promoted" in proc.stderr


def test_a_system_on_a_provider_that_is_down_is_refused_before_any_answer(demo_ws):
    set_tables(demo_ws, """
[providers.down]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "m"

[validation.systems.baseline]
provider = "local"

[validation.systems.remote]
provider = "down"
""")
    proc = po("run", "validation", ws=demo_ws, check=False)
    assert proc.returncode != 0 and "cannot start: provider down:" in proc.stderr
    assert read.list_runs(open_db(demo_ws / "state.db", readonly=True)) == []
