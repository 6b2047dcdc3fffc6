"""The serving pane at 80x24 over a store written through the real store API: a running serve
run with its registered provider, a cancelled one, and a model on an Ollama server."""

from __future__ import annotations

import asyncio
import os
import socket

from textual.widgets import ContentSwitcher, DataTable, Static

from pipeline.workspace import init_workspace
from po_console.app import POConsole
from state import write as store


def test_the_pane_lists_what_is_served_with_its_state_address_and_tokens(tmp_path):
    ws = init_workspace(tmp_path / "ws", demo=True)
    db = ws.db()
    trained = store.create_run(db, "finetune", {})
    store.finish_run(db, trained, "succeeded", summary={"adapter": f"artifacts/{trained}/adapter"})
    running = store.create_run(db, "serve", {"provider_name": "student", "source_run": trained})
    store.start_run(db, running, os.getpid(), socket.gethostname())  # this process: alive
    store.set_progress(db, running, 1234, None, "student at http://127.0.0.1:8091 · 0 busy of 1")
    store.register_served_model(db, "student", {"kind": "openai", "model": "student",
                                                "base_url": "http://127.0.0.1:8091/v1"}, run_id=running,
                                source_run_id=trained)
    stopped = store.create_run(db, "serve", {"provider_name": "base"})
    store.finish_run(db, stopped, "cancelled")
    store.register_served_model(db, "base", {"kind": "openai", "model": "base",
                                             "base_url": "http://127.0.0.1:8092/v1"}, run_id=stopped,
                                source_run_id=None)
    store.register_served_model(db, "po-student-4", {"kind": "ollama", "model": "po-student-4",
                                                     "host": "http://gpu-box:11434"}, run_id=None, source_run_id=trained)

    async def story():
        app = POConsole(ws, refresh_s=0.2)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("8")
            assert app.query_one(ContentSwitcher).current == "serve"
            table = app.query_one("#serve-models", DataTable)
            for _ in range(100):
                if table.row_count == 3:
                    break
                await pilot.pause(0.1)
            rows = {key.value: [str(c) for c in table.get_row(key)] for key in table.rows}
            assert rows["student"] == ["student", "running", f"run {trained}'s student", "127.0.0.1:8091/v1", "1,234"]
            assert rows["base"][1:3] == ["cancelled", "the base"]
            assert rows["po-student-4"][1:4] == ["on ollama", f"run {trained}'s student", "gpu-box:11434"]
            summary = str(app.query_one("#serve-summary", Static).render())
            assert "1 running: student" in summary
            assert app.screen.focused is table
            assert app.query_one("#serve").selected_run_id() == running  # launch / cancel act on it

    asyncio.run(story())
