"""The embedded model as a DSPy engine: structure from the prompt, grammar, batching."""

from __future__ import annotations

import re
import threading

import dspy
import pytest

from pipeline.product_owner import ProductOwner
from pipeline.providers.local_engine import LocalEngine, LocalSettings
from pipeline.providers.structure import Structure, structure_from_prompt

INPUTS = {
    "concept": "A scheduling tool for community clinics, for nurses who juggle shifts by phone.",
    "requirements_yaml": "requirements:\n  - id: CLIN-004\n    title: Shift swaps\n    priority: must\n"
    "    acceptance_criteria:\n      - A swap is approved in two taps\n",
    "existing_vision": "",
}


def chat_adapter_messages(signature=ProductOwner, inputs=INPUTS):
    return dspy.ChatAdapter().format(signature, demos=[], inputs=inputs)


def test_output_fields_are_read_from_the_chat_adapter_prompt():
    last = chat_adapter_messages()[-1]["content"]
    structure = structure_from_prompt(last, {"product_vision": 300}, 200)
    assert structure.fields == ("product_vision", "product_owner_review")
    assert structure.chars_for("product_vision") == 300
    assert structure.chars_for("product_owner_review") == 200


def test_a_prompt_that_is_not_the_chat_adapters_is_left_unconstrained():
    assert structure_from_prompt("Write a haiku about SQLite.", {}, 100) is None


def test_what_the_grammar_accepts_the_chat_adapter_parses():
    structure = Structure(("product_vision", "product_owner_review"), {}, 200)
    text = ("[[ ## product_vision ## ]]\nFor nurses: swap shifts fast (CLIN-004).\n\n"
            "[[ ## product_owner_review ## ]]\nVerdict: Approved.\n- CLIN-004 is a must.\n\n[[ ## completed ## ]]")
    assert re.fullmatch(structure.regex(), text)
    parsed = dspy.ChatAdapter().parse(ProductOwner, text)
    assert parsed["product_owner_review"].startswith("Verdict: Approved")
    assert len(text.encode()) <= structure.max_bytes()


def test_field_text_cannot_open_a_marker_or_exceed_its_bound():
    structure = Structure(("answer",), {"answer": 10}, 10)
    assert not re.fullmatch(structure.regex(), "[[ ## answer ## ]]\nsee [x]\n\n[[ ## completed ## ]]")
    assert not re.fullmatch(structure.regex(), "[[ ## answer ## ]]\n" + "a" * 11 + "\n\n[[ ## completed ## ]]")
    assert re.fullmatch(structure.regex(), "[[ ## answer ## ]]\n" + "a" * 10 + "\n\n[[ ## completed ## ]]")


def test_model_string_carries_weights_and_decoding_revision():
    plain = LocalEngine(LocalSettings()).model_string()
    assert re.fullmatch(r"local/smollm2-135m-instruct@[0-9a-f]{12}~[0-9a-f]{8}", plain)
    assert LocalEngine(LocalSettings(temperature=0.7)).model_string() != plain
    # Batching does not change the text, so it does not change the cache key.
    assert LocalEngine(LocalSettings(max_batch=1)).model_string() == plain


@pytest.fixture(scope="module")
def fast_settings():
    return dict(max_chars={"product_vision": 120, "product_owner_review": 80}, threads=1)


def _predict_all(engine: LocalEngine, inputs_list: list[dict]) -> list:
    lm = dspy.LM(engine.model_string(), engine=engine, cache=False)
    results: list = [None] * len(inputs_list)

    def work(i):
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
            results[i] = dspy.Predict(ProductOwner)(**inputs_list[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs_list))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_are_batched_and_every_answer_parses(fast_settings):
    variants = [dict(INPUTS, concept=INPUTS["concept"] + f" Variant {i}.") for i in range(3)]
    batched = LocalEngine(LocalSettings(max_batch=4, batch_wait_ms=200, **fast_settings))
    answers = _predict_all(batched, variants)
    assert batched.generated_calls == 3
    assert batched.batches < 3  # at least two of the three shared a forward pass
    for answer in answers:
        assert answer.product_vision and answer.product_owner_review
        assert len(answer.product_vision) <= 120 and "[" not in answer.product_vision


def test_engine_reports_usage_to_dspy(fast_settings):
    engine = LocalEngine(LocalSettings(**fast_settings))
    lm = dspy.LM(engine.model_string(), engine=engine, cache=False)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        dspy.Predict(ProductOwner)(**INPUTS)
    usage = lm.history[-1]["usage"]
    assert usage["prompt_tokens"] > 100 and 0 < usage["completion_tokens"] <= 260


def test_a_lora_adapter_is_served_and_changes_the_model_string(tmp_path, fast_settings):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from pipeline.providers.local_model import ensure_converted

    directory, _ = ensure_converted()
    base = AutoModelForCausalLM.from_pretrained(directory)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")

    plain = LocalEngine(LocalSettings(**fast_settings))
    student = LocalEngine(LocalSettings(adapter=str(tmp_path / "adapter"), **fast_settings))
    assert re.search(r"\+lora@[0-9a-f]{12}~", student.model_string())
    assert student.model_string().split("+lora")[0] == plain.model_string().split("~")[0]
    answer = _predict_all(student, [INPUTS])[0]
    assert answer.product_vision and answer.product_owner_review  # the grammar holds with the adapter too
