"""po.toml: the typed configuration of a workspace. Every error names the file and the key."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Strict as StrictType, Tag, ValidationError, create_model,
                      field_validator)

from pipeline.providers.local_engine import LocalSettings


class ConfigError(ValueError):
    """A user's configuration mistake: one line naming the file and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    train: str = Field("data/train.jsonl", description="training examples (JSONL), relative to the workspace")
    val: str = Field("data/val.jsonl", description="validation examples (JSONL)")
    pool: str = Field("data/pool.jsonl", description="inputs for the teacher stage (JSONL)")
    fields: dict[str, str] = Field(default_factory=dict, description="a key of the data files -> the program's "
                                   "field it holds, when they differ (idea = \"concept\")")


class ProgramConfig(Strict):
    module: str = Field("pipeline.product_owner:ProductOwnerProgram",
                        description="package.module:Name of a dspy.Module class, or of a function returning one")
    python_path: list[str] = Field(default_factory=list, description="directories put on sys.path first, relative "
                                   "to the workspace (e.g. \"../dspy-baseline/src\")")


class MetricConfig(Strict):
    function: str = Field("pipeline.metric:product_owner_metric",
                          description="package.module:name of metric(example, prediction, trace=None)")
    range: tuple[float, float] = Field((0.0, 1.0), description="the scores the metric documents; a score outside "
                                       "is an error of the metric, kept out of the mean")
    judge: str | None = Field(None, description="a [providers.*] table the metric's own LM calls go to (an LM "
                              "judge), counted apart from the program's; default: the program's model")


class LocalProvider(LocalSettings):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["local"] = "local"


# TOML has real booleans: `threads = true` is a mistake to report, not a 1.
Int = Annotated[int, StrictType()]
Float = Annotated[float, StrictType()]


class ProviderLimits(Strict):
    concurrency: Int = Field(4, ge=1, le=256, description="requests in flight at once")
    requests_per_minute: Float | None = Field(None, gt=0, description="paced evenly, no bursts")
    tokens_per_minute: Float | None = Field(None, gt=0, description="estimated prompt + output tokens")
    timeout_s: Float = Field(120.0, gt=0)
    max_retries: Int = Field(5, ge=0, le=50, description="on 429, 5xx, timeouts, connection resets")
    backoff_initial_s: Float = Field(1.0, ge=0)
    backoff_max_s: Float = Field(60.0, ge=0)


class Price(Strict):
    input_per_million: Float = Field(..., ge=0, description="USD per 1M input tokens")
    output_per_million: Float = Field(..., ge=0, description="USD per 1M output tokens")


class RemoteProvider(Strict):
    model: str = Field(..., min_length=1)
    limits: ProviderLimits = Field(default_factory=ProviderLimits)
    price: Price | None = None


class VertexProvider(RemoteProvider):
    kind: Literal["vertex"]
    project: str | None = Field(None, description="default: $GOOGLE_CLOUD_PROJECT")
    location: str | None = Field(None, description="default: $GOOGLE_CLOUD_LOCATION or us-central1")
    credentials_file: str | None = Field(None, description="service-account key; default: ADC")
    base_url: str | None = Field(None, description="a private endpoint or proxy")


class ServedOutput(Strict):
    """How a served model's output is bounded and shaped, as the in-process engine does it:
    without these a small model loops until its context fills and its output never parses."""

    structure: Literal["auto", "none", "llama.cpp", "vllm", "ollama"] = Field(
        "auto", description="constrain the output to the program's field markers in the server's dialect: "
        "llama.cpp (GBNF grammar), vllm (structured outputs regex), ollama (format: JSON schema, read back as "
        "fields), none; auto: asks the server what it is (GET /v1/models)")
    max_chars: dict[str, Int] = Field(default_factory=dict, description="upper bound of each output field's text, "
                                      "in characters; the request's max_tokens is their sum")
    default_max_chars: Int = Field(1500, ge=20, description="the bound of a field max_chars does not name")
    temperature: Float | None = Field(None, ge=0.0, le=2.0, description="sent with every request unless the "
                                      "program sets one (0 = greedy); default: the server's")
    repetition_penalty: Float | None = Field(None, ge=1.0, le=2.0, description="llama.cpp and vLLM only: "
                                             "their repetition penalty (llama.cpp's over the last 64 tokens, "
                                             "vLLM's over prompt and answer); default: the server's (none)")


class OllamaProvider(RemoteProvider, ServedOutput):
    kind: Literal["ollama"]
    host: str | None = Field(None, description="default: $OLLAMA_HOST or http://127.0.0.1:11434")


class OpenAIProvider(RemoteProvider, ServedOutput):
    kind: Literal["openai"]
    base_url: str = Field(..., min_length=1, description="e.g. http://127.0.0.1:8000/v1 (vLLM)")
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the key")


