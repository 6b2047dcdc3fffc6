"""Opening the store: one SQLite file in WAL mode, migrated forward on open.

Writers use short `BEGIN IMMEDIATE` transactions and a busy timeout, so two writer
processes and any number of readers never see "database is locked". Readers open the
file read-only.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from state.schema import migrate

BUSY_TIMEOUT_MS = 30_000


def open_db(path: str | Path, *, readonly: bool = False) -> sqlite_utils.Database:
    path = Path(path)
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        _enable_wal(conn)
        # NORMAL in WAL mode: a committed transaction survives any crash of the process
        # (kill -9); only an OS crash or power loss can drop the last few.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn)
    db = sqlite_utils.Database(conn)
    # One connection may be shared by a run's threads (work + heartbeat): their write
    # transactions must not interleave on it.
    db.write_lock = threading.RLock()
    return db


def _enable_wal(conn: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite does not apply the
    # busy timeout to it: when several processes open a fresh state.db at once, wait here.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def write(db: sqlite_utils.Database):
    """One short write transaction; takes the write lock up front to avoid upgrade deadlocks."""
    conn = db.conn
    with db.write_lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")


def data_version(db: sqlite_utils.Database) -> int:
    """Changes whenever another connection commits: readers skip a refresh when it did not move."""
    return db.conn.execute("PRAGMA data_version").fetchone()[0]
