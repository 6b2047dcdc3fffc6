"""The baseline stage on a remote provider, end to end through `po` and the real client:
usage from concurrent evaluation threads, a provider that goes down mid-run, resume."""

from __future__ import annotations

import json


from state import read
from state.db import open_db
from tests.conftest import po, set_tables
from tests.loopback import PO_ANSWER as ANSWER, OLLAMA_CHAT, ollama_chat, ollama_error


def use_ollama(ws, server, extra: str = "") -> None:
    set_tables(ws, f"""
[baseline]
provider = "mistral"

[providers.mistral]
kind = "ollama"
model = "mistral:7b-instruct"
host = "{server.url}"
{extra}
""")


def test_baseline_on_ollama_counts_usage_from_every_thread(demo_ws, server):
    server.default(OLLAMA_CHAT, ollama_chat(ANSWER, prompt_eval_count=600, eval_count=80, delay=0.2))
    use_ollama(demo_ws, server, "[providers.mistral.limits]\nconcurrency = 2\n")
    run = json.loads(po("run", "baseline", "--limit", "6", "--threads", "4", "--json", ws=demo_ws).stdout)
    summary = run["summary"]
    assert run["state"] == "succeeded"
    assert (summary["scored"], summary["lm_calls"], summary["cache_hits"]) == (6, 6, 0)
    assert (summary["input_tokens"], summary["output_tokens"]) == (3600, 480)
    assert summary["cost_usd"] == 0.0 and summary["model"].startswith("ollama/mistral:7b-instruct@")
    assert len(server.requests_to(OLLAMA_CHAT)) == 6
    assert server.max_in_flight <= 2  # the provider's concurrency limit held against 4 threads


def test_provider_down_mid_run_fails_cleanly_and_resume_finishes_without_paying_twice(demo_ws, server):
    server.script(OLLAMA_CHAT, ollama_chat(ANSWER), ollama_chat(ANSWER))
    server.default(OLLAMA_CHAT, ollama_error(503, "server overloaded"))
    use_ollama(demo_ws, server, "[providers.mistral.limits]\nmax_retries = 1\nbackoff_initial_s = 0.05\n")
    proc = po("run", "baseline", "--limit", "4", "--threads", "1", ws=demo_ws, check=False)
    assert proc.returncode == 1
    db = open_db(demo_ws / "state.db", readonly=True)
    run = read.list_runs(db)[0]
    assert run.state == "failed"
    assert run.error.startswith("ProviderError: mistral (mistral:7b-instruct): gave up after 2 attempts: HTTP 503")
    assert len(read.eval_results(db, run.id)) == 2  # what was answered is kept

    server.reset()
    server.default(OLLAMA_CHAT, ollama_chat(ANSWER))
    po("resume", str(run.id), ws=demo_ws)
    assert read.get_run(db, run.id).state == "succeeded"
    assert len(read.eval_results(db, run.id)) == 4
    assert len(server.requests_to(OLLAMA_CHAT)) == 2  # only the two examples never answered
