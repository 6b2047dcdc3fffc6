"""Evaluation: a parse failure or an error is a result of its own, never a silent 0."""

from __future__ import annotations

import threading

import dspy
import pytest
from dspy.lm15 import Message, Response, Usage

from pipeline.datasets import Example
from pipeline.evaluation import evaluate_examples, evaluate_one, lm_call_counter, summarize, t_quantile_975
from pipeline.metric import WEIGHTS
from pipeline.product_owner import ProductOwnerProgram
from pipeline.project import shipped_project
from state.read import EvalResult

GOOD = ("[[ ## product_vision ## ]]\nFor clinic nurses who swap shifts by phone, this tool helps them "
        "swap in two taps (CLIN-1). It reduces missed shifts.\n\n[[ ## product_owner_review ## ]]\n"
        "Verdict: Approved\n- CLIN-1 is a must.\n- Measure swaps per week.\n\n[[ ## completed ## ]]")


class ScriptedEngine:
    """A DSPy engine answering from a script: the real DSPy path (adapter, cache, callbacks)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def complete(self, request):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Response(id=None, model=request.model, message=Message.assistant(answer), finish_reason="stop",
                        usage=Usage(input_tokens=100, output_tokens=20))


def example(i: int = 0) -> Example:
    return Example(f"ex-{i}", {"concept": f"A shift tool for clinic nurses, variant {i}.",
                               "requirements_yaml": "requirements:\n  - id: CLIN-1\n    title: Swaps\n",
                               "existing_vision": ""}, {})


@pytest.fixture
def configure(tmp_path):
    from pipeline.providers import configure_dspy_cache

    configure_dspy_cache(tmp_path / "cache")

    def use(engine, cache=True):
        lm = dspy.LM(f"local/scripted-{id(engine)}", engine=engine, cache=cache, num_retries=0)
        dspy.configure(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False),
                       callbacks=[lm_call_counter()], track_usage=True)
        return lm

    yield use
    dspy.configure(callbacks=[])


def test_a_broken_parse_is_recorded_as_a_parse_failure_not_a_zero(configure):
    configure(ScriptedEngine(["I think the vision is great!"]))
    row = evaluate_one(ProductOwnerProgram(), example(), shipped_project(), 0)
    assert row["status"] == "parse_failure"
    assert row.get("score") is None
    assert row["outputs"] == {"raw": "I think the vision is great!"}
    assert row["lm_calls"] == 1 and row["input_tokens"] == 100


def test_a_provider_error_is_recorded_as_an_error(configure):
    configure(ScriptedEngine([RuntimeError("connection reset by peer")]))
    row = evaluate_one(ProductOwnerProgram(), example(), shipped_project(), 0)
    assert row["status"] == "error" and "connection reset" in row["error"]


def test_a_good_answer_is_scored_with_its_parts_and_usage(configure):
    configure(ScriptedEngine([GOOD]))
    row = evaluate_one(ProductOwnerProgram(), example(), shipped_project(), 3)
    assert row["status"] == "ok" and row["position"] == 3
    assert row["score"] == pytest.approx(sum(row["parts"][k] * w for k, w in WEIGHTS.items()), abs=1e-4)
    assert row["parts"]["requirement_coverage"] == 1.0
    assert (row["lm_calls"], row["cache_hits"], row["output_tokens"]) == (1, 0, 20)


def test_a_cached_answer_counts_as_a_call_and_a_cache_hit(configure):
    engine = ScriptedEngine([GOOD])
    configure(engine)
    evaluate_one(ProductOwnerProgram(), example(), shipped_project(), 0)
    again = evaluate_one(ProductOwnerProgram(), example(), shipped_project(), 0)
    assert engine.calls == 1
    assert (again["lm_calls"], again["cache_hits"], again["input_tokens"]) == (1, 1, 0)


def test_evaluation_stops_submitting_when_asked_and_keeps_what_was_in_flight():
    stop = threading.Event()
    started = []

    def work(ex, position):
        started.append(position)
        if position == 1:
            stop.set()
        return {"position": position}

    got = list(evaluate_examples(work, [(i, example(i)) for i in range(10)], threads=2, stop=stop))
    assert len(got) == len(started) < 10


def test_summary_keeps_failures_out_of_the_mean_and_reports_them_beside_it():
    rows = [EvalResult(f"ok-{s}", i, "ok", s, 1.0, parts={"a": s}, lm_calls=1, input_tokens=10, output_tokens=5)
            for i, s in enumerate((0.2, 0.4, 0.6))]
    rows.append(EvalResult("garbled", 3, "parse_failure", None, 9.0, lm_calls=1, input_tokens=10, output_tokens=5))
    summary = summarize(rows)
    assert summary["mean"] == pytest.approx(0.4)
    assert (summary["examples"], summary["scored"], summary["parse_failures"], summary["errors"]) == (4, 3, 1, 0)
    half = t_quantile_975(2) * 0.2 / 3 ** 0.5
    assert summary["ci95"] == pytest.approx([0.4 - half, 0.4 + half])
    assert summary["latency_p95_s"] == pytest.approx(7.8)
    assert summary["parts"] == {"a": pytest.approx(0.4)}


@pytest.mark.parametrize("df, expected", [(1, 12.706), (10, 2.228), (30, 2.042), (120, 1.980)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile_975(df) == pytest.approx(expected, abs=0.003)


def test_a_final_provider_failure_stops_the_evaluation_instead_of_scoring_errors(configure):
    from pipeline.providers.remote import ProviderError

    configure(ScriptedEngine([ProviderError("teacher", "gemini-2.5-pro", "HTTP 401: refused", "refresh credentials")]))
    with pytest.raises(ProviderError, match="teacher \\(gemini-2.5-pro\\): HTTP 401"):
        evaluate_one(ProductOwnerProgram(), example(), shipped_project(), 0)


def test_a_program_that_returns_nothing_is_an_error_of_the_program_not_a_score():
    class Nothing(dspy.Module):
        def forward(self, **inputs):
            return None

    row = evaluate_one(Nothing(), example(), shipped_project(), 0)
    assert row["status"] == "error" and row["error"] == "the program returned None, not a dspy.Prediction"
    assert summarize([EvalResult("x", 0, row["status"], None, 0.1)])["errors"] == 1
