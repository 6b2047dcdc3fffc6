"""LM providers, each a DSPy LM (an engine or a model string DSPy speaks)."""

from __future__ import annotations

from pathlib import Path


def configure_dspy_cache(cache_dir: Path) -> None:
    """Point DSPy's LM call cache at the workspace, so reruns and resumes are free."""
    import dspy

    cache_dir.mkdir(parents=True, exist_ok=True)
    dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=str(cache_dir))


def build_lm(provider: dict):
    """A dspy.LM for a `[providers.NAME]` table (as stored in a run's config)."""
    import dspy

    kind = provider.get("kind", "local")
    if kind == "local":
        from pipeline.providers.local_engine import LocalEngine, LocalSettings

        settings = LocalSettings(**{k: v for k, v in provider.items() if k != "kind"})
        engine = LocalEngine(settings)
        return dspy.LM(engine.model_string(), engine=engine, cache=True, num_retries=0)
    raise ValueError(f"unknown provider kind {kind!r}")
