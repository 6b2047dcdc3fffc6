"""What a served model (llama.cpp, vLLM, Ollama, any OpenAI-compatible server) is sent so it
parses and stops like the in-process engine: an output bound from the fields' budgets
(`max_tokens`), and the field-marker structure as a constraint in the server's own dialect.

Without them a small model loops until its context slot fills (field-notes: 4/4 parse
failures, 2,400-3,500 tokens per answer, past the time-out). Prompts that are not DSPy
ChatAdapter prompts (an LM judge's, say) go as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.providers.structure import Structure, structure_from_prompt


def _same(text: str) -> str:
    return text


@dataclass
class Shaped:
    """One request's additions: the bound, the server's constraint fields, how to read the reply."""

    max_tokens: int | None = None
    extra: dict = field(default_factory=dict)
    read: Callable[[str], str] = _same


class OutputShape:
    """Per provider: resolves `structure = "auto"` once (asking the server), then shapes requests."""

    def __init__(self, table: dict, detect: Callable[[], str] | None = None):
        self.structure = table.get("structure", "auto")
        self.max_chars = dict(table.get("max_chars") or {})
        self.default_max_chars = int(table.get("default_max_chars") or 1500)
        self.temperature = table.get("temperature")
        self.repetition_penalty = table.get("repetition_penalty")
        self._detect = detect
        self._dialect: str | None = None if self.structure == "auto" else self.structure
        self._lock = threading.Lock()

    def dialect(self) -> str:
        with self._lock:
            if self._dialect is None:
                try:
                    self._dialect = self._detect() if self._detect else "none"
                except Exception:  # noqa: BLE001 - an unknown server gets no constraint, still the bound
                    self._dialect = "none"
            return self._dialect

    def shape(self, last_user_text: str, asked_max_tokens: int | None) -> Shaped:
        structure = structure_from_prompt(last_user_text, self.max_chars, self.default_max_chars)
        if structure is None:
            return Shaped(asked_max_tokens)
        # Every token is at least one byte: the grammar's byte bound always reaches `completed`.
        bound = structure.max_bytes()
        limit = min(bound, asked_max_tokens) if asked_max_tokens else bound
        dialect = self.dialect()
        extra = constraint(structure, dialect)
        if self.repetition_penalty is not None and dialect in ("llama.cpp", "vllm"):
            extra["repeat_penalty" if dialect == "llama.cpp" else "repetition_penalty"] = self.repetition_penalty
        return Shaped(limit, extra, structure.from_json if dialect == "ollama" else _same)


def constraint(structure: Structure, dialect: str) -> dict:
    """The request fields that carry the structure in a server's dialect."""
    if dialect == "llama.cpp":
        return {"grammar": structure.gbnf()}
    if dialect == "vllm":
        return {"structured_outputs": {"regex": structure.regex()}}
    if dialect == "ollama":
        return {"format": structure.json_schema()}
    return {}


def dialect_of_models_listing(owners: list[str]) -> str:
    """What `GET /v1/models` says the server is: llama.cpp answers owned_by "llamacpp", vLLM "vllm"."""
    if any(o == "llamacpp" for o in owners):
        return "llama.cpp"
    if any(o == "vllm" for o in owners):
        return "vllm"
    return "none"
