"""`po export ollama RUN`: the student as an Ollama model, against a loopback Ollama server
driven by the official client. The TEMPLATE is checked by rendering it (a minimal Go template
renderer below, independent of the module) against the base tokenizer's chat template."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pipeline.serving import ollama_export as ox
from state import read
from state import write as store
from tests.conftest import po
from tests.ollama_loopback import OllamaLoopback

BASE = "smollm2:135m"

# ---------------------------------------------------------------------------------------------
# A minimal renderer of the Go template subset the module emits: text, {{ .Field }}, {{ $.Field }},
# range (with `$i, $_ :=`), if / else if / else, eq, and, len, slice, parentheses, trim markers.
# ---------------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_FUNCS = {"eq": lambda a, b: a == b, "len": len, "slice": lambda x, i: x[i:], "not": lambda a: not a,
          "and": lambda *a: next((x for x in a if not x), a[-1]), "or": lambda *a: next((x for x in a if x), a[-1])}


def go_render(template: str, data: dict) -> str:
    tokens: list[list] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        tokens.append(["text", text.rstrip(" \t\r\n") if m.group(1) else text])
        tokens.append(["act", m.group(2), bool(m.group(3))])
        pos = m.end()
    tokens.append(["text", template[pos:]])
    for i, token in enumerate(tokens):
        if token[0] == "act" and token[2]:
            tokens[i + 1][1] = tokens[i + 1][1].lstrip(" \t\r\n")
    nodes, i, term = _parse(tokens, 0)
    assert term is None and i == len(tokens), "unbalanced template"
    return _exec(nodes, data, data, {})


def _parse(tokens, i):
    nodes = []
    while i < len(tokens):
        kind, text = tokens[i][0], tokens[i][1]
        if kind == "text":
            nodes.append(("text", text))
            i += 1
            continue
        word = text.split()[0]
        if word in ("end", "else"):
            return nodes, i, text
        if word == "range":
            body, i, term = _parse(tokens, i + 1)
            assert term == "end"
            nodes.append(("range", text[len("range"):].strip(), body))
        elif word == "if":
            branches, cond = [], text[len("if"):].strip()
            while True:
                body, i, term = _parse(tokens, i + 1)
                branches.append((cond, body))
                if term == "end":
                    break
                cond = term[len("else if"):].strip() if term.startswith("else if") else None
            nodes.append(("if", branches))
        else:
            nodes.append(("expr", text))
        i += 1
    return nodes, i, None


def _eval(expr: str, dot, root, env):
    words = re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+', expr)

    def operand(word):
        if word.startswith('"'):
            return json.loads(word)
        if word.isdigit():
            return int(word)
        if word in _FUNCS:
            return _FUNCS[word]
        if word.startswith("$."):
            return root[word[2:]]
        if word == "$":
            return root
        if word.startswith("$"):
            return env[word]
        if word == ".":
            return dot
        if word.startswith("."):
            return dot[word[1:]]
        raise AssertionError(f"not in the subset: {word}")

    def command(at):
        args = []
        while at < len(words) and words[at] != ")":
            if words[at] == "(":
                value, at = command(at + 1)
                assert words[at] == ")"
                args.append(value)
            else:
                args.append(operand(words[at]))
            at += 1
        if callable(args[0]):
            return args[0](*args[1:]), at
        assert len(args) == 1, expr
        return args[0], at

    value, at = command(0)
    assert at == len(words), expr
    return value


def _exec(nodes, dot, root, env) -> str:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            out.append(str(_eval(node[1], dot, root, env)))
        elif node[0] == "range":
            spec = node[1]
            names = []
            if ":=" in spec:
                left, spec = spec.split(":=")
                names = [n.strip() for n in left.split(",")]
            for index, item in enumerate(_eval(spec.strip(), dot, root, env)):
                scope = dict(env)
                if len(names) == 2:
                    scope[names[0]], scope[names[1]] = index, item
                elif names:
                    scope[names[0]] = item
                out.append(_exec(node[2], item, root, scope))
        else:
            for cond, body in node[1]:
                if cond is None or _eval(cond, dot, root, env):
                    out.append(_exec(body, dot, root, env))
                    break
    return "".join(out)


def ollama_values(messages: list[dict], system_default: str | None = None) -> dict:
    """What Ollama hands a template for /api/chat: the Modelfile's SYSTEM first when the request
    has no system message, consecutive turns of one role merged, and .System their system text."""
    if system_default is not None and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": system_default}, *messages]
    collated = []
    for m in messages:
        if collated and collated[-1]["Role"] == m["role"]:
            collated[-1]["Content"] += "\n\n" + m["content"]
        else:
            collated.append({"Role": m["role"], "Content": m["content"]})
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return {"Messages": collated, "System": system}


def hf(tokenizer, messages) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token
    # The server adds the BOS token when it tokenizes; a template that writes it out is compared without it.
    return text[len(bos):] if bos and "bos_token" in tokenizer.chat_template and text.startswith(bos) else text


def modelfile_template(text: str) -> str:
    return re.search(r'^TEMPLATE """(.*?)"""$', text, re.DOTALL | re.MULTILINE).group(1)


CONVERSATIONS = [
    [{"role": "system", "content": "You write product visions."}, {"role": "user", "content": "A clinic booking app."}],
    [{"role": "user", "content": "A clinic booking app."}],
    [{"role": "system", "content": "S."}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
     {"role": "user", "content": "Q2"}],
]

# Mistral v0.3's template, shortened (no tools): the system prompt opens the last user turn.
MISTRAL_JINJA = """{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}\
{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}\
{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}\
{%- if loop.last and system_message is defined %}{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}\
{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}\
{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content']|trim + eos_token }}{%- endif %}{%- endfor %}"""

# Meta Llama 3's template.
LLAMA3_JINJA = """{% set loop_messages = messages %}{% for message in loop_messages %}\
{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}\
{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}\
{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"""

# Llama 2's: [INST] like Mistral's, but the system prompt in <<SYS>>: recognised, renders otherwise.
LLAMA2_JINJA = """{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + \
'\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}\
{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"""


@pytest.fixture(scope="module")
def smollm_dir() -> Path:
    from pipeline.providers.local_model import ensure_converted

    return ensure_converted()[0]


@pytest.fixture
def tokenizer(smollm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm_dir)


def _with_template(tokenizer, jinja: str, bos: str, eos: str):
    tokenizer.add_special_tokens({"bos_token": bos, "eos_token": eos})
    tokenizer.chat_template = jinja
    return tokenizer


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def test_the_chatml_template_of_the_embedded_smollm2_renders_like_its_chat_template(tokenizer):
    fmt = ox.chat_format(tokenizer)
    assert fmt.family == "chatml" and fmt.stop == ("<|im_start|>", "<|im_end|>") and fmt.checked
    # SmolLM2's template adds its own system prompt when a conversation has none: the Modelfile's SYSTEM.
    assert fmt.system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    for conversation in CONVERSATIONS:
        assert go_render(fmt.template, ollama_values(conversation, fmt.system)) == hf(tokenizer, conversation)
    system_user = go_render(fmt.template, ollama_values(CONVERSATIONS[0], fmt.system))
    assert system_user == ("<|im_start|>system\nYou write product visions.<|im_end|>\n<|im_start|>user\n"
                           "A clinic booking app.<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("family, jinja, bos, eos", [
    ("mistral", MISTRAL_JINJA, "<s>", "</s>"),
    ("llama3", LLAMA3_JINJA, "<|begin_of_text|>", "<|eot_id|>"),
], ids=["mistral", "llama3"])
def test_the_mistral_and_llama3_templates_render_like_their_chat_templates(tokenizer, family, jinja, bos, eos):
    tokenizer = _with_template(tokenizer, jinja, bos, eos)
    fmt = ox.chat_format(tokenizer)
    assert fmt.family == family and fmt.system is None
    for conversation in CONVERSATIONS:
        assert go_render(fmt.template, ollama_values(conversation)) == hf(tokenizer, conversation), conversation
    if family == "mistral":
        assert go_render(fmt.template, ollama_values(CONVERSATIONS[0])) == \
            "[INST] You write product visions.\n\nA clinic booking app.[/INST]"
        assert fmt.stop == ("[INST]", "[/INST]")
    else:
        assert "<|eot_id|>" in fmt.stop


