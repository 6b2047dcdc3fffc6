"""Several training processes: accelerate wraps the model and optimizer the way the user's
accelerate config says (DDP by default, FSDP2 to shard the base across GPUs), and what a
checkpoint holds is gathered from, and scattered back to, the ranks with torch's distributed
state-dict API, which reads DDP and FSDP models alike. Only the trainable (LoRA) weights and
their optimizer state are gathered: the frozen base is never copied.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import ConfigError

# What an accelerate config may ask of this stage. DeepSpeed's engine owns the optimizer step,
# the loss scaling and the checkpoints, which this loop does itself; FSDP1 is superseded by
# FSDP2 (torch's fully_shard), the version that runs (and is tested) on CPUs too.
SUPPORTED = {"MULTI_GPU": "DDP", "FSDP": "FSDP2"}


def accelerate_distribution(path: Path) -> str:
    """The distribution ("DDP" or "FSDP2") an accelerate config file (`accelerate config`'s YAML
    or JSON) asks for, or a one-line ConfigError naming the file and the key."""
    import yaml

    key = "finetune.accelerate_config"
    if not path.is_file():
        raise ConfigError(f"{key}: {path} does not exist (write one with `accelerate config --config_file {path}`)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{key}: {path} is not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: {path} is not an accelerate config (a mapping of settings)")
    kind = str(data.get("distributed_type", "MULTI_GPU")).upper()
    if kind == "DEEPSPEED":
        raise ConfigError(f"{key}: {path} asks for DeepSpeed, which this stage does not drive (its engine owns the "
                          "optimizer and the checkpoints): use distributed_type: FSDP (a LoRA on a 7B base fits one "
                          "GPU anyway)")
    if kind not in SUPPORTED:
        raise ConfigError(f"{key}: {path} has distributed_type: {kind}; this stage trains with MULTI_GPU (DDP) or "
                          "FSDP")
    precision = str(data.get("mixed_precision") or "no").lower()
    if precision not in ("no", "bf16"):
        raise ConfigError(f"{key}: {path} has mixed_precision: {precision}, whose loss scaling this loop does not do: "
                          "set it to 'no' (finetune.dtype picks the dtype: bf16 where the GPU has it)")
    version = str((data.get("fsdp_config") or {}).get("fsdp_version", 1))
    if kind == "FSDP" and version != "2":
        raise ConfigError(f"{key}: {path} asks for FSDP version {version}; set fsdp_config.fsdp_version: 2 (torch's "
                          "fully_shard, which LoRA trains with)")
    return SUPPORTED[kind]


def prepare(model, optimizer, on_cpu: bool):
    """accelerate's wrapping of the model and optimizer (together: FSDP2 swaps the parameters the
    optimizer holds). Returns (model, optimizer, "DDP" or "FSDP2")."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import FSDPModule

    accelerator = Accelerator(cpu=on_cpu)
    if on_cpu and os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" \
            and accelerator.distributed_type == DistributedType.MULTI_CPU:
        # accelerate applies FSDP only on accelerators, but torch's fully_shard runs on CPUs over
        # gloo: the plugin the launcher described (FSDP_* variables) is applied here, so a CPU
        # box trains the way a GPU box does (and the tests exercise that path).
        state = AcceleratorState()
        state.distributed_type = DistributedType.FSDP
        state.fsdp_plugin = FullyShardedDataParallelPlugin()
    model, optimizer = accelerator.prepare(model, optimizer)
    return model, optimizer, "FSDP2" if isinstance(model, FSDPModule) else "DDP"


def _options(**extra):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True, **extra)


def _raw(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps torch's


def gather(model, optimizer) -> tuple[dict, dict]:
    """The full LoRA weights and optimizer state, on rank 0's CPU (every rank calls it; the
    others get empty dicts)."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    return get_state_dict(model, _raw(optimizer), options=_options())


def gather_weights(model) -> dict:
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options())


def scatter(model, optimizer, weights: dict, optimizer_state: dict) -> None:
    """Load full LoRA weights (peft's names, as adapter_model.safetensors has them) and a gathered
    optimizer state into the wrapped model on every rank."""
    from torch.distributed.checkpoint.state_dict import set_state_dict

    trainable = [name.removeprefix("module.") for name, p in model.named_parameters() if p.requires_grad]
    names = {name.replace(".default.", "."): name for name in trainable}  # peft's name → the model's
    if set(weights) != set(names):
        raise RuntimeError(f"the checkpoint's adapter has {len(weights)} weights, the model {len(names)} trainable "
                           "ones: it is not this run's")
    # Not strict: the frozen base is not in the checkpoint (DDP's state dict would ask for it).
    set_state_dict(model, _raw(optimizer), model_state_dict={names[k]: v for k, v in weights.items()},
                   optim_state_dict=optimizer_state, options=_options(strict=False))