def _provider_kind(value) -> str:
    # `kind` may be left out of the local provider's table.
    return value.get("kind", "local") if isinstance(value, dict) else getattr(value, "kind", "local")


PROVIDER_KINDS = ("local", "vertex", "ollama", "openai")
# The provider name of the workspace's task model: the student `po promote` made it, else
# `[providers.task]` when po.toml has that table, else `local`.
TASK = "task"
ProviderConfig = Annotated[
    Annotated[LocalProvider, Tag("local")] | Annotated[VertexProvider, Tag("vertex")]
    | Annotated[OllamaProvider, Tag("ollama")] | Annotated[OpenAIProvider, Tag("openai")],
    Discriminator(_provider_kind),
]


class ConsoleConfig(Strict):
    refresh_s: float = Field(1.0, ge=0.2, le=60, description="how often the console polls the store")
    low_bandwidth: bool = Field(False, description="no animations, refresh every 3 s (also PO_LOW_BANDWIDTH=1)")
    keys: dict[str, str] = Field(default_factory=dict, description="binding id -> key, e.g. cancel-run = \"x\"")


class WorkspaceConfig(Strict):
    """The tables every workspace has; each registered stage adds its own (see `config_model`)."""

    providers: dict[str, ProviderConfig] = Field(default_factory=lambda: {"local": LocalProvider()})
    data: DataConfig = Field(default_factory=DataConfig)
    program: ProgramConfig = Field(default_factory=ProgramConfig)
    metric: MetricConfig = Field(default_factory=MetricConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)

    @field_validator("providers")
    @classmethod
    def _local_is_always_there(cls, providers: dict) -> dict:
        # The embedded model needs no configuration: it is available unless redefined.
        return {"local": LocalProvider(), **providers}

    def provider(self, name: str, *, key: str) -> ProviderConfig:
        if name == TASK and name not in self.providers:
            return self.providers["local"]  # the task model before any promotion (Workspace.provider_config)
        if name not in self.providers:
            known = ", ".join(sorted(self.providers)) or "none"
            raise ConfigError(f"{key} names provider {name!r}, which is not configured (known: {known}; a model "
                              "served by `po serve` or `po export ollama` is known by its name once it is)")
        return self.providers[name]

    def stage(self, name: str) -> BaseModel:
        """The `[name]` table of a registered stage."""
        return getattr(self, name)


def config_model() -> type[WorkspaceConfig]:
    """po.toml's model: the workspace's own tables plus one per registered stage, so a
    team's stage is configured, and its mistakes reported, like a built-in one."""
    from pipeline import stages

    return _assemble(tuple((s.name, s.Config) for s in stages.stages()))


@functools.cache
def _assemble(sections: tuple[tuple[str, type[BaseModel]], ...]) -> type[WorkspaceConfig]:
    fields = {name: (model, Field(default_factory=model)) for name, model in sections}
    return create_model("Config", __base__=WorkspaceConfig, **fields)


def __getattr__(name: str):
    if name == "Config":  # `from pipeline.config import Config`: the assembled model
        return config_model()
    raise AttributeError(name)


def describe_validation_error(source: str, error: ValidationError) -> str:
    """`po.toml: baseline.threads must be >= 1 (got 0)` — one line per problem."""
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        if len(loc) > 2 and loc[0] == "providers" and loc[2] in PROVIDER_KINDS:
            del loc[2]  # the union's tag, not a key the user wrote
        key = ".".join(str(p) for p in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key}")
            continue
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            lines.append(f"{source}: {key}.kind must be one of local, vertex, ollama, openai")
            continue
        message = item["msg"]
        for prefix in ("Input should be ", "Value error, "):
            if message.startswith(prefix):
                message = "must be " + message[len(prefix):] if prefix.startswith("Input") else message[len(prefix):]
        message = message.replace("greater than or equal to", ">=").replace("less than or equal to", "<=")
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {key} {message}{shown}")
    return "\n".join(lines)


def with_overrides(current: BaseModel, section: str, overrides: dict) -> BaseModel:
    """A stage's config from po.toml with command-line/console overrides, validated again."""
    try:
        return type(current).model_validate({**current.model_dump(), **overrides})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(section, exc)) from None


def parse_config(text: str, source: str = "po.toml", served: frozenset[str] = frozenset()) -> WorkspaceConfig:
    """po.toml's text, validated; a provider name must be a [providers.*] table or one of the
    `served` models (`po serve`, `po export ollama`)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        config = config_model().model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(source, exc)) from None
    for name in type(config).model_fields:  # every provider a table names is a [providers.*] table
        section = getattr(config, name)
        for key in ("provider", "prompt_provider", "judge"):
            if isinstance(getattr(section, key, None), str) and getattr(section, key) not in served:
                config.provider(getattr(section, key), key=f"{source}: {name}.{key}")
    return config


def load_config(path: Path, served: frozenset[str] = frozenset()) -> WorkspaceConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (create it with `po init`)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_config(text, str(path), served)