def test_an_unknown_template_or_one_that_renders_otherwise_is_refused_with_one_line(tokenizer):
    gemma = "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    with pytest.raises(ox.ExportError, match="not one recognised here.*--template FILE") as unknown:
        ox.chat_format(_with_template(tokenizer, gemma, "<bos>", "<eos>"))
    with pytest.raises(ox.ExportError, match="looks like mistral but renders otherwise.*--template FILE") as other:
        ox.chat_format(_with_template(tokenizer, LLAMA2_JINJA, "<s>", "</s>"))
    assert "\n" not in str(unknown.value) and "\n" not in str(other.value)


def test_a_template_file_is_taken_as_given_with_the_eos_as_its_stop(tokenizer, tmp_path):
    (tmp_path / "t.tmpl").write_text("{{ .Prompt }}")
    fmt = ox.chat_format(tokenizer, template_file=tmp_path / "t.tmpl")
    assert (fmt.family, fmt.template, fmt.stop, fmt.checked) == ("custom", "{{ .Prompt }}", ("<|im_end|>",), False)
    assert ox.chat_format(tokenizer, template_file=tmp_path / "t.tmpl", stop=("<x>",)).stop == ("<x>",)


# ---------------------------------------------------------------------------------------------
# The export
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def student(tmp_path_factory, smollm_dir):
    """A tiny llama LoRA adapter and a base directory (its config.json, SmolLM2's tokenizer)."""
    from tests.test_serving_gguf import _tiny_llama_adapter

    root = tmp_path_factory.mktemp("student")
    adapter, config = _tiny_llama_adapter(root)
    base = root / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (smollm_dir / name).exists():
            shutil.copy(smollm_dir / name, base / name)
    return adapter, base


