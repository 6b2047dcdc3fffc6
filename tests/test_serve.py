"""`po serve`: llama.cpp's server (installed by the test command: make llama-server) serving
the embedded SmolLM2 GGUF with a student adapter trained here for a few steps and converted
by po-console, as a tracked detached run registered as a provider. Base and student through
the server parse like the in-process engine; greedy output at LoRA scale 0 equals the base
server's; `po cancel` stops the server; a kill -9 of the serve run leaves it stale and takes
the server with it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from pipeline.serving.llama_server import find_binary
from pipeline.workspace import init_workspace
from state import read
from state.db import open_db
from tests.conftest import po, set_tables, wait_for
from tests.console_fixtures import record_teacher

if find_binary() is None:
    # The README's test command installs it; only a bare `pytest` without it skips.
    reason = "llama-server is not installed (make llama-server)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)

STUDENT = """
[finetune]
base_model = "embedded"
lora_r = 32
lora_alpha = 64
max_steps = 2
learning_rate = 0.01
batch_size = 1
gradient_accumulation = 1
eval_fraction = 0.2
checkpoint_every = 2
threads = 1
"""


def _db(ws: Path):
    return open_db(ws / "state.db", readonly=True)


def _serving(ws: Path, run_id: int) -> dict:
    """The provider table of a serve run once its server answers."""
    def ready():
        served = next((m for m in read.served_models(_db(ws)) if m.run_id == run_id), None)
        run = read.get_run(_db(ws), run_id)
        assert run.state in ("queued", "running"), (run.state, run.error)
        return served.provider_config if served else None

    return wait_for(ready, timeout=240, interval=0.5, what=f"serve run {run_id} to answer")


def _complete(url: str, **extra) -> str:
    body = {"prompt": "The three most useful features of a clinic booking tool are", "n_predict": 24,
            "temperature": 0, "cache_prompt": False, **extra}
    return httpx.post(url + "/completion", json=body, timeout=120).json()["content"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workspace with a SmolLM2 student (2 steps) served as `student`, and the base as `base`."""
    ws = init_workspace(tmp_path_factory.mktemp("serve") / "ws", demo=True)
    record_teacher(ws)
    set_tables(ws.root, STUDENT)
    trained = json.loads(po("run", "finetune", "--json", ws=ws.root).stdout)
    assert trained["state"] == "succeeded", trained["error"]
    runs = {}
    try:  # whatever fails after a server started, it is stopped: no server outlives the tests
        for args in (["serve", str(trained["id"])], ["serve", "--base"]):
            started = json.loads(po(*args, "--detach", "--json", ws=ws.root).stdout)
            runs[args[1]] = started["run_id"]
        tables = {"student": _serving(ws.root, runs[str(trained["id"])]), "base": _serving(ws.root, runs["--base"])}
        yield ws.root, trained["id"], runs[str(trained["id"])], runs["--base"], tables
    finally:
        for run_id in runs.values():
            po("cancel", str(run_id), ws=ws.root, check=False)


def test_the_student_is_served_with_its_converted_adapter_and_registered_as_a_provider(served):
    ws, finetune_run, student_run, _, tables = served
    table = tables["student"]
    assert table["kind"] == "openai" and table["structure"] == "llama.cpp" and table["temperature"] == 0.0
    assert table["price"] == {"input_per_million": 0.0, "output_per_million": 0.0}  # local: cost 0, not unknown
    url = table["base_url"].removesuffix("/v1")
    assert httpx.get(url + "/health", timeout=5).json()["status"] == "ok"
    adapters = httpx.get(url + "/lora-adapters", timeout=5).json()
    assert [Path(a["path"]).name for a in adapters] == ["adapter.gguf"]
    artifact = next(a for a in read.artifacts(_db(ws), student_run) if a.kind == "gguf-adapter")
    assert artifact.path == f"artifacts/{student_run}/adapter.gguf" and len(artifact.sha256) == 64
    status = json.loads(po("status", str(student_run), "--json", ws=ws).stdout)
    assert status["status"] == "running"
    assert read.served_model(_db(ws), "student").source_run_id == finetune_run
    doctor = json.loads(po("doctor", "--json", ws=ws, check=False).stdout)
    checks = {c["check"]: c for c in doctor if c["subject"] == "student"}
    assert checks["endpoint"]["detail"].endswith("reachable: llama.cpp's server")
    assert checks["LoRA adapters"]["detail"] == "adapter.gguf x1.0"
    assert checks["output"]["detail"] == "bounded by field budgets; structure: llama.cpp"
    installed = next(c for c in doctor if c["check"] == "llama.cpp server")
    assert installed["status"] == "ok" and "version" in installed["detail"]


