"""Stages, LM providers, the PO program and metric, data sets and the run engine.

Imports state/; never imports textual.
"""

import os

# No step may reach the internet at run time: LiteLLM (imported by DSPy) would fetch a
# model price map, and transformers/huggingface_hub would look for newer files.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
