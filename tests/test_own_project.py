"""A team's own DSPy project plugged in: a second project in tests/fixtures/release_notes (its
own package on a python_path; a ChainOfThought then a Predict; a metric returning
dspy.Prediction(score, feedback, parts); data files whose keys need [data.fields]) runs every
stage — baseline on the embedded model, MIPROv2 on the deterministic fake LM, the teacher
against a loopback teacher — and the console shows its own fields. Errors of the metric are
results, not zeros; configuration mistakes are one line, and nothing is written."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from state import read
from state.db import open_db
from tests.conftest import po, po_env, set_tables
from tests.fake_lm import PROVIDER_TOML as FAKE
from tests.fake_lm import openai_responder
from tests.loopback import OPENAI_CHAT, OPENAI_MODELS, openai_models

PROJECT = Path(__file__).parent / "fixtures" / "release_notes"
PROGRAM = "release_notes.program:ReleaseNotes"
METRIC = "release_notes.metrics:release_note_metric"
# Short field bounds keep the embedded model to a few seconds an answer (the machinery is the same).
FAST = """
[providers.local]
kind = "local"
threads = 1
default_max_chars = 120
"""


def init_args(ws: Path, *extra: str, metric: str = METRIC, val: str = "val.jsonl") -> list[str]:
    data = PROJECT / "data"
    return ["init", "-w", str(ws), "--program", PROGRAM, "--metric", metric, "--python-path", str(PROJECT / "src"),
            "--train", str(data / "train.jsonl"), "--val", str(data / val), "--pool", str(data / "pool.jsonl"),
            "--field", "items=changes", "--field", "note=release_note", *extra]


def po_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "po_console.cli", *args], capture_output=True, text=True,
                          timeout=300, env=po_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"po {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def project_ws(tmp_path) -> Path:
    ws = tmp_path / "ws"
    shown = po_cli(*init_args(ws)).stdout
    assert "inputs changes, audience -> outputs release_note" in shown
    set_tables(ws, FAST)
    return ws


def test_po_init_writes_a_workspace_for_an_existing_project_and_po_doctor_checks_it(project_ws):
    text = (project_ws / "po.toml").read_text()
    assert f'module = "{PROGRAM}"' in text and f'function = "{METRIC}"' in text
    assert 'items = "changes"' in text and "release_notes/src" in text
    assert "product_vision" not in text  # nothing of the shipped program's fields
    doctor = po("doctor", ws=project_ws).stdout
    assert "project · program: release_notes.program:ReleaseNotes (pick.predict: Predict changes, audience -> " \
           "reasoning, highlights; write: Predict highlights, audience -> release_note)" in doctor
    assert "project · data.train: 6 examples match the program's fields" in doctor
    assert "scores rn-01's reference outputs 1.000 (parts: length 1.00, mentions 1.00)" in doctor


def test_baseline_runs_the_teams_program_on_the_embedded_model_with_its_own_fields_and_metric(project_ws):
    run = json.loads(po("run", "baseline", "--limit", "2", "--threads", "2", "--json", ws=project_ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    assert run["config"]["fields"] == {"inputs": ["changes", "audience"], "outputs": ["release_note"],
                                       "optional": ["audience"]}
    results = read.eval_results(open_db(project_ws / "state.db", readonly=True), run["id"])
    assert [r.status for r in results] == ["ok", "ok"]  # two predictors, the grammar of each call's signature
    for r in results:
        assert list(r.outputs) == ["release_note"] and r.outputs["release_note"]
        assert list(r.parts) == ["length", "mentions"] and r.feedback and "changes' words" in r.feedback
        assert r.lm_calls == 2  # the ChainOfThought, then the Predict
    assert "part: mentions" in po("status", str(run["id"]), ws=project_ws).stdout


def test_errors_of_the_metric_are_recorded_named_and_kept_out_of_the_mean(tmp_path):
    ws = tmp_path / "ws"
    po_cli(*init_args(ws, metric="release_notes.metrics:flaky_metric", val="val_flaky.jsonl"))
    set_tables(ws, FAST)
    run = json.loads(po("run", "baseline", "--limit", "3", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded"  # the run goes on
    results = {r.example_id: r for r in read.eval_results(open_db(ws / "state.db", readonly=True), run["id"])}
    assert results["rn-boom"].status == "metric_error" and results["rn-boom"].score is None
    assert results["rn-boom"].error == "metric error: ValueError: cannot score a release that blew up"
    assert results["rn-nan"].status == "metric_error" and results["rn-nan"].error == "metric error: returned nan"
    summary = run["summary"]
    assert summary["metric_errors"] == 2 and summary["scored"] == 1
    assert summary["mean"] == results["rn-07"].score  # the mean of what was scored, no zeros folded in
    assert "metric errors (not in mean)" in po("status", str(run["id"]), ws=ws).stdout


@pytest.mark.usefixtures("fake_key")
def test_miprov2_optimizes_the_teams_two_predictor_program_on_the_fake_lm(project_ws, server):
    server.default(OPENAI_CHAT, openai_responder())
    set_tables(project_ws, FAKE.format(url=server.url) + """
