"""A DSPy request as the role/content messages every chat API takes."""

from __future__ import annotations


def chat_messages(request) -> list[dict]:
    """The request as OpenAI-style role/content messages (system first)."""
    out = []
    system = request.system
    if system:
        if not isinstance(system, str):
            system = "".join(getattr(p, "text", "") for p in system)
        out.append({"role": "system", "content": system})
    for message in request.messages:
        out.append({"role": message.role, "content": "".join(getattr(p, "text", "") or "" for p in message.parts)})
    return out
