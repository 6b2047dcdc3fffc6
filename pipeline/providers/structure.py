"""Constrained decoding for the embedded model: the *structure* of DSPy's ChatAdapter
output is enforced with a regex grammar (llguidance); the *content* is left to the model.

Unconstrained, SmolLM2-135M parsed 0 of 10 PO prompts; with the adapter's field markers
as a grammar it parses 10 of 10 (field-notes). The field text is bounded in characters
and limited to printable ASCII without brackets/braces/backticks: each token consumes at
least one byte, so a token limit of `grammar_max_bytes()` always reaches `completed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# ChatAdapter ends its last user message with this sentence; it names the output fields in order.
_RESPOND = re.compile(r"Respond with the corresponding output fields, starting with the field (.*)$", re.DOTALL)
_MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")

# Letters, digits, whitespace and prose punctuation. Banning brackets, braces, backticks
# and angle brackets keeps the field markers unambiguous and stops the model's drift
# into code (field-notes: 9-10 of 10 outputs became plain prose).
TEXT_CHARS = r"[A-Za-z0-9 \n.,;:!?'\"()/%&+*=_@$-]"
FIRST_CHAR = r"[A-Za-z0-9\"(]"


@dataclass(frozen=True)
class Structure:
    fields: tuple[str, ...]
    max_chars: dict[str, int] = field(default_factory=dict)
    default_max_chars: int = 600

    def chars_for(self, name: str) -> int:
        return self.max_chars.get(name, self.default_max_chars)

    def regex(self) -> str:
        parts = []
        for i, name in enumerate(self.fields):
            sep = "" if i == 0 else r"\n\n"
            limit = self.chars_for(name) - 1
            parts.append(rf"{sep}\[\[ ## {name} ## \]\]\n{FIRST_CHAR}{TEXT_CHARS}{{0,{limit}}}")
        parts.append(r"\n\n\[\[ ## completed ## \]\]")
        return "".join(parts)

    def gbnf(self) -> str:
        """The same language as `regex()` in llama.cpp's grammar dialect (GBNF)."""
        lines = []
        body = []
        for i, name in enumerate(self.fields):
            sep = "" if i == 0 else "\\n\\n"
            body.append(f'"{sep}[[ ## {name} ## ]]\\n" first text{{0,{self.chars_for(name) - 1}}}')
        body.append('"\\n\\n[[ ## completed ## ]]"')
        lines.append("root ::= " + " ".join(body))
        lines.append("first ::= " + _gbnf_class(FIRST_CHAR))
        lines.append("text ::= " + _gbnf_class(TEXT_CHARS))
        return "\n".join(lines) + "\n"

    def json_schema(self) -> dict:
        """The fields as a JSON object of bounded strings (Ollama's `format`)."""
        return {"type": "object", "additionalProperties": False, "required": list(self.fields),
                "properties": {n: {"type": "string", "maxLength": self.chars_for(n)} for n in self.fields}}

    def from_json(self, text: str) -> str:
        """A JSON answer to `json_schema()` written back as the field markers DSPy's ChatAdapter
        parses; the text as it came when it is not such an object (it then fails to parse, as it should)."""
        import json

        try:
            value = json.loads(text)
        except ValueError:
            return text
        if not isinstance(value, dict):
            return text
        parts = [f"[[ ## {n} ## ]]\n{value.get(n, '')}" for n in self.fields]
        return "\n\n".join([*parts, "[[ ## completed ## ]]"])

    def headers(self) -> list[str]:
        return [f"[[ ## {name} ## ]]" for name in (*self.fields, "completed")]

    def max_bytes(self) -> int:
        """Upper bound on the bytes (hence tokens) of any output the grammar accepts."""
        return sum(self.chars_for(n) for n in self.fields) + sum(len(h) + 3 for h in self.headers())


def _gbnf_class(regex_class: str) -> str:
    """A character class of this module in GBNF: the same text (both read \\n and \\" as escapes)."""
    return regex_class


def structure_from_prompt(last_user_text: str, max_chars: dict[str, int], default_max_chars: int) -> Structure | None:
    """The output fields DSPy's ChatAdapter asks for, or None when the prompt is not one of its prompts."""
    match = _RESPOND.search(last_user_text)
    if not match:
        return None
    names = [n for n in _MARKER.findall(match.group(1)) if n != "completed"]
    if not names:
        return None
    return Structure(tuple(names), dict(max_chars), default_max_chars)


class GrammarRows:
    """One grammar matcher per row of a batch (None: that row is unconstrained)."""

    def __init__(self, ll_tokenizer, grammars: list[str | None]):
        import llguidance

        self.matchers = [
            llguidance.LLMatcher(ll_tokenizer, llguidance.LLMatcher.grammar_from_regex(g)) if g else None
            for g in grammars
        ]
        for m in self.matchers:
            if m is not None and m.is_error():
                raise ValueError(f"bad output grammar: {m.get_error()}")
        self.vocab = ll_tokenizer.vocab_size

    def mask(self, logits, rows: list[int]):
        """Set to -inf every token the grammar of each active row forbids."""
        import llguidance.numpy as lnp
        import torch

        constrained = [(i, self.matchers[row]) for i, row in enumerate(rows) if self.matchers[row] is not None]
        if not constrained:
            return logits
        bitmask = lnp.allocate_token_bitmask(len(rows), self.vocab)
        for i, matcher in constrained:
            lnp.fill_next_token_bitmask(matcher, bitmask, i)
        bits = torch.arange(32, dtype=torch.int32)
        allowed = ((torch.from_numpy(bitmask).unsqueeze(-1) >> bits) & 1).reshape(len(rows), -1)
        allowed = allowed[:, : logits.shape[1]].to(logits.device).bool()
        rows_on = torch.zeros(len(rows), 1, dtype=torch.bool, device=logits.device)
        rows_on[[i for i, _ in constrained]] = True
        return logits.masked_fill(rows_on & ~allowed, float("-inf"))

    def accept(self, row: int, token: int) -> None:
        matcher = self.matchers[row]
        if matcher is not None and not matcher.is_stopped():
            matcher.consume_token(token)


class GeneratedRepetitionPenalty:
    """Repetition penalty on the generated tokens only, field markers exempt.

    transformers' default penalizes the prompt too, which drives this model into code
    (field-notes); the markers must repeat by design, so they are never penalized.
    """

    def __init__(self, penalty: float, rows: int, vocab: int, exempt_ids: list[int], device="cpu"):
        import torch

        self.penalty = penalty
        self.seen = torch.zeros(rows, vocab, dtype=torch.bool, device=device)
        self.exempt = set(exempt_ids)

    def apply(self, logits, rows: list[int]):
        import torch

        if self.penalty == 1.0:
            return logits
        seen = self.seen[rows, : logits.shape[1]]
        penalized = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
        return torch.where(seen, penalized, logits)

    def accept(self, row: int, token: int) -> None:
        if token not in self.exempt and token < self.seen.shape[1]:
            self.seen[row, token] = True
