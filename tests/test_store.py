"""The SQLite state store: schema and migrations, writers, read models, and several
processes writing and reading at once without ever seeing "database is locked"."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from state import schema
from state import write as store
from state.db import data_version, open_db, write
from state.read import (
    STALE_AFTER_S,
    done_example_ids,
    eval_results,
    events_since,
    get_run,
    latest_run_per_stage,
    list_runs,
)
from state.write import (
    EventBuffer,
    create_run,
    finish_run,
    heartbeat,
    put_eval_result,
    request_cancel,
    reopen_run,
    set_progress,
    start_run,
)
from state.schema import SCHEMA_VERSION, SchemaTooNew, migrate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def db(path):
    db = open_db(path)
    yield db
    db.conn.close()


def user_version(conn) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def result_row(example_id: str, position: int = 0, **extra) -> dict:
    return {"example_id": example_id, "position": position, "status": "ok", "score": 0.5,
            "parts": {"length_bounds": 1.0}, "latency_s": 0.01, **extra}


def set_heartbeat(db, run_id: int, when: float) -> None:
    with write(db) as conn:
        conn.execute("UPDATE runs SET heartbeat_at=? WHERE id=?", (when, run_id))


# -- schema and migrations ----------------------------------------------------------------


def test_fresh_db_gets_the_current_schema_version_and_wal(db):
    assert user_version(db.conn) == SCHEMA_VERSION
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"runs", "events", "eval_results", "artifacts"} <= set(db.table_names())


def test_open_is_idempotent(path):
    first = open_db(path)
    run_id = create_run(first, "baseline", {"threads": 2})
    first.conn.close()
    second = open_db(path)
    assert user_version(second.conn) == SCHEMA_VERSION
    assert migrate(second.conn) == SCHEMA_VERSION  # nothing left to apply
    assert get_run(second, run_id).config == {"threads": 2}
    second.conn.close()


def test_migrations_are_forward_only_and_applied_once(path, monkeypatch):
    db = open_db(path)
    run_id = create_run(db, "baseline", {})
    db.conn.close()
    applied = []

    def v2_add_notes(conn):
        applied.append(2)
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, v2_add_notes])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    for _ in range(2):  # v1 is not re-run (it would fail: its tables exist); v2 runs only once
        db = open_db(path)
        assert user_version(db.conn) == SCHEMA_VERSION + 1
        db.conn.close()
    assert applied == [2]
    db = open_db(path)
    assert "notes" in db.table_names()
    assert get_run(db, run_id) is not None  # existing data kept
    db.conn.close()


def test_a_failing_migration_leaves_the_db_at_the_previous_version(path, monkeypatch):
    open_db(path).conn.close()

    def v2_broken(conn):
        conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, v2_broken])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="boom"):
        open_db(path)
    conn = sqlite3.connect(path)
    assert user_version(conn) == SCHEMA_VERSION
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='half_done'").fetchone() is None
    conn.close()


def test_a_db_from_a_newer_po_console_is_refused_clearly(path):
    open_db(path).conn.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew) as info:
        open_db(path)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    assert "upgrade po-console" in message
    conn = sqlite3.connect(path)
    assert user_version(conn) == SCHEMA_VERSION + 1  # not touched
    conn.close()


def test_a_readonly_connection_cannot_write(db, path):
    run_id = create_run(db, "baseline", {})
    ro = open_db(path, readonly=True)
    assert get_run(ro, run_id).stage == "baseline"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.conn.execute("INSERT INTO runs (stage, state, config, created_at) VALUES ('x', 'queued', '{}', 0)")
    with pytest.raises(sqlite3.OperationalError):
        ro.conn.execute("UPDATE runs SET state='failed'")
    assert get_run(db, run_id).state == "queued"
    ro.conn.close()


def test_a_readonly_open_does_not_create_a_db(tmp_path):
    with pytest.raises(sqlite3.OperationalError):
        open_db(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_a_write_that_raises_is_rolled_back(db):
    with pytest.raises(RuntimeError):
        with write(db) as conn:
            conn.execute("INSERT INTO runs (stage, state, config, created_at) VALUES ('x', 'queued', '{}', 0)")
            raise RuntimeError("stop")
    assert list_runs(db) == []


# -- runs ---------------------------------------------------------------------------------


def test_run_lifecycle(db):
    run_id = create_run(db, "baseline", {"b": 1, "a": 2}, detached=True)
    run = get_run(db, run_id)
    assert (run.state, run.status, run.detached, run.attempt, run.pid) == ("queued", "queued", True, 0, None)
    start_run(db, run_id, os.getpid(), socket.gethostname())
    set_progress(db, run_id, 3, 10, "scoring")
    run = get_run(db, run_id)
    assert (run.state, run.attempt, run.done, run.total, run.message) == ("running", 1, 3, 10, "scoring")
    finish_run(db, run_id, "succeeded", summary={"mean": 0.7})
    run = get_run(db, run_id)
    assert (run.status, run.summary) == ("succeeded", {"mean": 0.7})
    assert run.ended_at is not None and run.elapsed is not None
    reopen_run(db, run_id, detached=False)
    run = get_run(db, run_id)
    assert (run.state, run.detached, run.ended_at, run.pid) == ("queued", False, None, None)
    assert json.loads(json.dumps(run.to_json()))["status"] == "queued"


def test_list_runs_is_newest_first_and_filters_by_stage(db):
    ids = [create_run(db, stage, {}) for stage in ("baseline", "teacher", "baseline")]
    assert [r.id for r in list_runs(db)] == ids[::-1]
    assert [r.id for r in list_runs(db, stage="baseline")] == [ids[2], ids[0]]
    assert [r.id for r in list_runs(db, limit=1)] == [ids[2]]
    assert {k: r.id for k, r in latest_run_per_stage(db).items()} == {"baseline": ids[2], "teacher": ids[1]}


def test_request_cancel_then_heartbeat_returns_true(db):
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, os.getpid(), socket.gethostname())
    assert heartbeat(db, run_id) is False
    request_cancel(db, run_id)
    assert heartbeat(db, run_id) is True
    assert get_run(db, run_id).cancel_requested is True
    reopen_run(db, run_id, detached=False)
    assert heartbeat(db, run_id) is False


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def test_a_running_run_with_an_old_heartbeat_and_a_dead_pid_is_stale(db, dead_pid):
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, dead_pid, socket.gethostname())
    set_heartbeat(db, run_id, time.time() - STALE_AFTER_S - 5)
    run = get_run(db, run_id)
    assert run.state == "running"  # as stored
    assert run.status == "stale"  # as a user should see it
    assert run.to_json()["status"] == "stale"


def test_a_running_run_whose_process_is_alive_is_not_stale(db):
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, os.getpid(), socket.gethostname())
    set_heartbeat(db, run_id, time.time() - STALE_AFTER_S / 2)  # a late, but not too late, heartbeat
    assert get_run(db, run_id).status == "running"


def test_a_dead_process_on_this_host_is_stale_without_waiting_for_the_heartbeat(db, dead_pid):
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, dead_pid, socket.gethostname())  # heartbeat just now
    assert get_run(db, run_id).status == "stale"


def test_a_heartbeat_older_than_the_limit_is_stale_even_if_the_pid_exists(db):
    """A hung process, or a pid reused by another program."""
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, os.getpid(), socket.gethostname())
    set_heartbeat(db, run_id, time.time() - STALE_AFTER_S - 5)
    assert get_run(db, run_id).status == "stale"


def test_a_run_on_another_host_is_judged_by_its_heartbeat_alone(db):
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, 12345, "some-other-host.invalid")
    assert get_run(db, run_id).status == "running"
    set_heartbeat(db, run_id, time.time() - STALE_AFTER_S - 5)
    assert get_run(db, run_id).status == "stale"


def test_a_queued_run_without_a_process_yet_is_not_stale_until_the_limit(db):
    run_id = create_run(db, "baseline", {})
    assert get_run(db, run_id).status == "queued"
    with write(db) as conn:
        conn.execute("UPDATE runs SET created_at=? WHERE id=?", (time.time() - STALE_AFTER_S - 5, run_id))
    assert get_run(db, run_id).status == "stale"


def test_an_ended_run_is_never_stale(db, dead_pid):
    run_id = create_run(db, "baseline", {})
    start_run(db, run_id, dead_pid, socket.gethostname())
    finish_run(db, run_id, "failed", error="boom")
    set_heartbeat(db, run_id, time.time() - STALE_AFTER_S - 5)
    assert get_run(db, run_id).status == "failed"


def test_a_zombie_process_does_not_keep_a_run_alive(db):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: wait until it has exited and is a zombie.
        for _ in range(500):
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        run_id = create_run(db, "baseline", {})
        start_run(db, run_id, proc.pid, socket.gethostname())
        assert get_run(db, run_id).status == "stale"
    finally:
        proc.wait()


# -- evaluation results -------------------------------------------------------------------


def test_put_eval_result_is_exactly_once_per_run_and_example(db):
    run_id = create_run(db, "baseline", {})
    other = create_run(db, "baseline", {})
    assert put_eval_result(db, run_id, result_row("ex-1", score=0.25, outputs={"product_vision": "first"})) is True
    assert put_eval_result(db, run_id, result_row("ex-1", score=0.99, outputs={"product_vision": "second"})) is False
    assert put_eval_result(db, other, result_row("ex-1", score=0.75)) is True  # another run: its own row
    (row,) = eval_results(db, run_id)
    assert row.score == 0.25
    assert row.outputs == {"product_vision": "first"}
    assert row.parts == {"length_bounds": 1.0}
    assert done_example_ids(db, run_id) == {"ex-1"}
    assert db.conn.execute("SELECT COUNT(*) FROM eval_results").fetchone()[0] == 2


def test_eval_results_come_back_in_position_order(db):
    run_id = create_run(db, "baseline", {})
    for position, example_id in [(2, "c"), (0, "a"), (1, "b")]:
        put_eval_result(db, run_id, result_row(example_id, position))
    assert [r.example_id for r in eval_results(db, run_id)] == ["a", "b", "c"]


def test_an_eval_result_needs_an_existing_run(db):
    with pytest.raises(sqlite3.IntegrityError):
        put_eval_result(db, 999, result_row("ex-1"))
    # the failed write left no transaction open
    assert put_eval_result(db, create_run(db, "baseline", {}), result_row("ex-1")) is True


# -- events -------------------------------------------------------------------------------


def event_count(db, run_id: int | None = None) -> int:
    if run_id is None:
        return db.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return db.conn.execute("SELECT COUNT(*) FROM events WHERE run_id=?", (run_id,)).fetchone()[0]


def test_event_buffer_writes_in_batches(db, path):
    run_id = create_run(db, "baseline", {})
    buffer = EventBuffer(db, run_id, max_pending=500)
    reader = open_db(path, readonly=True)
    for i in range(499):
        buffer.emit("log", {"i": i})
    assert event_count(reader) == 0  # nothing written per event
    buffer.emit("log", {"i": 499})
    assert event_count(reader) == 500  # one batch at max_pending
    for i in range(500, 1200):
        buffer.emit("log", {"i": i})
    assert event_count(reader) == 1000  # two full batches, 200 pending
    assert buffer.flush() == 200
    assert event_count(reader) == 1200
    assert buffer.flush() == 0  # nothing pending: no empty transaction
    events = events_since(reader, 0, limit=2000)
    assert [e["payload"]["i"] for e in events] == list(range(1200))
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(e["run_id"] == run_id and e["kind"] == "log" for e in events)
    reader.conn.close()


def test_event_payloads_that_are_not_json_are_stored_as_text(db):
    run_id = create_run(db, "baseline", {})
    buffer = EventBuffer(db, run_id)
    buffer.emit("log", {"path": Path("/tmp/x"), "n": 1})
    buffer.flush()
    (event,) = events_since(db, 0)
    assert event["payload"] == {"path": "/tmp/x", "n": 1}


def test_events_since_respects_seq_run_filter_and_limit(db):
    one, two = create_run(db, "baseline", {}), create_run(db, "teacher", {})
    b1, b2 = EventBuffer(db, one, max_pending=7), EventBuffer(db, two, max_pending=3)
    for i in range(50):
        (b1 if i % 2 == 0 else b2).emit("progress", {"i": i})
    b1.flush(), b2.flush()
    everything = events_since(db, 0, limit=1000)
    assert len(everything) == 50
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == 50

    only_one = events_since(db, 0, run_id=one)
    assert [e["payload"]["i"] for e in only_one] == list(range(0, 50, 2))
    assert all(e["run_id"] == one for e in only_one)

    assert events_since(db, 0, limit=5) == everything[:5]
    middle = everything[20]["seq"]
    assert events_since(db, middle) == everything[21:]
    assert events_since(db, middle, run_id=two, limit=3) == [e for e in everything[21:] if e["run_id"] == two][:3]
    assert events_since(db, seqs[-1]) == []


def test_reading_events_page_by_page_sees_each_once(db):
    run_id = create_run(db, "baseline", {})
    buffer = EventBuffer(db, run_id, max_pending=10)
    for i in range(95):
        buffer.emit("log", {"i": i})
    buffer.flush()
    seen, seq = [], 0
    while page := events_since(db, seq, run_id=run_id, limit=10):
        seen.extend(e["payload"]["i"] for e in page)
        seq = page[-1]["seq"]
    assert seen == list(range(95))


def test_event_buffer_is_safe_to_use_from_several_threads(db):
    run_id = create_run(db, "baseline", {})
    buffer = EventBuffer(db, run_id, max_pending=17)

    def emit(n):
        for i in range(300):
            buffer.emit("log", {"thread": n, "i": i})

    threads = [threading.Thread(target=emit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    heartbeat(db, run_id)  # another write on the same connection meanwhile
    for t in threads:
        t.join()
    buffer.flush()
    assert event_count(db, run_id) == 1200
    for n in range(4):
        mine = [e["payload"]["i"] for e in events_since(db, 0, limit=2000) if e["payload"]["thread"] == n]
        assert mine == list(range(300))


# -- data_version -------------------------------------------------------------------------


def test_data_version_moves_only_when_another_connection_commits(db, path):
    reader = open_db(path, readonly=True)
    start = data_version(reader)
    assert data_version(reader) == start  # nothing happened
    run_id = create_run(db, "baseline", {})
    after_write = data_version(reader)
    assert after_write != start
    assert data_version(reader) == after_write

    # The writer's own commits do not move its own data_version.
    own = data_version(db)
    heartbeat(db, run_id)
    assert data_version(db) == own
    after_write = data_version(reader)

    # A transaction that is rolled back is not a change either.
    with pytest.raises(RuntimeError):
        with write(db) as conn:
            conn.execute("UPDATE runs SET message='x'")
            raise RuntimeError
    assert data_version(reader) == after_write
    reader.conn.close()


# -- first open -------------------------------------------------------------------------


def test_opening_a_fresh_db_waits_for_another_writer_instead_of_failing(path):
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # e.g. another process half-way through creating the db
    other.execute("CREATE TABLE scratch (x)")
    timer = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        db = open_db(path)
        assert user_version(db.conn) == SCHEMA_VERSION
        db.conn.close()
    finally:
        timer.join()
        other.close()


# -- several processes at once -------------------------------------------------------------

WRITER = r"""
import json, os, socket, sys, time, traceback
from state.db import open_db
from state.write import EventBuffer, create_run, finish_run, heartbeat, put_eval_result, start_run

