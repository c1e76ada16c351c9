"""What the session service offers front ends besides runs (``agents/history.py``, ``workspace.py``,
``library.py``), read back from the store and the disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from llm_agent_magic.agents.manager import SessionManager
from llm_agent_magic.events import Answer, RunFinished, RunStarted
from llm_agent_magic.exceptions import BadName, CollectionNotFound, RunNotFound, SessionNotFound
from llm_agent_magic.learn_grammar import LibraryCommand
from llm_agent_magic.store import ConversationStore


@pytest.fixture
def manager(tmp_path: Path) -> SessionManager:
    cfg = Config()
    cfg.PathsConfig.data_root = str(tmp_path / "data")
    return SessionManager(explicit=lambda: cfg)


def test_conversations_create_rename_seed_export_delete(manager: SessionManager) -> None:
    records = manager.conversations
    made, created = records.create("s1", "Sales")
    again, created_again = records.create("s1", "other title")
    assert (made.title, created, again.title, created_again) == ("Sales", True, "Sales", False)
    assert records.rename("s1", "Sales Q3").title == "Sales Q3"
    records.seed("s2", [("user", "what is 2+2?"), ("assistant", "4")])
    assert [(m.role, m.content) for m in records.messages("s2")] == [("user", "what is 2+2?"), ("assistant", "4")]
    assert [m.content for m in records.messages("s2", 1)] == ["4"]
    assert {s.id for s in records.sessions()} == {"s1", "s2"}
    assert "what is 2+2?" in records.export("s2")
    records.delete("s2")
    with pytest.raises(SessionNotFound):
        records.get("s2")


def test_a_runs_stored_events_come_back_in_order(manager: SessionManager) -> None:
    with ConversationStore.from_config(manager.paths()) as store:
        store.ensure_session("s1")
        run_id = store.start_run("s1", "hello")
        store.append_events(run_id, [e.to_dict() for e in (RunStarted("hello", run_id=run_id), Answer("hi"), RunFinished("ok"))])
        store.finish_run(run_id, "ok")
    run, events = manager.conversations.run_with_events(run_id)
    assert (run.session_id, run.status) == ("s1", "ok")
    assert [e["type"] for e in events] == ["run_started", "answer", "run_finished"]
    with pytest.raises(RunNotFound):
        manager.conversations.run("no-such-run")


def test_uploads_are_checked_written_and_attached(manager: SessionManager, tmp_path: Path) -> None:
    workspace = manager.workspace
    written = workspace.upload("s1", [("sales.csv", b"a,b\n1,2\n")])
    folder = workspace.folder("s1")
    assert written == [{"name": "sales.csv", "bytes": 8}] and (folder / "sales.csv").read_bytes() == b"a,b\n1,2\n"
    assert manager.conversations.get("s1").id == "s1"  # the session exists from its first upload
    assert workspace.attached("s1", ["sales.csv"]) == [str(folder / "sales.csv")]
    with pytest.raises(BadName, match="upload it first"):
        workspace.attached("s1", ["other.csv"])
    for bad in ("../x.csv", ".hidden", "a/b.csv", "x\u202e.csv"):
        with pytest.raises(BadName):
            workspace.upload("s1", [("fine.csv", b"1"), (bad, b"2")])
    assert not (folder / "fine.csv").exists()  # every name is checked before anything is written
    (tmp_path / "outside.csv").write_text("keep")
    (folder / "linked.csv").symlink_to(tmp_path / "outside.csv")
    workspace.upload("s1", [("linked.csv", b"new")])  # the link is replaced, never followed
    assert (tmp_path / "outside.csv").read_text() == "keep"
    assert not (folder / "linked.csv").is_symlink() and (folder / "linked.csv").read_bytes() == b"new"


async def test_the_library_carries_out_a_command_with_the_settings_in_force(manager: SessionManager) -> None:
    library = manager.library
    assert library.collections() == [] and library.default_collection() == "notes"
    with pytest.raises(CollectionNotFound):
        await library.carry_out(LibraryCommand("forget", ["a.md"], "never-made"))
    with pytest.raises(CollectionNotFound):
        library.collection("never-made")
