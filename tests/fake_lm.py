"""A deterministic fake LM for MIPROv2 tests and benchmarks: it answers any DSPy ChatAdapter
prompt (the PO program's and the instruction proposer's) from a hash of the prompt.

The same prompt always gets the same answer, so a resumed optimization replays the same
calls; different instructions or demos change the hash, so candidates score differently;
one answer in eight lacks a field marker, so parse failures happen as with a real model.
Served by the loopback over the OpenAI wire protocol (`openai_responder`), or called in
process as a DSPy engine (`FakeEngine`, for the recording-overhead benchmark).
"""

from __future__ import annotations

import hashlib
import json
import re

from tests.loopback import openai_chat, openai_error

# The po.toml table of a provider served by the loopback with this fake LM (`.format(url=…)`).
PROVIDER_TOML = """
[providers.fake]
kind = "openai"
base_url = "{url}/v1"
model = "m"
api_key_env = "PO_TEST_FAKE_KEY"
"""

_MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")
_ID = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d{1,5}\b")

GOOD = ("For clinic staff who juggle bookings, {product} helps them fill cancelled slots so that clinicians stay "
        "busy and patients wait less. It covers {ids} and keeps the existing booking flow familiar, so teams "
        "adopt it without retraining and managers see the outcome in their weekly numbers.")
PLAIN = "For staff, this helps them fill cancelled slots so that clinicians stay busy."
REVIEW = ("Verdict: Approved\n- must items {ids} are clear and testable.\n- should items can wait for the second "
          "release.\n- could items need an owner before planning.")


def output_fields(messages: list[dict]) -> list[str]:
    """The fields the last message asks for, in order (`completed` left out)."""
    last = messages[-1]["content"]
    asked = last[last.rfind("Respond with"):] if "Respond with" in last else last
    return [f for f in dict.fromkeys(_MARKER.findall(asked)) if f != "completed"]


def answer(messages: list[dict]) -> str:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    fields = output_fields(messages)
    values = {}
    if "product_vision" in fields:
        quality = int(digest[:4], 16) % 3  # 0 weak, 1 plain, 2 good: depends on instructions, demos and input
        ids = ", ".join(dict.fromkeys(_ID.findall(messages[-1]["content"]))) or "the must items"
        values["product_vision"] = {2: GOOD.format(product="the product", ids=ids), 1: PLAIN, 0: "Ok."}[quality]
        values["product_owner_review"] = REVIEW.format(ids=ids) if quality else "Fine."
    for field in fields:
        values.setdefault(field, f"{field.replace('_', ' ').capitalize()} {digest[:8]}: write a concise, "
                                 "specific product vision that names its users and covers every must requirement.")
    if int(digest[4:6], 16) % 8 == 0 and "product_vision" in fields:
        fields = fields[:1]  # a broken answer: the second field's marker is missing
    body = "\n\n".join(f"[[ ## {f} ## ]]\n{values[f]}" for f in fields)
    return body + "\n\n[[ ## completed ## ]]"


def openai_responder(delay: float = 0.0):
    """A loopback default for /v1/chat/completions answering with `answer`."""

    def respond(record):
        if not isinstance(record.body, dict):  # a client killed while sending
            return openai_error(400, "request body is not JSON")
        text = answer(record.body["messages"])
        prompt = sum(len(m["content"]) for m in record.body["messages"]) // 4
        return openai_chat(text, model=record.body.get("model", "m"), prompt_tokens=prompt,
                           completion_tokens=len(text) // 4, delay=delay)

    return respond


class FakeEngine:
    """A DSPy engine (complete(Request) -> Response) answering in process, for benchmarks."""

    def __init__(self):
        self.generated_calls = 0

    def complete(self, request):
        from dspy.lm15 import Message, Response, Usage

        from pipeline.providers.chat import chat_messages

        self.generated_calls += 1
        text = answer(chat_messages(request))
        return Response(id=None, model=request.model, message=Message.assistant(text), finish_reason="stop",
                        usage=Usage(input_tokens=100, output_tokens=len(text) // 4))
