"""llama.cpp's server as a child process: where its binary is, how it is started, whether it
answers (`/health`), and what it has served (`/metrics`, Prometheus text).

Found in this order: $PO_LLAMA_SERVER, the virtual environment's bin/ (where `make
llama-server` links it), PATH, the per-machine build cache of scripts/install-llama-server.sh.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "make llama-server (builds llama.cpp's server once, ~5 min on 2 cores)"
_PR_SET_PDEATHSIG = 1


def find_binary() -> Path | None:
    """The llama-server executable, or None when it is not installed."""
    given = os.environ.get("PO_LLAMA_SERVER")
    if given:
        return Path(given) if Path(given).is_file() else None
    candidates = [Path(sys.prefix) / "bin" / "llama-server"]
    on_path = shutil.which("llama-server")
    if on_path:
        candidates.append(Path(on_path))
    cache = Path(os.environ.get("PO_TOOL_CACHE") or Path.home() / ".cache" / "po-console" / "tools")
    candidates += sorted(cache.glob("llama.cpp-*/bin/llama-server"), reverse=True)
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def version(binary: Path) -> str:
    """`llama-server --version`'s "version: …" line, or why there is none."""
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run: {exc}"
    lines = (done.stdout + done.stderr).splitlines()
    return next((line for line in lines if line.startswith("version")), lines[-1] if lines else "no version")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Loaded in the parent: the child, between fork and exec, only calls prctl (no dlopen there,
# where another thread of the parent may have held its lock at the fork).
try:
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc: the server then outlives a kill -9 of its run
    _LIBC = None


def _die_with_parent() -> None:
    """In the child: SIGKILL it when the process that started it dies (a kill -9 of the serve
    run must not leave a server holding the port and the memory)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ServerSettings:
    model: Path  # the base, as GGUF
    adapters: tuple[Path, ...] = ()  # GGUF LoRA adapters, applied at scale 1
    host: str = "127.0.0.1"
    port: int = 0
    threads: int = 1
    parallel: int = 1
    ctx_size: int = 4096
    alias: str = "student"

    def args(self, binary: Path, port: int) -> list[str]:
        args = [str(binary), "-m", str(self.model), "--host", self.host, "--port", str(port), "-t", str(self.threads),
                "-np", str(self.parallel), "-c", str(self.ctx_size), "--metrics", "--alias", self.alias,
                "--no-webui"]
        for adapter in self.adapters:
            args += ["--lora", str(adapter)]
        return args


class LlamaServer:
    """One llama-server child: start, wait until healthy, stop."""

    def __init__(self, binary: Path, settings: ServerSettings, log_path: Path):
        self.binary, self.settings, self.log_path = binary, settings, log_path
        self.port = settings.port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.settings.args(self.binary, self.port), stdout=log,  # noqa: PLW1509
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent)

    def exited(self) -> int | None:
        return self.process.poll() if self.process else None

    def health(self, timeout: float = 2.0) -> str:
        """"ok", "loading", or "down"."""
        import httpx

        try:
            response = httpx.get(self.url + "/health", timeout=timeout)
        except httpx.HTTPError:
            return "down"
        if response.status_code == 200:
            return "ok"
        return "loading" if response.status_code == 503 else "down"

    def wait_healthy(self, timeout_s: float, cancelled=lambda: False) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise RuntimeError(f"llama-server exited ({describe_exit(code)}) before it answered: "
                                   f"{last_error(self.log_path)}")
            if self.health() == "ok":
                return
            if cancelled():
                return
            time.sleep(0.5)
        raise RuntimeError(f"llama-server did not answer /health within {timeout_s:g} s; see {self.log_path}")

    def stop(self, grace_s: float = 10.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.terminate()
        try:
            return self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def metrics(self) -> dict[str, float]:
        return metrics(self.url)


def metrics(url: str) -> dict[str, float]:
    """llama.cpp's Prometheus counters (`llamacpp:prompt_tokens_total` -> `prompt_tokens_total`)."""
    import httpx

    try:
        text = httpx.get(url + "/metrics", timeout=2.0).text
    except httpx.HTTPError:
        return {}
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            found[name.split(":", 1)[-1]] = float(value)
        except ValueError:
            continue
    return found


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def last_error(log_path: Path) -> str:
    """The server log's most telling last line (an error when there is one)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if "error" in line.lower() or "failed" in line.lower()]
    return (errors or lines or ["empty log"])[-1][:300]
