"""Schema and forward migrations. The schema version is SQLite's `user_version`.

A migration is a plain function of a connection; add one at the end of MIGRATIONS, never
edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence


def _v1_runs_events_results_artifacts(conn: sqlite3.Connection) -> None:
    _execute_each(
        conn,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            stage TEXT NOT NULL,
            state TEXT NOT NULL,            -- queued, running, succeeded, failed, cancelled
            config TEXT NOT NULL,           -- JSON: the stage config this run uses
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL,
            heartbeat_at REAL,
            pid INTEGER,
            host TEXT,
            detached INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER,
            message TEXT,
            error TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            summary TEXT                    -- JSON, set when the run ends
        );
        CREATE INDEX runs_stage ON runs(stage, id);

        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,        -- global order: readers ask for "events since seq N"
            run_id INTEGER NOT NULL REFERENCES runs(id),
            ts REAL NOT NULL,
            kind TEXT NOT NULL,             -- log, progress, state, metric
            payload TEXT NOT NULL           -- JSON
        );
        CREATE INDEX events_run ON events(run_id, seq);

        CREATE TABLE eval_results (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            example_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            status TEXT NOT NULL,           -- ok, parse_failure, error
            score REAL,                     -- NULL unless status = ok
            parts TEXT,                     -- JSON
            error TEXT,
            latency_s REAL NOT NULL,
            lm_calls INTEGER NOT NULL DEFAULT 0,
            cache_hits INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            outputs TEXT,                   -- JSON: the fields, or the raw text that failed to parse
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, example_id)
        );

        CREATE TABLE artifacts (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            path TEXT NOT NULL,             -- relative to the workspace
            kind TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, path)
        );
        """
    )


