"""Shared fixtures: workspaces on the real embedded model, and a `po` runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tests never look for Google's metadata server (a link-local address): google-auth would
# probe it while searching for Application Default Credentials. Read at import time.
os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"

# Small field bounds keep each generation to a second or two on a CPU, so process tests
# (detach, kill -9, cancel) run in seconds; the machinery under test is the same.
FAST_LOCAL = """
[providers.local.max_chars]
product_vision = 160
product_owner_review = 100
"""


def po_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PO_WORKSPACE", None)
    env.update(extra)
    return env


def po(*args: str, ws: Path | None = None, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the real `po` CLI in a subprocess."""
    cmd = [sys.executable, "-m", "po_console.cli"]
    if ws is not None:
        cmd += ["--workspace", str(ws)]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=po_env(), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"po {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def wait_for(predicate, timeout: float = 120, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def demo_ws(tmp_path: Path) -> Path:
    """A `po init --demo` workspace with fast field bounds."""
    ws = tmp_path / "ws"
    po("init", "--demo", ws=ws)
    # One torch thread: two collapse when another torch job shares the CPU (field notes).
    text = (ws / "po.toml").read_text().replace("max_batch = 4", "max_batch = 4\nthreads = 1", 1)
    head, _, tail = text.partition("[providers.local.max_chars]")
    tail = tail.split("\n\n", 1)[1]  # drop the default bounds table
    (ws / "po.toml").write_text(head + FAST_LOCAL.lstrip() + "\n" + tail)
    return ws


def set_tables(ws: Path, toml: str) -> None:
    """Append `toml` to the workspace's po.toml, first removing the tables it defines
    (`[mipro]` also removes `[mipro.*]`), so a test replaces the demo's settings."""
    names = {line.strip()[1:-1] for line in toml.splitlines() if line.strip().startswith("[")}
    kept, skipping = [], False
    for line in (ws / "po.toml").read_text().splitlines():
        if line.startswith("["):
            table = line.split("]")[0][1:]
            skipping = any(table == n or table.startswith(n + ".") for n in names)
        if not skipping:
            kept.append(line)
    (ws / "po.toml").write_text("\n".join(kept) + "\n" + toml)


def run_json(ws: Path, run_id: int) -> dict:
    return json.loads(po("status", str(run_id), "--json", ws=ws).stdout)


@pytest.fixture
def server():
    """A loopback server speaking the providers' wire protocols (tests/loopback.py)."""
    from tests.loopback import Loopback

    with Loopback() as s:
        yield s


@pytest.fixture
def fake_key(monkeypatch):
    """The API key the loopback providers' po.toml tables name (api_key_env)."""
    monkeypatch.setenv("PO_TEST_FAKE_KEY", "sk-fake")
