"""The `local` provider: the embedded model as a DSPy 3.4 engine (`dspy.LM(model, engine=…)`).

An engine (not a BaseLM subclass, which is deprecated) keeps DSPy's cache, usage tracking
and callbacks in the loop. Requests that arrive together from DSPy's evaluation threads
are generated as one left-padded batch: one forward pass serves several rows.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, Strict

from pipeline.providers import local_model
from pipeline.providers.chat import chat_messages
from pipeline.providers.structure import (
    GeneratedRepetitionPenalty,
    GrammarRows,
    Structure,
    structure_from_prompt,
)

# TOML has real booleans: `max_batch = true` is a mistake to report, not a 1.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]


class LocalSettings(BaseModel):
    """Decoding and batching of the embedded model (`[providers.local]` in po.toml)."""

    base_model: str = Field("embedded", description="\"embedded\" (SmolLM2, offline), a transformers model "
                            "directory, or a model in the Hugging Face cache (the base a student was trained on)")
    adapter: str | None = Field(None, description="path of a LoRA adapter to serve on top of the base model")
    structured: bool = Field(True, description="constrain the output structure with a grammar")
    temperature: Float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: Float = Field(0.95, gt=0.0, le=1.0)
    repetition_penalty: Float = Field(1.2, ge=1.0, le=2.0, description="applied to generated tokens only")
    max_chars: dict[str, Int] = Field(
        default_factory=lambda: {"product_vision": 700, "product_owner_review": 450},
        description="upper bound of each output field's text, in characters",
    )
    default_max_chars: Int = Field(500, ge=20)
    max_batch: Int = Field(4, ge=1, le=64, description="requests generated together")
    batch_wait_ms: Float = Field(15.0, ge=0.0, description="how long the first request waits for company")
    threads: Int = Field(0, ge=0, description="torch threads (0 = torch's default)")

    def decoding_key(self) -> str:
        """What changes the text: goes into the model string, because DSPy's cache key ignores the engine."""
        keys = ("structured", "temperature", "top_p", "repetition_penalty", "max_chars", "default_max_chars")
        blob = json.dumps(self.model_dump(include=set(keys)), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]


@dataclass
class _Job:
    engine: LocalEngine
    prompt_messages: list[dict]
    structure: Structure | None
    max_new_tokens: int
    temperature: Float
    future: Future


class LocalEngine:
    """complete(Request) -> Response, batching concurrent callers onto one generate() call."""

    def __init__(self, settings: LocalSettings | None = None):
        self.settings = settings or LocalSettings()
        self._ll_tokenizer = None
        self.generated_calls = 0  # calls that reached the model (DSPy cache hits never do)
        self.batches = 0

    # -- identity ---------------------------------------------------------------------
    def model_string(self) -> str:
        base = self.settings.base_model
        label = local_model.MODEL_NAME if base == local_model.EMBEDDED else Path(base).name or base.replace("/", "-")
        name = f"local/{label}@{local_model.base_revision(base)}"
        if self.settings.adapter:
            name += f"+lora@{local_model.adapter_revision(Path(self.settings.adapter))}"
        return f"{name}~{self.settings.decoding_key()}"

    # DSPy saves an LM's engine with these two when a program is saved with its LM.
    def dump_state(self) -> dict:
        return self.settings.model_dump()

    @classmethod
    def load_state(cls, state: dict) -> LocalEngine:
        return cls(LocalSettings(**state))

    def close(self) -> None:
        return None

    # -- the engine contract --------------------------------------------------------------
    def complete(self, request):
        from dspy.lm15 import Message, Response, Usage

        messages = chat_messages(request)
        s = self.settings
        structure = None
        if s.structured:
            structure = structure_from_prompt(messages[-1]["content"], s.max_chars, s.default_max_chars)
        # With a grammar the limit is its byte bound (so `completed` is always reached);
        # without one, what DSPy asked for.
        limit = structure.max_bytes() if structure else (request.config.max_tokens or 512)
        temperature = request.config.temperature if request.config.temperature is not None else s.temperature
        job = _Job(self, messages, structure, limit, float(temperature), Future())
        _GENERATOR.submit(job)
        text, n_in, n_out, finish = job.future.result()
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant(text),
            finish_reason=finish,
            usage=Usage(input_tokens=n_in, output_tokens=n_out),
        )

    def _generate(self, jobs: list[_Job]) -> list[tuple[str, int, int, str]]:
        import torch

        loaded = local_model.load_model(self.settings.adapter, self.settings.threads or None, self.settings.base_model)
        tok, model = loaded.tokenizer, loaded.model
        prompts = [tok.apply_chat_template(j.prompt_messages, tokenize=False, add_generation_prompt=True) for j in jobs]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
        grammars = [j.structure.regex() if j.structure else None for j in jobs]
        grammar = GrammarRows(self._llg_tokenizer(tok), grammars) if any(grammars) else None
        with torch.inference_mode():
            outputs, finish = _decode(
                model, enc["input_ids"], enc["attention_mask"],
                eos=tok.eos_token_id,
                limits=[j.max_new_tokens for j in jobs],
                temperature=jobs[0].temperature,
                top_p=self.settings.top_p,
                grammar=grammar,
                penalty=GeneratedRepetitionPenalty(
                    self.settings.repetition_penalty, len(jobs), len(tok), self._exempt_ids(tok, jobs), loaded.device
                ),
            )
        self.generated_calls += len(jobs)
        self.batches += 1
        results = []
        for row, tokens in enumerate(outputs):
            text = tok.decode(tokens, skip_special_tokens=True)
            results.append((text, int(enc["attention_mask"][row].sum()), len(tokens), finish[row]))
        return results

    def _llg_tokenizer(self, tok):
        if self._ll_tokenizer is None:
            import llguidance.hf

            self._ll_tokenizer = llguidance.hf.from_tokenizer(tok)
        return self._ll_tokenizer

    @staticmethod
    def _exempt_ids(tok, jobs: list[_Job]) -> list[int]:
        text = "\n\n".join(h for j in jobs if j.structure for h in j.structure.headers())
        return tok.encode(text + "\n", add_special_tokens=False)


