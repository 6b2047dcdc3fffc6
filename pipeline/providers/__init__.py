"""LM providers, each a DSPy LM built on an engine (so DSPy's cache, usage tracking and
callbacks see every call): `local` (the embedded model), `vertex`, `ollama`, `openai`."""

from __future__ import annotations

from pathlib import Path


def configure_dspy_cache(cache_dir: Path) -> None:
    """Point DSPy's LM call cache at the workspace, so reruns and resumes are free."""
    import dspy

    cache_dir.mkdir(parents=True, exist_ok=True)
    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=str(cache_dir))


def limits_from(config: dict):
    """The limits of a `[providers.NAME]` table; what it leaves out takes the defaults of
    `pipeline.config.ProviderLimits`, their one home."""
    from pipeline.config import ProviderLimits
    from pipeline.providers.limits import RetryPolicy
    from pipeline.providers.remote import Limits

    limits = ProviderLimits.model_validate(config.get("limits") or {})
    return Limits(
        concurrency=limits.concurrency,
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        timeout_s=limits.timeout_s,
        retry=RetryPolicy(limits.max_retries, limits.backoff_initial_s, limits.backoff_max_s),
    )


def build_engine(name: str, provider: dict, clock=None):
    """The engine of a `[providers.NAME]` table (as stored in a run's config)."""
    kind = provider.get("kind", "local")
    if kind == "local":
        from pipeline.providers.local_engine import LocalEngine, LocalSettings

        return LocalEngine(LocalSettings(**{k: v for k, v in provider.items() if k != "kind"}))
    if kind == "openai":
        from pipeline.providers.openai_compat import OpenAICompatibleEngine

        return OpenAICompatibleEngine(name, provider["model"], provider["base_url"], provider.get("api_key_env"),
                                      limits_from(provider), clock, provider)
    if kind == "ollama":
        from pipeline.providers.ollama_provider import OllamaEngine

        return OllamaEngine(name, provider["model"], provider.get("host"), limits_from(provider), clock, provider)
    if kind == "vertex":
        from pipeline.providers.vertex import VertexEngine

        return VertexEngine(name, provider["model"], project=provider.get("project"),
                            location=provider.get("location"), credentials_file=provider.get("credentials_file"),
                            base_url=provider.get("base_url"), limits=limits_from(provider), clock=clock)
    raise ValueError(f"unknown provider kind {kind!r}")


def model_string(name: str, provider: dict, engine) -> str:
    """DSPy caches by model string, not engine: the string names the provider kind, the
    endpoint and the model, so two servers never share cached answers."""
    kind = provider.get("kind", "local")
    if kind == "local":
        return engine.model_string()
    where = {"openai": provider.get("base_url"), "ollama": getattr(engine, "host", None),
             "vertex": f"{getattr(engine, 'project', '')}/{getattr(engine, 'location', '')}"}[kind]
    shaped = {k: provider[k] for k in ("structure", "max_chars", "default_max_chars", "temperature", "repetition_penalty")
              if k in provider}
    if not shaped:
        return f"{kind}/{provider['model']}@{where}"
    import hashlib
    import json

    # The output bound and constraint change the text: they key DSPy's cache too.
    key = hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:8]
    return f"{kind}/{provider['model']}@{where}#{key}"


def build_lm(provider: dict, name: str = "local", clock=None, *, cache: bool = True):
    """A dspy.LM for a `[providers.NAME]` table. Retries live in the engine, so DSPy's are off.
    Without `cache` every call reaches the model (what a latency measurement needs)."""
    import dspy

    engine = build_engine(name, provider, clock)
    return dspy.LM(model_string(name, provider, engine), engine=engine, cache=cache, num_retries=0)
