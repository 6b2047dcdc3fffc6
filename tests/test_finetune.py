"""The fine-tune stage on CPU: a tiny random Mistral-architecture model trains on teacher
records rendered exactly as the student will be prompted, logs its curves, checkpoints, and
after `kill -9` resumes at the same step with the same next batch (the curve equals an
uninterrupted run's, no step twice); the adapter exports, reloads with peft, and merged
equals base + adapter; one real run on the embedded SmolLM2 answers through the local
provider; bad inputs fail before any training, in one line."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from pipeline.workspace import init_workspace
from state import read
from state.db import open_db
from tests.conftest import po, set_tables, wait_for
from tests.console_fixtures import record_teacher
from tests.tiny_model import build_tiny_mistral

TINY = """
[finetune]
base_model = "{base}"
lora_r = 8
lora_alpha = 16
max_steps = {steps}
batch_size = 1
gradient_accumulation = 1
eval_fraction = 0.2
eval_every = 10
checkpoint_every = {every}
keep_checkpoints = 2
threads = 1
merge = {merge}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_mistral(tmp_path_factory.mktemp("tiny") / "mistral")


def teacher_ws(root: Path, tiny: Path, steps: int = 30, every: int = 10, merge: bool = False) -> Path:
    """A demo workspace whose teacher run accepted six records (the console fixtures' run)."""
    ws = init_workspace(root, demo=True)
    record_teacher(ws)
    set_tables(ws.root, TINY.format(base=tiny, steps=steps, every=every, merge=str(merge).lower()))
    return ws.root


def curve(ws: Path, run_id: int) -> list[tuple[int, float]]:
    from pipeline.stages.finetune import store

    return [(p.step, p.loss) for p in store.points(open_db(ws / "state.db", readonly=True), run_id, "train")]


