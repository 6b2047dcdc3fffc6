"""Per-provider limits: concurrency, requests/minute, tokens/minute, and retries with
exponential backoff + jitter that honour Retry-After (tenacity does the retrying).

The clock is injectable so tests prove the pacing without waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

T = TypeVar("T")


class Clock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class RetryPolicy:
    max_retries: int
    initial_s: float
    max_s: float
    jitter_s: float = 1.0


class Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, reset); `retry_after` from the server if it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Timeout(Transient):
    """No answer within the time-out: transient for a sampled request, final for a greedy one
    (the same request would run as long again)."""


class Pacer:
    """Spaces request starts: at most `per_minute` per minute, evenly (no bursts), and at most
    `tokens_per_minute` estimated tokens per minute. Thread-safe; one per provider."""

    def __init__(self, per_minute: float | None, tokens_per_minute: float | None, clock: Clock):
        self.request_gap = 60.0 / per_minute if per_minute else 0.0
        self.token_gap = 60.0 / tokens_per_minute if tokens_per_minute else 0.0
        self.clock = clock
        self._next_free = 0.0
        self._lock = threading.Lock()

    def wait(self, tokens: int = 0) -> float:
        """Block until this request may start; returns the seconds waited."""
        with self._lock:
            now = self.clock.monotonic()
            start = max(now, self._next_free)
            self._next_free = start + max(self.request_gap, tokens * self.token_gap)
        waited = start - now
        self.clock.sleep(waited)
        return waited


def _wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    backoff = tenacity.wait_exponential_jitter(initial=policy.initial_s, max=policy.max_s, jitter=policy.jitter_s)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        computed = backoff(state)
        return max(computed, retry_after) if retry_after is not None else computed

    return wait


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, clock: Clock, on_retry=None) -> T:
    """Call `fn`; retry it on Transient up to policy.max_retries times; anything else goes straight up."""
    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.attempt_number, state.outcome.exception(), state.upcoming_sleep)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_retries + 1),
        wait=_wait(policy),
        retry=tenacity.retry_if_exception_type(Transient),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
