"""The SQLite conversation store: CRUD, ordering, cascades, export, errors, and concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path

import pytest

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.events import Answer, CellOutput, CodeCell, RunFinished, RunStarted, Token
from llm_agent_magic.exceptions import (
    LLMAgentError,
    RunNotFound,
    SessionExists,
    SessionNotFound,
    StoreCorrupted,
    StoreError,
    StoreVersionError,
)
from llm_agent_magic.store import SCHEMA_VERSION, ConversationStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "store.sqlite"


@pytest.fixture
def store(db: Path):
    with ConversationStore(db) as s:
        yield s


def _raw(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# --- sessions ------------------------------------------------------------------------------


def test_new_file_is_wal_and_at_current_schema(db: Path, store: ConversationStore):
    assert db.is_file()
    assert _raw(db, "PRAGMA journal_mode") == [("wal",)]
    assert _raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_session_crud(store: ConversationStore):
    made = store.create_session(title="Sales", metadata={"notebook": "sales.ipynb"})
    assert made.id and made.title == "Sales" and made.message_count == 0
    assert store.get_session(made.id) == made

    store.rename_session(made.id, "Sales 2024")
    assert store.get_session(made.id).title == "Sales 2024"
    updated = store.update_session_metadata(made.id, {"kernel": "py3"})
    assert updated.metadata == {"notebook": "sales.ipynb", "kernel": "py3"}

    named = store.create_session("nb/analysis.ipynb")
    assert store.get_session("nb/analysis.ipynb").id == named.id
    with pytest.raises(SessionExists, match="ensure_session"):
        store.create_session("nb/analysis.ipynb")

    store.delete_session(made.id)
    assert [s.id for s in store.list_sessions()] == ["nb/analysis.ipynb"]


def test_ensure_session_creates_once(store: ConversationStore):
    first = store.ensure_session("s1", title="first")
    store.add_message("s1", "user", "hello")
    again = store.ensure_session("s1", title="ignored")
    assert again.title == "first" and again.created_at == first.created_at and again.message_count == 1


def test_list_sessions_most_recent_first_with_counts(store: ConversationStore):
    for sid in ("a", "b", "c"):
        store.create_session(sid)
    store.add_message("a", "user", "one")
    store.add_message("a", "assistant", "two")
    listed = store.list_sessions()
    assert [s.id for s in listed] == ["a", "c", "b"]
    assert [s.message_count for s in listed] == [2, 0, 0]


def test_missing_session_is_a_keyerror_that_says_how_to_list(store: ConversationStore):
    calls = [
        lambda: store.get_session("nope"),
        lambda: store.rename_session("nope", "x"),
        lambda: store.delete_session("nope"),
        lambda: store.add_message("nope", "user", "hi"),
        lambda: store.recent_messages("nope", 5),
        lambda: store.start_run("nope", "hi", "chat"),
        lambda: store.runs("nope"),
        lambda: store.export_markdown("nope"),
    ]
    for call in calls:
        with pytest.raises(SessionNotFound) as info:
            call()
        assert isinstance(info.value, KeyError) and isinstance(info.value, LLMAgentError)
        assert str(info.value).startswith("No conversation session 'nope'") and "list_sessions" in str(info.value)
    assert store.list_sessions() == []


# --- messages ------------------------------------------------------------------------------


def test_recent_messages_are_the_last_n_in_order(store: ConversationStore):
    store.create_session("s")
    for i in range(12):
        store.add_message("s", "user" if i % 2 == 0 else "assistant", f"m{i}", mode="chat")
    assert [m.content for m in store.recent_messages("s", 3)] == ["m9", "m10", "m11"]
    assert [m.content for m in store.recent_messages("s")] == [f"m{i}" for i in range(12)]
    assert store.recent_messages("s", 0) == []
    last = store.recent_messages("s", 1)[0]
    assert (last.role, last.mode, last.session_id, last.run_id) == ("assistant", "chat", "s", None)


def test_message_role_is_checked(store: ConversationStore):
    store.create_session("s")
    with pytest.raises(ValueError, match="role"):
        store.add_message("s", "robot", "beep")


# --- runs ----------------------------------------------------------------------------------


def test_run_lifecycle_and_events(store: ConversationStore):
    store.create_session("s")
    run_id = store.start_run("s", "what is 2+2?", "react")
    run = store.get_run(run_id)
    assert (run.status, run.finished_at, run.request, run.mode) == ("running", None, "what is 2+2?", "react")

    events = [RunStarted("what is 2+2?", run_id=run_id), Token("4", run_id=run_id), Answer("4", run_id=run_id)]
    assert [store.append_event(run_id, e.to_dict()) for e in events] == [0, 1, 2]
    assert store.append_events(run_id, [RunFinished("ok", run_id=run_id).to_dict()]) == [3]
    assert [e["type"] for e in store.run_events(run_id)] == ["run_started", "token", "answer", "run_finished"]
    assert store.run_events(run_id)[1] == events[1].to_dict()

    store.finish_run(run_id, "ok")
    done = store.get_run(run_id)
    assert done.status == "ok" and done.finished_at >= done.started_at
    second = store.start_run("s", "again", "chat", run_id="fixed-id")
    assert [r.id for r in store.runs("s")] == [run_id, second]


def test_run_errors(store: ConversationStore):
    store.create_session("s")
    run_id = store.start_run("s", "x")
    with pytest.raises(RunNotFound, match="No run 'nope'"):
        store.append_event("nope", {"type": "token", "text": "x"})
    with pytest.raises(RunNotFound):
        store.finish_run("nope", "ok")
    with pytest.raises(RunNotFound):
        store.run_events("nope")
    with pytest.raises(ValueError, match="status"):
        store.finish_run(run_id, "running")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store.append_events(run_id, [{"type": "token", "text": "ok"}, {"type": "token", "text": object()}])
    with pytest.raises(TypeError, match="'type'"):
        store.append_event(run_id, {"text": "no type"})
    assert store.run_events(run_id) == []


def test_failed_write_changes_nothing(store: ConversationStore):
    store.create_session("s")
    store.start_run("s", "x", run_id="r")
    before = store.get_session("s").updated_at
    with pytest.raises(StoreError, match="already exists"):
        store.start_run("s", "y", run_id="r")  # the session's updated_at was touched first, then rolled back
    assert store.get_session("s").updated_at == before
    assert len(store.runs("s")) == 1


def test_delete_session_cascades(db: Path, store: ConversationStore):
    for sid in ("gone", "kept"):
        store.create_session(sid)
        run_id = store.start_run(sid, "q", "chat", run_id=f"run-{sid}")
        store.add_message(sid, "user", "q", run_id=run_id)
        store.append_event(run_id, Token("a").to_dict())
    store.delete_session("gone")
    with pytest.raises(RunNotFound):
        store.run_events("run-gone")
    assert _raw(db, "SELECT session_id FROM messages") == [("kept",)]
    assert _raw(db, "SELECT session_id FROM runs") == [("kept",)]
    assert _raw(db, "SELECT run_id FROM run_events") == [("run-kept",)]


# --- export --------------------------------------------------------------------------------


def test_export_markdown(store: ConversationStore):
    store.create_session("s", title="Sales analysis")
    run_id = store.start_run("s", "mean of the sales?", "plan_execute")
    user = store.add_message("s", "user", "mean of the sales?", run_id=run_id)
    bad = CodeCell("print(1/0)", attempt=1, step=0, run_id=run_id)
    good = CodeCell("print(sum([1, 2]) / 2)\n# ```fence``` inside", attempt=2, step=0, run_id=run_id)
    error = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []}
    store.append_events(
        run_id,
        [
            RunStarted("mean of the sales?", run_id=run_id).to_dict(),
            bad.to_dict(),
            CellOutput(bad.cell_id, [error], status="error", failed=True, run_id=run_id).to_dict(),
            good.to_dict(),
            CellOutput(
                good.cell_id,
                [
                    {"output_type": "stream", "name": "stdout", "text": ["1.", "5\n"]},
                    {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}},
                ],
                final=True,
                run_id=run_id,
            ).to_dict(),
        ],
    )
    store.add_message("s", "assistant", "The mean is **1.5**.", mode="plan_execute", run_id=run_id)
    failed_run = store.start_run("s", "now plot it", "react")
    store.append_event(failed_run, CodeCell("plt.plot(df)", run_id=failed_run).to_dict())

    text = store.export_markdown("s")
    assert text.startswith("# Sales analysis\n")
    from llm_agent_magic.store.markdown import format_time

    assert f"## User · {format_time(user.created_at)}" in text
    assert "## Assistant (plan_execute) · " in text
    assert "**Code** (step 1, attempt 1, failed: error)\n\n```python\nprint(1/0)\n```" in text
    assert "```text\nZeroDivisionError: division by zero\n```" in text
    assert "````python\nprint(sum([1, 2]) / 2)\n# ```fence``` inside\n````" in text
    assert "```text\n1.5\n[image/png output]\n```" in text
    # the work comes before the answer it led to, after the question
    assert text.index("mean of the sales?") < text.index("print(1/0)") < text.index("The mean is **1.5**.")
    assert "## Run " in text and "> now plot it" in text and "plt.plot(df)" in text
    assert "run_started" not in text


# --- files ---------------------------------------------------------------------------------


def test_data_survives_reopen(db: Path):
    with ConversationStore(db) as first:
        first.create_session("s", title="kept")
        first.add_message("s", "user", "remember me")
    with ConversationStore(db) as second:
        assert second.get_session("s").title == "kept"
        assert [m.content for m in second.recent_messages("s", 10)] == ["remember me"]


def test_not_a_database_is_reported_and_left_alone(tmp_path: Path):
    path = tmp_path / "store.sqlite"
    junk = b"this is a notebook, not a database\n" * 200
    path.write_bytes(junk)
    with pytest.raises(StoreCorrupted) as info:
        ConversationStore(path)
    assert str(path) in str(info.value) and "Move it aside" in str(info.value)
    assert path.read_bytes() == junk


def test_newer_schema_is_refused(db: Path):
    ConversationStore(db).close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="upgrade llm-agent-magic"):
        ConversationStore(db)


def test_closed_store_says_so(db: Path):
    store = ConversationStore(db)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_sessions()


def test_from_config(tmp_path: Path):
    with ConversationStore.from_config(PathsConfig(data_root=str(tmp_path / "root"))) as store:
        assert store.path == tmp_path / "root" / "store.sqlite"


# --- concurrency ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from llm_agent_magic.store import ConversationStore

    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # start together: both processes create/migrate the file and write at once
    with ConversationStore(path) as store:
        store.ensure_session("shared")
        run_id = store.start_run("shared", name, "chat", run_id=name)
        for i in range(count):
            store.add_message("shared", "user", f"{name}:{i}", run_id=run_id)
            store.append_event(run_id, {"type": "token", "text": str(i)})
        store.finish_run(run_id, "ok")
    """
)


