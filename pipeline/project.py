"""The DSPy project a workspace runs: its program (a `dspy.Module` class, or a function that
returns one) and its metric, named in po.toml by import path — the shipped Product Owner
program and metric unless `[program]` / `[metric]` say otherwise.

Importing them runs the team's code: po.toml is trusted like a Makefile, and po-console
imports nothing that po.toml does not name. Every mistake is one line naming the po.toml
key: a module that does not import, a name that is not a program, a metric that does not
take `(example, prediction, trace=None)`.

Fields always come from the program: its inputs are the parameters of `forward` (one with a
default may be left empty), its outputs are the output fields of its last predictor (a
ChainOfThought's `reasoning` is the predictor's own, not the program's).
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.config import ConfigError

SHIPPED_PROGRAM = "pipeline.product_owner:ProductOwnerProgram"
SHIPPED_METRIC = "pipeline.metric:product_owner_metric"
REASONING = "reasoning"  # what ChainOfThought adds before the outputs
# What the runs recorded before programs were configurable ran: the shipped program's fields
# (a test holds them to its signature).
SHIPPED_FIELDS = {"inputs": ["concept", "requirements_yaml", "existing_vision"],
                  "outputs": ["product_vision", "product_owner_review"], "optional": ["existing_vision"]}


@dataclass(frozen=True)
class Fields:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    optional: tuple[str, ...] = ()  # inputs `forward` gives a default: they may be empty or missing

    def to_json(self) -> dict:
        return {"inputs": list(self.inputs), "outputs": list(self.outputs), "optional": list(self.optional)}

    @classmethod
    def from_json(cls, data: dict) -> Fields:
        return cls(tuple(data["inputs"]), tuple(data["outputs"]), tuple(data.get("optional", ())))


@dataclass
class Scored:
    """What a metric said of one answer, on po-console's terms: a score in the metric's range,
    its named parts and feedback when it gave them, or why it could not be used (`error`)."""

    score: float | None
    parts: dict[str, float]
    feedback: str | None = None
    error: str | None = None  # an error of the metric: kept out of the mean, never a 0


class Project:
    def __init__(self, program_ref: str, metric_ref: str, *, python_path: list[Path], score_range: tuple[float, float],
                 source: str = "po.toml"):
        self.program_ref, self.metric_ref = program_ref, metric_ref
        self.score_range = score_range
        self.source = source
        for path in reversed([os.path.abspath(p) for p in python_path]):  # "../src" of a workspace made just now
            if path not in sys.path:
                sys.path.insert(0, path)
        self.factory = _load(program_ref, f"{source}: program.module")
        self.metric = _load(metric_ref, f"{source}: metric.function")
        self._check_metric()
        self.fields = self._fields()

    @property
    def shipped(self) -> bool:
        return self.program_ref == SHIPPED_PROGRAM

    def new_program(self):
        """A fresh instance of the program, as written."""
        import dspy

        try:
            program = self.factory()
        except Exception as exc:  # noqa: BLE001 - the team's code: one line naming it
            raise ConfigError(f"{self.source}: program.module {self.program_ref!r} could not be built: "
                              f"{type(exc).__name__}: {_first_line(exc)}") from None
        if not isinstance(program, dspy.Module):
            raise ConfigError(f"{self.source}: program.module {self.program_ref!r} gave a {type(program).__name__}, "
                              "not a dspy.Module")
        if not program.named_predictors():
            raise ConfigError(f"{self.source}: program.module {self.program_ref!r} has no predictors")
        return program

    def _fields(self) -> Fields:
        program = self.new_program()
        # From the class: DSPy warns when an instance's forward is touched outside a call.
        params = [p for p in list(inspect.signature(type(program).forward).parameters.values())[1:]
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        inputs = tuple(p.name for p in params)
        if not inputs:
            raise ConfigError(f"{self.source}: program.module {self.program_ref!r}: forward() names no inputs "
                              "(it takes **kwargs): po-console reads the input fields from its parameters")
        last = program.named_predictors()[-1][1].signature
        outputs = tuple(name for name in last.output_fields if name != REASONING)
        optional = tuple(p.name for p in params if p.default is not p.empty)
        return Fields(inputs, outputs, optional)

    def _check_metric(self) -> None:
        try:
            params = list(inspect.signature(self.metric).parameters.values())
        except (TypeError, ValueError):  # a builtin or C function: trust it
            self._call = lambda example, prediction, trace: self.metric(example, prediction, trace)
            return
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        takes_more = any(p.kind == p.VAR_POSITIONAL for p in params)
        if len(required) > 3 or (len(positional) < 2 and not takes_more):
            shown = ", ".join(p.name for p in params)
            raise ConfigError(f"{self.source}: metric.function {self.metric_ref!r} takes ({shown}): a DSPy metric "
                              "takes (example, prediction, trace=None)")
        # dspy.Evaluate calls metrics with two arguments: a metric may take no trace at all.
        if len(positional) >= 3 or takes_more:
            self._call = lambda example, prediction, trace: self.metric(example, prediction, trace)
        elif any(p.name == "trace" for p in params) or any(p.kind == p.VAR_KEYWORD for p in params):
            self._call = lambda example, prediction, trace: self.metric(example, prediction, trace=trace)
        else:
            self._call = lambda example, prediction, trace: self.metric(example, prediction)

    def score(self, example, prediction, trace=None) -> Scored:
        """Call the metric and read what it returned: a float, a bool, or a dspy.Prediction /
        dict with `score` (and optionally `feedback`, `parts`). Never raises."""
        try:
            result = self._call(example, prediction, trace)
        except Exception as exc:  # noqa: BLE001 - an error of the metric, recorded as such
            from pipeline.evaluation import provider_failure

            final = provider_failure(exc)
            if final is not None:
                raise final from None  # the judge's provider is down or refuses us: the run stops, resumable
            return Scored(None, {}, None, f"metric error: {type(exc).__name__}: {_first_line(exc)}")
        return read_metric_result(result, self.score_range)

    def dspy_metric(self, judge=None) -> Callable:
        """The metric for DSPy's optimizers: a float, and an error of the metric raised (DSPy
        counts it as a failed example), never folded into a 0 by us. Its own LM calls go to
        `judge` when given."""
        import dspy

        project = self

        def metric(example, prediction, trace=None):
            with dspy.context(**({"lm": judge} if judge is not None else {})):
                scored = project.score(example, prediction, trace)
            if scored.error:
                raise MetricError(scored.error)
            return scored.score

        metric.__name__ = getattr(self.metric, "__name__", "metric")
        return metric


class MetricError(RuntimeError):
    pass


def read_metric_result(result: Any, score_range: tuple[float, float]) -> Scored:
    """A metric's return value on po-console's terms: a float or bool is the score; a
    dspy.Prediction (or dict) gives `score`, and may give `feedback` and `parts`; a float
    may carry `.parts` (the shipped metric's Score)."""
    value, feedback, parts = result, None, getattr(result, "parts", None)
    if isinstance(result, dict) or (hasattr(result, "keys") and not isinstance(result, (int, float))):
        if "score" not in result.keys():
            return Scored(None, {}, None, f"metric error: returned a {type(result).__name__} without a score")
        value, feedback, parts = result.get("score"), result.get("feedback"), result.get("parts")
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # a numpy scalar (np.float32, np.bool_)
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, (int, float)):
        return Scored(None, {}, None, f"metric error: returned {type(value).__name__} {str(value)[:40]!r}, not a number")
    value = float(value)
    low, high = score_range
    if not math.isfinite(value):
        return Scored(None, {}, None, f"metric error: returned {value}")
    if not low <= value <= high:
        return Scored(None, {}, None, f"metric error: returned {value:g}, outside its range [{low:g}, {high:g}]")
    clean = {str(k): float(v) for k, v in dict(parts or {}).items()
             if isinstance(v, (int, float)) and math.isfinite(float(v))}
    return Scored(value, clean, str(feedback) if feedback else None)


def _load(ref: str, key: str) -> Any:
    module_name, _, attribute = ref.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{key} must be 'package.module:name' (got {ref!r})")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the team's code may raise anything on import
        raise ConfigError(f"{key}: cannot import {module_name} ({type(exc).__name__}: {_first_line(exc)})") from None
    try:
        found = module
        for part in attribute.split("."):
            found = getattr(found, part)
    except AttributeError:
        raise ConfigError(f"{key}: {module_name} has no {attribute!r}") from None
    if key.endswith("program.module") and not callable(found):
        raise ConfigError(f"{key}: {ref!r} is not a dspy.Module class or a function returning one (it is a "
                          f"{type(found).__name__})")
    if key.endswith("metric.function") and not callable(found):
        raise ConfigError(f"{key}: {ref!r} is not a function (it is a {type(found).__name__})")
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def shipped_project() -> Project:
    """The shipped Product Owner program and metric (what a workspace without [program] runs)."""
    return Project(SHIPPED_PROGRAM, SHIPPED_METRIC, python_path=[], score_range=(0.0, 1.0))
