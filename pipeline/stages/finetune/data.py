"""Training examples for the student: the teacher's accepted answers, rendered exactly as the
student will be prompted at inference time.

One example per predictor call of each record's stored trace (as DSPy's BootstrapFinetune
builds them): the prompt is what the program's ChatAdapter renders for that predictor
(instructions, demos, field markers — `ChatAdapter.format_finetune_data`), put through the
base model's chat template with the generation prompt, exactly as the local provider sends
it; the answer is the rest of the templated conversation (the assistant's fields, then the
end-of-turn token). The loss counts only the answer's tokens.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.datasets import DatasetError, jsonl_lines, read_text

IGNORE = -100  # the label of a token the loss does not count


@dataclass(frozen=True)
class Call:
    """One predictor call of an accepted teacher answer."""

    record: str  # the record's id (its example id)
    predictor: str
    inputs: dict
    outputs: dict


@dataclass(frozen=True)
class Tokenized:
    record: str
    predictor: str
    input_ids: list[int]
    labels: list[int]  # IGNORE on the prompt

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def calls_from_records(records: list[dict], predictors: list[str]) -> list[Call]:
    """Each record's trace as calls. A record without a trace (imported, or from before traces
    were stored) is one call of the program's only predictor; a program of several needs traces."""
    calls = []
    for r in records:
        trace = r.get("trace")
        if trace:
            for step in trace:
                if step["predictor"] not in predictors:
                    raise ConfigError(f"finetune: record {r['id']} has a call of predictor {step['predictor']!r}, "
                                      f"which the program does not have ({', '.join(predictors)})")
                calls.append(Call(r["id"], step["predictor"], step["inputs"], step["outputs"]))
        elif len(predictors) == 1:
            calls.append(Call(r["id"], predictors[0], r["inputs"], r["outputs"]))
        else:
            raise ConfigError(f"finetune: record {r['id']} has no trace, and the program has {len(predictors)} "
                              "predictors: rerun the teacher stage (it stores each predictor's trace)")
    return calls


def read_jsonl(path: Path) -> list[dict]:
    """Records of a teacher data set file (`po teacher export`'s format: id, inputs, outputs, trace)."""
    records = []
    for number, line in enumerate(jsonl_lines(read_text(path)), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict) or not isinstance(record.get("inputs"), dict) \
                or not isinstance(record.get("outputs"), dict):
            raise DatasetError(f"{path}:{number}: expected an object with inputs and outputs (po teacher export)")
        records.append({"id": str(record.get("id") or f"line-{number}"), "inputs": record["inputs"],
                        "outputs": record["outputs"], "trace": record.get("trace")})
    return records


def render(call: Call, program, tokenizer, adapter=None) -> Tokenized:
    """The call as the student will see it: prompt tokens (labels ignored) + answer tokens."""
    import dspy

    adapter = adapter or dspy.ChatAdapter()
    predictor = dict(program.named_predictors())[call.predictor]
    data = adapter.format_finetune_data(predictor.signature, predictor.demos, call.inputs, call.outputs)
    messages = data["messages"]
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(messages, tokenize=False)
    if not whole.startswith(prompt):
        raise ConfigError("finetune: the base model's chat template does not render a conversation as its prompt "
                          "followed by the answer; this base model cannot be trained on rendered calls")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(whole[len(prompt):], add_special_tokens=False)["input_ids"]
    return Tokenized(call.record, call.predictor, prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids)


def split(examples: list[Tokenized], eval_fraction: float, seed: int) -> tuple[list[Tokenized], list[Tokenized]]:
    """(train, eval) by record, so that the calls of one answer stay on one side; the same seed,
    the same split."""
    records = sorted({e.record for e in examples})
    random.Random(seed).shuffle(records)
    n_eval = round(len(records) * eval_fraction)
    if eval_fraction > 0 and n_eval == 0:
        n_eval = 1
    if n_eval >= len(records) and eval_fraction > 0:
        raise ConfigError(f"finetune: {len(records)} records are too few for an eval split of {eval_fraction:g} "
                          "(every record would be held out): lower eval_fraction or add records")
    held = set(records[:n_eval])
    return [e for e in examples if e.record not in held], [e for e in examples if e.record in held]