path, start_at, seconds, name = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
try:
    db = open_db(path)
    run_id = create_run(db, "baseline", {"writer": name})
    start_run(db, run_id, os.getpid(), socket.gethostname())
    buffer = EventBuffer(db, run_id, max_pending=5)
    while time.time() < start_at:
        time.sleep(0.005)
    events = results = 0
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(3):
            buffer.emit("log", {"writer": name, "n": events})
            events += 1
        added = put_eval_result(db, run_id, {"example_id": f"{name}-{results}", "position": results,
                                             "status": "ok", "score": 0.5, "latency_s": 0.001})
        results += int(added)
        if results % 20 == 0:
            heartbeat(db, run_id)
    buffer.flush()
    finish_run(db, run_id, "succeeded", summary={"events": events, "results": results})
    print(json.dumps({"run_id": run_id, "events": events, "results": results}))
except BaseException:
    traceback.print_exc()
    sys.exit(1)
"""


def test_two_writer_processes_and_a_reader_never_see_database_is_locked(path):
    open_db(path).conn.close()  # `po init` creates the store before any run
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start_at = time.time() + 1.0  # both writers start writing together, after their imports
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start_at), "3.0", name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        for name in ("w1", "w2")
    ]

    errors: list[str] = []
    seen: list[int] = []
    reads = 0
    last_seq = 0
    reader = open_db(path, readonly=True)
    try:
        while any(w.poll() is None for w in writers):
            try:
                if reads % 50 == 0:  # a fresh read-only connection from time to time
                    reader.conn.close()
                    reader = open_db(path, readonly=True)
                list_runs(reader)
                data_version(reader)
                for event in events_since(reader, last_seq, limit=200):
                    seen.append(event["seq"])
                    last_seq = event["seq"]
                for run in list_runs(reader, limit=2):
                    eval_results(reader, run.id)
                reads += 1
            except sqlite3.OperationalError as exc:
                errors.append(str(exc))
            time.sleep(0.002)
        outputs = [w.communicate(timeout=30) for w in writers]
        while page := events_since(reader, last_seq, limit=1000):
            seen.extend(e["seq"] for e in page)
            last_seq = page[-1]["seq"]
        counts = {}
        for run in list_runs(reader):
            counts[run.id] = (
                reader.conn.execute("SELECT COUNT(*) FROM events WHERE run_id=?", (run.id,)).fetchone()[0],
                reader.conn.execute("SELECT COUNT(*) FROM eval_results WHERE run_id=?", (run.id,)).fetchone()[0],
                run.state,
            )
        total_events = reader.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        reader.conn.close()
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()

    for w, (out, err) in zip(writers, outputs):
        assert w.returncode == 0, err
        assert "locked" not in err
    assert not errors, f"the reader saw: {errors[:3]}"
    assert reads > 0

    reports = [json.loads(out) for out, _ in outputs]
    assert len({r["run_id"] for r in reports}) == 2
    for report in reports:
        assert report["events"] > 0 and report["results"] > 0
        assert counts[report["run_id"]] == (report["events"], report["results"], "succeeded")
    assert total_events == sum(r["events"] for r in reports)
    # Reading "events since seq N" while writers commit misses nothing and repeats nothing.
    assert seen == sorted(set(seen)) and len(seen) == total_events


def test_cancel_never_signals_the_attempt_that_a_quick_resume_started(tmp_path):
    """`po cancel` then `po resume` from a script: the cancel's wait must not SIGTERM the new attempt."""
    import subprocess
    import sys
    import threading

    from pipeline import control
    from pipeline.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", demo=False)
    db = ws.db()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run_id = store.create_run(db, "baseline", {})
        store.start_run(db, run_id, sleeper.pid, socket.gethostname())
        waiting = threading.Thread(target=control.cancel, args=(ws, run_id), kwargs={"wait_s": 0.5})
        waiting.start()
        time.sleep(0.1)
        with write(db) as conn:  # it stopped and was resumed before the cancel's next look
            conn.execute("UPDATE runs SET attempt = attempt + 1, cancel_requested = 0 WHERE id = ?", (run_id,))
        waiting.join(timeout=5)
        time.sleep(0.8)
        assert sleeper.poll() is None  # the resumed attempt's process was left alone
    finally:
        sleeper.kill()


