"""`po export ollama RUN`: a fine-tune run's student as a model on an Ollama server.

The PEFT adapter becomes a GGUF LoRA adapter (`gguf_adapter.convert`, the form Ollama applies
to any base it holds, unlike a safetensors adapter, which it converts for llama/gemma2 only);
beside it goes a Modelfile: `FROM <base>` (a model the server holds), `ADAPTER ./adapter.gguf`,
and the TEMPLATE, SYSTEM and stop PARAMETERs of the base's chat template, so the student is
prompted exactly as it was trained. Both files are the run's artifacts
(`artifacts/<run>/ollama/`). Then, when the server answers, the adapter is uploaded as a blob
(once: a blob the server holds is not sent again), the model is created through /api/create,
asked one short question, and registered as a served model, so `provider = "<name>"` works in
every stage.

The TEMPLATE is Ollama's Go template for the base's chat template family, recognised by its
markers (ChatML, Mistral [INST], Llama 3 headers), and checked here: the family's rendering of
sample conversations must equal the base tokenizer's `apply_chat_template` (less the BOS token,
which the server adds when it tokenizes). A template that is not recognised, or renders
otherwise, is refused with a line that says to pass `--template FILE`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import TASK, ConfigError

CREATE_TIMEOUT_S = 600.0  # per read: the server converts and loads while it streams status lines
PROBE_TIMEOUT_S = 5.0
CHECK_PROMPT = "Reply with the single word OK."


class ExportError(ConfigError):
    """The export cannot go on: one line that says why and what to do."""


class ServerError(ExportError):
    """The Ollama server could not be reached, or refused or failed the model (the CLI exits 1)."""


# ---------------------------------------------------------------------------------------------
# Chat template families
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatFormat:
    family: str  # chatml, mistral, llama3, custom
    template: str  # Ollama's Go template
    stop: tuple[str, ...]
    system: str | None = None  # the default system prompt the base's template adds (Modelfile SYSTEM)
    checked: bool = True  # rendered like the base's chat template on sample conversations


@dataclass(frozen=True)
class _Family:
    name: str
    markers: tuple[str, ...]  # in the Jinja source
    template: Callable[[str], str]  # eos token -> Go template
    render: Callable[[list[dict], str], str]  # what the Go template renders (with the generation prompt)
    stop: tuple[str, ...]
    system_block: str | None  # regex of a leading system turn, group 1 its text (a default system prompt)


def _chatml_render(messages: list[dict], eos: str) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


CHATML_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


def _llama3_render(messages: list[dict], eos: str) -> str:
    return ("".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
            + "<|start_header_id|>assistant<|end_header_id|>\n\n")


LLAMA3_TEMPLATE = """{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""


def _mistral_render(messages: list[dict], eos: str) -> str:
    """Mistral v0.3's template (Ollama's `mistral` one): the system prompt opens the last user turn."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    text = ""
    for i, m in enumerate(turns):
        if m["role"] == "user":
            last = i == len(turns) - 1
            text += f"[INST] {system}\n\n{m['content']}[/INST]" if last and system else f"[INST] {m['content']}[/INST]"
        elif m["role"] == "assistant":
            text += f" {m['content']}{eos}"
    return text


MISTRAL_TEMPLATE = """{{- range $index, $_ := .Messages }}
{{- if eq .Role "user" }}
{{- if and (eq (len (slice $.Messages $index)) 1) $.System }}[INST] {{ $.System }}

{{ .Content }}[/INST]
{{- else }}[INST] {{ .Content }}[/INST]
{{- end }}
{{- else if eq .Role "assistant" }} {{ .Content }}EOS
{{- end }}
{{- end }}"""


def _mistral_template(eos: str) -> str:
    # Ollama hands the system messages to a template both in .Messages and joined in .System;
    # the assistant turn ends with the tokenizer's own EOS text.
    return MISTRAL_TEMPLATE.replace("EOS", eos)


FAMILIES = (
    _Family("chatml", ("<|im_start|>",), lambda eos: CHATML_TEMPLATE, _chatml_render, ("<|im_start|>", "<|im_end|>"),
            r"<\|im_start\|>system\n(.*?)<\|im_end\|>\n"),
    _Family("llama3", ("<|start_header_id|>",), lambda eos: LLAMA3_TEMPLATE, _llama3_render,
            ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
            r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>"),
    _Family("mistral", ("[INST]",), _mistral_template, _mistral_render, ("[INST]", "[/INST]"), None),
)

# Conversations the family's rendering must reproduce (the student's prompts are a system
# message, then user turns with few-shot demos as user/assistant pairs).
SAMPLES = (
    [{"role": "system", "content": "You are a product owner."}, {"role": "user", "content": "Draft a vision."}],
    [{"role": "user", "content": "Draft a vision."}],
    [{"role": "system", "content": "You are a product owner."}, {"role": "user", "content": "Example input."},
     {"role": "assistant", "content": "Example answer."}, {"role": "user", "content": "Draft a vision."}],
)


def load_tokenizer(base_directory: str | Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(base_directory))
    except Exception as exc:  # noqa: BLE001 - any reason: one line
        raise ExportError(f"{base_directory}: the base model's tokenizer cannot be loaded ({exc})") from None


def chat_format(tokenizer, *, template_file: Path | None = None, stop: tuple[str, ...] = ()) -> ChatFormat:
    """The Ollama TEMPLATE, SYSTEM and stop tokens matching the tokenizer's chat template."""
    eos = tokenizer.eos_token or ""
    if template_file is not None:
        try:
            text = Path(template_file).read_text()
        except OSError as exc:
            raise ExportError(f"--template {template_file}: cannot be read ({exc.strerror})") from None
        return ChatFormat("custom", text, tuple(stop) or ((eos,) if eos else ()), None, checked=False)
    source = tokenizer.chat_template
    if not isinstance(source, str) or not source:
        raise ExportError("the base model has no chat template: pass --template FILE (an Ollama Go template) "
                          "and --stop for its end-of-turn tokens")
    family = next((f for f in FAMILIES if any(marker in source for marker in f.markers)), None)
    if family is None:
        raise ExportError("the base's chat template is not one recognised here (ChatML, Mistral [INST], Llama 3): "
                          "pass --template FILE, an Ollama Go template that renders it, and --stop for its "
                          "end-of-turn tokens")
    strip_bos = "bos_token" in source and bool(tokenizer.bos_token)

    def expected(messages):
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 - the template refuses this conversation (e.g. no system role)
            return None
        return text[len(tokenizer.bos_token):] if strip_bos and text.startswith(tokenizer.bos_token) else text

    # A default system prompt: what the base's template puts first when a conversation has none.
    system = None
    alone = expected(SAMPLES[1])
    if alone is not None and family.system_block and alone != family.render(SAMPLES[1], eos):
        found = re.match(family.system_block, alone, re.DOTALL)
        system = found.group(1) if found else None
    rendered = 0
    for sample in SAMPLES:
        want = expected(sample)
        if want is None:
            continue
        # Ollama puts the Modelfile's SYSTEM first when a request has no system message.
        effective = sample if system is None or sample[0]["role"] == "system" else \
            [{"role": "system", "content": system}, *sample]
        got = family.render(effective, eos)
        if got != want:
            raise ExportError(f"the base's chat template looks like {family.name} but renders otherwise "
                              f"(expected {want[:80]!r}, {family.name} gives {got[:80]!r}): pass --template FILE, an "
                              "Ollama Go template that renders it, and --stop for its end-of-turn tokens")
        rendered += 1
    if not rendered:
        raise ExportError("the base's chat template renders none of the sample conversations: pass --template FILE")
    return ChatFormat(family.name, family.template(eos), family.stop, system)


def _quoted(text: str) -> str:
    # Ollama's Modelfile parser takes what is between the quotes as is (no escapes).
    return '"' + text + '"'


def modelfile(base: str, fmt: ChatFormat, *, adapter: str = "./adapter.gguf", header: str = "") -> str:
    """The Modelfile text: FROM, ADAPTER, TEMPLATE, SYSTEM, stop tokens and greedy decoding."""
    if '"""' in fmt.template:
        raise ExportError('the chat template contains """, which a Modelfile cannot quote')
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"FROM {base}", f"ADAPTER {adapter}", f'TEMPLATE """{fmt.template}"""']
    if fmt.system is not None:
        lines.append(f'SYSTEM """{fmt.system}"""')
    lines += [f"PARAMETER stop {_quoted(s)}" for s in fmt.stop]
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The export
# ---------------------------------------------------------------------------------------------

