"""`openai`: any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenAI) by base
URL, through the official `openai` client with its own retries off (ours pace and retry)."""

from __future__ import annotations

import os

from pipeline.providers.chat import chat_messages
from pipeline.providers.limits import Timeout, Transient
from pipeline.providers.remote import Limits, RemoteEngine, Reply, register_secret
from pipeline.providers.served import OutputShape, dialect_of_models_listing


class OpenAICompatibleEngine(RemoteEngine):
    kind = "openai"

    def __init__(self, name: str, model: str, base_url: str, api_key_env: str | None, limits: Limits, clock=None,
                 table: dict | None = None):
        super().__init__(name, model, limits, clock)
        self.shape = OutputShape(table or {}, self.server_dialect)
        import openai

        self.base_url = base_url
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env) if api_key_env else None
        register_secret(key)
        # Local servers (vLLM, llama.cpp) accept any key; the client insists on one.
        self.client = openai.OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=limits.timeout_s,
                                    max_retries=0)

    def server_dialect(self) -> str:
        """llama.cpp or vLLM, from what GET /v1/models says owns the models; else none."""
        return dialect_of_models_listing([getattr(m, "owned_by", "") or "" for m in self.client.models.list().data])

    def send(self, request) -> Reply:
        config = request.config
        messages = chat_messages(request)
        shaped = self.shape.shape(messages[-1]["content"] if messages else "", config.max_tokens)
        kwargs = {k: v for k, v in {"temperature": self.temperature(request), "max_tokens": shaped.max_tokens,
                                    "top_p": config.top_p, "stop": list(config.stop) or None}.items() if v is not None}
        if shaped.extra:
            kwargs["extra_body"] = shaped.extra
        response = self.client.chat.completions.create(model=self.model, messages=messages, **kwargs)
        choice = response.choices[0]
        usage = response.usage
        return Reply(shaped.read(choice.message.content or ""), usage.prompt_tokens if usage else None,
                     usage.completion_tokens if usage else None,
                     "length" if choice.finish_reason == "length" else "stop")

    def classify(self, exc: Exception) -> Exception:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return Timeout(f"timed out after {self.limits.timeout_s:g} s")
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
