"""An Ollama server on 127.0.0.1 for tests: enough of its wire protocol for the official
`ollama` client to upload blobs, create a model from a base plus a LoRA adapter, list models
and chat, unchanged. Ollama itself cannot be installed here (field-notes).

    with OllamaLoopback(models=["smollm2:135m"]) as server:
        ...  # ollama.Client(host=server.url)
        assert server.creates[0]["from"] == "smollm2:135m"

State is kept like the server keeps it: blobs by digest (HEAD answers 200 once held), models
by name (created ones answer chat). Every request is recorded (method, path, JSON body; blob
bodies as their size). `fail_create(...)` makes the next create fail the way Ollama does:
an `{"error": ...}` line in the status stream, or an HTTP error before it starts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.loopback import LoopbackServer

BLOBS = "/api/blobs/"
CREATE = "/api/create"
CHAT = "/api/chat"
TAGS = "/api/tags"
VERSION = "/api/version"


@dataclass
class Seen:
    method: str
    path: str
    body: object  # parsed JSON; for a blob upload, its size in bytes


class OllamaLoopback(LoopbackServer):
    """A ThreadingHTTPServer on 127.0.0.1:<random> in a daemon thread. Thread-safe."""

    def __init__(self, models=("mistral:7b-instruct",), version: str = "0.12.0"):
        self._lock = threading.Lock()
        self.version = version
        self.blobs: dict[str, bytes] = {}  # "sha256:<hex>" -> bytes
        self.models: dict[str, dict] = {name: {"base": True} for name in models}  # name -> its create request
        self.requests: list[Seen] = []
        self.creates: list[dict] = []  # bodies of POST /api/create
        self.chats: list[dict] = []  # bodies of POST /api/chat
        self.reply = "OK"  # what chat answers (a str, or a function of the request body)
        self._create_failures: list[tuple[int | None, str]] = []

    # -- scripting -----------------------------------------------------------------------------
    def fail_create(self, error: str, *, status: int | None = None) -> OllamaLoopback:
        """The next create fails: with `status`, an HTTP error `{"error": error}` before any status
        line; without, an `{"error": error}` line after the first status lines (as a stream ends)."""
        with self._lock:
            self._create_failures.append((status, error))
        return self

    def uploads(self) -> list[Seen]:
        return [r for r in self.seen("POST") if r.path.startswith(BLOBS)]

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (path is None or r.path == path)]

    # -- serving -------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, urlsplit(handler.path).path
        raw = self._read_body(handler)
        body: object = None
        if path.startswith(BLOBS):
            body = len(raw)
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(Seen(method, path, body))
        status, payload, content_type = self._answer(method, path, raw, body)
        try:
            handler.send_response(status)
            handler.send_header("content-type", content_type)
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(payload)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _read_body(handler) -> bytes:
        if handler.headers.get("transfer-encoding", "").lower() == "chunked":  # a streamed file upload
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("content-length") or 0)
        return handler.rfile.read(length) if length else b""

    def _answer(self, method: str, path: str, raw: bytes, body) -> tuple[int, bytes, str]:
        def js(status: int, data) -> tuple[int, bytes, str]:
            return status, json.dumps(data).encode(), "application/json; charset=utf-8"

        if path.startswith(BLOBS):
            digest = path[len(BLOBS):]
            if not digest.startswith("sha256:") or len(digest) != 7 + 64:
                return js(400, {"error": f"invalid digest format: {digest}"})
            if method == "HEAD":
                with self._lock:
                    held = digest in self.blobs
                return (200 if held else 404), b"", "text/plain"
            if method == "POST":
                if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
                    return js(400, {"error": "digest mismatch"})
                with self._lock:
                    self.blobs[digest] = raw
                return 201, b"", "text/plain"
        if method == "GET" and path == VERSION:
            return js(200, {"version": self.version})
        if method == "GET" and path == TAGS:
            with self._lock:
                names = sorted(self.models)
            return js(200, {"models": [{"name": n, "model": n, "modified_at": "2025-01-01T00:00:00Z", "size": 1,
                                        "digest": hashlib.sha256(n.encode()).hexdigest(),
                                        "details": {"format": "gguf", "family": "llama"}} for n in names]})
        if method == "POST" and path == CREATE:
            return self._create(body if isinstance(body, dict) else {})
        if method == "POST" and path == CHAT:
            return self._chat(body if isinstance(body, dict) else {})
        return js(404, {"error": f"no route for {method} {path}"})

    def _create(self, body: dict) -> tuple[int, bytes, str]:
        with self._lock:
            self.creates.append(body)
            failure = self._create_failures.pop(0) if self._create_failures else None
        if failure and failure[0] is not None:
            return failure[0], json.dumps({"error": failure[1]}).encode(), "application/json; charset=utf-8"
        lines: list[dict] = []
        base = body.get("from")
        with self._lock:
            has_base = base in self.models
            missing = [d for d in (body.get("adapters") or {}).values() if d not in self.blobs]
        if not has_base:
            lines += [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
        elif missing:
            lines += [{"error": f"blob {missing[0]} not found"}]
        elif failure:
            lines += [{"status": "using existing layer sha256:" + "0" * 64}, {"error": failure[1]}]
        else:
            lines += [{"status": f"using existing layer {d}"} for d in (body.get("adapters") or {}).values()]
            lines += [{"status": "creating new layer sha256:" + hashlib.sha256(
                json.dumps(body.get(k)).encode()).hexdigest()} for k in ("template", "parameters", "system") if k in body]
            lines += [{"status": "writing manifest"}, {"status": "success"}]
            with self._lock:
                self.models[body.get("model")] = body
        payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return 200, payload, "application/x-ndjson"

    def _chat(self, body: dict) -> tuple[int, bytes, str]:
        model = body.get("model")
        with self._lock:
            self.chats.append(body)
            known = model in self.models
        if not known:
            return 404, json.dumps({"error": f"model \"{model}\" not found, try pulling it first"}).encode(), \
                "application/json; charset=utf-8"
        text = self.reply(body) if callable(self.reply) else self.reply
        return 200, json.dumps({
            "model": model, "created_at": "2025-01-01T00:00:00.000000Z",
            "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop",
            "total_duration": 123_000_000, "load_duration": 1_000_000, "prompt_eval_count": 11,
            "prompt_eval_duration": 20_000_000, "eval_count": 7, "eval_duration": 100_000_000,
        }).encode(), "application/json; charset=utf-8"