def test_a_fine_tune_trains_logs_checkpoints_and_exports_an_adapter_that_reloads(tmp_path, tiny):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ws = teacher_ws(tmp_path / "ws", tiny, steps=12, every=5, merge=True)
    run = json.loads(po("run", "finetune", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    assert [step for step, _ in curve(ws, run["id"])] == list(range(1, 13))
    s = run["summary"]
    assert s["steps"] == 12 and s["eval_loss"] is not None and s["adapter"] == f"artifacts/{run['id']}/adapter"
    artifacts = json.loads(po("status", str(run["id"]), "--json", ws=ws).stdout)
    paths = {a["path"]: a for a in artifacts["artifacts"]}
    adapter = ws / "artifacts" / str(run["id"]) / "adapter"
    assert f"artifacts/{run['id']}/adapter/adapter_model.safetensors" in paths  # with its sha256
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8
    checkpoints = artifacts["finetune"]["checkpoints"]
    assert [c["step"] for c in checkpoints] == [10, 12]  # every 5, the last, two kept
    assert all(c["path"].startswith(f"artifacts/{run['id']}/checkpoints/step-") for c in checkpoints)

    ids = torch.tensor([[1, 2, 3, 4, 5]])
    base = AutoModelForCausalLM.from_pretrained(tiny)
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    merged = AutoModelForCausalLM.from_pretrained(ws / "artifacts" / str(run["id"]) / "merged").eval()
    generate = lambda m: m.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)[0].tolist()  # noqa: E731
    assert generate(with_adapter) == generate(merged)


def test_kill_9_mid_training_resumes_at_the_same_step_with_the_same_next_batch(tmp_path, tiny):
    straight = teacher_ws(tmp_path / "straight", tiny, steps=60, every=10)
    whole = json.loads(po("run", "finetune", "--json", ws=straight).stdout)
    assert whole["state"] == "succeeded"

    ws = teacher_ws(tmp_path / "ws", tiny, steps=60, every=10)
    run_id = json.loads(po("run", "finetune", "--detach", "--json", ws=ws).stdout)["run_id"]
    checkpoints = ws / "artifacts" / str(run_id) / "checkpoints"
    wait_for(lambda: (checkpoints / "step-000020" / "state.json").exists(), timeout=180, what="checkpoint 20")
    db = open_db(ws / "state.db", readonly=True)
    os.kill(read.get_run(db, run_id).pid, signal.SIGKILL)
    wait_for(lambda: read.get_run(db, run_id).status == "stale", timeout=20, what="stale")
    logged_before = curve(ws, run_id)
    assert logged_before and logged_before[-1][0] < 60

    po("resume", str(run_id), ws=ws)
    assert read.get_run(db, run_id).state == "succeeded"
    resumed = curve(ws, run_id)
    assert [step for step, _ in resumed] == list(range(1, 61))  # every step once: none repeated, none lost
    for (step, loss), (_, expected) in zip(resumed, curve(straight, whole["id"])):
        assert loss == pytest.approx(expected, abs=1e-5), step  # the same batches, in the same order
    log = (ws / "artifacts" / str(run_id) / "run.log").read_text()
    assert "resumed from step-0000" in log


def test_a_truncated_checkpoint_is_skipped_for_the_one_before(tmp_path):
    from pipeline.stages.finetune.train import Checkpoints

    checkpoints = Checkpoints(tmp_path, keep=3)
    for step, files in ((10, {"adapter/a.bin": 4}), (20, {"adapter/a.bin": 4})):
        path = tmp_path / f"step-{step:06d}"
        (path / "adapter").mkdir(parents=True)
        (path / "adapter" / "a.bin").write_bytes(b"good")
        (path / "state.json").write_text(json.dumps({"position": {"step": step}, "files": files}))
    (tmp_path / "step-000020" / "adapter" / "a.bin").write_bytes(b"go")  # cut short by a full disk
    (tmp_path / "step-000030.tmp").mkdir()  # a checkpoint being written when the process died
    assert [p.name for p in checkpoints.complete()] == ["step-000010"]


def test_the_training_text_is_the_inference_prompt_then_the_answer_with_the_prompt_masked():
    import dspy
    from transformers import AutoTokenizer

    from pipeline.product_owner import ProductOwnerProgram
    from pipeline.providers.local_model import ensure_converted
    from pipeline.stages.finetune.data import IGNORE, Call, render

    tokenizer = AutoTokenizer.from_pretrained(ensure_converted()[0])
    program = ProductOwnerProgram()
    inputs = {"concept": "A shared calendar for clinics.", "requirements_yaml": "requirements:\n  - id: CLIN-1\n",
              "existing_vision": ""}
    outputs = {"product_vision": "For nurses (CLIN-1).", "product_owner_review": "Verdict: Approved"}
    example = render(Call("r1", "generate", inputs, outputs), program, tokenizer)

    # What the local provider sends for this call: the ChatAdapter's messages through the chat template.
    messages = dspy.ChatAdapter().format(program.generate.signature, demos=[], inputs=inputs)
    sent = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
                     add_special_tokens=False)["input_ids"]
    assert example.input_ids[:len(sent)] == sent
    assert example.labels[:len(sent)] == [IGNORE] * len(sent)  # the prompt: not learned, token by token
    answer = example.input_ids[len(sent):]
    assert example.labels[len(sent):] == answer  # the answer: every token learned
    text = tokenizer.decode(answer)
    assert text.startswith("[[ ## product_vision ## ]]\nFor nurses (CLIN-1).") and "[[ ## completed ## ]]" in text
    assert answer[-2:] == tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"]  # stops where it should


