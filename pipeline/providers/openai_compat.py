"""`openai`: any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenAI) by base
URL, through the official `openai` client with its own retries off (ours pace and retry)."""

from __future__ import annotations

import os

from pipeline.providers.chat import chat_messages
from pipeline.providers.limits import Transient
from pipeline.providers.remote import Limits, RemoteEngine, Reply, register_secret


class OpenAICompatibleEngine(RemoteEngine):
    kind = "openai"

    def __init__(self, name: str, model: str, base_url: str, api_key_env: str | None, limits: Limits, clock=None):
        super().__init__(name, model, limits, clock)
        import openai

        self.base_url = base_url
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env) if api_key_env else None
        register_secret(key)
        # Local servers (vLLM, llama.cpp) accept any key; the client insists on one.
        self.client = openai.OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=limits.timeout_s,
                                    max_retries=0)

    def send(self, request) -> Reply:
        config = request.config
        kwargs = {k: v for k, v in {"temperature": config.temperature, "max_tokens": config.max_tokens,
                                    "top_p": config.top_p, "stop": list(config.stop) or None}.items() if v is not None}
        response = self.client.chat.completions.create(model=self.model, messages=chat_messages(request), **kwargs)
        choice = response.choices[0]
        usage = response.usage
        return Reply(choice.message.content or "", usage.prompt_tokens if usage else None,
                     usage.completion_tokens if usage else None,
                     "length" if choice.finish_reason == "length" else "stop")

    def classify(self, exc: Exception) -> Exception:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return Transient(f"timed out after {self.limits.timeout_s:g} s")
        if isinstance(exc, openai.APIConnectionError):
            return Transient(f"cannot connect to {self.base_url}: {exc.__cause__ or exc}")
        if isinstance(exc, openai.APIStatusError):
            where = f"${self.api_key_env}" if self.api_key_env else "api_key_env in po.toml"
            return self.http_failure(
                exc.status_code, exc.message, exc.response.headers,
                credentials_fix=f"check the key in {where} for {self.base_url}",
                not_found=(f"HTTP 404: model {self.model!r} not found at {self.base_url}",
                           "check providers.*.model against GET /v1/models (po doctor lists them)"),
            )
        return exc