@dataclass
class ExportResult:
    run_id: int
    name: str  # the Ollama model, and the provider name it is registered as
    base: str  # FROM
    host: str
    family: str  # the chat template family (custom: --template)
    directory: str  # artifacts/<run>/ollama, relative to the workspace
    adapter_sha256: str
    created: bool  # the model was created on the server (else only the files were written)
    uploaded: bool = False  # the adapter blob was sent (False: the server held it already)
    server_version: str | None = None
    answer: str | None = None  # the model's answer to the check prompt
    provider: dict | None = None  # the registered provider table
    status: list[str] = field(default_factory=list)  # the server's status lines


def default_name(run_id: int) -> str:
    return f"po-student-{run_id}"


def resolve_host(ws, host: str | None) -> str:
    """--host, else $OLLAMA_HOST, else the host of a po.toml provider table of kind ollama, else the default."""
    import os

    from pipeline.providers.ollama_provider import DEFAULT_HOST

    if host:
        return host
    if os.environ.get("OLLAMA_HOST"):
        return os.environ["OLLAMA_HOST"]
    for table in ws.config.providers.values():
        if getattr(table, "kind", None) == "ollama" and getattr(table, "host", None):
            return table.host
    return DEFAULT_HOST


def server_version(host: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """The server's version (GET /api/version; the client has no method for it), or None when
    nothing answers there as Ollama."""
    import httpx
    import ollama

    try:
        with ollama.Client(host=host, timeout=timeout) as client:
            response = client._client.get("/api/version")
            response.raise_for_status()
            return str(response.json().get("version") or "?")
    except (httpx.HTTPError, ConnectionError, ValueError, AttributeError):
        return None


def _finetune_run(ws, run_id: int):
    from state import read

    if not ws.db_path.exists():
        raise ExportError(f"run {run_id} does not exist (this workspace has no runs)")
    run = read.get_run(ws.db(readonly=True), run_id)
    if run is None:
        raise ExportError(f"run {run_id} does not exist: `po runs` lists the runs; export one that trained a student")
    if run.status != "succeeded":
        raise ExportError(f"run {run_id} is {run.status}: only a succeeded fine-tune run has a finished adapter "
                          f"(`po resume {run_id}` finishes it)")
    # What a run exported, not its stage's name, says it trained a student (any stage may).
    exported = (run.summary or {}).get("adapter")
    if not exported:
        raise ExportError(f"run {run_id} is a {run.stage} run that exported no adapter: export a fine-tune run")
    adapter = ws.resolve(exported)
    if not (adapter / "adapter_config.json").exists():
        raise ExportError(f"run {run_id} has no adapter at {adapter} (adapter_config.json is missing)")
    base_directory = run.config.get("base_directory")
    if not base_directory or not (Path(base_directory) / "config.json").exists():
        raise ExportError(f"run {run_id}: its base model directory {base_directory!r} has no config.json: the "
                          "adapter is converted against the base's config, so restore that directory")
    return run, adapter, Path(base_directory)


def write_files(ws, run_id: int, *, base: str, template_file: Path | None = None, stop: tuple[str, ...] = (),
                progress: Callable[[str], None] = lambda line: None) -> tuple[Path, Path, ChatFormat]:
    """Convert the adapter and write the Modelfile (`artifacts/<run>/ollama/`), both recorded as the
    run's artifacts. Returns (adapter.gguf, Modelfile, the chat format)."""
    from pipeline.serving.gguf_adapter import ConversionError, convert
    from state import write as store

    run, adapter, base_directory = _finetune_run(ws, run_id)
    try:
        base_config = json.loads((base_directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{base_directory / 'config.json'}: cannot be read ({exc})") from None
    fmt = chat_format(load_tokenizer(base_directory), template_file=template_file, stop=stop)
    progress(f"chat template: {fmt.family}" + ("" if fmt.checked else " (from --template, not checked)"))
    out = ws.run_dir(run_id) / "ollama"
    out.mkdir(parents=True, exist_ok=True)
    try:
        gguf_file = convert(adapter, base_config, out / "adapter.gguf")
    except ConversionError as exc:
        raise ExportError(str(exc)) from None
    progress(f"adapter: {gguf_file.relative_to(ws.root)} ({gguf_file.stat().st_size:,} bytes)")
    header = (f"po export ollama: the student of run {run_id} (fine-tune of {run.config.get('base_model', '?')}).\n"
              "Create it on a server that holds the FROM model: ollama create NAME -f Modelfile")
    text = modelfile(base, fmt, header=header)
    modelfile_path = out / "Modelfile"
    staging = modelfile_path.with_name("Modelfile.tmp")
    staging.write_text(text)
    staging.replace(modelfile_path)
    db = ws.db()
    for path, kind in ((gguf_file, "gguf-adapter"), (modelfile_path, "modelfile")):
        data = path.read_bytes()
        store.put_artifact(db, run_id, str(path.relative_to(ws.root)), kind, hashlib.sha256(data).hexdigest(), len(data))
    progress(f"Modelfile: {modelfile_path.relative_to(ws.root)}")
    return gguf_file, modelfile_path, fmt


def export_ollama(ws, run_id: int, *, base: str | None, name: str | None = None, host: str | None = None,
                  create: bool | None = None, template_file: Path | None = None, stop: tuple[str, ...] = (),
                  progress: Callable[[str], None] = lambda line: None) -> ExportResult:
    """Write the files; then, when `create` (None: when the server answers /api/version), create
    the model on the Ollama server, check it answers, and register it as provider `name`."""
    if not base:
        raise ExportError("--from is required: the Ollama model of the fine-tune's base, as the server names it "
                          "(e.g. --from smollm2:135m for the embedded SmolLM2; `ollama pull` it there first)")
    name = name or default_name(run_id)
    if name == TASK or name in ws.config.providers:
        raise ExportError(f"--name {name}: po.toml already has a provider of that name, which would hide the "
                          "exported model: pick another --name")
    host = resolve_host(ws, host)
    gguf_file, modelfile_path, fmt = write_files(ws, run_id, base=base, template_file=template_file, stop=stop,
                                                 progress=progress)
    digest = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    result = ExportResult(run_id, name, base, host, fmt.family, str(modelfile_path.parent.relative_to(ws.root)),
                          digest, created=False)
    if create is False:
        progress(f"not created: copy {modelfile_path.parent} to the Ollama server, then `ollama create {name} -f "
                 "Modelfile` in that folder there")
        return result
    result.server_version = server_version(host)
    if result.server_version is None:
        if create:
            raise ServerError(f"no Ollama server answers at {host}: start it (`ollama serve`), or pass --host / set "
                              "OLLAMA_HOST; --no-create only writes the files")
        progress(f"no Ollama server answers at {host}, so only the files are written: pass --host, or copy "
                 f"{modelfile_path.parent} to the server and run `ollama create {name} -f Modelfile` in that folder")
        return result
    progress(f"Ollama {result.server_version} at {host}")
    _create(result, gguf_file, fmt, progress)
    from state import write as store

    result.provider = {"kind": "ollama", "model": name, "host": host, "structure": "none"}
    store.register_served_model(ws.db(), name, result.provider, run_id=None, source_run_id=run_id)
    progress(f"registered: provider = \"{name}\" now answers through Ollama at {host}")
    return result


def _create(result: ExportResult, gguf_file: Path, fmt: ChatFormat, progress: Callable[[str], None]) -> None:
    import httpx
    import ollama

    host, digest = result.host, f"sha256:{result.adapter_sha256}"
    client = ollama.Client(host=host, timeout=httpx.Timeout(CREATE_TIMEOUT_S, connect=PROBE_TIMEOUT_S))
    stage = "upload"
    try:
        # create_blob always sends the file: ask first (HEAD), as the ollama CLI does.
        held = client._client.head(f"/api/blobs/{digest}").status_code == 200
        if held:
            progress(f"adapter blob {digest[:19]}…: already on the server")
        else:
            sent = client.create_blob(gguf_file)
            if sent != digest:
                raise ServerError(f"the adapter changed while it was uploaded ({sent} != {digest}): export again")
            result.uploaded = True
            progress(f"adapter blob {digest[:19]}…: uploaded")
        stage = "create"
        extra = {"system": fmt.system} if fmt.system is not None else {}
        for line in client.create(model=result.name, from_=result.base, adapters={"adapter.gguf": digest},
                                  template=fmt.template, parameters={"stop": list(fmt.stop), "temperature": 0},
                                  stream=True, **extra):
            if line.status:
                result.status.append(line.status)
                progress(f"ollama: {line.status}")
        stage = "chat"
        reply = client.chat(model=result.name, messages=[{"role": "user", "content": CHECK_PROMPT}],
                            options={"num_predict": 16, "temperature": 0})
    except ServerError:
        raise
    except ollama.ResponseError as exc:
        raise ServerError(_refusal(result, stage, exc.error, exc.status_code)) from None
    except (ConnectionError, httpx.TransportError) as exc:
        raise ServerError(f"lost the Ollama server at {host} during {stage} ({type(exc).__name__}): check it is "
                          "running and export again") from None
    result.created = True
    result.answer = (reply.message.content or "").strip()
    progress(f"check: {result.name} answers {result.answer[:60]!r}")


def _refusal(result: ExportResult, stage: str, error: str, status: int) -> str:
    """The server's error as one line that says what to do."""
    host, base, error = result.host, result.base, " ".join(str(error).split())
    low = error.lower()
    if stage == "chat":
        return (f"model {result.name} was created on {host} but does not answer ({error}): try `ollama run "
                f"{result.name}` there and read the server's log")
    if "no space left" in low or ("disk" in low and "full" in low):
        return f"the Ollama server at {host} is out of disk ({error}): free disk there (`ollama rm` unused models) " \
               "and export again"
    if "unsupported architecture" in low:
        return (f"Ollama at {host} cannot apply the adapter to {base} ({error}): --from must be the fine-tune's base "
                "model as a GGUF model of a llama-family architecture the server supports")
    if "not found" in low or "file does not exist" in low or "pull model manifest" in low or status == 404:
        return (f"the Ollama server at {host} does not have the base model {base} ({error}): run `ollama pull {base}` "
                "there (`ollama list` shows what it has), or pass --from with a model it holds")
    if status in (401, 403):
        return f"the Ollama server at {host} refused the request ({error}): check the proxy or credentials in front of it"
    return f"the Ollama server at {host} failed to create {result.name} during {stage} ({error})"