def test_base_and_student_through_the_server_parse_like_the_in_process_engine_without_retries(served):
    ws, *_ = served
    for provider in ("student", "base"):
        set_tables(ws, f'[baseline]\nprovider = "{provider}"\nthreads = 1\n')
        run = json.loads(po("run", "baseline", "--limit", "4", "--json", ws=ws, timeout=600).stdout)
        assert run["state"] == "succeeded", run["error"]
        results = read.eval_results(_db(ws), run["id"])
        assert [r.status for r in results] == ["ok"] * 4, [(r.status, r.error) for r in results]
        log = (ws / "artifacts" / str(run["id"]) / "run.log").read_text()
        assert "retry" not in log


def test_the_validation_stage_compares_base_and_student_through_the_servers(served):
    ws, *_ = served
    set_tables(ws, """
[validation]
reference = "base"
threads = 1
limit = 3
gate = ["student.parse_failure_rate <= base.parse_failure_rate"]

[validation.systems.base]
provider = "base"

[validation.systems.student]
provider = "student"
""")
    run = json.loads(po("run", "validation", "--json", ws=ws, timeout=900).stdout)
    assert run["state"] == "succeeded", run["error"]
    for system in ("base", "student"):
        rows = read.eval_results(_db(ws), run["id"], system)
        assert [r.status for r in rows] == ["ok"] * 3 and all(r.latency_s > 0 for r in rows), system
    assert (ws / "artifacts" / str(run["id"]) / "report.md").exists()


def test_greedy_output_at_lora_scale_0_equals_the_base_servers(served):
    _, _, _, _, tables = served
    student = tables["student"]["base_url"].removesuffix("/v1")
    base = tables["base"]["base_url"].removesuffix("/v1")
    assert _complete(student, lora=[{"id": 0, "scale": 0.0}]) == _complete(base)
    # ...and the adapter changes it (trained at a high rate for 2 steps, so it must).
    assert _complete(student, lora=[{"id": 0, "scale": 1.0}]) != _complete(base)


def test_po_cancel_stops_the_server_and_a_kill_9_leaves_the_run_stale_without_its_server(served):
    ws, _, student_run, base_run, tables = served
    url = tables["student"]["base_url"].removesuffix("/v1")
    po("cancel", str(student_run), "--wait", "60", ws=ws)
    stopped = read.get_run(_db(ws), student_run)
    assert stopped.state == "cancelled"
    # It answered the baseline and validation runs above: the server's counters say so.
    assert stopped.summary["predicted_tokens"] > 0 and stopped.summary["predicted_per_s"] > 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(url + "/health", timeout=2)
    set_tables(ws, '[baseline]\nprovider = "student"\n')
    refused = po("run", "baseline", "--limit", "1", ws=ws, check=False)
    assert refused.returncode != 0 and "served by run" in refused.stderr and f"po resume {student_run}" in refused.stderr

    base_url = tables["base"]["base_url"].removesuffix("/v1")
    pid = read.get_run(_db(ws), base_run).pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: read.get_run(_db(ws), base_run).status == "stale", timeout=30, what="the serve run to be stale")

    def server_gone():
        try:
            httpx.get(base_url + "/health", timeout=1)
        except httpx.HTTPError:
            return True
        return False

    wait_for(server_gone, timeout=30, what="the server to die with its run")
