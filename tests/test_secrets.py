"""An API key never leaks: not into state.db, run.log, summary.json, the cache, nor anything
`po` prints, even when a careless server echoes the key back in its error messages.

The real `po` CLI runs the baseline on an OpenAI-compatible provider whose key is in an
environment variable; a loopback server plays the provider and proves the key was sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import po, set_tables
from tests.loopback import PO_ANSWER as ANSWER, OPENAI_CHAT, Loopback, openai_chat, openai_error

KEY = "sk-test-SECRET-0123456789"


@pytest.fixture
def remote_ws(demo_ws, server, monkeypatch):
    """The demo workspace with its baseline on `remote`, an openai provider keyed by $PO_TEST_KEY."""
    monkeypatch.setenv("PO_TEST_KEY", KEY)  # po() passes os.environ to the CLI
    set_tables(demo_ws, f"""
[baseline]
provider = "remote"

[providers.remote]
kind = "openai"
model = "m"
base_url = "{server.url}/v1"
api_key_env = "PO_TEST_KEY"

[providers.remote.limits]
max_retries = 1
backoff_initial_s = 0.01
timeout_s = 10.0
""")
    return demo_ws


def assert_no_secret_anywhere(ws: Path, *outputs: str) -> int:
    """The key is in no file under the workspace and in none of `po`'s outputs; returns the run id."""
    secret = KEY.encode()
    files = [p for p in ws.rglob("*") if p.is_file()]
    assert ws / "state.db" in files and any(p.name == "run.log" for p in files)
    for path in files:  # state.db, state.db-wal, artifacts/*/run.log, summary.json, cache/, po.toml
        assert secret not in path.read_bytes(), f"the key leaked into {path.relative_to(ws)}"

    runs = po("runs", "--json", ws=ws).stdout
    run_id = json.loads(runs)[0]["id"]
    shown = [runs, po("status", "--json", ws=ws).stdout, po("status", str(run_id), "--json", ws=ws).stdout,
             po("status", str(run_id), ws=ws).stdout, po("logs", str(run_id), ws=ws).stdout]
    for text in [*outputs, *shown]:
        assert KEY not in text
    return run_id


def assert_key_was_sent(server: Loopback, requests: int) -> None:
    seen = server.requests_to(OPENAI_CHAT)
    assert len(seen) == requests
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in seen)


def test_a_key_echoed_in_a_401_leaks_nowhere(remote_ws, server):
    server.script(OPENAI_CHAT,
                  openai_chat(ANSWER),
                  openai_error(401, f"Incorrect API key provided: {KEY}. You can find your API key at "
                                    "https://platform.openai.com/account/api-keys."),
                  openai_chat(ANSWER))

    proc = po("run", "baseline", "--limit", "3", "--threads", "1", ws=remote_ws, check=False)

    assert proc.returncode != 0  # a refused key is final: the run stops (resumable)
    assert_key_was_sent(server, 2)
    run_id = assert_no_secret_anywhere(remote_ws, proc.stdout, proc.stderr)
    run = json.loads(po("status", str(run_id), "--json", ws=remote_ws).stdout)
    assert run["state"] == "failed"
    assert "HTTP 401" in run["error"] and "$PO_TEST_KEY" in run["error"] and "***" in run["error"]

    # Resumed, the run answers the rest (the third scripted answer first) and writes summary.json.
    server.default(OPENAI_CHAT, openai_chat(ANSWER))
    resumed = po("resume", str(run_id), ws=remote_ws)
    assert_key_was_sent(server, 4)
    assert (remote_ws / "artifacts" / str(run_id) / "summary.json").exists()
    assert assert_no_secret_anywhere(remote_ws, resumed.stdout, resumed.stderr) == run_id
    assert json.loads(po("status", str(run_id), "--json", ws=remote_ws).stdout)["state"] == "succeeded"


def test_a_key_echoed_in_retried_and_final_errors_leaks_nowhere(remote_ws, server):
    # A 503 is retried (and logged with its message); a 400 is final and its message is the run's error.
    server.script(OPENAI_CHAT,
                  openai_chat(ANSWER),
                  openai_error(503, f"upstream rejected Authorization: Bearer {KEY}"),
                  openai_error(400, f"bad request for key={KEY}"))

    proc = po("run", "baseline", "--limit", "3", "--threads", "1", ws=remote_ws, check=False)

    assert proc.returncode != 0
    assert_key_was_sent(server, 3)
    run_id = assert_no_secret_anywhere(remote_ws, proc.stdout, proc.stderr)
    log = po("logs", str(run_id), ws=remote_ws).stdout
    assert "retry 1" in log and "HTTP 503" in log  # the echoing message was logged, redacted
    run = json.loads(po("status", str(run_id), "--json", ws=remote_ws).stdout)
    assert "HTTP 400" in run["error"] and "***" in run["error"]
