"""A scriptable HTTP server on 127.0.0.1 that speaks the wire protocols of the remote
providers (OpenAI-compatible, Ollama, Vertex AI via google-genai), for driving the real
client libraries in tests without a network.

    with Loopback() as server:
        server.script("/v1/chat/completions", openai_error(429, "slow down", retry_after=2), openai_chat("hi"))
        ...  # point a client at server.url
        assert len(server.requests_to("/v1/chat/completions")) == 2

Every request is recorded (method, path, headers, JSON body). Each path answers from its
queue of scripted responses, then from its default (`server.default(path, response)`),
then from the built-in default of the protocol it belongs to, else 404.
"""

from __future__ import annotations

import abc
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int = 200
    body: object = None  # JSON-serialisable, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to trigger client timeouts)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class Recorded:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    body: object  # parsed JSON, or the raw text, or None
    started: float
    finished: float | None = None


# A valid Product Owner answer in DSPy's ChatAdapter format, for any provider's chat reply.
PO_ANSWER = ("[[ ## product_vision ## ]]\nFor clinic staff who juggle bookings, this helps them fill cancelled slots "
             "so that clinicians stay busy.\n\n[[ ## product_owner_review ## ]]\nVerdict: Approved\n- must items are "
             "clear.\n- should items can wait.\n\n[[ ## completed ## ]]")


# -- OpenAI-compatible ------------------------------------------------------------------------

OPENAI_CHAT = "/v1/chat/completions"
OPENAI_MODELS = "/v1/models"


def openai_chat(text: str, *, model: str = "m", prompt_tokens: int = 11, completion_tokens: int = 7,
                finish_reason: str = "stop", delay: float = 0.0, headers: dict | None = None) -> Response:
    return Response(200, {
        "id": "chatcmpl-loopback-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_loopback",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }, dict(headers or {}), delay)


_OPENAI_TYPES = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
                 403: ("permission_denied", None), 404: ("invalid_request_error", "model_not_found"),
                 429: ("rate_limit_exceeded", "rate_limit_exceeded"), 500: ("server_error", None),
                 503: ("server_error", None)}


def openai_error(status: int, message: str, *, retry_after: float | None = None, delay: float = 0.0,
                 type: str | None = None, code: str | None = None) -> Response:
    default_type, default_code = _OPENAI_TYPES.get(status, ("invalid_request_error", None))
    headers = {"retry-after": _num(retry_after)} if retry_after is not None else {}
    return Response(status, {"error": {"message": message, "type": type or default_type, "param": None,
                                       "code": code if code is not None else default_code}}, headers, delay)


def openai_models(*ids: str, owned_by: str = "loopback") -> Response:
    """llama.cpp's server says owned_by "llamacpp", vLLM "vllm"."""
    return Response(200, {"object": "list", "data": [{"id": i, "object": "model", "created": 1700000000,
                                                      "owned_by": owned_by} for i in ids]})


# -- Ollama -----------------------------------------------------------------------------------

OLLAMA_CHAT = "/api/chat"
OLLAMA_TAGS = "/api/tags"
OLLAMA_VERSION = "/api/version"


def ollama_chat(text: str, *, model: str = "mistral:7b-instruct", prompt_eval_count: int = 11,
                eval_count: int = 7, done_reason: str = "stop", delay: float = 0.0,
                headers: dict | None = None) -> Response:
    return Response(200, {
        "model": model,
        "created_at": "2025-01-01T00:00:00.000000Z",
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": done_reason,
        "total_duration": 123_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": 20_000_000,
        "eval_count": eval_count,
        "eval_duration": 100_000_000,
    }, dict(headers or {}), delay)


def ollama_error(status: int, message: str, *, retry_after: float | None = None, delay: float = 0.0) -> Response:
    headers = {"retry-after": _num(retry_after)} if retry_after is not None else {}
    return Response(status, {"error": message}, headers, delay)


def ollama_tags(*names: str) -> Response:
    return Response(200, {"models": [{
        "name": n, "model": n, "modified_at": "2025-01-01T00:00:00.000000Z", "size": 4_109_865_159,
        "digest": "f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091",
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "7.2B", "quantization_level": "Q4_0"}} for n in names]})


# -- Vertex AI (google-genai with vertexai=True) ------------------------------------------------

