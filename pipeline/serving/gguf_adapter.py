"""A PEFT LoRA adapter as a GGUF LoRA adapter: what llama.cpp's server (`--lora`) and Ollama
(`ADAPTER file.gguf`) load.

The tensors are PEFT's, renamed to llama.cpp's names (`blk.N.attn_q.weight.lora_a`), with one
transformation: llama.cpp stores the Q and K projections of llama-family models with their
rows permuted for its RoPE layout (convert_hf_to_gguf.py's `LlamaModel.permute`), so `lora_B`
of `q_proj` and `k_proj` (whose rows are those outputs) gets the same permutation. `lora_A`
is untouched. Checked against llama.cpp's own convert_lora_to_gguf.py (field-notes).

Only architectures whose tensor layout is known here are converted; others are refused
with a line that says what to do, rather than written wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# Hugging Face architecture -> llama.cpp architecture, for the ones converted here (both use
# llama's tensor names and Q/K permutation in convert_hf_to_gguf.py).
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama"}
MODULES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
           "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")


class ConversionError(ValueError):
    """The adapter cannot be converted: the message says why and what to do."""


def permute(weights, n_head: int, n_head_kv: int | None):
    """llama.cpp's Q/K row permutation (convert_hf_to_gguf.py, LlamaModel.permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def supported(base_config: dict) -> str | None:
    """llama.cpp's architecture name for a base's config.json, or None when not converted here."""
    for name in base_config.get("architectures") or []:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    return None


def convert(adapter_dir: Path, base_config: dict, out: Path, *, outtype: str = "f16") -> Path:
    """Write `out` (a GGUF LoRA adapter) from a PEFT adapter directory; returns `out`.
    `base_config` is the base model's config.json. Written to a temporary name and renamed."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    names = base_config.get("architectures") or ["(none)"]
    arch = supported(base_config)
    if arch is None:
        raise ConversionError(f"GGUF adapter: base architecture {names[0]} is not supported (supported: "
                              f"{', '.join(sorted(ARCHITECTURES))}); serve the PEFT adapter with vLLM "
                              "(--enable-lora) or the local provider instead")
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{adapter_dir / 'adapter_config.json'}: cannot be read ({exc})") from None
    if config.get("peft_type", "LORA") != "LORA":
        raise ConversionError(f"{adapter_dir}: a {config.get('peft_type')} adapter; only LoRA converts to GGUF")
    if config.get("use_dora") or config.get("use_rslora"):
        raise ConversionError(f"{adapter_dir}: DoRA / rsLoRA adapters have no GGUF form in llama.cpp; train with "
                              "plain LoRA to serve through llama.cpp or Ollama")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ConversionError(f"{adapter_dir}: per-module rank or alpha (rank_pattern / alpha_pattern) has no GGUF "
                              "form: llama.cpp takes one alpha per adapter")
    if config.get("modules_to_save"):
        raise ConversionError(f"{adapter_dir}: modules_to_save ({config['modules_to_save']}) are full weights, "
                              "not LoRA pairs, and have no place in a GGUF adapter")
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not weights_file.exists():
        raise ConversionError(f"{weights_file}: missing (export the adapter as safetensors)")
    tensors = load_file(str(weights_file))

    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads") or n_head)
    dtype = {"f16": np.float16, "f32": np.float32}[outtype]
    pairs: dict[tuple[int, str], dict[str, object]] = {}
    for key, value in tensors.items():
        match = _KEY.search(key)
        if not match:
            raise ConversionError(f"{weights_file}: tensor {key} is not a LoRA pair of a layer projection "
                                  "(embeddings or lm_head in the adapter are not converted)")
        layer, module, side = int(match.group(1)), match.group(2), match.group(3)
        if module not in MODULES:
            raise ConversionError(f"{weights_file}: LoRA on {module!r} has no llama.cpp tensor name")
        pairs.setdefault((layer, module), {})[side] = value.astype(np.float32)

    tmp = out.with_name(out.name + ".partial")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.get("lora_alpha", config.get("r", 8))))
    writer.add_name(f"{adapter_dir.parent.name}-{adapter_dir.name}")
    for (layer, module), pair in sorted(pairs.items()):
        if set(pair) != {"A", "B"}:
            raise ConversionError(f"{weights_file}: layer {layer} {module} has lora_{''.join(pair)} only")
        lora_a, lora_b = pair["A"], pair["B"]
        if module == "q_proj":
            lora_b = permute(lora_b, n_head, n_head)
        elif module == "k_proj":
            lora_b = permute(lora_b, n_head, n_head_kv)
        name = f"blk.{layer}.{MODULES[module]}.weight"
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(lora_a.astype(dtype)))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(lora_b.astype(dtype)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
