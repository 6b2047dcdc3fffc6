"""Loading data sets (JSONL) against the program's fields. A bad record is refused with its
file, line and field.

A record has an `id`, the program's input fields and, for train/val, its output fields.
A file may name a field differently: `[data.fields]` in po.toml maps the file's key to the
field (`idea = "concept"`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Example:
    id: str
    inputs: dict[str, str]
    outputs: dict[str, str]  # reference outputs; empty for pool inputs

    def to_dspy(self):
        import dspy

        return dspy.Example(**self.inputs, **self.outputs).with_inputs(*self.inputs)


def read_text(path: Path) -> str:
    """A data file's text, or a DatasetError naming the file and what is wrong with it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text: split on newlines only (str.splitlines would also split on
    U+2028, U+2029 and U+0085, which JSON strings may hold raw)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def load_examples(path: Path, fields, *, field_map: dict[str, str] | None = None,
                  with_outputs: bool = False) -> list[Example]:
    """Read a JSONL file of examples for a program with `fields` (pipeline.project.Fields, or
    `Workspace.examples` for a workspace's program): `id`, the inputs and, `with_outputs`, the outputs.

    An optional input (one `forward` gives a default) may be empty or missing; every other
    field is a non-empty string. Raises DatasetError naming the file and line of the first problem.
    """
    inputs, outputs, optional = tuple(fields.inputs), tuple(fields.outputs), tuple(fields.optional)
    renamed = {field: key for key, field in (field_map or {}).items()}  # field -> the file's key
    lines = jsonl_lines(read_text(path))
    examples: list[Example] = []
    seen: dict[str, int] = {}
    required = [f for f in inputs if f not in optional] + (list(outputs) if with_outputs else [])
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
        for field in ("id", *required):
            key = renamed.get(field, field)
            value = record.get(key)
            if not isinstance(value, str) or not value.strip():
                mapped = f" (the program's {field})" if key != field else ""
                problem = "missing" if key not in record else f"must be a non-empty string (got {value!r:.40})"
                raise DatasetError(f"{where}: key {key!r}{mapped} {problem}")
        values = {}
        for field in (*inputs, *outputs):
            key = renamed.get(field, field)
            value = record.get(key)
            if field in optional and value is None:
                value = ""
            if value is not None and not isinstance(value, str):
                raise DatasetError(f"{where}: key {key!r} must be a string (got {value!r:.40})")
            values[field] = value
        if record["id"] in seen:
            raise DatasetError(f"{where}: id {record['id']!r} already used on line {seen[record['id']]}")
        seen[record["id"]] = number
        examples.append(Example(record["id"], {f: values[f] for f in inputs},
                                {f: values[f] for f in outputs if isinstance(values[f], str)}))
    if not examples:
        raise DatasetError(f"{path}: no records")
    return examples


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_unchanged(path: Path, sha256: str | None) -> None:
    """A resume reads the file the run started with, or is refused (DatasetError)."""
    if not path.exists():
        raise DatasetError(f"{path}: not found (the file this run started with is gone)")
    if file_sha256(path) != sha256:
        raise DatasetError(f"{path} changed since this run started: start a new run instead of resuming")
