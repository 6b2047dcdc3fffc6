"""`ollama`: a local or remote Ollama server through the official `ollama` client.

Generation goes through an engine around `Client.chat` rather than DSPy's
`ollama_chat/<model>` string: one place then paces, retries and counts usage
(`prompt_eval_count` / `eval_count`) the same way for every provider, and the same client
serves health, listing and `create` for the integration stage.
"""

from __future__ import annotations

import os
import threading

from pipeline.providers.chat import chat_messages
from pipeline.providers.limits import Timeout, Transient
from pipeline.providers.remote import Limits, RemoteEngine, Reply
from pipeline.providers.served import OutputShape

DEFAULT_HOST = "http://127.0.0.1:11434"


def ollama_host(configured: str | None) -> str:
    return configured or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST


class OllamaEngine(RemoteEngine):
    kind = "ollama"

    def __init__(self, name: str, model: str, host: str | None, limits: Limits, clock=None, table: dict | None = None):
        super().__init__(name, model, limits, clock)
        # "auto" is no constraint here: Ollama's only one is a JSON schema, and a student trained on
        # the field markers should be asked for them (`structure = "ollama"` opts in).
        self.shape = OutputShape(table or {}, lambda: "none")
        import ollama

        self.host = ollama_host(host)
        # ollama's ResponseError drops the response headers: keep Retry-After per thread.
        self._seen = threading.local()
        self.client = ollama.Client(host=self.host, timeout=limits.timeout_s,
                                    event_hooks={"response": [self._remember_retry_after]})

    def _remember_retry_after(self, response) -> None:
        self._seen.retry_after = response.headers.get("retry-after") if response.status_code >= 400 else None

    def send(self, request) -> Reply:
        config = request.config
        messages = chat_messages(request)
        shaped = self.shape.shape(messages[-1]["content"] if messages else "", config.max_tokens)
        options = {k: v for k, v in {"temperature": self.temperature(request), "num_predict": shaped.max_tokens,
                                     "top_p": config.top_p, "stop": list(config.stop) or None}.items() if v is not None}
        response = self.client.chat(model=self.model, messages=messages, options=options or None,
                                    format=shaped.extra.get("format"))
        return Reply(shaped.read(response.message.content or ""), response.prompt_eval_count, response.eval_count,
                     "length" if response.done_reason == "length" else "stop")

    def classify(self, exc: Exception) -> Exception:
        import httpx
        import ollama

        if isinstance(exc, httpx.TimeoutException):
            return Timeout(f"timed out after {self.limits.timeout_s:g} s")
        if isinstance(exc, (ConnectionError, httpx.TransportError)):
            return Transient(f"cannot connect to Ollama at {self.host}")
        if isinstance(exc, ollama.ResponseError):
            return self.http_failure(
                exc.status_code, exc.error, {"retry-after": getattr(self._seen, "retry_after", None)},
                credentials_fix=f"check the proxy or credentials in front of {self.host}",
                not_found=(f"model {self.model!r} is not on the Ollama server at {self.host}",
                           f"run `ollama pull {self.model}` there (po doctor lists the models it has)"),
            )
        return exc
