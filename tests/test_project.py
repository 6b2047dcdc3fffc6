"""The project a workspace runs: its program's fields read from the program, and what a
metric returns read on po-console's terms (DSPy's contract)."""

from __future__ import annotations

import math

import dspy
import pytest

from pipeline.config import ConfigError
from pipeline.metric import Score
from pipeline.project import SHIPPED_FIELDS, Project, read_metric_result, shipped_project


def test_the_shipped_programs_fields_are_read_from_its_signature_and_match_what_old_runs_recorded():
    fields = shipped_project().fields
    assert fields.to_json() == SHIPPED_FIELDS  # runs recorded before fields were recorded ran exactly these
    assert fields.optional == ("existing_vision",)  # forward gives it a default


@pytest.mark.parametrize("returned, score, parts, feedback", [
    (0.75, 0.75, {}, None),
    (True, 1.0, {}, None),
    (Score(0.5, {"length": 1.0}), 0.5, {"length": 1.0}, None),
    (dspy.Prediction(score=0.25, feedback="too short", parts={"length": 0.0}), 0.25, {"length": 0.0}, "too short"),
    ({"score": 1, "feedback": "fine"}, 1.0, {}, "fine"),
])
def test_a_metric_may_return_a_float_a_bool_or_a_prediction_with_feedback_and_parts(returned, score, parts, feedback):
    scored = read_metric_result(returned, (0.0, 1.0))
    assert (scored.score, scored.parts, scored.feedback, scored.error) == (score, parts, feedback, None)


@pytest.mark.parametrize("returned, error", [
    (math.nan, "metric error: returned nan"),
    (1.5, "metric error: returned 1.5, outside its range [0, 1]"),
    ("0.9", "metric error: returned str '0.9', not a number"),
    (dspy.Prediction(feedback="no score"), "metric error: returned a Prediction without a score"),
])
def test_what_is_not_a_score_in_range_is_an_error_of_the_metric_never_a_zero(returned, error):
    scored = read_metric_result(returned, (0.0, 1.0))
    assert scored.score is None and scored.error == error


def test_a_range_of_its_own_is_honoured():
    assert read_metric_result(87.0, (0.0, 100.0)).score == 87.0


def test_a_factory_that_does_not_build_a_program_is_named(tmp_path):
    package = tmp_path / "odd_project"
    package.mkdir()
    (package / "__init__.py").write_text("def make():\n    return 'not a module'\n\n"
                                         "def broken():\n    raise RuntimeError('needs a GPU')\n\n"
                                         "def metric(example, prediction, trace=None):\n    return 1.0\n")
    with pytest.raises(ConfigError, match=r"program.module 'odd_project:make' gave a str, not a dspy.Module"):
        Project("odd_project:make", "odd_project:metric", python_path=[tmp_path], score_range=(0, 1))
    with pytest.raises(ConfigError, match=r"'odd_project:broken' could not be built: RuntimeError: needs a GPU"):
        Project("odd_project:broken", "odd_project:metric", python_path=[tmp_path], score_range=(0, 1))
    with pytest.raises(ConfigError, match=r"must be 'package.module:name' \(got 'odd_project'\)"):
        Project("odd_project", "odd_project:metric", python_path=[tmp_path], score_range=(0, 1))


def test_a_metric_of_two_arguments_as_dspy_evaluate_calls_them_and_numpy_scores_work(tmp_path):
    package = tmp_path / "two_args"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import numpy as np\n\n"
        "def metric(example, prediction):\n    return np.float32(0.5)\n\n"
        "def keyword(example, prediction, *, trace=None):\n    return np.bool_(trace is None)\n")
    for name, expected in (("metric", 0.5), ("keyword", 1.0)):
        project = Project("pipeline.product_owner:ProductOwnerProgram", f"two_args:{name}", python_path=[tmp_path],
                          score_range=(0, 1))
        scored = project.score(dspy.Example(concept="c"), dspy.Prediction(product_vision="v"))
        assert (scored.score, scored.error) == (expected, None)


def test_non_finite_parts_are_left_out():
    scored = read_metric_result(dspy.Prediction(score=0.5, parts={"a": math.nan, "b": 1.0}), (0.0, 1.0))
    assert scored.parts == {"b": 1.0}
