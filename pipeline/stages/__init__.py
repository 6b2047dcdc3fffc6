"""The pipeline's stages. Each module has the same small contract:

    NAME, TITLE
    plan(ws, overrides) -> dict      complete config of a new run; checks everything it can
                                     before any model time is spent (raises ConfigError/DatasetError)
    check_resumable(ws, config)      refuses a resume whose inputs changed
    run(ctx) -> dict                 does the work in resumable units; returns the summary
    headline(summary) -> str         the key figure of a finished run, for overviews
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

# The whole pipeline, in order; a stage without a module here is not built yet.
PIPELINE: list[tuple[str, str]] = [
    ("baseline", "Baseline evaluation"),
    ("mipro", "MIPROv2 optimization"),
    ("teacher", "Teacher dataset"),
    ("finetune", "LoRA fine-tune"),
    ("validation", "Validation"),
    ("integration", "Integration"),
]
BUILT = {"baseline": "pipeline.stages.baseline", "mipro": "pipeline.stages.mipro",
         "teacher": "pipeline.stages.teacher"}


# The "only the first N examples" option of each stage that evaluates examples.
LIMIT_KEY = {"baseline": "limit", "mipro": "val_limit", "teacher": "pool_limit"}


class UnknownStage(ValueError):
    pass


def get(name: str) -> ModuleType:
    if name not in BUILT:
        planned = dict(PIPELINE)
        if name in planned:
            raise UnknownStage(f"stage {name!r} ({planned[name]}) is not built yet; available: {', '.join(BUILT)}")
        raise UnknownStage(f"no stage {name!r}; stages: {', '.join(n for n, _ in PIPELINE)}")
    return import_module(BUILT[name])
