"""`po doctor` against loopback servers: what works, what is missing, and the fix."""

from __future__ import annotations

import json

from pipeline.doctor import run_doctor
from pipeline.workspace import init_workspace
from tests.conftest import po
from tests.loopback import OLLAMA_TAGS, OPENAI_MODELS, ollama_tags, openai_error, openai_models, unused_port


def workspace(tmp_path, providers: str):
    ws = init_workspace(tmp_path / "ws", demo=False)
    ws.config_path.write_text(ws.config_path.read_text() + "\n" + providers)
    return ws


def by_check(checks, subject):
    return {c.check: c for c in checks if c.subject == subject}


def test_a_healthy_setup_passes_every_check(tmp_path, server, monkeypatch):
    monkeypatch.setenv("PO_TEST_KEY", "sk-test-0123456789")
    server.default(OPENAI_MODELS, openai_models("mistral-7b", "other"))
    server.default(OLLAMA_TAGS, ollama_tags("mistral:7b-instruct"))
    ws = workspace(tmp_path, f"""
[providers.vllm]
kind = "openai"
model = "mistral-7b"
base_url = "{server.url}/v1"
api_key_env = "PO_TEST_KEY"

[providers.mistral]
kind = "ollama"
model = "mistral:7b-instruct"
host = "{server.url}"
""")
    checks = run_doctor(ws)
    assert [c for c in checks if c.status == "fail"] == []
    assert by_check(checks, "mistral")["endpoint"].detail == f"Ollama 0.12.0 at {server.url}"
    assert by_check(checks, "vllm")["model"].status == "ok"
    assert server.requests_to(OPENAI_MODELS)[0].headers["authorization"] == "Bearer sk-test-0123456789"
    assert {"machine", "local"} <= {c.subject for c in checks}


def test_each_missing_piece_fails_with_its_fix(tmp_path, server, monkeypatch):
    monkeypatch.delenv("PO_MISSING_KEY", raising=False)
    server.default(OLLAMA_TAGS, ollama_tags("llama3:8b"))
    down = f"http://127.0.0.1:{unused_port()}"
    ws = workspace(tmp_path, f"""
[providers.vllm]
kind = "openai"
model = "mistral-7b"
base_url = "{down}/v1"
api_key_env = "PO_MISSING_KEY"

[providers.mistral]
kind = "ollama"
model = "mistral:7b-instruct"
host = "{server.url}"
""")
    vllm = by_check(run_doctor(ws), "vllm")
    assert vllm["credentials"].status == "fail" and vllm["credentials"].fix == "export PO_MISSING_KEY=<your key>"
    assert vllm["endpoint"].status == "fail" and "unreachable" in vllm["endpoint"].detail
    mistral = by_check(run_doctor(ws), "mistral")
    assert mistral["model"].status == "fail" and mistral["model"].fix == "ollama pull mistral:7b-instruct"
    assert "llama3:8b" in mistral["model"].detail


def test_refused_credentials_are_a_failed_endpoint_check(tmp_path, server, monkeypatch):
    monkeypatch.setenv("PO_TEST_KEY", "sk-wrong-0123456789")
    server.default(OPENAI_MODELS, openai_error(401, "Incorrect API key provided"))
    ws = workspace(tmp_path, f"""
[providers.vllm]
kind = "openai"
model = "m"
base_url = "{server.url}/v1"
api_key_env = "PO_TEST_KEY"
""")
    endpoint = by_check(run_doctor(ws), "vllm")["endpoint"]
    assert endpoint.status == "fail" and "refused the credentials" in endpoint.detail and "PO_TEST_KEY" in endpoint.fix


def test_vertex_without_credentials_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud ADC file
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    ws = workspace(tmp_path, """
[providers.teacher]
kind = "vertex"
model = "gemini-2.5-pro"
project = "my-project"

[providers.nowhere]
kind = "vertex"
model = "gemini-2.5-pro"
""")
    checks = run_doctor(ws)
    teacher = by_check(checks, "teacher")
    assert teacher["credentials"].status == "fail"
    assert "gcloud auth application-default login" in teacher["credentials"].fix
    assert by_check(checks, "nowhere")["project"].fix == "set providers.*.project or GOOGLE_CLOUD_PROJECT"


def test_po_doctor_exits_1_on_a_failure_and_prints_the_fix(tmp_path):
    ws = workspace(tmp_path, f"""
[providers.mistral]
kind = "ollama"
model = "mistral:7b-instruct"
host = "http://127.0.0.1:{unused_port()}"
""")
    proc = po("doctor", ws=ws.root, check=False)
    assert proc.returncode == 1
    assert "FAIL  mistral · endpoint" in proc.stdout and "fix: start it (`ollama serve`)" in proc.stdout
    data = json.loads(po("doctor", "--json", ws=ws.root, check=False).stdout)
    assert {c["status"] for c in data} >= {"ok", "fail"}


def test_a_vllm_server_is_recognised_with_its_lora_modules_and_the_output_constraint_it_takes(tmp_path, server):
    from tests.loopback import Response

    server.default(OPENAI_MODELS, Response(200, {"object": "list", "data": [
        {"id": "mistral-7b", "object": "model", "owned_by": "vllm", "root": "mistral-7b", "parent": None},
        {"id": "student", "object": "model", "owned_by": "vllm", "root": "/adapters/student",
         "parent": "mistral-7b"}]}))
    ws = workspace(tmp_path, f"""
[providers.gpu]
kind = "openai"
model = "student"
base_url = "{server.url}/v1"
""")
    checks = by_check(run_doctor(ws), "gpu")
    assert checks["endpoint"].detail.endswith("reachable: vLLM")
    assert checks["LoRA modules"].detail == "student"
    assert checks["output"].detail == "bounded by field budgets; structure: vllm"
    assert checks["model"].status == "ok"


def test_the_llama_cpp_server_install_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PO_LLAMA_SERVER", str(tmp_path / "nowhere"))
    ws = init_workspace(tmp_path / "ws", demo=False)
    check = by_check(run_doctor(ws), "machine")["llama.cpp server"]
    assert check.status == "warn" and "make llama-server" in check.fix
