"""The PEFT adapter -> GGUF LoRA adapter conversion: tensors, permutation, metadata, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.serving.gguf_adapter import ConversionError, convert


def _tiny_llama_adapter(tmp_path, *, arch="llama"):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = LlamaForCausalLM(config)
    # init_lora_weights=False: random A *and* B, so a wrong permutation of B cannot pass.
    lora = LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(model, lora)
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    return adapter, {**config.to_dict(), "architectures": ["LlamaForCausalLM"]}


def _hf_to_llama_cpp_rows(b, n_head):
    """Independent of the module's code: within each head, llama.cpp wants the rotary pairs
    interleaved where Hugging Face keeps the two halves apart (new row 2i+j = old row j*half+i)."""
    d = b.shape[0] // n_head
    half = d // 2
    out = np.empty_like(b)
    for h in range(n_head):
        for i in range(half):
            for j in range(2):
                out[h * d + 2 * i + j] = b[h * d + j * half + i]
    return out


def test_the_converted_tensors_equal_the_peft_weights_after_the_q_k_permutation_with_the_adapter_metadata(tmp_path):
    import gguf
    from safetensors.numpy import load_file

    adapter, base = _tiny_llama_adapter(tmp_path)
    out = convert(adapter, base, tmp_path / "student.gguf", outtype="f32")
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    reader = gguf.GGUFReader(str(out))

    fields = {f.name: f for f in reader.fields.values()}
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "llama"
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 16.0

    got = {t.name: np.array(t.data).reshape([int(x) for x in reversed(t.shape)]) for t in reader.tensors}
    assert len(got) == 2 * 7 * 2  # 2 layers x 7 projections x (a, b)
    for layer in range(2):
        for hf, cpp, heads in [("self_attn.q_proj", "attn_q", 4), ("self_attn.k_proj", "attn_k", 2),
                               ("self_attn.v_proj", "attn_v", None), ("mlp.down_proj", "ffn_down", None)]:
            prefix = f"base_model.model.model.layers.{layer}.{hf}"
            a, b = peft[f"{prefix}.lora_A.weight"], peft[f"{prefix}.lora_B.weight"]
            assert np.array_equal(got[f"blk.{layer}.{cpp}.weight.lora_a"], a)
            expected_b = _hf_to_llama_cpp_rows(b, heads) if heads else b
            assert np.array_equal(got[f"blk.{layer}.{cpp}.weight.lora_b"], expected_b), (layer, hf)
            if heads:
                assert not np.array_equal(expected_b, b)  # the permutation did something


def test_f16_output_is_the_f32_weights_rounded(tmp_path):
    import gguf

    adapter, base = _tiny_llama_adapter(tmp_path)
    f32 = gguf.GGUFReader(str(convert(adapter, base, tmp_path / "a32.gguf", outtype="f32")))
    f16 = gguf.GGUFReader(str(convert(adapter, base, tmp_path / "a16.gguf")))
    for t32, t16 in zip(f32.tensors, f16.tensors):
        assert t32.name == t16.name
        assert np.array_equal(np.array(t32.data).astype(np.float16), np.array(t16.data))
    assert not list(tmp_path.glob("*.partial"))


def test_an_unsupported_architecture_or_adapter_is_refused_in_one_line(tmp_path):
    adapter, base = _tiny_llama_adapter(tmp_path)
    with pytest.raises(ConversionError, match="Qwen2ForCausalLM is not supported.*vLLM") as caught:
        convert(adapter, {**base, "architectures": ["Qwen2ForCausalLM"]}, tmp_path / "x.gguf")
    assert "\n" not in str(caught.value)

    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ConversionError, match="DoRA"):
        convert(adapter, base, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