def vertex_path(model: str, project: str = "p", location: str = "us-central1", method: str = "generateContent") -> str:
    return f"/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}"


def vertex_generate(text: str, *, model: str = "gemini-2.5-pro", prompt_tokens: int = 11,
                    candidates_tokens: int = 7, finish_reason: str = "STOP", delay: float = 0.0,
                    headers: dict | None = None) -> Response:
    return Response(200, {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish_reason,
                        "avgLogprobs": -0.1}],
        "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": candidates_tokens,
                          "totalTokenCount": prompt_tokens + candidates_tokens,
                          "trafficType": "ON_DEMAND"},
        "modelVersion": model,
        "createTime": "2025-01-01T00:00:00.000000Z",
        "responseId": "loopback-1",
    }, dict(headers or {}), delay)


_VERTEX_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def vertex_error(status: int, message: str, *, retry_after: float | None = None, delay: float = 0.0) -> Response:
    headers = {"retry-after": _num(retry_after)} if retry_after is not None else {}
    return Response(status, {"error": {"code": status, "message": message,
                                       "status": _VERTEX_STATUS.get(status, "UNKNOWN")}}, headers, delay)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# Built-in answers for a path nothing was scripted for.
def _builtin(method: str, path: str) -> Response | None:
    if method == "GET" and path == OPENAI_MODELS:
        return openai_models("m")
    if method == "GET" and path == OLLAMA_TAGS:
        return ollama_tags("mistral:7b-instruct")
    if method == "GET" and path == OLLAMA_VERSION:
        return Response(200, {"version": "0.12.0"})
    if method == "POST" and path == OPENAI_CHAT:
        return openai_chat("hello from loopback")
    if method == "POST" and path == OLLAMA_CHAT:
        return ollama_chat("hello from loopback")
    if method == "POST" and path.startswith("/v1beta1/projects/") and path.endswith(":generateContent"):
        return vertex_generate("hello from loopback", model=path.rsplit("/", 1)[-1].split(":")[0])
    return None


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class LoopbackServer(abc.ABC):
    """A ThreadingHTTPServer on 127.0.0.1:<random> in a daemon thread, every request handed to
    `self._serve(handler)`: the lifecycle the loopback servers of the tests share."""

    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body waits for the
            # client's delayed ACK (40 ms a response). Real servers set TCP_NODELAY too.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                loopback._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"loopback:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @abc.abstractmethod
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request (each loopback server speaks its own protocol)."""


class Loopback(LoopbackServer):
    """A ThreadingHTTPServer on 127.0.0.1:<random> in a daemon thread. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Response]] = {}
        self._defaults: dict[str, Response] = {}
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -----------------------------------------------------------------------------
    def script(self, path: str, *responses: Response) -> "Loopback":
        """Queue responses for `path` (answered in order, one per request)."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(responses)
        return self

    def default(self, path: str, response) -> "Loopback":
        """The answer for `path` once its queue is empty: a Response, or a function of the
        Recorded request that returns one (a server that answers by content)."""
        with self._lock:
            self._defaults[path] = response
        return self

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self.requests.clear()
            self.max_in_flight = 0

    # -- serving -------------------------------------------------------------------------------
    def _next(self, record: Recorded) -> Response:
        method, path = record.method, record.path
        with self._lock:
            queue = self._scripts.get(path)
            if queue:
                return queue.popleft()
            default = self._defaults.get(path)
        if callable(default):
            return default(record)
        if default is not None:
            return default
        builtin = _builtin(method, path)
        if builtin is not None:
            return builtin
        return Response(404, {"error": {"code": 404, "message": f"no route for {method} {path}",
                                        "status": "NOT_FOUND"}})

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = Recorded(handler.command, split.path, split.query,
                          {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic())
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = self._next(record)
            if response.delay:
                time.sleep(response.delay)
            payload = response.encoded()
            try:
                handler.send_response(response.status)
                headers = {"content-type": "application/json", **{k.lower(): v for k, v in response.headers.items()}}
                for name, value in headers.items():
                    handler.send_header(name, value)
                handler.send_header("content-length", str(len(payload)))
                handler.end_headers()
                if handler.command != "HEAD":
                    handler.wfile.write(payload)
                handler.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout) before the answer
        finally:
            with self._lock:
                self.in_flight -= 1
                record.finished = time.monotonic()


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
