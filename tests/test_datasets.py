"""load_examples: a bad record is refused with its file and line, and says what is wrong."""

from __future__ import annotations

import json

import pytest

from pipeline.datasets import DatasetError, Example, file_sha256
from pipeline.datasets import load_examples as load
from pipeline.product_owner import INPUT_FIELDS
from pipeline.project import SHIPPED_FIELDS, Fields

PO = Fields.from_json(SHIPPED_FIELDS)  # the shipped program's fields


def load_examples(path, **kwargs):
    return load(path, PO, **kwargs)


def record(id="ex-1", **fields):
    """A valid input record; a field given as ... is left out."""
    base = {
        "id": id,
        "concept": "A flour tracker for small bakeries.",
        "requirements_yaml": "requirements:\n  - id: INV-1\n    text: Track flour\n",
        "existing_vision": "",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def with_outputs(id="ex-1", **fields):
    outputs = {"product_vision": "Bakery owners see their flour stock.",
               "product_owner_review": "Approved. INV-1 is covered."}
    return record(id, **{**outputs, **fields})


def write(tmp_path, *lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def error_of(path, **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        load_examples(path, **kwargs)
    return str(info.value)


# -- what loads ---------------------------------------------------------------------------


def test_valid_records_load_in_order_with_inputs_and_outputs(tmp_path):
    path = write(tmp_path, with_outputs("a"), record("b", existing_vision="An old vision."))
    examples = load_examples(path)
    assert [e.id for e in examples] == ["a", "b"]
    assert all(isinstance(e, Example) for e in examples)
    assert set(examples[0].inputs) == set(INPUT_FIELDS)
    assert examples[0].outputs == {"product_vision": "Bakery owners see their flour stock.",
                                   "product_owner_review": "Approved. INV-1 is covered."}
    assert examples[1].inputs["existing_vision"] == "An old vision."
    assert examples[1].outputs == {}


def test_blank_lines_are_skipped_and_do_not_shift_line_numbers(tmp_path):
    path = write(tmp_path, record("a"), "", "   ", record("b"), "[1, 2]")
    assert "\n\n" in path.read_text()
    message = error_of(path)
    assert f"{path}:5:" in message  # the list is on line 5, blank lines included
    path = write(tmp_path, "", record("a"), "  \t ", record("b"), "")
    assert [e.id for e in load_examples(path)] == ["a", "b"]


@pytest.mark.parametrize("missing", [..., None])
def test_existing_vision_missing_or_null_is_empty(tmp_path, missing):
    path = write(tmp_path, record("a", existing_vision=missing))
    assert load_examples(path)[0].inputs["existing_vision"] == ""


def test_existing_vision_may_be_an_empty_string(tmp_path):
    path = write(tmp_path, record("a", existing_vision=""))
    assert load_examples(path)[0].inputs["existing_vision"] == ""


def test_with_outputs_loads_reference_outputs(tmp_path):
    path = write(tmp_path, with_outputs("a"))
    (example,) = load_examples(path, with_outputs=True)
    assert example.outputs["product_vision"].startswith("Bakery")
    assert example.outputs["product_owner_review"].startswith("Approved")


def test_to_dspy_marks_the_three_inputs(tmp_path):
    (example,) = load_examples(write(tmp_path, with_outputs("a")), with_outputs=True)
    dspy_example = example.to_dspy()
    assert set(dspy_example.inputs().keys()) == set(INPUT_FIELDS)
    assert dspy_example.labels().product_vision == example.outputs["product_vision"]


def test_file_sha256_changes_with_the_content(tmp_path):
    path = write(tmp_path, record("a"))
    first = file_sha256(path)
    assert len(first) == 64 and first == file_sha256(path)
    write(tmp_path, record("b"))
    assert file_sha256(path) != first


# -- what is refused ----------------------------------------------------------------------


def test_bad_json_names_file_and_line(tmp_path):
    path = write(tmp_path, record("a"), record("b"), '{"id": "c", "concept": ')
    message = error_of(path)
    assert f"{path}:3:" in message
    assert "not valid JSON" in message
    assert "column" in message


@pytest.mark.parametrize("line, kind", [("[1, 2]", "list"), ('"text"', "str"), ("42", "int"), ("null", "NoneType")])
def test_a_line_that_is_not_an_object_names_file_and_line(tmp_path, line, kind):
    path = write(tmp_path, record("a"), line)
    message = error_of(path)
    assert f"{path}:2:" in message
    assert "expected a JSON object" in message and kind in message


def test_missing_concept_names_file_line_and_key(tmp_path):
    path = write(tmp_path, record("a"), record("b"), record("c", concept=...))
    message = error_of(path)
    assert f"{path}:3:" in message
    assert "'concept'" in message and "missing" in message


@pytest.mark.parametrize("key", ["id", "concept", "requirements_yaml"])
def test_every_required_key_is_checked(tmp_path, key):
    line = record("a")
    del line[key]
    path = write(tmp_path, line)
    message = error_of(path)
    assert f"{path}:1:" in message and repr(key) in message and "missing" in message


@pytest.mark.parametrize("empty", ["", "   \n  "])
def test_empty_requirements_yaml_names_file_line_and_key(tmp_path, empty):
    path = write(tmp_path, record("a"), record("b", requirements_yaml=empty))
    message = error_of(path)
    assert f"{path}:2:" in message
    assert "'requirements_yaml'" in message and "non-empty string" in message


def test_a_non_string_required_field_is_refused(tmp_path):
    path = write(tmp_path, record("a", concept=["a", "list"]))
    message = error_of(path)
    assert f"{path}:1:" in message and "'concept'" in message and "non-empty string" in message


def test_a_numeric_id_is_refused(tmp_path):
    path = write(tmp_path, record(7))
    message = error_of(path)
    assert f"{path}:1:" in message and "'id'" in message and "got 7" in message


def test_a_long_bad_value_is_shortened_in_the_message(tmp_path):
    path = write(tmp_path, record("a", concept=["x" * 500]))
    message = error_of(path)
    assert "x" * 100 not in message


@pytest.mark.parametrize("value", [5, ["old", "vision"], {"text": "old"}, True])
def test_non_string_existing_vision_names_file_and_line(tmp_path, value):
    path = write(tmp_path, record("a"), record("b", existing_vision=value))
    message = error_of(path)
    assert f"{path}:2:" in message
    assert "'existing_vision'" in message and "must be a string" in message


def test_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path, record("a"), record("dup"), record("b"), record("dup"))
    message = error_of(path)
    assert f"{path}:4:" in message
    assert "'dup'" in message
    assert "already used on line 2" in message


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    message = error_of(path)
    assert str(path) in message and "no records" in message


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.jsonl"
    message = error_of(path)
    assert str(path) in message and "not found" in message


def test_a_file_that_is_not_utf8_names_the_path(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(json.dumps(record("a")).encode() + b"\n\xff\xfe broken\n")
    message = error_of(path)
    assert str(path) in message and "not UTF-8" in message


@pytest.mark.parametrize("key", ["product_vision", "product_owner_review"])
def test_with_outputs_requires_both_reference_outputs(tmp_path, key):
    path = write(tmp_path, with_outputs("a"), with_outputs("b", **{key: ...}))
    message = error_of(path, with_outputs=True)
    assert f"{path}:2:" in message and repr(key) in message and "missing" in message
    assert len(load_examples(path)) == 2  # without outputs required, the same file loads


def test_with_outputs_refuses_an_empty_reference_output(tmp_path):
    path = write(tmp_path, with_outputs("a", product_owner_review="  "))
    message = error_of(path, with_outputs=True)
    assert f"{path}:1:" in message and "'product_owner_review'" in message and "non-empty string" in message


def test_the_first_problem_is_the_one_reported(tmp_path):
    path = write(tmp_path, record("a"), record("b", concept=...), "not json")
    assert f"{path}:2:" in error_of(path)


def test_committed_demo_data_is_what_the_generator_makes():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(repo / "scripts" / "make_demo_data.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_line_separator_inside_a_json_string_is_text_not_a_new_record(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(record(concept="A tracker\u2028for bakeries"), ensure_ascii=False) + "\n",
                    encoding="utf-8")
    (example,) = load_examples(path)
    assert example.inputs["concept"] == "A tracker\u2028for bakeries"
