"""A served model is sent what makes the in-process engine parse and stop: the output bound
from the fields' budgets, and the field-marker structure in the server's own dialect
(llama.cpp GBNF, vLLM regex, Ollama JSON schema), through the real client libraries against
a loopback server. A greedy request that timed out is not retried."""

from __future__ import annotations

import json

import dspy
import pytest

from pipeline.providers import build_engine, build_lm, model_string
from pipeline.providers.structure import Structure
from tests import loopback as lb
from tests.loopback import Loopback

INPUTS = {"concept": "A booking tool for clinics", "requirements_yaml": "must:\n  - book slots",
          "existing_vision": ""}
BUDGET = {"max_chars": {"product_vision": 300, "product_owner_review": 200}, "default_max_chars": 100}


def _po_messages():
    from pipeline.product_owner import ProductOwner

    return dspy.ChatAdapter().format(ProductOwner, demos=[], inputs=INPUTS)


def _openai(url: str, **table):
    return {"kind": "openai", "model": "m", "base_url": url + "/v1", "limits": {"max_retries": 2,
            "backoff_initial_s": 0.0, "backoff_max_s": 0.0, "timeout_s": 5}, **BUDGET, **table}


@pytest.fixture
def server():
    with Loopback() as running:
        yield running


def _structure() -> Structure:
    return Structure(("product_vision", "product_owner_review"), BUDGET["max_chars"], 100)


def test_llama_cpp_is_recognised_and_sent_the_grammar_and_the_bound(server):
    server.default(lb.OPENAI_MODELS, lb.openai_models("m", owned_by="llamacpp"))
    server.script(lb.OPENAI_CHAT, lb.openai_chat(lb.PO_ANSWER))
    lm = build_lm(_openai(server.url, repetition_penalty=1.2), "served", cache=False)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        outputs = lm(messages=_po_messages())
    body = server.requests_to(lb.OPENAI_CHAT)[0].body
    assert body["grammar"] == _structure().gbnf()
    assert body["max_tokens"] == _structure().max_bytes() < 700
    assert body["repeat_penalty"] == 1.2  # llama.cpp's name for it
    assert "[[ ## completed ## ]]" in outputs[0]


def test_vllm_gets_the_regex_as_structured_outputs_and_an_unknown_server_only_the_bound(server):
    server.default(lb.OPENAI_MODELS, lb.openai_models("m", owned_by="vllm"))
    build_lm(_openai(server.url), "vllm", cache=False)(messages=_po_messages())
    body = server.requests_to(lb.OPENAI_CHAT)[-1].body
    assert body["structured_outputs"] == {"regex": _structure().regex()}
    assert "grammar" not in body and "repetition_penalty" not in body  # not asked for

    server.default(lb.OPENAI_MODELS, lb.openai_models("m"))
    build_lm(_openai(server.url), "other", cache=False)(messages=_po_messages())
    body = server.requests_to(lb.OPENAI_CHAT)[-1].body
    assert "grammar" not in body and "structured_outputs" not in body
    assert body["max_tokens"] == _structure().max_bytes()

    # Switched off per provider; a prompt that is not the program's goes as it was asked.
    build_lm(_openai(server.url, structure="none"), "off", cache=False)(messages=_po_messages())
    assert "grammar" not in server.requests_to(lb.OPENAI_CHAT)[-1].body
    build_lm(_openai(server.url, structure="llama.cpp"), "judge", cache=False, )(
        messages=[{"role": "user", "content": "Rate this from 0 to 1."}], max_tokens=33)
    body = server.requests_to(lb.OPENAI_CHAT)[-1].body
    assert "grammar" not in body and body["max_tokens"] == 33


def test_ollama_takes_a_json_schema_and_the_answer_is_read_back_as_fields(server):
    answer = json.dumps({"product_vision": "For clinics, a booking tool.", "product_owner_review": "Approved."})
    server.script(lb.OLLAMA_CHAT, lb.ollama_chat(answer))
    table = {"kind": "ollama", "model": "po-student", "host": server.url, "structure": "ollama",
             "temperature": 0.0, **BUDGET}
    from pipeline.product_owner import ProductOwner

    with dspy.context(lm=build_lm(table, "ollama", cache=False), adapter=dspy.ChatAdapter()):
        prediction = dspy.Predict(ProductOwner)(**INPUTS)
    assert prediction.product_vision == "For clinics, a booking tool."
    body = server.requests_to(lb.OLLAMA_CHAT)[0].body
    assert body["format"] == _structure().json_schema()
    assert body["options"]["num_predict"] == _structure().max_bytes()
    assert body["options"]["temperature"] == 0.0


def test_a_greedy_request_that_timed_out_is_not_retried_a_sampled_one_is(server):
    server.default(lb.OPENAI_CHAT, lb.openai_chat(lb.PO_ANSWER, delay=1.0))
    limits = {"max_retries": 2, "backoff_initial_s": 0.0, "backoff_max_s": 0.0, "timeout_s": 0.3}
    greedy = build_engine("greedy", _openai(server.url, temperature=0.0, limits=limits))
    lm = dspy.LM("openai/m@x", engine=greedy, cache=False, num_retries=0)
    with pytest.raises(Exception, match="greedy.*not retried"):
        lm(messages=_po_messages())
    assert greedy.requests == 1

    sampled = build_engine("sampled", _openai(server.url, temperature=0.7, limits=limits))
    lm = dspy.LM("openai/m@y", engine=sampled, cache=False, num_retries=0)
    with pytest.raises(Exception, match="gave up after 3 attempts"):
        lm(messages=_po_messages())
    assert sampled.requests == 3


def test_the_bound_and_the_constraint_key_the_cache():
    a = _openai("http://127.0.0.1:1")
    b = {**a, "structure": "none"}
    assert model_string("x", a, None) != model_string("x", b, None)