@pytest.mark.parametrize("change, message", [
    ("max_length = 100", "6 of 6 calls would be cut at 100 tokens: raise max_length or drop them with --drop-long"),
    ('base_model = "nobody/no-such-model"', "finetune.base_model: 'nobody/no-such-model' is neither a directory nor "
                                            "a model in the Hugging Face cache"),
    ("eval_fraction = 0.95", "6 records are too few for an eval split of 0.95"),
    ('device = "cuda"', "finetune.device = \"cuda\" but no CUDA GPU is visible here"),
])
def test_bad_inputs_fail_before_any_training_in_one_line(tmp_path, tiny, change, message):
    ws = teacher_ws(tmp_path / "ws", tiny)
    key = change.split(" = ")[0]
    lines = [line for line in (ws / "po.toml").read_text().splitlines() if not line.startswith(f"{key} = ")]
    at = lines.index("[finetune]") + 1
    (ws / "po.toml").write_text("\n".join(lines[:at] + [change] + lines[at:]) + "\n")
    proc = po("run", "finetune", ws=ws, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert read.list_runs(open_db(ws / "state.db", readonly=True), stage="finetune") == []


def test_without_accepted_records_it_says_to_run_the_teacher_first(tmp_path, tiny):
    ws = init_workspace(tmp_path / "ws", demo=True).root
    set_tables(ws, TINY.format(base=tiny, steps=5, every=5, merge="false"))
    proc = po("run", "finetune", ws=ws, check=False)
    assert proc.returncode == 2 and "no succeeded teacher run to train on: run `po run teacher` first" in proc.stderr


def test_the_embedded_model_trains_a_student_that_answers_through_the_local_provider(tmp_path):
    ws = init_workspace(tmp_path / "ws", demo=True)
    record_teacher(ws)
    set_tables(ws.root, """
[finetune]
base_model = "embedded"
lora_r = 32
lora_alpha = 64
max_steps = 2
batch_size = 1
gradient_accumulation = 1
eval_fraction = 0.2
checkpoint_every = 2
threads = 1
""")
    run = json.loads(po("run", "finetune", "--json", ws=ws.root).stdout)
    assert run["state"] == "succeeded", run["error"]
    adapter = run["summary"]["adapter"]
    assert json.loads((ws.root / adapter / "adapter_config.json").read_text())["lora_alpha"] == 64
    set_tables(ws.root, f"""
[providers.student]
kind = "local"
adapter = "{adapter}"
threads = 1
[providers.student.max_chars]
product_vision = 120
product_owner_review = 80

[baseline]
provider = "student"
""")
    answered = json.loads(po("run", "baseline", "--limit", "1", "--json", ws=ws.root).stdout)
    assert answered["state"] == "succeeded", answered["error"]
    assert "+lora@" in answered["summary"]["model"]  # the student's answers never share the base's cache entries


def test_the_console_shows_the_curves_checkpoints_resources_and_log_of_a_run(tmp_path, tiny):
    import asyncio

    from pipeline.workspace import locate
    from po_console.app import POConsole
    from tests.test_console import wait_until

    ws = teacher_ws(tmp_path / "ws", tiny, steps=12, every=5)
    run_id = json.loads(po("run", "finetune", "--json", ws=ws).stdout)["id"]

    async def story():
        app = POConsole(locate(ws), refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("6")
            summary = lambda: str(app.query_one("#finetune-summary").render())  # noqa: E731
            await wait_until(pilot, lambda: f"Fine-tune run {run_id} · succeeded" in summary(), what="the run")
            assert "step 12/12 ████████████████████ · succeeded" in summary() and "tokens/s" in summary()
            chart = str(app.query_one("#finetune-chart").render()).splitlines()
            assert chart[0].startswith("loss  · train  ● eval") and "steps 1–12" in chart[0]
            assert chart[-1].startswith("    lr│") and "·" in "".join(chart) and "●" in "".join(chart[1:])
            checkpoints = str(app.query_one("#finetune-checkpoints").render()).splitlines()
            assert [line.split()[1] for line in checkpoints[1:]] == ["10", "12"]
            assert "CPU" in str(app.query_one("#finetune-resources").render())
            assert f"run {run_id} succeeded" in str(app.query_one("#finetune-log").render())

    asyncio.run(story())


def test_a_fine_tune_is_launched_cancelled_and_resumed_from_its_pane(tmp_path, tiny):
    import asyncio

    from pipeline.workspace import locate
    from po_console.app import POConsole
    from po_console.screens import LaunchScreen
    from tests.test_console import wait_until

    ws = teacher_ws(tmp_path / "ws", tiny, steps=12, every=10)
    workspace = locate(ws)
    db = open_db(ws / "state.db", readonly=True)

    async def story():
        app = POConsole(workspace, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("6", "l")
            await wait_until(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the launch dialog")
            assert (app.screen.query_one("#max_steps").value, app.screen.query_one("#batch_size").value) == ("12", "1")
            app.screen.query_one("#max_steps").value = "80"
            await pilot.press("enter")
            await wait_until(pilot, lambda: read.list_runs(db, stage="finetune"), what="the launch")
            run_id = read.list_runs(db, stage="finetune")[0].id
            await wait_until(pilot, lambda: len(curve(ws, run_id)) >= 3, timeout=120, what="three steps")
            await pilot.press("c", "y")
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "cancelled", timeout=60, what="cancel")
            stopped = curve(ws, run_id)[-1][0]
            assert stopped < 80 and (ws / "artifacts" / str(run_id) / "checkpoints" / f"step-{stopped:06d}").exists()
            await pilot.press("r")  # from the checkpoint the cancel wrote: no step lost, none repeated
            await wait_until(pilot, lambda: read.get_run(db, run_id).state == "succeeded", timeout=240,
                             what="the resumed run")
            assert [step for step, _ in curve(ws, run_id)] == list(range(1, 81))

    asyncio.run(story())


def test_two_training_processes_under_torchrun_on_gloo_train_one_student_and_resume_after_kill_9(tmp_path, tiny):
    from pipeline.stages.finetune import store

    ws = teacher_ws(tmp_path / "ws", tiny, steps=10, every=5)
    set_tables(ws, TINY.format(base=tiny, steps=10, every=5, merge="false") + "processes = 2\n")
    run_id = json.loads(po("run", "finetune", "--detach", "--json", ws=ws).stdout)["run_id"]
    checkpoints = ws / "artifacts" / str(run_id) / "checkpoints"
    wait_for(lambda: (checkpoints / "step-000005" / "state.json").exists(), timeout=180, what="checkpoint 5")
    db = open_db(ws / "state.db", readonly=True)
    os.kill(read.get_run(db, run_id).pid, signal.SIGKILL)
    wait_for(lambda: read.get_run(db, run_id).status == "stale", timeout=30, what="stale")

    po("resume", str(run_id), ws=ws)
    run = read.get_run(db, run_id)
    assert run.state == "succeeded", run.error
    assert store.ranks(db, run_id)[0][:2] == (0, 10) and store.ranks(db, run_id)[1][:2] == (1, 10)  # both seen
    assert [step for step, _ in curve(ws, run_id)] == list(range(1, 11))  # rank 0 logs, once a step
    assert (ws / "artifacts" / str(run_id) / "adapter" / "adapter_model.safetensors").exists()
    log = (ws / "artifacts" / str(run_id) / "run.log").read_text()
    assert "2 processes, DDP (accelerate)" in log and "rank 0 of 2 stopped at step 10" in log
    assert "resumed from step-000005" in log


FSDP = """\
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 2
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_reshard_after_forward: true
"""


def adapter_weights(ws: Path, run_id: int) -> dict:
    from safetensors.torch import load_file

    return load_file(str(ws / "artifacts" / str(run_id) / "adapter" / "adapter_model.safetensors"))


def test_fsdp_through_an_accelerate_config_trains_the_ddp_student_and_resumes_after_kill_9(tmp_path, tiny):
    """The same data, seed and steps: FSDP2 (the user's accelerate config, started by accelerate
    launch) trains the student DDP trains, and a kill -9 mid-run resumes at the same step from
    a checkpoint gathered from the two shards."""
    import torch

    tables = TINY.format(base=tiny, steps=12, every=4, merge="true") + "processes = 2\n"
    ddp = teacher_ws(tmp_path / "ddp", tiny)
    set_tables(ddp, tables)
    straight = json.loads(po("run", "finetune", "--json", ws=ddp).stdout)
    assert straight["state"] == "succeeded", straight["error"]

    ws = teacher_ws(tmp_path / "fsdp", tiny)
    (ws / "fsdp.yaml").write_text(FSDP)
    set_tables(ws, tables + 'accelerate_config = "fsdp.yaml"\n')
    run_id = json.loads(po("run", "finetune", "--detach", "--json", ws=ws).stdout)["run_id"]
    checkpoints = ws / "artifacts" / str(run_id) / "checkpoints"
    wait_for(lambda: (checkpoints / "step-000004" / "state.json").exists(), timeout=180, what="checkpoint 4")
    db = open_db(ws / "state.db", readonly=True)
    os.kill(read.get_run(db, run_id).pid, signal.SIGKILL)  # the stage; its launcher and ranks die with it
    wait_for(lambda: read.get_run(db, run_id).status == "stale", timeout=30, what="stale")
    assert curve(ws, run_id)[-1][0] < 12

    po("resume", str(run_id), ws=ws)
    run = read.get_run(db, run_id)
    assert run.state == "succeeded", run.error
    log = (ws / "artifacts" / str(run_id) / "run.log").read_text()
    assert "accelerate.commands.launch --config_file" in log and "2 processes, FSDP2 (accelerate)" in log
    assert "resumed from step-0000" in log
    resumed = curve(ws, run_id)
    assert [step for step, _ in resumed] == list(range(1, 13))  # every step once
    for (step, loss), (_, expected) in zip(resumed, curve(ddp, straight["id"])):
        assert loss == pytest.approx(expected, abs=1e-4), step
    mine, theirs = adapter_weights(ws, run_id), adapter_weights(ddp, straight["id"])
    assert mine.keys() == theirs.keys() and len(mine) == 2 * 7 * 2  # lora_A, lora_B × 7 projections × 2 layers
    for name in mine:
        assert torch.allclose(mine[name], theirs[name], atol=1e-5), name
    assert (ws / "artifacts" / str(run_id) / "merged" / "model.safetensors").exists()


def test_accelerate_launch_without_a_config_trains_ddp_on_cpus(tmp_path, tiny):
    ws = teacher_ws(tmp_path / "ws", tiny, steps=4, every=4)
    set_tables(ws, TINY.format(base=tiny, steps=4, every=4, merge="false") + 'processes = 2\nlauncher = "accelerate"\n')
    run = json.loads(po("run", "finetune", "--json", ws=ws).stdout)
    assert run["state"] == "succeeded", run["error"]
    log = (ws / "artifacts" / str(run["id"]) / "run.log").read_text()
    assert "--multi_gpu" in log and "2 processes, DDP (accelerate)" in log


def test_a_failed_rank_is_reported_by_its_own_error_not_by_the_peers_that_lost_it(tmp_path):
    from pipeline.stages.finetune.launch import _last_error

    log = tmp_path / "run.log"
    log.write_text("step 3/12: loss 10.8\n[rank1]: KeyError: 'lora_A'\n"
                   "[rank0]: RuntimeError: [pair.cc:553] Connection closed by peer [127.0.0.1]:12706\n"
                   "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n")
    assert _last_error(log) == " ([rank1]: KeyError: 'lora_A')"
    log.write_text("Traceback\nValueError: bad\n")
    assert _last_error(log) == " (ValueError: bad)"


@pytest.mark.parametrize("config, processes, message", [
    (None, 2, "fsdp.yaml does not exist (write one with `accelerate config"),
    ("distributed_type: DEEPSPEED\n", 2, "asks for DeepSpeed, which this stage does not drive"),
    ("distributed_type: FSDP\nfsdp_config:\n  fsdp_version: 1\n", 2, "set fsdp_config.fsdp_version: 2"),
    ("distributed_type: MULTI_GPU\nmixed_precision: fp16\n", 2, "mixed_precision: fp16, whose loss scaling"),
    ("distributed_type: TPU\n", 2, "distributed_type: TPU; this stage trains with MULTI_GPU (DDP) or FSDP"),
    ("distributed_type: [FSDP\n", 2, "fsdp.yaml is not YAML"),
    (FSDP, 1, "accelerate_config is for several processes: set processes = 2"),
    (FSDP, "2\nload_in_4bit = true", "load_in_4bit with FSDP is not supported"),
])
def test_an_accelerate_config_it_cannot_follow_is_refused_in_one_line(tmp_path, tiny, config, processes, message):
    ws = teacher_ws(tmp_path / "ws", tiny, steps=4, every=4)
    if config is not None:
        (ws / "fsdp.yaml").write_text(config)
    set_tables(ws, TINY.format(base=tiny, steps=4, every=4, merge="false")
               + f'processes = {processes}\naccelerate_config = "fsdp.yaml"\n')
    proc = po("run", "finetune", ws=ws, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_student_on_another_base_answers_through_the_local_provider(tmp_path, tiny):
    ws = teacher_ws(tmp_path / "ws", tiny, steps=3, every=3)
    run = json.loads(po("run", "finetune", "--json", ws=ws).stdout)
    set_tables(ws, f"""
[providers.student]
kind = "local"
base_model = "{tiny}"
adapter = "{run['summary']['adapter']}"
threads = 1
default_max_chars = 40
[providers.student.max_chars]
product_vision = 40
product_owner_review = 40

[baseline]
provider = "student"
""")
    answered = json.loads(po("run", "baseline", "--limit", "1", "--json", ws=ws).stdout)
    assert answered["state"] == "succeeded", answered["error"]
    model = answered["summary"]["model"]
    assert model.startswith("local/mistral@") and "+lora@" in model  # its own base, its own adapter, its own cache


def test_a_full_disk_while_checkpointing_keeps_the_last_good_checkpoint_usable(tmp_path):
    import errno

    from pipeline.stages.finetune.train import Checkpoints, Position, TrainingError

    class Full:
        def save_pretrained(self, path, state_dict=None):
            raise OSError(errno.ENOSPC, "No space left on device")

    checkpoints = Checkpoints(tmp_path, keep=3)
    good = tmp_path / "step-000010"
    (good / "adapter").mkdir(parents=True)
    (good / "adapter" / "a.bin").write_bytes(b"good")
    (good / "state.json").write_text(json.dumps({"position": {"step": 10}, "files": {"adapter/a.bin": 4}}))
    with pytest.raises(TrainingError, match=r"disk full while writing the checkpoint of step 20 .* the last good "
                                            r"checkpoint \(step 10\) stays usable: free space, then po resume"):
        checkpoints.save(Position(step=20), Full(), None, None, {})
    assert [p.name for p in tmp_path.iterdir()] == ["step-000010"]  # nothing half-written left behind
    assert [p.name for p in checkpoints.complete()] == ["step-000010"]


def test_a_diverged_run_is_drawn_not_crashed():
    import math

    from pipeline.stages.finetune.store import Point
    from po_console.panes.finetune import loss_chart

    points = [Point(i, "train", 0.0, math.nan, 1e-4, None, None, None, None, {}, 0.0) for i in range(1, 4)]
    assert "no finite loss in 3 steps" in loss_chart(points, [], 60, 8).plain


def test_more_processes_than_batches_is_refused_before_training(tmp_path, tiny):
    ws = teacher_ws(tmp_path / "ws", tiny, steps=5, every=5)
    set_tables(ws, TINY.format(base=tiny, steps=5, every=5, merge="false").replace("batch_size = 1", "batch_size = 4")
               + "processes = 3\n")
    proc = po("run", "finetune", ws=ws, check=False)
    assert proc.returncode == 2 and "give fewer batches than the 3 processes" in proc.stderr