@pytest.fixture
def ws(tmp_path, student):
    """A workspace with one succeeded fine-tune run (id in ws.run) holding the student's adapter."""
    from pipeline.workspace import init_workspace

    adapter, base = student
    workspace = init_workspace(tmp_path / "ws", demo=True)
    db = workspace.db()
    run_id = store.create_run(db, "finetune", {"base_model": "embedded", "base_directory": str(base)})
    shutil.copytree(adapter, workspace.run_dir(run_id) / "adapter")
    store.finish_run(db, run_id, "succeeded", summary={"adapter": f"artifacts/{run_id}/adapter"})
    workspace.run = run_id
    return workspace


@pytest.fixture
def server():
    with OllamaLoopback(models=[BASE]) as s:
        yield s


def test_export_uploads_the_adapter_once_creates_the_model_and_registers_it_as_a_provider(ws, server, tokenizer):
    from pipeline.providers import build_lm

    lines = []
    result = ox.export_ollama(ws, ws.run, base=BASE, host=server.url, progress=lines.append)
    name = f"po-student-{ws.run}"
    out = ws.root / "artifacts" / str(ws.run) / "ollama"
    digest = "sha256:" + result.adapter_sha256
    assert result.created and result.uploaded and result.name == name and result.answer == "OK"
    assert server.blobs[digest] == (out / "adapter.gguf").read_bytes()
    assert [r.path for r in server.uploads()] == [f"/api/blobs/{digest}"]

    (create,) = server.creates
    fmt = ox.chat_format(tokenizer)
    assert create["model"] == name and create["from"] == BASE and create["adapters"] == {"adapter.gguf": digest}
    assert create["template"] == fmt.template and create["system"] == fmt.system
    assert create["parameters"] == {"stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0}
    assert "success" in result.status and any("ollama: writing manifest" in line for line in lines)
    assert server.chats[0]["model"] == name  # the check prompt

    # The files: artifacts with their sha256; the Modelfile's TEMPLATE renders like the chat template.
    text = (out / "Modelfile").read_text()
    assert f"FROM {BASE}\nADAPTER ./adapter.gguf\n" in text
    assert 'PARAMETER stop "<|im_start|>"\nPARAMETER stop "<|im_end|>"\nPARAMETER temperature 0\n' in text
    assert f'SYSTEM """{fmt.system}"""' in text
    template = modelfile_template(text)
    assert go_render(template, ollama_values(CONVERSATIONS[0], fmt.system)) == hf(tokenizer, CONVERSATIONS[0])
    import hashlib

    arts = {a.path: a for a in read.artifacts(ws.db(readonly=True), ws.run)}
    for file, kind in (("adapter.gguf", "gguf-adapter"), ("Modelfile", "modelfile")):
        art = arts[f"artifacts/{ws.run}/ollama/{file}"]
        assert art.kind == kind and art.sha256 == hashlib.sha256((out / file).read_bytes()).hexdigest()

    # Registered: the name is a provider every stage can use, answering through Ollama.
    provider = {"kind": "ollama", "model": name, "host": server.url, "structure": "none"}
    assert read.served_model(ws.db(readonly=True), name).provider_config == provider
    assert ws.provider_config(name, key="baseline.provider") == provider
    server.reply = "Bonjour."
    lm = build_lm(provider, name, cache=False)
    assert lm("hello") == ["Bonjour."]
    assert server.chats[-1]["model"] == name

    # Again: the server holds the blob (HEAD), so nothing is uploaded; the model is created again.
    again = ox.export_ollama(ws, ws.run, base=BASE, host=server.url)
    assert again.created and not again.uploaded and again.adapter_sha256 == result.adapter_sha256
    assert len(server.uploads()) == 1 and len(server.seen("HEAD")) == 2 and len(server.creates) == 2


@pytest.mark.parametrize("setup, expected", [
    (lambda s: s.fail_create("unsupported architecture"), "cannot apply the adapter to smollm2:135m"),
    (lambda s: s.fail_create("write /root/.ollama/models/blobs/x: no space left on device", status=500),
     "out of disk.*free disk there"),
    (lambda s: s.models.pop(BASE), r"does not have the base model smollm2:135m.*`ollama pull smollm2:135m` there"),
], ids=["unsupported-architecture", "out-of-disk", "unknown-base"])
def test_a_server_error_is_one_line_that_says_what_to_do_and_nothing_is_registered(ws, server, setup, expected):
    setup(server)
    with pytest.raises(ox.ServerError, match=expected) as failure:
        ox.export_ollama(ws, ws.run, base=BASE, host=server.url)
    assert "\n" not in str(failure.value) and server.url in str(failure.value)
    assert read.served_models(ws.db(readonly=True)) == [] and server.chats == []
    assert (ws.root / "artifacts" / str(ws.run) / "ollama" / "Modelfile").exists()  # the files stay


def test_without_a_server_only_the_files_are_written_unless_create_is_asked(ws):
    from tests.loopback import unused_port

    host = f"http://127.0.0.1:{unused_port()}"
    result = ox.export_ollama(ws, ws.run, base=BASE, host=host)
    assert not result.created and result.server_version is None
    assert (ws.root / result.directory / "Modelfile").exists() and (ws.root / result.directory / "adapter.gguf").exists()
    with pytest.raises(ox.ServerError, match=f"no Ollama server answers at {host}.*--no-create"):
        ox.export_ollama(ws, ws.run, base=BASE, host=host, create=True)


def test_runs_that_cannot_be_exported_are_refused_with_what_to_do(ws, tmp_path):
    db = ws.db()
    baseline = store.create_run(db, "baseline", {})
    store.finish_run(db, baseline, "succeeded")
    failed = store.create_run(db, "finetune", {"base_directory": str(tmp_path)})
    store.finish_run(db, failed, "failed", error="boom")
    for run_id, message in ((999, "run 999 does not exist"), (baseline, "is a baseline run that exported no adapter: export a fine-tune run"),
                            (failed, f"run {failed} is failed: only a succeeded fine-tune")):
        with pytest.raises(ox.ExportError, match=message):
            ox.export_ollama(ws, run_id, base=BASE, create=False)
    with pytest.raises(ox.ExportError, match="--from is required"):
        ox.export_ollama(ws, ws.run, base=None, create=False)
    with pytest.raises(ox.ExportError, match="--name local: po.toml already has a provider of that name"):
        ox.export_ollama(ws, ws.run, base=BASE, name="local", create=False)


def test_the_host_is_the_option_then_ollama_host_then_a_po_toml_ollama_table(ws, monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ox.resolve_host(ws, None) == "http://127.0.0.1:11434"
    with open(ws.config_path, "a") as f:
        f.write('\n[providers.box]\nkind = "ollama"\nmodel = "m"\nhost = "http://box:11434"\n')
    ws.__dict__.pop("config", None)
    assert ox.resolve_host(ws, None) == "http://box:11434"
    monkeypatch.setenv("OLLAMA_HOST", "http://env:1")
    assert ox.resolve_host(ws, None) == "http://env:1"
    assert ox.resolve_host(ws, "http://given:2") == "http://given:2"


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def test_po_export_ollama_no_create_writes_only_the_files_and_json_says_so(ws, server):
    proc = po("export", "ollama", str(ws.run), "--from", BASE, "--host", server.url, "--no-create", "--json",
              ws=ws.root)
    data = json.loads(proc.stdout)
    assert data["created"] is False and data["name"] == f"po-student-{ws.run}" and data["family"] == "chatml"
    assert server.requests == []
    assert (ws.root / data["directory"] / "Modelfile").exists()


def test_po_export_ollama_creates_and_a_server_error_is_one_line_and_exit_1(ws, server):
    proc = po("export", "ollama", str(ws.run), "--from", BASE, "--host", server.url, "--name", "pv", ws=ws.root)
    assert "provider = \"pv\"" in proc.stdout and server.creates[-1]["model"] == "pv"

    server.fail_create("unsupported architecture")
    proc = po("export", "ollama", str(ws.run), "--from", BASE, "--host", server.url, ws=ws.root, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
    assert "unsupported architecture" in proc.stderr and "Traceback" not in proc.stderr

    proc = po("export", "ollama", str(ws.run), ws=ws.root, check=False)  # no --from
    assert proc.returncode == 2 and "--from is required" in proc.stderr


def test_po_export_ollama_help_teaches_with_examples():
    text = po("export", "ollama", "--help").stdout
    assert "po export ollama 7 --from" in text and "--no-create" in text and "--template" in text
