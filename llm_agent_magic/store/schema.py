"""The store's tables and their migrations, versioned with ``PRAGMA user_version``.

Migration N brings a database from version N to N+1. Append new migrations; never edit
a released one, since databases in the wild have already run it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..exceptions import StoreVersionError

MIGRATIONS: list[tuple[str, ...]] = [
    # 0 -> 1: sessions, messages, runs, run events.
    (
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}'
        )
        """,
        # AUTOINCREMENT: ids never come back after a delete, so id order is insertion order.
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            run_id TEXT,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
            content TEXT NOT NULL,
            mode TEXT,
            created_at REAL NOT NULL
        )
        """,
        "CREATE INDEX messages_by_session ON messages(session_id, id)",
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            request TEXT NOT NULL,
            mode TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            started_at REAL NOT NULL,
            finished_at REAL
        )
        """,
        "CREATE INDEX runs_by_session ON runs(session_id, started_at)",
        """
        CREATE TABLE run_events (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, path: str | Path) -> int:
    """Bring the database to ``SCHEMA_VERSION``; return the version it had before.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Each migration runs in
    its own IMMEDIATE transaction and re-reads the version inside it, so two processes
    opening a new file at once do not both create the tables.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreVersionError(path, found, SCHEMA_VERSION)
    start = found
    while found < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(conn)
            if found < SCHEMA_VERSION:
                for statement in MIGRATIONS[found]:
                    conn.execute(statement)
                found += 1
                conn.execute(f"PRAGMA user_version = {found}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start
