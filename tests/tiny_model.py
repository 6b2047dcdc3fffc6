"""A tiny randomly initialised Mistral-architecture model for fine-tune tests: two layers,
hidden 64, `intermediate_size` set (its default of 14336 makes it 20x slower — field-notes),
with the embedded SmolLM2's tokenizer and chat template, so it renders what SmolLM2 would."""

from __future__ import annotations

from pathlib import Path


def build_tiny_mistral(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    from pipeline.providers.local_model import ensure_converted

    if (directory / "config.json").exists():
        return directory
    tokenizer = AutoTokenizer.from_pretrained(ensure_converted()[0])
    torch.manual_seed(seed)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    MistralForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
