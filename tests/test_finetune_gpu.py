"""The fine-tune stage on a CUDA GPU: what the CPU tests cannot reach — bf16 placement, the
NVML gauges, the CUDA random state through a kill -9 and resume, 4-bit QLoRA. Skipped where
torch sees no GPU (this project's CI machine has none); on a GPU box run
`.venv/bin/python -m pytest tests/test_finetune_gpu.py`. Not yet run on a GPU by the
project: no GPU has been available to it."""

from __future__ import annotations

import importlib.util
import json
import os
import signal

import pytest
import torch

from state import read
from state.db import open_db
from tests.conftest import po, set_tables, wait_for
from tests.test_finetune import TINY, curve, teacher_ws, tiny  # noqa: F401 - tiny is a fixture

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def points(ws, run_id):
    from pipeline.stages.finetune import store

    return store.points(open_db(ws / "state.db", readonly=True), run_id, "train")


def test_on_a_gpu_it_trains_in_bf16_and_stores_each_gpus_gauges(tmp_path, tiny):  # noqa: F811
    ws = teacher_ws(tmp_path / "ws", tiny, steps=6, every=3)
    run = json.loads(po("run", "finetune", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    expected = "cuda bf16" if torch.cuda.is_bf16_supported() else "cuda fp16"
    assert run["summary"]["placement"] == expected
    gpus = points(ws, run["id"])[-1].resources["gpus"]
    assert len(gpus) == torch.cuda.device_count()
    assert 0 < gpus[0]["memory_used_mb"] <= gpus[0]["memory_total_mb"]
    assert {"utilization", "power_w", "temperature_c"} <= gpus[0].keys()
    assert (ws / "artifacts" / str(run["id"]) / "adapter" / "adapter_model.safetensors").exists()


def test_on_a_gpu_kill_9_resumes_at_the_same_step_on_the_same_curve(tmp_path, tiny):  # noqa: F811
    straight = teacher_ws(tmp_path / "straight", tiny, steps=30, every=10)
    whole = json.loads(po("run", "finetune", "--json", ws=straight).stdout)
    assert whole["state"] == "succeeded", whole["error"]

    ws = teacher_ws(tmp_path / "ws", tiny, steps=30, every=10)
    run_id = json.loads(po("run", "finetune", "--detach", "--json", ws=ws).stdout)["run_id"]
    checkpoint = ws / "artifacts" / str(run_id) / "checkpoints" / "step-000010" / "state.json"
    wait_for(checkpoint.exists, timeout=180, what="checkpoint 10")
    db = open_db(ws / "state.db", readonly=True)
    os.kill(read.get_run(db, run_id).pid, signal.SIGKILL)
    wait_for(lambda: read.get_run(db, run_id).status == "stale", timeout=30, what="stale")
    po("resume", str(run_id), ws=ws)
    assert read.get_run(db, run_id).state == "succeeded"
    resumed = curve(ws, run_id)
    assert [step for step, _ in resumed] == list(range(1, 31))
    for (step, loss), (_, expected) in zip(resumed, curve(straight, whole["id"])):
        assert loss == pytest.approx(expected, abs=1e-3), step  # GPU kernels are not bit-reproducible


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes")
def test_on_a_gpu_qlora_trains_a_4_bit_base(tmp_path, tiny):  # noqa: F811
    ws = teacher_ws(tmp_path / "ws", tiny, steps=4, every=4)
    set_tables(ws, TINY.format(base=tiny, steps=4, every=4, merge="false") + "load_in_4bit = true\n")
    run = json.loads(po("run", "finetune", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    assert json.loads((ws / "artifacts" / str(run["id"]) / "adapter" / "adapter_config.json").read_text())["r"] == 8
