"""The conversation store: sessions, messages, runs and their events in one SQLite file.

Several processes use the same file at once (the ``%%agent`` magic in a kernel, the Jupyter
server, ``llm-agent run``), so:

- the database is in WAL mode: readers never block the writer, and the writer never blocks readers;
- every connection has a busy timeout, so a writer waits for another instead of failing;
- every write opens with ``BEGIN IMMEDIATE``, taking the write lock up front. A deferred
  transaction that reads and then writes can fail at once with "database is locked" when
  another process committed in between; the busy timeout does not help there.

Secrets are redacted from everything written (``llm_agent_magic.redaction``): titles, metadata, messages,
run requests and events never keep a key, token or password of the environment, nor a secret-shaped string.

Connections are per thread (created on first use, all closed by ``close()``), so one store
may be shared by threads. Every method is synchronous and short (a few ms): async code may
call them directly, or through ``asyncio.to_thread`` to keep a slow disk off the event loop.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_agent_magic.redaction import redact, redact_data

from ..exceptions import RunNotFound, SessionExists, SessionNotFound, StoreCorrupted, StoreError
from .markdown import render_session
from .records import ROLES, RUN_STATUSES, Message, Run, Session
from .schema import migrate

if TYPE_CHECKING:
    from llm_agent_magic.config import PathsConfig

_SESSION_COLUMNS = "s.id, s.title, s.created_at, s.updated_at, s.metadata"
_MESSAGE_COUNT = "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)"
_MESSAGE_COLUMNS = "id, session_id, role, content, mode, run_id, created_at"
_RUN_COLUMNS = "id, session_id, request, mode, status, started_at, finished_at"


def _session(row: tuple[Any, ...]) -> Session:
    sid, title, created, updated, metadata, count = row
    return Session(sid, title, created, updated, json.loads(metadata), count)


def _payload(event: Mapping[str, Any] | Any) -> tuple[str, str]:
    """(type, JSON) of an event dict; objects with ``to_dict()`` (the agents' events) are accepted too."""
    data = event.to_dict() if hasattr(event, "to_dict") else event
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise TypeError(f"An event must be a dict with a string 'type' (an Event.to_dict()), not {data!r:.200}")
    data = redact_data(data)
    try:
        return data["type"], json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        kind = data["type"]
        raise TypeError(f"Event {kind!r} is not JSON-serialisable ({exc}); events must hold plain data") from None


class ConversationStore:
    """Sessions, messages, runs and run events in the SQLite file ``path`` (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0):
        self.path = Path(path).expanduser()
        #: Seconds a call waits for another process's write before failing.
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._active = 0
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._pid = os.getpid()
        self._closed = False
        self._migrated = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn()  # open now, so a broken file is reported where the store is created

    @classmethod
    def from_config(cls, paths: PathsConfig | None = None, **kwargs: Any) -> ConversationStore:
        """The store at ``PathsConfig.store_path`` (``.llm_agent/store.sqlite`` by default)."""
        from llm_agent_magic.config import PathsConfig

        return cls((paths or PathsConfig()).store_path, **kwargs)

    def __repr__(self) -> str:
        return f"ConversationStore({str(self.path)!r})"

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- connections and transactions --------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"The conversation store {self.path} is closed; open a new ConversationStore.")
        if os.getpid() != self._pid:
            # SQLite connections must not cross fork(); the child needs its own store.
            raise StoreError(f"This ConversationStore for {self.path} was opened before a fork; open a new one here.")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open(first=not self._migrated)
            with self._lock:
                if self._closed:
                    conn.close()
                    raise StoreError(f"The conversation store {self.path} is closed; open a new ConversationStore.")
                self._close_dead_threads()
                self._connections.append((threading.current_thread(), conn))
            self._local.conn = conn
        return conn

    def _open(self, first: bool) -> sqlite3.Connection:
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE / COMMIT) below.
            # check_same_thread=False only so close() may close other threads' connections.
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Could not open the conversation store {self.path} ({exc}). Check that its folder is writable, "
                f"or set PathsConfig.data_root to a folder that is."
            ) from exc
        try:
            with self._translate():
                conn.execute("PRAGMA foreign_keys = ON")
                # In WAL mode NORMAL is durable against application crashes, and commits need no fsync.
                conn.execute("PRAGMA synchronous = NORMAL")
                if first:
                    self._retry_while_busy(lambda: self._set_up(conn))
                    self._migrated = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_up(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            # Some file systems (network shares) refuse WAL; SQLite then keeps its rollback
            # journal, which is still correct, only with less concurrency.
            conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn, self.path)

    def _retry_while_busy(self, action: Callable[[], None]) -> None:
        # Switching a new file to WAL takes an exclusive lock, and SQLite reports "locked"
        # at once there instead of calling the busy handler: two processes creating the
        # store together would fail. Everything in `action` is safe to repeat.
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _close_dead_threads(self) -> None:
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                conn.close()
        self._connections = alive

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            # Plain DatabaseError (not a subclass) is SQLITE_NOTADB or SQLITE_CORRUPT.
            if type(exc) is sqlite3.DatabaseError:
                raise StoreCorrupted(self.path, str(exc)) from exc
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StoreError(
                    f"The conversation store {self.path} stayed locked by another process for {self.timeout:g} s. "
                    f"Something holds a long write on it; retry, or raise the store's timeout."
                ) from exc
            raise

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        """Counts a store method in progress, so that ``close`` waits for it instead of closing its connection
        under it (SQLite would crash the process)."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all its statements happen, or none."""
        with self._in_use():
            conn = self._conn()
            with self._translate():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: its statements see the same snapshot of the file."""
        with self._in_use():
            conn = self._conn()
            with self._translate():
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (in any thread). Idempotent.

        A store method running in another thread finishes first (bounded by the store's timeout); new calls
        are refused from now on.
        """
        with self._lock:
            self._closed = True
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=self.timeout + 5)
        with self._lock:
            connections, self._connections = self._connections, []
        for _, conn in connections:
            conn.close()

    # --- sessions -------------------------------------------------------------------------

    def create_session(self, id: str | None = None, title: str = "", metadata: Mapping[str, Any] | None = None) -> Session:
        """A new session; ``id`` is generated when None. An existing id raises ``SessionExists``."""
        session_id = id if id is not None else uuid.uuid4().hex
        if not session_id:
            raise ValueError("A session id must be a non-empty string (or None to generate one).")
        now = time.time()
        meta = redact_data(dict(metadata or {}))
        title = redact(title)
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO sessions (id, title, created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?)",
                    (session_id, title, now, now, json.dumps(meta)),
                )
            except sqlite3.IntegrityError:
                raise SessionExists(session_id, self.path) from None
        return Session(session_id, title, now, now, meta, 0)

    def _get_session(self, conn: sqlite3.Connection, session_id: str) -> Session:
        row = conn.execute(
            f"SELECT {_SESSION_COLUMNS}, {_MESSAGE_COUNT} FROM sessions s WHERE s.id = ?", (session_id,)
        ).fetchone()
        if row is None:
            raise SessionNotFound(session_id, self.path)
        return _session(row)

    def get_session(self, id: str) -> Session:
        """The session ``id`` with its message count; ``SessionNotFound`` if there is none."""
        with self._read() as conn:
            return self._get_session(conn, id)

    def ensure_session(self, id: str, title: str = "", metadata: Mapping[str, Any] | None = None) -> Session:
        """The session ``id``, created (with ``title`` and ``metadata``) if it does not exist yet."""
        if not id:
            raise ValueError("A session id must be a non-empty string.")
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sessions (id, title, created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?)",
                (id, redact(title), now, now, json.dumps(redact_data(dict(metadata or {})))),
            )
            return self._get_session(conn, id)

    def list_sessions(self) -> list[Session]:
        """All sessions, most recently updated first, with their message counts."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SESSION_COLUMNS}, {_MESSAGE_COUNT} FROM sessions s ORDER BY s.updated_at DESC, s.rowid DESC"
            ).fetchall()
        return [_session(row) for row in rows]

    def rename_session(self, id: str, title: str) -> None:
        self._update_session(id, "title = ?", (redact(title),))

    def update_session_metadata(self, id: str, values: Mapping[str, Any]) -> Session:
        """Merge ``values`` into the session's metadata; returns the updated session."""
        with self._write() as conn:
            current = self._get_session(conn, id).metadata
            conn.execute(
                "UPDATE sessions SET metadata = ?, updated_at = ? WHERE id = ?",
                (json.dumps({**current, **redact_data(dict(values))}), time.time(), id),
            )
            return self._get_session(conn, id)

    def _update_session(self, session_id: str, assignment: str, params: tuple[Any, ...]) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE sessions SET {assignment}, updated_at = ? WHERE id = ?", (*params, time.time(), session_id)
            )
            if cursor.rowcount == 0:
                raise SessionNotFound(session_id, self.path)

    def delete_session(self, id: str) -> None:
        """Delete the session with its messages, runs and run events."""
        with self._write() as conn:
            if conn.execute("DELETE FROM sessions WHERE id = ?", (id,)).rowcount == 0:
                raise SessionNotFound(id, self.path)

    # --- messages -------------------------------------------------------------------------

    def add_message(
        self, session_id: str, role: str, content: str, mode: str | None = None, run_id: str | None = None
    ) -> Message:
        """Append one message (role: user, assistant, system or tool) to an existing session."""
        if role not in ROLES:
            raise ValueError(f"A message role must be one of {ROLES}, not {role!r}")
        content = redact(content)
        now = time.time()
        with self._write() as conn:
            touched = conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            if touched.rowcount == 0:
                raise SessionNotFound(session_id, self.path)
            cursor = conn.execute(
                "INSERT INTO messages (session_id, run_id, role, content, mode, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, run_id, role, content, mode, now),
            )
        return Message(cursor.lastrowid or 0, session_id, role, content, mode, run_id, now)

    def recent_messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        """The last ``limit`` messages (all if None), oldest first."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, -1 if limit is None else limit),
            ).fetchall()
            if not rows:
                self._get_session(conn, session_id)
        return [Message(*row) for row in reversed(rows)]

    # --- runs and their events -----------------------------------------------------------

    def start_run(self, session_id: str, request: str, mode: str | None = None, *, run_id: str | None = None) -> str:
        """Record a new run (status "running") of ``session_id``; returns its id (generated unless given)."""
        run_id = run_id or uuid.uuid4().hex
        request = redact(request)
        now = time.time()
        with self._write() as conn:
            if conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id)).rowcount == 0:
                raise SessionNotFound(session_id, self.path)
            try:
                conn.execute(
                    "INSERT INTO runs (id, session_id, request, mode, status, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, session_id, request, mode, "running", now),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"A run {run_id!r} already exists in {self.path}; run ids must be unique.") from None
        return run_id

    def append_event(self, run_id: str, event: Mapping[str, Any]) -> int:
        """Store one event dict (``Event.to_dict()``) after the run's others; returns its sequence number."""
        return self.append_events(run_id, [event])[0]

    def append_events(self, run_id: str, events: Iterable[Mapping[str, Any]]) -> list[int]:
        """Store several events in one transaction; returns their sequence numbers."""
        payloads = [_payload(event) for event in events]
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFound(run_id, self.path)
            first = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM run_events WHERE run_id = ?", (run_id,))
            start = first.fetchone()[0]
            conn.executemany(
                "INSERT INTO run_events (run_id, seq, type, payload) VALUES (?, ?, ?, ?)",
                [(run_id, start + i, kind, text) for i, (kind, text) in enumerate(payloads)],
            )
        return list(range(start, start + len(payloads)))

    def finish_run(self, run_id: str, status: str) -> None:
        """Mark the run ended: status "ok", "error", "cancelled" (or "interrupted")."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"A finished run's status must be 'ok', 'error' or 'cancelled', not {status!r}")
        with self._write() as conn:
            cursor = conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, time.time(), run_id))
            if cursor.rowcount == 0:
                raise RunNotFound(run_id, self.path)

    def mark_interrupted(self, started_before: float, session_ids: Iterable[str] | None = None) -> list[str]:
        """Mark runs still "running" that started before ``started_before`` as "interrupted"; returns their ids.

        A process that drives runs (the server) calls this when it starts: whatever it was running when it
        stopped can no longer finish. ``session_ids`` limits it to those sessions.
        """
        query = "SELECT id FROM runs WHERE status = 'running' AND started_at < ?"
        params: list[Any] = [started_before]
        if session_ids is not None:
            ids = list(session_ids)
            if not ids:
                return []
            query += f" AND session_id IN ({', '.join('?' for _ in ids)})"
            params += ids
        with self._write() as conn:
            run_ids = [row[0] for row in conn.execute(query, params).fetchall()]
            conn.executemany(
                "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ? AND status = 'running'",
                [(time.time(), run_id) for run_id in run_ids],
            )
        return run_ids

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id, self.path)
        return Run(*row)

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's event dicts in the order they were appended."""
        with self._read() as conn:
            rows = conn.execute("SELECT payload FROM run_events WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
            if not rows and conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFound(run_id, self.path)
        return [json.loads(payload) for (payload,) in rows]

    def runs(self, session_id: str) -> list[Run]:
        """The session's runs, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE session_id = ? ORDER BY started_at, rowid", (session_id,)
            ).fetchall()
            if not rows:
                self._get_session(conn, session_id)
        return [Run(*row) for row in rows]

    def answered_runs(self, request: str, session_id: str | None = None) -> list[Run]:
        """Runs that finished "ok" on exactly this request text, newest first; of one session, or of any."""
        where, params = "request = ? AND status = 'ok'", [request]
        if session_id is not None:
            where += " AND session_id = ?"
            params.append(session_id)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE {where} ORDER BY started_at DESC, rowid DESC", params
            ).fetchall()
        return [Run(*row) for row in rows]

    # --- export ---------------------------------------------------------------------------

    def export_markdown(self, session_id: str) -> str:
        """The conversation as Markdown: messages under role headings, generated code with its text output."""
        with self._read() as conn:
            session = self._get_session(conn, session_id)
            messages = [
                Message(*row)
                for row in conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
                )
            ]
            runs = [
                Run(*row)
                for row in conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE session_id = ? ORDER BY started_at, rowid", (session_id,)
                )
            ]
            events: dict[str, list[dict[str, Any]]] = {}
            for run_id, payload in conn.execute(
                "SELECT e.run_id, e.payload FROM run_events e JOIN runs r ON r.id = e.run_id "
                "WHERE r.session_id = ? AND e.type IN ('code_cell', 'cell_output') ORDER BY e.run_id, e.seq",
                (session_id,),
            ):
                events.setdefault(run_id, []).append(json.loads(payload))
        return render_session(session, messages, runs, events)