def test_the_rejection_kind_migration_fills_its_column_from_the_reasons_as_they_were_written(path):
    conn = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(schema.MIGRATIONS[:5], 1):  # a store as po-console left it at version 5
        step(conn)
        conn.execute(f"PRAGMA user_version = {number}")
    run_id = conn.execute("INSERT INTO runs (stage, state, config, created_at) VALUES ('teacher', 'succeeded', '{}', 0)"
                          ).lastrowid
    reasons = ["requirement_coverage: 0.25 (length_bounds 0.50)", "parse failure: the answer lacks a field",
               "imported: review_validity: 0.50", "target of 6 already reached", None]
    for attempt, reason in enumerate(reasons, 1):
        conn.execute("INSERT INTO teacher_records (run_id, input_key, attempt, example_id, status, reason, inputs,"
                     " latency_s, created_at) VALUES (?, 'k', ?, 'pool-1', 'rejected', ?, '{}', 0, 0)",
                     (run_id, attempt, reason))
    conn.close()
    db = open_db(path)  # migrates forward
    kinds = [r[0] for r in db.execute("SELECT reason_kind FROM teacher_records ORDER BY attempt")]
    assert kinds == ["requirement_coverage", "parse failure", "imported", "target of 6 already reached", None]


def test_the_systems_migration_keeps_every_result_and_leaves_orphans_behind(path):
    """v9 rebuilds eval_results with `system` in its key: every row of a v8 store comes back
    ('' as its system), and a row of a run that does not exist (written without foreign keys)
    does not stop the store from opening."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(schema.MIGRATIONS[:8], 1):
        step(conn)
        conn.execute(f"PRAGMA user_version = {number}")
    run_id = conn.execute("INSERT INTO runs (stage, state, config, created_at) VALUES ('baseline', 'succeeded', '{}', 0)"
                          ).lastrowid
    for position, (run, score) in enumerate([(run_id, 0.5), (run_id, None), (run_id + 7, 0.9)]):
        conn.execute("INSERT INTO eval_results (run_id, example_id, position, status, score, parts, latency_s, outputs,"
                     " created_at, cost_usd, feedback, judge_calls) VALUES (?, ?, ?, ?, ?, '{\"a\": 1}', 1.5, '{}',"
                     " 0, 0.01, 'why', 2)",
                     (run, f"ex-{position}", position, "ok" if score is not None else "parse_failure", score))
    conn.close()
    db = open_db(path)
    rows = eval_results(db, run_id)
    assert [(r.example_id, r.system, r.score, r.parts, r.cost_usd, r.feedback, r.judge_calls) for r in rows] == [
        ("ex-0", "", 0.5, {"a": 1}, 0.01, "why", 2), ("ex-1", "", None, {"a": 1}, 0.01, "why", 2)]
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION


def test_a_stage_brings_its_own_tables_migrated_once_each_in_order(db):
    from state.schema import migrate_stage

    steps = ["CREATE TABLE words (run_id INTEGER NOT NULL, n INTEGER NOT NULL)",
             lambda conn: conn.execute("ALTER TABLE words ADD COLUMN example TEXT")]
    assert migrate_stage(db.conn, "wordcount", steps[:1]) == 1
    assert migrate_stage(db.conn, "wordcount", steps) == 2
    assert migrate_stage(db.conn, "wordcount", steps) == 2  # nothing left to apply
    assert [c[1] for c in db.execute("PRAGMA table_info(words)")] == ["run_id", "n", "example"]
    assert migrate_stage(db.conn, "other", []) == 0
    with pytest.raises(SchemaTooNew, match="version 2 of the wordcount stage's tables"):
        migrate_stage(db.conn, "wordcount", steps[:1])  # an older package than the store's tables


def test_a_failing_stage_migration_leaves_no_half_applied_step(db):
    from state.schema import migrate_stage

    def broken(conn):
        conn.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("the second statement failed")

    with pytest.raises(RuntimeError):
        migrate_stage(db.conn, "wordcount", [broken])
    assert "half" not in db.table_names()
    assert migrate_stage(db.conn, "wordcount", []) == 0
