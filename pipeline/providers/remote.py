"""What every remote provider shares: a DSPy engine that paces, limits concurrency,
retries transient failures, reports usage, and never lets a secret out.

A provider subclass implements `send(request) -> Reply` and `classify(exc)`, which turns a
client library's exception into `Transient` (retry) or `ProviderError` (final, with a fix).
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

from pipeline.providers.limits import (
    Clock,
    Pacer,
    RetryPolicy,
    Timeout,
    Transient,
    call_with_retries,
)

log = logging.getLogger("po.providers")

# Secret values (API keys, tokens) seen by this process; every message leaving a provider
# goes through redact(). Names of environment variables are fine to show, values never.
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


_BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key[\"'=:\s]+|token[\"'=:\s]+)([A-Za-z0-9._\-]{12,})")


def redact(text: str) -> str:
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return _BEARER.sub(lambda m: m.group(1) + "***", text)


class ProviderError(RuntimeError):
    """A final provider failure: names the provider, the model, what happened and the fix."""

    def __init__(self, provider: str, model: str, problem: str, fix: str):
        self.provider, self.model, self.problem, self.fix = provider, model, redact(problem), fix
        super().__init__(f"{provider} ({model}): {self.problem} — {fix}")


@dataclass
class Reply:
    text: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str = "stop"


@dataclass
class Limits:
    """A provider's limits as its engine uses them (built by `providers.limits_from`)."""

    concurrency: int
    requests_per_minute: float | None
    tokens_per_minute: float | None
    timeout_s: float
    retry: RetryPolicy


class RemoteEngine(ABC):
    """complete(Request) -> Response for DSPy, around one provider's client library."""

    kind = "remote"

    def __init__(self, name: str, model: str, limits: Limits, clock: Clock | None = None):
        self.name = name
        self.model = model
        self.limits = limits
        self.clock = clock or Clock()
        self.pacer = Pacer(limits.requests_per_minute, limits.tokens_per_minute, self.clock)
        self._slots = threading.BoundedSemaphore(limits.concurrency)
        self.requests = 0  # sent to the server, retries included
        self.retries = 0
        self.generated_calls = 0  # calls that reached the provider, retries not counted (cache hits never do)
        self._count_lock = threading.Lock()

    # -- for subclasses ------------------------------------------------------------------------
    @abstractmethod
    def send(self, request) -> Reply:
        """One attempt: the request through the client library, or its exception."""

    def classify(self, exc: Exception) -> Exception:
        """Transient to retry, ProviderError to stop; anything else is re-raised as is."""
        return exc

    # -- the engine contract ---------------------------------------------------------------------
    def complete(self, request):
        from dspy.lm15 import Message, Response, Usage

        estimate = _estimate_tokens(request)
        with self._count_lock:
            self.generated_calls += 1
        with self._slots:
            try:
                reply = call_with_retries(lambda: self._attempt(request, estimate), self.limits.retry, self.clock,
                                          on_retry=self._on_retry)
            except Transient as exc:
                attempts = self.limits.retry.max_retries + 1
                raise self.error(f"gave up after {attempts} attempts: {exc}",
                                 "the server is down or overloaded: try later, or raise limits.max_retries / "
                                 "lower limits.requests_per_minute") from None
        return Response(id=None, model=request.model, message=Message.assistant(reply.text),
                        finish_reason=reply.finish_reason,
                        usage=Usage(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens))

    def close(self) -> None:
        return None

    def _attempt(self, request, estimate: int) -> Reply:
        self.pacer.wait(estimate)
        self.requests += 1
        try:
            return self.send(request)
        except ProviderError:
            raise
        except Exception as exc:
            classified = exc if isinstance(exc, Transient) else self.classify(exc)
            if isinstance(classified, Timeout) and self.temperature(request) == 0:
                # Greedy decoding is deterministic: the same request would run as long again.
                raise self.error(f"{classified} on a greedy (temperature 0) request; not retried, it would run "
                                 "as long again", "bound the output (max_chars, structure in the provider's "
                                 "table) or raise limits.timeout_s") from None
            if classified is exc:
                raise
            raise classified from None

    def temperature(self, request) -> float | None:
        """The temperature a request is decoded at (the program's, else the provider table's)."""
        if request.config.temperature is not None:
            return request.config.temperature
        shape = getattr(self, "shape", None)
        return shape.temperature if shape is not None else None

    def _on_retry(self, attempt: int, exc: BaseException, sleep_s: float) -> None:
        self.retries += 1
        log.warning("%s (%s): %s; retry %s in %.1f s", self.name, self.model, redact(str(exc)), attempt, sleep_s)

    def error(self, problem: str, fix: str) -> ProviderError:
        return ProviderError(self.name, self.model, problem, fix)

    def http_failure(self, status: int, message: str, headers, *, credentials_fix: str,
                     not_found: tuple[str, str]) -> Exception:
        """The same rule for every provider: 429 and 5xx are retried (at least Retry-After
        later); 401/403 and 404 are final with the provider's own fix; any other 4xx is final."""
        if status == 429 or status >= 500:
            return Transient(f"HTTP {status}: {message}", retry_after_seconds(headers))
        if status in (401, 403):
            return self.error(f"HTTP {status}: {message}", credentials_fix)
        if status == 404:
            return self.error(*not_found)
        return self.error(f"HTTP {status}: {message}", "the request was refused; see the message")


def _estimate_tokens(request) -> int:
    """Rough token count of a request (chars / 4 + the output budget) for tokens/minute pacing."""
    chars = len(request.system or "") if isinstance(request.system, str) else 0
    for message in request.messages:
        chars += sum(len(getattr(p, "text", "") or "") for p in message.parts)
    return chars // 4 + (request.config.max_tokens or 512)


def retry_after_seconds(headers) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from these APIs and ignored)."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