def _v2_eval_cost(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE eval_results ADD COLUMN cost_usd REAL")  # NULL when the price is unknown


def _v3_mipro_trials(conn: sqlite3.Connection) -> None:
    _execute_each(
        conn,
        """
        CREATE TABLE trials (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            evaluation INTEGER NOT NULL,     -- 1 = the unoptimized program, then each evaluation in order
            trial INTEGER,                   -- MIPROv2's trial number, as in its log (1 = the unoptimized program)
            kind TEXT NOT NULL,              -- full, minibatch
            score REAL,                      -- mean metric in [0, 1], the one scale everywhere
            best_full REAL,                  -- best full-evaluation score so far
            examples INTEGER NOT NULL,
            instruction INTEGER,             -- index of the instruction candidate
            demos INTEGER,                   -- index of the demo set
            duration_s REAL NOT NULL,
            lm_calls INTEGER NOT NULL,
            parse_failures INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, evaluation)
        );
        CREATE TABLE candidates (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            kind TEXT NOT NULL,              -- instruction, demos
            idx INTEGER NOT NULL,
            content TEXT NOT NULL,           -- the instruction text, or the demo set as JSON
            PRIMARY KEY (run_id, kind, idx)
        );
        """,
    )


def _execute_each(conn: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it COMMITs first, which would split a migration in two.
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def _v4_trial_cache_hits(conn: sqlite3.Connection) -> None:
    # LM calls answered by the workspace cache (a resumed run replays them for free)
    conn.execute("ALTER TABLE trials ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0")


def _v5_teacher_records(conn: sqlite3.Connection) -> None:
    _execute_each(
        conn,
        """
        CREATE TABLE teacher_records (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            input_key TEXT NOT NULL,         -- sha256 of the inputs: the identity of an input
            attempt INTEGER NOT NULL,        -- 1..attempts_per_input (0 for an imported record)
            example_id TEXT NOT NULL,        -- the pool's id, for people
            status TEXT NOT NULL,            -- accepted, rejected, surplus (accepted after the target), error
            seq INTEGER,                     -- 1..N in order of acceptance; NULL unless accepted
            score REAL,
            reason TEXT,                     -- why rejected: failed metric parts, parse failure, provider error
            parts TEXT,                      -- JSON
            inputs TEXT NOT NULL,            -- JSON
            outputs TEXT,                    -- JSON: the fields, or the raw text that failed to parse
            latency_s REAL NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,                   -- NULL when the price is unknown
            model TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, input_key, attempt)
        );
        CREATE UNIQUE INDEX teacher_one_accept ON teacher_records(run_id, input_key) WHERE status = 'accepted';
        CREATE UNIQUE INDEX teacher_seq ON teacher_records(run_id, seq) WHERE seq IS NOT NULL;
        CREATE INDEX teacher_recent ON teacher_records(run_id, created_at);
        """,
    )


def _v6_teacher_reason_kind(conn: sqlite3.Connection) -> None:
    # What rejection reasons are ranked by (a metric part, "parse failure", "error"), in a column of
    # its own instead of the text before the colon of `reason`, parsed back in SQL.
    conn.execute("ALTER TABLE teacher_records ADD COLUMN reason_kind TEXT")
    conn.execute("UPDATE teacher_records SET reason_kind = CASE WHEN instr(reason, ':') > 0 "
                 "THEN substr(reason, 1, instr(reason, ':') - 1) ELSE reason END WHERE reason IS NOT NULL")


def _v7_stage_schema(conn: sqlite3.Connection) -> None:
    # The version of each stage's own tables (migrate_stage): a stage added later, or a team's,
    # brings its tables with it instead of a migration here.
    conn.execute("CREATE TABLE stage_schema (stage TEXT PRIMARY KEY, version INTEGER NOT NULL)")


def _v8_feedback_traces_and_judges(conn: sqlite3.Connection) -> None:
    # A metric may explain its score (`feedback`, as GEPA's metrics do) and call an LM of its
    # own (a judge: its calls, tokens and cost apart from the program's); a teacher answer keeps
    # each predictor's inputs and outputs (`trace`, JSON), what the fine-tune trains on.
    statements = ["ALTER TABLE teacher_records ADD COLUMN trace TEXT"]
    for table in ("eval_results", "teacher_records"):
        statements += [f"ALTER TABLE {table} ADD COLUMN feedback TEXT",
                       f"ALTER TABLE {table} ADD COLUMN judge_calls INTEGER NOT NULL DEFAULT 0",
                       f"ALTER TABLE {table} ADD COLUMN judge_input_tokens INTEGER NOT NULL DEFAULT 0",
                       f"ALTER TABLE {table} ADD COLUMN judge_output_tokens INTEGER NOT NULL DEFAULT 0",
                       f"ALTER TABLE {table} ADD COLUMN judge_cost_usd REAL"]
    _execute_each(conn, ";\n".join(statements))


def _v9_systems_promotions_chains(conn: sqlite3.Connection) -> None:
    # One run may evaluate several systems (program x model) on the same examples: `system` joins
    # the key of eval_results ('' for a run of one). SQLite cannot change a primary key in
    # place, so the table is rebuilt with its rows.
    columns = [row[1] for row in conn.execute("PRAGMA table_info(eval_results)")]
    _execute_each(conn, """
        ALTER TABLE eval_results RENAME TO eval_results_v8;
        CREATE TABLE eval_results (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            system TEXT NOT NULL DEFAULT '',  -- which program x model answered ('' when a run has one)
            example_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            status TEXT NOT NULL,             -- ok, parse_failure, error, metric_error
            score REAL,                       -- NULL unless status = ok
            parts TEXT,                       -- JSON
            error TEXT,
            latency_s REAL NOT NULL,
            lm_calls INTEGER NOT NULL DEFAULT 0,
            cache_hits INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            outputs TEXT,                     -- JSON: the fields, or the raw text that failed to parse
            created_at REAL NOT NULL,
            cost_usd REAL,
            feedback TEXT,
            judge_calls INTEGER NOT NULL DEFAULT 0,
            judge_input_tokens INTEGER NOT NULL DEFAULT 0,
            judge_output_tokens INTEGER NOT NULL DEFAULT 0,
            judge_cost_usd REAL,
            PRIMARY KEY (run_id, system, example_id)
        )""")
    names = ", ".join(columns)
    # Rows of a run that is not in `runs` (written by hand, without foreign keys) would stop
    # the copy under foreign_keys=ON, and the store with it: they are left behind.
    _execute_each(conn, f"""
        INSERT INTO eval_results ({names}) SELECT {names} FROM eval_results_v8 WHERE run_id IN (SELECT id FROM runs);
        DROP TABLE eval_results_v8;

        -- The workspace's task model: the provider table baseline, MIPROv2 and validation runs use
        -- when they name provider "task". The newest row not undone is in force.
        CREATE TABLE promotions (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),  -- the validation run that judged it
            system TEXT NOT NULL,
            provider_config TEXT NOT NULL,                -- JSON: the provider table it answers through
            verdict TEXT NOT NULL,                        -- the gate's: pass, fail, not decidable
            forced INTEGER NOT NULL DEFAULT 0,            -- promoted against the gate (--force)
            promoted_by TEXT NOT NULL,
            promoted_at REAL NOT NULL,
            undone_by TEXT,
            undone_at REAL
        );

        -- `po run all`: one chain of runs, resumable as a whole.
        CREATE TABLE chains (
            id INTEGER PRIMARY KEY,
            stages TEXT NOT NULL,                         -- JSON: the stage names, in order
            promote INTEGER NOT NULL DEFAULT 0,           -- promote when the gate passes
            state TEXT NOT NULL,                          -- running, succeeded, failed, cancelled
            pid INTEGER,
            host TEXT,
            created_at REAL NOT NULL,
            finished_at REAL,
            error TEXT
        );
        ALTER TABLE runs ADD COLUMN chain_id INTEGER REFERENCES chains(id);
        ALTER TABLE runs ADD COLUMN inputs_sha256 TEXT""")


def _v10_served_models(conn: sqlite3.Connection) -> None:
    # Models served outside po-console's process (llama.cpp's server started by `po serve`, a
    # model created on an Ollama server by `po export ollama`), usable by name as providers.
    _execute_each(conn, """
        CREATE TABLE served_models (
            name TEXT PRIMARY KEY,                 -- the provider name stages use
            provider_config TEXT NOT NULL,         -- JSON: the [providers.NAME] table it stands for
            run_id INTEGER REFERENCES runs(id),    -- the serve run it lives in (NULL: lives on its server)
            source_run_id INTEGER REFERENCES runs(id),  -- the fine-tune run whose adapter it serves (NULL: a base)
            created_at REAL NOT NULL
        )""")


MIGRATIONS = [_v1_runs_events_results_artifacts, _v2_eval_cost, _v3_mipro_trials, _v4_trial_cache_hits,
              _v5_teacher_records, _v6_teacher_reason_kind, _v7_stage_schema, _v8_feedback_traces_and_judges,
              _v9_systems_promotions_chains, _v10_served_models]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    pass


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this file has and the database lacks. Returns the final version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"state.db has schema version {version}, this po-console knows up to {SCHEMA_VERSION}: upgrade po-console"
        )
    for number in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if conn.execute("PRAGMA user_version").fetchone()[0] != number:
                conn.execute("ROLLBACK")
                continue
            MIGRATIONS[number](conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return conn.execute("PRAGMA user_version").fetchone()[0]


Migration = Callable[[sqlite3.Connection], None] | str  # a function, or SQL statements separated by ";\n"


def migrate_stage(conn: sqlite3.Connection, stage: str, migrations: Sequence[Migration]) -> int:
    """Apply the migrations of a stage's own tables that the database lacks, in order, each in
    its transaction (as `migrate` does for the core schema). Returns the stage's version."""
    def version() -> int:
        row = conn.execute("SELECT version FROM stage_schema WHERE stage = ?", (stage,)).fetchone()
        return row[0] if row else 0

    if version() > len(migrations):
        raise SchemaTooNew(f"state.db has version {version()} of the {stage} stage's tables, this one knows up to "
                           f"{len(migrations)}: upgrade the package that provides it")
    for number in range(version(), len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version() != number:  # another process migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            step = migrations[number]
            _execute_each(conn, step) if isinstance(step, str) else step(conn)
            conn.execute("INSERT INTO stage_schema (stage, version) VALUES (?, ?) ON CONFLICT(stage) DO UPDATE SET "
                         "version = excluded.version", (stage, number + 1))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version()
