"""`po run all`: every built stage in order, each its own run, stopping at the first that
does not succeed; detached, one background process runs the chain (the demo's path)."""

from __future__ import annotations

import json

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
                                     ("finetune", "succeeded")]


def test_run_all_stops_at_the_first_stage_that_fails(fake_ws):
    ws, server = fake_ws
    set_tables(ws, FAKE.format(url=server.url, pool=1).replace("max_records = 3", "max_records = 50"))
    proc = po("run", "all", ws=ws, check=False)
    assert proc.returncode == 1
    assert stages_and_states(ws) == [("baseline", "succeeded"), ("mipro", "succeeded"), ("teacher", "failed")]
    assert "pool exhausted" in proc.stdout + proc.stderr


def test_run_all_detached_is_one_background_process_for_the_chain(fake_ws):
    ws, server = fake_ws
    set_tables(ws, FAKE.format(url=server.url, pool=40))
    out = json.loads(po("run", "all", "--detach", "--json", ws=ws).stdout)
    assert out["stages"] == ["baseline", "mipro", "teacher", "finetune"]
    wait_for(lambda: [s for _, s in stages_and_states(ws)] == ["succeeded"] * 4, timeout=300, what="the chain")
    log = (ws / "artifacts" / "pipeline.log").read_text()
    assert "starting baseline" in log and "(teacher): succeeded" in log
    runs = read.list_runs(open_db(ws / "state.db", readonly=True))
    assert len({r.pid for r in runs}) == 1  # one process, one model load


def test_run_all_takes_no_stage_options(demo_ws):
    proc = po("run", "all", "--limit", "3", ws=demo_ws, check=False)
    assert proc.returncode == 2 and "takes its settings from po.toml" in proc.stderr
