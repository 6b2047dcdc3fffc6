"""MIPROv2 against a deterministic fake LM served over the OpenAI wire protocol: the trials
recorded are the evaluations MIPROv2 made (counts, kinds, numbers, candidates), every call
that reached the server is counted, and a cancelled-then-resumed run pays for no call twice."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.stages.mipro.budget import schedule
from state import read
from state.db import open_db
from tests.conftest import po, set_tables, wait_for
from tests.fake_lm import openai_responder
from tests.loopback import OPENAI_CHAT

MIPRO = """
[providers.fake]
kind = "openai"
base_url = "{url}/v1"
model = "m"
api_key_env = "PO_TEST_FAKE_KEY"

[mipro]
provider = "fake"
num_candidates = 3
num_trials = {trials}
minibatch = true
minibatch_size = 4
minibatch_full_eval_steps = 2
max_bootstrapped_demos = 2
max_labeled_demos = 1
train_limit = 8
val_limit = 8
threads = 2
"""


pytestmark = pytest.mark.usefixtures("fake_key")


def fake_ws(tmp_path, name, server, trials=7):
    ws = tmp_path / name
    po("init", "--demo", ws=ws)
    set_tables(ws, MIPRO.format(url=server.url, trials=trials))
    return ws


def chat_calls(server) -> int:
    return len(server.requests_to(OPENAI_CHAT))


def test_every_evaluation_miprov2_makes_is_one_trial_row(tmp_path, server):
    server.default(OPENAI_CHAT, openai_responder())
    ws = fake_ws(tmp_path, "ws", server)
    plan = json.loads(po("run", "mipro", "--dry-run", "--json", ws=ws).stdout)
    run = json.loads(po("run", "mipro", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    db = open_db(ws / "state.db", readonly=True)
    trials = read.trials(db, run["id"])

    # MIPROv2's own log names each evaluation: "== Trial 2 / 12 - Minibatch ==", "Full Evaluation".
    log = (ws / "artifacts" / str(run["id"]) / "run.log").read_text()
    logged = [(int(n), "minibatch" if kind == "Minibatch" else "full")
              for n, kind in re.findall(r"Trial (\d+) / \d+ - (Minibatch|Full Evaluation)", log)]
    assert [(t.trial, t.kind) for t in trials] == logged
    assert [t.kind for t in trials] == schedule(7, True, 2)  # the schedule the plan announced
    assert len(trials) == plan["planned_evaluations"] == run["summary"]["evaluations"] == 12
    assert [t.examples for t in trials] == [8 if t.kind == "full" else 4 for t in trials]

    # Every call that reached the server is counted once; the rest came from the cache.
    assert run["summary"]["lm_calls"] == chat_calls(server)
    assert all(t.lm_calls + t.cache_hits == t.examples for t in trials)  # Predict: one call each
    assert sum(t.lm_calls for t in trials) <= plan["projection"]["program_calls"]

    # A periodic full evaluation checks a combination the minibatch trials tried before it.
    for i, t in enumerate(trials[1:], 1):
        assert t.instruction in (0, 1, 2) and t.demos in (0, 1, 2)
        if t.kind == "full":
            tried = {(p.instruction, p.demos) for p in trials[1:i] if p.kind == "minibatch"}
            assert (t.instruction, t.demos) in tried
    fulls = [t.score for t in trials if t.kind == "full"]
    assert [t.best_full for t in trials if t.kind == "full"] == [max(fulls[: i + 1]) for i in range(len(fulls))]
    assert run["summary"]["best_score"] == max(fulls)

    # Broken answers are told apart from bad prompts (the fake LM drops a marker one time in eight).
    assert sum(t.parse_failures for t in trials) > 0
    assert all(t.parse_failures + t.errors <= t.examples for t in trials)
    assert len(read.candidates(db, run["id"], "instruction")) == 3
    assert len(read.candidates(db, run["id"], "demos")) == 3


def test_cancelled_then_resumed_run_pays_for_no_call_twice(tmp_path, server):
    server.default(OPENAI_CHAT, openai_responder(delay=0.3))
    ws = fake_ws(tmp_path, "interrupted", server, trials=12)
    run_id = json.loads(po("run", "mipro", "--detach", "--json", ws=ws).stdout)["run_id"]
    db = open_db(ws / "state.db", readonly=True)
    wait_for(lambda: len(read.trials(db, run_id)) >= 2, timeout=120, what="two evaluations")
    po("cancel", str(run_id), ws=ws)
    cancelled = read.get_run(db, run_id)
    assert cancelled.state == "cancelled"
    assert 2 <= cancelled.summary["evaluations"] < 19
    assert (ws / cancelled.summary["program"] / "manifest.json").exists()  # the best so far is kept
    before_resume = chat_calls(server)

    po("resume", str(run_id), ws=ws)
    resumed = read.get_run(db, run_id)
    assert resumed.state == "succeeded", resumed.error
    interrupted_total = chat_calls(server)
    resume_calls = interrupted_total - before_resume
    assert resumed.summary["lm_calls"] == resume_calls
    assert resumed.summary["cache_hits"] >= before_resume  # everything paid before came from the cache

    server.reset()
    server.default(OPENAI_CHAT, openai_responder())
    straight = fake_ws(tmp_path, "uninterrupted", server, trials=12)
    whole = json.loads(po("run", "mipro", "--json", ws=straight).stdout)
    uninterrupted = chat_calls(server)
    assert whole["summary"]["lm_calls"] == uninterrupted
    assert resume_calls < uninterrupted
    assert interrupted_total == uninterrupted  # no call was paid twice
    # ... and the optimization itself is the same one.
    assert resumed.summary["fingerprint"] == whole["summary"]["fingerprint"]
    scores = [(t.kind, t.score) for t in read.trials(db, run_id)]
    assert scores == [(t.kind, t.score) for t in read.trials(open_db(straight / "state.db"), whole["id"])]


def test_an_unreachable_or_unknown_model_is_refused_before_the_run_starts(tmp_path, server):
    from tests.loopback import unused_port

    ws = fake_ws(tmp_path, "ws", server)
    toml = (ws / "po.toml").read_text()
    (ws / "po.toml").write_text(toml.replace('model = "m"', 'model = "gpt-5-turbo"'))
    proc = po("run", "mipro", ws=ws, check=False)
    assert proc.returncode == 2
    assert "cannot start: provider fake: 'gpt-5-turbo' not served (has: m)" in proc.stderr
    (ws / "po.toml").write_text(toml.replace(server.url, f"http://127.0.0.1:{unused_port()}"))
    proc = po("run", "mipro", "--dry-run", ws=ws, check=False)
    assert proc.returncode == 2 and "unreachable (ConnectError): start the server" in proc.stderr
    assert read.list_runs(open_db(ws / "state.db", readonly=True)) == []
    assert server.requests_to(OPENAI_CHAT) == []  # not one LM call
