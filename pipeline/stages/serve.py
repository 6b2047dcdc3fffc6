"""Serve: the student (or its base alone) behind llama.cpp's server on 127.0.0.1, as a run
of its own — a detached process with a pid, a heartbeat while `/health` answers, a log, and
`po cancel` to stop it — registered as a provider every stage can name.

`po serve` (the newest fine-tune's student), `po serve RUN`, `po serve --base` (the base
alone, so base and student are compared through the same engine). The fine-tune's PEFT
adapter is converted to a GGUF LoRA adapter here (pipeline.serving.gguf_adapter) and
recorded as an artifact. The registered provider bounds and constrains the output the way
the in-process engine does (GBNF grammar of the field markers, the same field budgets).

Unit of resume: the whole server. A resumed (or stale) serve run starts the server again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import Field

from pipeline.config import ConfigError, Float, Int
from pipeline.runner import RunCancelled
from pipeline.stages.base import Details, RunConfig, Stage, StageConfig, option
from pipeline.units import duration

HEALTH_EVERY_S = 2.0
HEALTH_MISSES = 8  # 16 s without /health: the server is hung, the run fails


class ServeConfig(StageConfig):
    run: Int | None = option(None, "the fine-tune run whose adapter is served (default: the newest that "
                             "exported one)", ge=1)
    base: bool = option(False, "serve the base model alone (to compare base and student through one engine)")
    base_gguf: str = option("embedded", "the base as GGUF: \"embedded\" (SmolLM2's, offline) or a .gguf file (the "
                            "base the student was trained on, e.g. a Q4_K_M of Mistral-7B-Instruct)")
    name: str | None = option(None, "the provider name stages use (default: student, or base with --base)")
    port: Int = option(0, "the port on 127.0.0.1 (0: a free one)", ge=0, le=65535)
    threads: Int = option(1, "CPU threads of the server (1 beside other CPU work: field-notes)", ge=1, le=256)
    parallel: Int = option(1, "requests answered at once (llama.cpp's slots; the context is shared)", ge=1, le=64)
    ctx_size: Int = option(4096, "context tokens, shared by the slots", ge=256)
    ready_timeout_s: Float = option(180.0, "how long the server may take to load before the run fails", gt=0)
    repetition_penalty: Float | None = option(None, "sent with each request (llama.cpp's, over the last 64 "
                                              "tokens; not the in-process engine's, over the answer only): measured "
                                              "to lengthen the student's answers, so none by default", ge=1.0, le=2.0)


class ServeRun(ServeConfig, RunConfig):
    source_run: int | None = None
    adapter_dir: str | None = None
    base_config: dict = Field(default_factory=dict)
    base_gguf_path: str = ""
    binary: str = ""
    provider_name: str = "student"
    max_chars: dict = Field(default_factory=dict)
    default_max_chars: int = 500


TOML = """
[serve]
# po serve [RUN] / po serve --base: llama.cpp's server on 127.0.0.1 (install: make llama-server).
base_gguf = "embedded"      # the base as GGUF: "embedded" (SmolLM2) or a .gguf file of the base
threads = 1
parallel = 1
"""


def _student_run(db, run_id: int | None):
    from state import read

    if run_id is not None:
        run = read.get_run(db, run_id)
        if run is None:
            raise ConfigError(f"serve: there is no run {run_id}")
        if run.state != "succeeded" or not (run.summary or {}).get("adapter"):
            raise ConfigError(f"serve: run {run_id} ({run.stage}, {run.status}) exported no adapter: name a "
                              "succeeded fine-tune run (po runs --stage finetune)")
        return run
    student = read.newest_succeeded(db, "adapter")
    if student is None:
        raise ConfigError("serve: no succeeded run exported an adapter: run `po run finetune` first, or serve the "
                          "base alone with --base")
    return student


class ServeStage(Stage):
    name = "serve"
    title = "Serving"
    short_title = "Serve"
    order = 60
    in_chain = False  # a server runs until it is stopped: not a step of `po run all`
    run_argument = "run"  # `po serve RUN`
    progress_label = "tokens generated"
    Config = ServeConfig
    RunConfig = ServeRun
    toml_real = TOML

    def plan(self, ws, cfg: ServeConfig) -> ServeRun:
        from pipeline.providers.local_model import gguf_path
        from pipeline.serving import gguf_adapter
        from pipeline.serving.llama_server import INSTALL_HINT, find_binary

        binary = find_binary()
        if binary is None:
            raise ConfigError(f"serve: llama.cpp's server is not installed: {INSTALL_HINT}")
        if cfg.base_gguf == "embedded":
            model = gguf_path()
        else:
            model = ws.resolve(cfg.base_gguf)
            if not Path(model).is_file():
                raise ConfigError(f"serve.base_gguf: {model} is not a file (the base as GGUF)")
        db = ws.db(readonly=True)
        source = adapter = None
        base_config: dict = {}
        if cfg.base and cfg.run is not None:
            raise ConfigError("serve: --base serves the base alone; drop the run number")
        if not cfg.base:
            student = _student_run(db, cfg.run)
            source, adapter = student.id, str(ws.resolve(student.summary["adapter"]))
            directory = Path(student.config.get("base_directory") or "")
            try:
                base_config = json.loads((directory / "config.json").read_text())
            except (OSError, ValueError):
                raise ConfigError(f"serve: the base of run {student.id} ({directory}) has no readable config.json")
            if gguf_adapter.supported(base_config) is None:
                names = ", ".join(base_config.get("architectures") or ["?"])
                raise ConfigError(f"serve: run {student.id}'s base is {names}; llama.cpp adapters are made here for "
                                  f"{', '.join(sorted(gguf_adapter.ARCHITECTURES))} only: serve it with vLLM "
                                  "(README: Serving the student)")
            if cfg.base_gguf == "embedded" and student.config.get("base_model") != "embedded":
                raise ConfigError(f"serve: run {student.id} was trained on {student.config.get('base_model')}; set "
                                  "serve.base_gguf to that base as GGUF")
        local = ws.provider_config("local", key="providers.local")
        name = cfg.name or ("base" if cfg.base else "student")
        if name in ws.config.providers:
            raise ConfigError(f"serve: the name {name!r} is a [providers.{name}] table of po.toml; pick another with "
                              "--name")
        return ServeRun(**cfg.model_dump(), **self.project_keys(ws), source_run=source, adapter_dir=adapter,
                        base_config=base_config, base_gguf_path=str(model), binary=str(binary), provider_name=name,
                        max_chars=local.get("max_chars") or {}, default_max_chars=local.get("default_max_chars", 500))

    def check_resumable(self, ws, cfg: ServeRun) -> None:
        if cfg.adapter_dir and not Path(cfg.adapter_dir).exists():
            raise ConfigError(f"serve: the adapter {cfg.adapter_dir} is gone")

    def provider_table(self, cfg: ServeRun, url: str) -> dict:
        """What stages get for `provider = NAME`: the OpenAI-compatible provider, with the
        in-process engine's field budgets and llama.cpp's grammar, greedy, one request per slot."""
        return {"kind": "openai", "model": cfg.provider_name, "base_url": url + "/v1", "structure": "llama.cpp",
                "max_chars": cfg.max_chars, "default_max_chars": cfg.default_max_chars, "temperature": 0.0,
                "repetition_penalty": cfg.repetition_penalty,
                "limits": {"concurrency": cfg.parallel, "timeout_s": 600.0, "max_retries": 2},
                "price": {"input_per_million": 0.0, "output_per_million": 0.0}}  # this machine's own time

    def run(self, ctx, cfg: ServeRun) -> dict:
        from pipeline.serving.gguf_adapter import convert
        from pipeline.serving.llama_server import (
            LlamaServer,
            ServerSettings,
            describe_exit,
            last_error,
        )
        from state import write as store

        adapters: tuple[Path, ...] = ()
        if cfg.adapter_dir:
            out = convert(Path(cfg.adapter_dir), cfg.base_config, ctx.run_dir / "adapter.gguf")
            ctx.add_artifact(out, "gguf-adapter")
            ctx.log.info("converted %s to %s", cfg.adapter_dir, out)
            adapters = (out,)
        settings = ServerSettings(Path(cfg.base_gguf_path), adapters, port=cfg.port, threads=cfg.threads,
                                  parallel=cfg.parallel, ctx_size=cfg.ctx_size, alias=cfg.provider_name)
        server = LlamaServer(Path(cfg.binary), settings, ctx.run_dir / "llama-server.log")
        started = time.monotonic()
        server.start()
        ctx.log.info("llama-server pid %s on %s: %s", server.process.pid, server.url,
                     " ".join(settings.args(Path(cfg.binary), server.port)))
        try:
            server.wait_healthy(cfg.ready_timeout_s, ctx.cancel_requested_now)
            ctx.check_cancelled()
            store.register_served_model(ctx.db, cfg.provider_name, self.provider_table(cfg, server.url),
                                        run_id=ctx.run.id, source_run_id=cfg.source_run)
            what = f"run {cfg.source_run}'s student" if cfg.source_run else "the base alone"
            ctx.log.info("serving %s as provider %r at %s/v1 (po cancel %s stops it)", what, cfg.provider_name,
                         server.url, ctx.run.id)
            ctx.progress(0, None, f"{cfg.provider_name} at {server.url}")
            misses, shown = 0, None
            while not ctx.cancel_event.wait(HEALTH_EVERY_S):
                code = server.exited()
                if code is not None:
                    raise RuntimeError(f"llama-server exited ({describe_exit(code)}): {last_error(server.log_path)}")
                misses = 0 if server.health() == "ok" else misses + 1
                if misses >= HEALTH_MISSES:
                    raise RuntimeError(f"llama-server stopped answering /health for {misses * HEALTH_EVERY_S:g} s")
                served = self._served(server.metrics())
                if served != shown:
                    shown = served
                    ctx.progress(served["predicted_tokens"], None, f"{cfg.provider_name} at {server.url} · "
                                 f"{served['busy']} busy of {cfg.parallel}")
            summary = {**self._served(server.metrics()), "url": server.url, "name": cfg.provider_name,
                       "source_run": cfg.source_run, "served_s": round(time.monotonic() - started, 1)}
            raise RunCancelled(summary)
        finally:
            code = server.stop()
            ctx.log.info("llama-server stopped (%s)", describe_exit(code) if code is not None else "not started")

    @staticmethod
    def _served(metrics: dict) -> dict:
        """llama.cpp's counters: tokens read and generated, and the generation speed."""
        return {"prompt_tokens": int(metrics.get("prompt_tokens_total", 0)),
                "predicted_tokens": int(metrics.get("tokens_predicted_total", 0)),
                # The cumulative counters: llama.cpp resets its tokens/s gauges at each /metrics read.
                "predicted_per_s": round(metrics.get("tokens_predicted_total", 0)
                                         / metrics["tokens_predicted_seconds_total"], 1)
                if metrics.get("tokens_predicted_seconds_total") else 0.0,
                "busy": int(metrics.get("requests_processing", 0))}

    # -- what people read --------------------------------------------------------------------
    def headline(self, summary: dict | None) -> str:
        if not summary:
            return ""
        return (f"{summary.get('name')} served {summary.get('predicted_tokens', 0)} tokens in "
                f"{duration(summary.get('served_s'))}")

    def summary_rows(self, summary: dict) -> list[tuple[str, str]]:
        return [("served at", str(summary.get("url", "-"))), ("provider", str(summary.get("name", "-"))),
                ("tokens generated", str(summary.get("predicted_tokens", 0))),
                ("generation speed", f"{summary.get('predicted_per_s', 0)} tok/s"),
                ("served for", duration(summary.get("served_s")))]

    def plan_lines(self, config: dict) -> list[str]:
        what = (f"run {config.get('source_run')}'s student ({config.get('adapter_dir')})" if config.get("source_run")
                else "the base alone")
        return [f"serve {what} on {Path(config.get('base_gguf_path', '')).name} as provider "
                f"{config.get('provider_name')!r}: {config.get('parallel')} slot(s), {config.get('threads')} thread(s)"]

    def details(self, db, run) -> Details | None:
        from state import read

        served = next((m for m in read.served_models(db) if m.run_id == run.id), None)
        if served is None:
            return None
        url = served.provider_config["base_url"]
        return Details({"provider": served.name, "base_url": url},
                       [f"provider {served.name!r} at {url}" + ("" if run.status == "running" else " (not running)")])


STAGE = ServeStage()
