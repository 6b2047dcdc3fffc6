"""The base model, the LoRA on it, where it runs, and what is exported.

`base_model = "embedded"` is the embedded SmolLM2 (its cached safetensors copy, as the local
provider loads it); anything else is a local directory, or a model id already in the Hugging
Face cache (nothing is downloaded at run time). Device and dtype are picked at run time:
bf16 on a CUDA GPU that supports it (fp16 otherwise), and on a CPU bf16 autocast over fp32
weights, which field-notes measured 1.5-1.8x faster than fp32 on this machine's CPU.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import ConfigError

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def base_directory(base_model: str) -> str:
    """A directory or cached model id transformers can load (the local provider's rule), or a
    ConfigError naming finetune.base_model and saying what to do."""
    from pipeline.providers.local_model import base_directory as find

    try:
        return str(find(base_model))
    except ConfigError as exc:
        raise ConfigError(f"finetune.{exc}") from None


@dataclass
class Placement:
    device: str  # cpu, cuda
    load_dtype: object  # the weights' dtype
    autocast: object  # the dtype computation is autocast to, or None
    label: str  # for the log and the summary: "cuda bf16", "cpu fp32 + bf16 autocast"


def placement(device: str, dtype: str) -> Placement:
    import torch

    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError("finetune.device = \"cuda\" but no CUDA GPU is visible here (torch.cuda.is_available() "
                          "is false): use device = \"auto\" or \"cpu\", or run on the GPU box")
    on = "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"
    if on == "cuda":
        if dtype == "fp32":
            return Placement("cuda", torch.float32, None, "cuda fp32")
        half = torch.bfloat16 if dtype in ("auto", "bf16") and torch.cuda.is_bf16_supported() else torch.float16
        return Placement("cuda", half, None, f"cuda {'bf16' if half == torch.bfloat16 else 'fp16'}")
    if dtype == "fp32":
        return Placement("cpu", torch.float32, None, "cpu fp32")
    return Placement("cpu", torch.float32, torch.bfloat16, "cpu fp32 + bf16 autocast")


def load_tokenizer(directory: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ConfigError(f"finetune.base_model: {directory} has no chat template: the student is prompted through "
                          "one, so train an instruct model's base (mistral-7b-instruct, SmolLM2-Instruct, …)")
    return tokenizer


def load_for_training(directory: str, place: Placement, lora: dict, load_in_4bit: bool):
    """The base model with a fresh LoRA on it (peft), on its device, ready to train."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    options = {"dtype": place.load_dtype}
    if load_in_4bit:
        if place.device != "cuda":
            raise ConfigError("finetune.load_in_4bit needs a CUDA GPU (bitsandbytes' 4-bit kernels)")
        try:
            from transformers import BitsAndBytesConfig

            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError("finetune.load_in_4bit needs bitsandbytes: pip install bitsandbytes") from None
        options["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                            bnb_4bit_compute_dtype=place.load_dtype)
    model = AutoModelForCausalLM.from_pretrained(directory, **options)
    if not load_in_4bit:
        model = model.to(place.device)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in lora["target_modules"] if t in present]
    if not targets:
        raise ConfigError(f"finetune.target_modules: none of {', '.join(lora['target_modules'])} is a module of this "
                          f"base model")
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=targets,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def export(model, tokenizer, directory: Path, merged: Path | None, weights: dict | None = None,
           base: str | None = None) -> list[Path]:
    """The adapter as peft writes it (adapter_model.safetensors + adapter_config.json: what peft,
    the local provider and vLLM's --lora-modules read) and, when asked, the merged model.
    `weights`: the LoRA weights gathered from several processes (a sharded model has only its
    part); the merged model is then made from the base on disk and the written adapter."""
    core = getattr(model, "module", model)
    core.save_pretrained(directory, state_dict=weights)
    written = sorted(p for p in directory.iterdir() if p.is_file())
    if merged is not None:
        if weights is None:
            import copy

            whole = copy.deepcopy(core)
        else:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            whole = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=core.dtype), directory)
        whole.merge_and_unload().save_pretrained(merged, safe_serialization=True)
        tokenizer.save_pretrained(merged)
        written += sorted(p for p in merged.iterdir() if p.is_file())
    return written


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