@pytest.mark.slow
def test_two_processes_write_at_once(db: Path):
    count = 200
    db.parent.mkdir(parents=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", WRITER, str(db), name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline() == "ready\n"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, err) in zip(procs, results, strict=False):
        assert proc.returncode == 0 and err == "", err

    with ConversationStore(db) as store:
        contents = [m.content for m in store.recent_messages("shared")]
        assert len(contents) == 2 * count
        for name in ("p1", "p2"):
            assert [c for c in contents if c.startswith(name)] == [f"{name}:{i}" for i in range(count)]
            assert [e["text"] for e in store.run_events(name)] == [str(i) for i in range(count)]
        assert {r.status for r in store.runs("shared")} == {"ok"}


def test_threads_write_at_once(db: Path):
    count = 60
    shared = ConversationStore(db)
    shared.create_session("s")
    run_id = shared.start_run("s", "threads")
    own = [ConversationStore(db), ConversationStore(db)]
    stores = [shared, shared, *own]  # two threads share one store, two have their own
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def write(store: ConversationStore, name: str) -> None:
        try:
            start.wait()
            for i in range(count):
                store.add_message("s", "user", f"{name}:{i}")
                store.append_event(run_id, {"type": "token", "text": f"{name}:{i}"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, f"t{n}")) for n, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert len(shared.recent_messages("s")) == len(stores) * count
        seqs = [e["text"] for e in shared.run_events(run_id)]
        assert len(seqs) == len(set(seqs)) == len(stores) * count
    finally:
        for store in own:
            store.close()
        shared.close()


def test_waits_for_another_writer_then_fails_clearly(db: Path):
    with ConversationStore(db) as store, closing(sqlite3.connect(db, isolation_level=None, check_same_thread=False)) as other:
        store.create_session("s")
        other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        timer = threading.Timer(0.3, other.execute, args=("COMMIT",))
        timer.start()
        try:
            store.add_message("s", "user", "waited")  # blocks until the commit, then succeeds
        finally:
            timer.join()
        assert store.get_session("s").message_count == 1

        impatient = ConversationStore(db, timeout=0.1)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="stayed locked by another process for 0.1 s"):
                impatient.add_message("s", "user", "gave up")
            other.execute("ROLLBACK")
        finally:
            impatient.close()


def test_close_waits_for_a_write_in_another_thread(db: Path):
    """Closing a connection under a thread that is inside a write would crash the process; close waits."""
    store = ConversationStore(db)
    store.ensure_session("s")
    run_id = store.start_run("s", "hello")
    done: list[int] = []
    connected, go = threading.Event(), threading.Event()

    def write() -> None:
        store.recent_messages("s")  # the thread's own connection is open before the file gets locked
        connected.set()
        go.wait(30)
        done.append(store.append_event(run_id, Answer("hi").to_dict()))

    writer = threading.Thread(target=write)
    writer.start()
    connected.wait(30)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the file: the thread's write has to wait
    go.set()
    while store._active == 0:  # the writer is inside its write now
        threading.Event().wait(0.01)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # waiting for the write, not closing under it
    blocker.execute("COMMIT")
    blocker.close()
    writer.join(30)
    closer.join(30)
    assert done and not closer.is_alive()
    with ConversationStore(db) as again:
        assert [e["type"] for e in again.run_events(run_id)] == ["answer"]