class _Generator:
    """The one thread of this process that runs the model.

    All torch work stays on this thread: once torch has run on one thread, running it
    on another makes both OpenMP thread teams compete for the cores (measured: a batch
    of 4 took 23 s instead of 15 s). Engines share it; each request carries its engine.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="po-local-model", daemon=True)
                self._thread.start()
        self._queue.put(job)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            settings = first.engine.settings
            batch = [first]
            deadline = time.monotonic() + settings.batch_wait_ms / 1000
            while len(batch) < settings.max_batch:
                wait = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            # One decode serves one engine (weights, adapter) at one temperature.
            groups: dict[tuple, list[_Job]] = {}
            for job in batch:
                groups.setdefault((id(job.engine), job.temperature), []).append(job)
            for jobs in groups.values():
                try:
                    results = jobs[0].engine._generate(jobs)
                except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                    for job in jobs:
                        job.future.set_exception(exc)
                else:
                    for job, result in zip(jobs, results):
                        job.future.set_result(result)


_GENERATOR = _Generator()


def _decode(model, input_ids, attention, *, eos: int, limits: list[int], temperature: float, top_p: float,
            grammar: GrammarRows | None, penalty: GeneratedRepetitionPenalty) -> tuple[list[list[int]], list[str]]:
    """Left-padded batch decoding that drops each row from the batch as soon as it ends.

    `generate()` keeps finished rows in the batch until the longest one ends; answers of
    this model vary from 60 to 250 tokens, so that waste made a batch of 4 slower than
    one-at-a-time on a CPU. Here a finished row leaves the KV cache at once.
    """
    import torch

    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    active = list(range(input_ids.shape[0]))
    outputs: list[list[int]] = [[] for _ in active]
    finish = ["length"] * len(active)
    ids, cache = input_ids, None
    while active:
        out = model(input_ids=ids, attention_mask=attention, position_ids=positions, cache=cache,
                    use_cache=True, logits_to_keep=1)
        cache = out.cache
        logits = penalty.apply(out.logits[:, -1, :].float(), active)
        if grammar is not None:
            logits = grammar.mask(logits, active)
        chosen = _pick(logits, temperature, top_p)
        keep = []
        for i, row in enumerate(active):
            token = int(chosen[i])
            outputs[row].append(token)
            if token == eos:
                finish[row] = "stop"
                continue
            if grammar is not None:
                grammar.accept(row, token)
            penalty.accept(row, token)
            if len(outputs[row]) < limits[row]:
                keep.append(i)
        if len(keep) < len(active):
            if not keep:
                break
            index = torch.tensor(keep, device=chosen.device)
            cache.batch_select_indices(index)
            attention, positions, chosen = attention[index], positions[index], chosen[index]
            active = [active[i] for i in keep]
        ids = chosen.unsqueeze(1)
        positions = positions[:, -1:] + 1
        attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
    return outputs, finish


def _pick(logits, temperature: float, top_p: float):
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p  # keep the token that crosses top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs / probs.sum(dim=-1, keepdim=True), 1).squeeze(-1)
