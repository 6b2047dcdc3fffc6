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
_RESPOND = re.compile(r"Respond with the corresponding output fields, starting with the field (.*)$", re.S)
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

    def headers(self) -> list[str]:
        return [f"[[ ## {name} ## ]]" for name in (*self.fields, "completed")]

    def max_bytes(self) -> int:
        """Upper bound on the bytes (hence tokens) of any output the grammar accepts."""
        return sum(self.chars_for(n) for n in self.fields) + sum(len(h) + 3 for h in self.headers())


def structure_from_prompt(last_user_text: str, max_chars: dict[str, int], default_max_chars: int) -> Structure | None:
    """The output fields DSPy's ChatAdapter asks for, or None when the prompt is not one of its prompts."""
    match = _RESPOND.search(last_user_text)
    if not match:
        return None
    names = [n for n in _MARKER.findall(match.group(1)) if n != "completed"]
    if not names:
        return None
    return Structure(tuple(names), dict(max_chars), default_max_chars)


class GrammarMask:
    """A logits processor that keeps each row of a batch inside its own grammar."""

    def __init__(self, ll_tokenizer, grammars: list[str | None], eos_id: int, prompt_len: int):
        import llguidance
        import torch

        self.prompt_len = prompt_len
        self.eos_id = eos_id
        self.matchers = [
            llguidance.LLMatcher(ll_tokenizer, llguidance.LLMatcher.grammar_from_regex(g)) if g else None
            for g in grammars
        ]
        for m in self.matchers:
            if m is not None and m.is_error():
                raise ValueError(f"bad output grammar: {m.get_error()}")
        self.finished = [False] * len(grammars)
        self.vocab = ll_tokenizer.vocab_size
        self._bits = torch.arange(32, dtype=torch.int32)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import llguidance.numpy as lnp
        import torch

        step = input_ids.shape[1] - self.prompt_len
        bitmask = lnp.allocate_token_bitmask(len(self.matchers), self.vocab)
        for row, matcher in enumerate(self.matchers):
            if matcher is None:
                continue
            if step > 0 and not self.finished[row]:
                last = int(input_ids[row, -1])
                if last == self.eos_id or matcher.is_stopped():
                    self.finished[row] = True
                else:
                    matcher.consume_token(last)
            if self.finished[row]:
                bitmask[row, :] = 0
                bitmask[row, self.eos_id // 32] = 1 << (self.eos_id % 32)
            else:
                lnp.fill_next_token_bitmask(matcher, bitmask, row)
        allowed = (torch.from_numpy(bitmask).unsqueeze(-1) >> self._bits) & 1
        allowed = allowed.reshape(len(self.matchers), -1)[:, : scores.shape[1]].to(scores.device)
        rows = torch.tensor([m is not None for m in self.matchers], device=scores.device)
        blocked = (allowed == 0) & rows.unsqueeze(1)
        return scores.masked_fill(blocked, float("-inf"))


class GeneratedRepetitionPenalty:
    """Repetition penalty on the generated tokens only, field markers exempt.

    transformers' default penalizes the prompt too, which drives this model into code
    (field-notes); the markers must repeat by design, so they are never penalized.
    """

    def __init__(self, penalty: float, prompt_len: int, exempt_ids: list[int]):
        import torch

        self.penalty = penalty
        self.prompt_len = prompt_len
        self.exempt = torch.tensor(sorted(set(exempt_ids)), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import torch

        generated = input_ids[:, self.prompt_len :]
        if generated.shape[1] == 0 or self.penalty == 1.0:
            return scores
        current = torch.gather(scores, 1, generated)
        penalized = torch.where(current < 0, current * self.penalty, current / self.penalty)
        exempt = torch.isin(generated, self.exempt.to(generated.device))
        return scores.scatter(1, generated, torch.where(exempt, current, penalized))
