"""End to end in a real terminal: the console in tmux, keys by send-keys, the screen read
with capture-pane. A launched run appears and progresses; the terminal going away (a
dropped SSH session) closes the console and the run goes on."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from state import read
from state.db import open_db
from tests.conftest import po, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, name: str):
        self.name = name

    def start(self, command: str, width: int = 80, height: int = 24) -> None:
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command],
                       check=True)

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: ESC followed at once by a key reads as Alt+key
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.3)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def pane_pid(self) -> int:
        out = subprocess.run(["tmux", "list-panes", "-t", self.name, "-F", "#{pane_pid}"], capture_output=True, text=True)
        return int(out.stdout.split()[0])

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_console_in_a_real_terminal_launches_a_run_that_outlives_the_terminal(demo_ws):
    tmux = Tmux(f"po-e2e-{demo_ws.parent.name}")
    tmux.start(f"{sys.executable} -m po_console.cli -w {demo_ws} console")
    try:
        wait_for(lambda: "baseline" in tmux.screen() and "never run" in tmux.screen(), timeout=60, what="overview")
        console_pid = tmux.pane_pid()
        tmux.keys("l")
        wait_for(lambda: "Launch baseline" in tmux.screen(), timeout=10, what="launch dialog")
        tmux.keys("Tab", "C-u", "6", "Enter")  # limit = 6, then launch
        db = open_db(demo_ws / "state.db", readonly=True)
        run = wait_for(lambda: read.list_runs(db) and read.list_runs(db)[0], timeout=30, what="the run")
        wait_for(lambda: "running" in tmux.screen(), timeout=60, what="running on screen")
        wait_for(lambda: any(f"{n}/6" in tmux.screen() for n in range(1, 6)), timeout=180, what="progress on screen")
    finally:
        tmux.kill()  # the terminal goes away, as with a dropped SSH session
    wait_for(lambda: subprocess.run(["kill", "-0", str(console_pid)], capture_output=True).returncode != 0,
             timeout=15, what="the console to exit")
    ended = wait_for(lambda: (r := read.get_run(db, run.id)).state in ("succeeded", "failed") and r,
                     timeout=240, what="the run to finish without its terminal")
    assert ended.state == "succeeded", ended.error
    assert len(read.eval_results(db, run.id)) == 6


def test_status_watch_prints_a_refreshing_plain_view(demo_ws):
    po("run", "baseline", "--limit", "1", ws=demo_ws)
    proc = subprocess.Popen([sys.executable, "-m", "po_console.cli", "-w", str(demo_ws), "status", "--watch"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(5)
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    assert out.count("Baseline evaluation") >= 2
    assert "succeeded" in out
