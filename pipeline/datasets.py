"""Loading PO data sets (JSONL). A bad record is refused with its file and line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

INPUT_FIELDS = ("concept", "requirements_yaml", "existing_vision")
OUTPUT_FIELDS = ("product_vision", "product_owner_review")


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Example:
    id: str
    inputs: dict[str, str]
    outputs: dict[str, str]  # reference outputs; empty for pool inputs

    def to_dspy(self):
        import dspy

        return dspy.Example(**self.inputs, **self.outputs).with_inputs(*INPUT_FIELDS)


def read_text(path: Path) -> str:
    """A data file's text, or a DatasetError naming the file and what is wrong with it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_examples(path: Path, *, with_outputs: bool = False) -> list[Example]:
    """Read a JSONL file of PO examples: `id`, the three inputs and, for train/val, the outputs.

    `existing_vision` may be empty or missing (no vision yet); every other field is a
    non-empty string. Raises DatasetError naming the file and line of the first problem.
    """
    lines = read_text(path).splitlines()
    examples: list[Example] = []
    seen: dict[str, int] = {}
    required = ("id", "concept", "requirements_yaml") + (OUTPUT_FIELDS if with_outputs else ())
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for key in required:
            value = record.get(key)
            if not isinstance(value, str) or not value.strip():
                problem = "missing" if key not in record else f"must be a non-empty string (got {value!r:.40})"
                raise DatasetError(f"{where}: key {key!r} {problem}")
        vision = record.get("existing_vision", "")
        if vision is None:
            vision = ""
        if not isinstance(vision, str):
            raise DatasetError(f"{where}: key 'existing_vision' must be a string (got {vision!r:.40})")
        if record["id"] in seen:
            raise DatasetError(f"{where}: id {record['id']!r} already used on line {seen[record['id']]}")
        seen[record["id"]] = number
        inputs = {"concept": record["concept"], "requirements_yaml": record["requirements_yaml"], "existing_vision": vision}
        outputs = {k: record[k] for k in OUTPUT_FIELDS if isinstance(record.get(k), str)}
        examples.append(Example(record["id"], inputs, outputs))
    if not examples:
        raise DatasetError(f"{path}: no records")
    return examples


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