[mipro]
provider = "fake"
num_candidates = 2
num_trials = 3
max_bootstrapped_demos = 1
max_labeled_demos = 1
threads = 2
""")
    run = json.loads(po("run", "mipro", "--json", ws=project_ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    assert run["summary"]["demos"].keys() == {"pick.predict", "write"}  # both predictors saved with their demos
    program = run["summary"]["program"].split("/")[-1]
    shown = json.loads(po("program", "show", program, "--json", ws=project_ws).stdout)
    assert list(shown["predictors"]) == ["pick.predict", "write"]
    assert "intact" in po("program", "verify", program, ws=project_ws).stdout


@pytest.mark.usefixtures("fake_key")
def test_the_teacher_keeps_each_predictors_trace_of_every_accepted_answer(project_ws, server):
    server.default(OPENAI_CHAT, openai_responder())
    set_tables(project_ws, FAKE.format(url=server.url) + """
[teacher]
provider = "fake"
max_records = 3
min_score = 0.3
threads = 2
""")
    run = json.loads(po("run", "teacher", "--json", ws=project_ws, check=False).stdout)
    db = open_db(project_ws / "state.db", readonly=True)
    accepted = read.teacher_records(db, run["id"], accepted_only=True)
    assert run["state"] == "succeeded" and len(accepted) == 3, run["error"]
    for record in accepted:
        assert set(record.inputs) == {"changes", "audience"} and list(record.outputs) == ["release_note"]
        assert [step["predictor"] for step in record.trace] == ["pick.predict", "write"]
        assert set(record.trace[0]["outputs"]) == {"reasoning", "highlights"}
        assert record.trace[1]["inputs"]["highlights"] == record.trace[0]["outputs"]["highlights"]
    exported = (project_ws / "artifacts" / str(run["id"]) / "po_teacher_dataset.jsonl").read_text().splitlines()
    assert [len(json.loads(line)["trace"]) for line in exported] == [2, 2, 2]  # one example per predictor call


def test_the_console_shows_the_teams_fields_and_the_metrics_parts_and_feedback(project_ws):
    from textual.widgets import DataTable

    from pipeline.workspace import locate
    from po_console.app import POConsole
    from po_console.screens import ExampleScreen
    from tests.test_console import wait_until

    po("run", "baseline", "--limit", "1", ws=project_ws)
    ws = locate(project_ws)

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            table = app.query_one("#baseline-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 1, what="the result")
            assert [c.label.plain for c in table.ordered_columns] == ["example", "status", "score", "lengt", "menti",
                                                                      "lat"]
            await pilot.press("enter")
            assert isinstance(app.screen, ExampleScreen)
            labels = [str(w.render()) for w in app.screen.query(".field-name")]
            assert labels == ["changes", "audience", "release_note", "the metric's feedback"]

    asyncio.run(story())


@pytest.mark.parametrize("change, message", [
    ({"--program": "release_notes.nowhere:ReleaseNotes"},
     "program.module: cannot import release_notes.nowhere (ModuleNotFoundError: No module named "
     "'release_notes.nowhere')"),
    ({"--program": "release_notes.program:NOT_A_PROGRAM"},
     "program.module: 'release_notes.program:NOT_A_PROGRAM' is not a dspy.Module class or a function returning one "
     "(it is a int)"),
    ({"--metric": "release_notes.metrics:two_arguments_too_many"},
     "metric.function 'release_notes.metrics:two_arguments_too_many' takes (example, prediction, trace, gold, "
     "extra): a DSPy metric takes (example, prediction, trace=None)"),
    ({"--field": "items=changez"}, "data.fields.items names 'changez', which is not a field of the program "
                                   "(inputs: changes, audience; outputs: release_note)"),
    ({"--field": "note=release_note"}, "train.jsonl:1: key 'changes' missing"),
])
def test_a_project_mistake_is_one_line_naming_the_key_or_the_line_and_nothing_is_written(tmp_path, change, message):
    ws = tmp_path / "ws"
    args = init_args(ws)
    if "--field" in change:  # replace both field mappings with the one given
        cut = args.index("--field")
        args = args[:cut] + ["--field", change["--field"]]
    for option, value in change.items():
        if option != "--field":
            args[args.index(option) + 1] = value
    proc = po_cli(*args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not ws.exists()  # the workspace untouched: not even created


def test_a_program_from_a_broken_po_toml_is_refused_before_any_run(project_ws):
    text = (project_ws / "po.toml").read_text().replace(PROGRAM, "release_notes.program:Missing")
    (project_ws / "po.toml").write_text(text)
    proc = po("run", "baseline", ws=project_ws, check=False)
    assert proc.returncode == 2 and "program.module: release_notes.program has no 'Missing'" in proc.stderr
    assert read.list_runs(open_db(project_ws / "state.db", readonly=True)) == []


def test_a_plain_dspy_json_imports_with_its_instruction_and_demo_and_a_mismatch_is_refused(project_ws, tmp_path):
    code = f"""
import sys; sys.path.insert(0, {str(PROJECT / "src")!r})
import dspy
from release_notes.program import ReleaseNotes
p = ReleaseNotes()
p.write.signature = p.write.signature.with_instructions("Two sentences, plain words, no jargon.")
p.write.demos = [dspy.Example(highlights="dark mode", audience="users", release_note="Dark mode is here.")]
p.save({str(tmp_path / "plain.json")!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=po_env())
    shown = po("program", "import", str(tmp_path / "plain.json"), "--name", "plain", ws=project_ws).stdout
    assert "imported as programs/plain" in shown and "write 1" in shown
    review = json.loads(po("program", "show", "plain", "--json", ws=project_ws).stdout)
    assert review["predictors"]["write"]["instructions"] == "Two sentences, plain words, no jargon."
    assert review["predictors"]["write"]["demos"][0]["release_note"] == "Dark mode is here."

    saved = json.loads((tmp_path / "plain.json").read_text())
    fields = saved["write"]["signature"]["fields"]
    fields[0], fields[1] = fields[1], fields[0]  # highlights and audience swapped: DSPy would load them crossed
    (tmp_path / "swapped.json").write_text(json.dumps(saved))
    bad = po("program", "import", str(tmp_path / "swapped.json"), ws=project_ws, check=False)
    assert bad.returncode == 2 and "predictor write: field 1 is audience in the file ('Audience:') but highlights " \
                                   "in the program" in bad.stderr


@pytest.mark.usefixtures("fake_key")
def test_a_judge_metrics_calls_go_to_the_judge_counted_apart_and_cached(tmp_path, server):
    server.default(OPENAI_CHAT, openai_responder())
    server.default(OPENAI_MODELS, openai_models("m", "j"))  # the program's model and the judge's
    ws = tmp_path / "ws"
    po_cli(*init_args(ws, metric="release_notes.metrics:judged_metric"))
    set_tables(ws, FAKE.format(url=server.url) + """
[providers.judge]
kind = "openai"
base_url = "{url}/v1"
model = "j"
api_key_env = "PO_TEST_FAKE_KEY"
price = {{ input_per_million = 1.0, output_per_million = 2.0 }}

[baseline]
provider = "fake"
threads = 2
""".format(url=server.url))
    text = (ws / "po.toml").read_text().replace("[metric]\n", '[metric]\njudge = "judge"\n')
    (ws / "po.toml").write_text(text)
    run = json.loads(po("run", "baseline", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    results = read.eval_results(open_db(ws / "state.db", readonly=True), run["id"])
    models = [r.body["model"] for r in server.requests_to(OPENAI_CHAT)]
    assert models.count("m") == 2 * len(results) and models.count("j") == len(results)  # the judge's, apart
    for r in results:
        assert r.lm_calls == 2 and r.judge_calls == 1 and r.judge_input_tokens > 0
        assert r.judge_cost_usd == pytest.approx((r.judge_input_tokens + 2 * r.judge_output_tokens) / 1e6)
        assert r.feedback and r.parts["judged"] == 1.0  # the judge's opinion, shown as the metric's feedback
    summary = run["summary"]
    assert summary["judge_calls"] == len(results) and summary["lm_calls"] == 2 * len(results)
    assert "metric's LM calls (judge)" in po("status", str(run["id"]), ws=ws).stdout

    again = json.loads(po("run", "baseline", "--json", ws=ws).stdout)  # a rerun: every call from the cache
    assert again["state"] == "succeeded" and len(server.requests_to(OPENAI_CHAT)) == len(models)
    assert again["summary"]["mean"] == summary["mean"]


def test_a_save_program_directory_imports_only_with_allow_pickle(project_ws, tmp_path):
    code = f"""
import sys; sys.path.insert(0, {str(PROJECT / "src")!r})
from release_notes.program import ReleaseNotes
ReleaseNotes().save({str(tmp_path / "pickled")!r}, save_program=True)
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=po_env())
    refused = po("program", "import", str(tmp_path / "pickled"), ws=project_ws, check=False)
    assert refused.returncode == 2 and "pass --allow-pickle if you trust its origin" in refused.stderr
    shown = po("program", "import", str(tmp_path / "pickled"), "--allow-pickle", "--name", "pk", ws=project_ws).stdout
    assert "imported as programs/pk" in shown and "write 0" in shown
