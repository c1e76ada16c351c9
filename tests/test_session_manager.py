"""SessionManager: one order of settings for every front end; typed requests; what front ends ask of a session."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from llm_agent_magic.agents.manager import (
    MAX_LISTED,
    MAX_LISTED_TEXT,
    SessionManager,
    environment_config,
    resolve_config,
    variable_rows,
)
from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.events import CellOutput, CodeCell
from llm_agent_magic.exceptions import BadRequest, SessionNotFound
from llm_agent_magic.run_requests import ApprovalReply, RunRequest, StopRequest, request_from_dict
from llm_agent_magic.sandbox import SessionPaths
from llm_agent_magic.sandbox.state import pid_alive
from llm_agent_magic.store import ConversationStore
from llm_agent_magic.testing.fake_ollama import FakeOllama


def _files(host: str, model: str = "from-file:1b") -> Config:
    cfg = Config()
    cfg.LLMConfig.host, cfg.LLMConfig.model = host, model
    return cfg


def test_settings_resolve_defaults_files_environment_explicit_imposed():
    files = _files("http://file:1")
    assert LLMConfig(config=resolve_config(files=files, environ={})).host == "http://file:1"
    env = {"OLLAMA_HOST": "http://env:2"}
    assert LLMConfig(config=resolve_config(files=files, environ=env)).host == "http://env:2"  # env over files
    explicit = Config({"LLMConfig": {"host": "http://explicit:3"}})
    assert LLMConfig(config=resolve_config(explicit, files=files, environ=env)).host == "http://explicit:3"
    imposed = Config({"LLMConfig": {"host": "http://runner:4"}})
    assert LLMConfig(config=resolve_config(explicit, imposed, files=files, environ=env)).host == "http://runner:4"
    both = LLMConfig(config=resolve_config(explicit, files=files, environ=env))
    assert both.model == "from-file:1b"  # what no higher layer sets stays as the file says
    assert LLMConfig(config=resolve_config(files=Config(), environ={})).host == LLMConfig().host


def test_the_environment_layer_is_every_trait_tagged_with_a_variable():
    cfg = environment_config(
        {"OLLAMA_HOST": "http://h:1", "LLM_AGENT_DATA_ROOT": "/data", "TAVILY_API_KEY": "  ", "UNRELATED": "x"}
    )
    assert cfg.LLMConfig.host == "http://h:1" and cfg.PathsConfig.data_root == "/data"
    assert "ToolsConfig" not in cfg  # an empty variable sets nothing


def test_requests_say_what_is_wrong_with_them():
    run = RunRequest("mean price?", mode="plan", model="tiny:1b", files=["a.csv"], origin="panel")
    assert run.resolved_mode == "plan_execute"
    assert request_from_dict(run.to_dict()) == run
    assert request_from_dict({"type": "stop", "run_id": "r1", "extra": 1}) == StopRequest("r1")
    assert request_from_dict({"type": "approval", "run_id": "r", "cell_id": "c", "action": "skip"}).action == "skip"
    with pytest.raises(BadRequest, match="empty"):
        RunRequest("   ")
    with pytest.raises(BadRequest, match="Unknown mode 'sideways'"):
        RunRequest("x", mode="sideways")
    with pytest.raises(BadRequest, match="needs the cell's new source"):
        ApprovalReply("r", "c", action="edit")
    with pytest.raises(BadRequest, match="Unknown request type 'dance'"):
        request_from_dict({"type": "dance"})
    with pytest.raises(BadRequest, match="missing a field"):
        request_from_dict({"type": "approval", "run_id": "r"})


@pytest.mark.slow
async def test_a_run_with_its_own_model_history_variables_and_pull(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    script = {
        "rules": [
            {
                "purpose": "react",
                "match_last": "Observation from python_coder",
                "reply": {"thought": "done", "action": "finish", "action_input": "20"},
            },
            {"purpose": "react", "reply": {"thought": "load", "action": "python_coder", "action_input": "load sales"}},
            {
                "purpose": "code",
                "reply": "```python\nimport pandas as pd\nsales = pd.read_csv('sales.csv')\nprint(len(sales))\n```",
            },
            {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
            {"purpose": "answer", "reply": "Two rows."},
        ]
    }
    with FakeOllama(script) as server:
        explicit = Config({"LLMConfig": {"host": server.url}, "PathsConfig": {"data_root": str(tmp_path / "data")}})
        manager = SessionManager(explicit=lambda: explicit)
        try:
            session = await manager.open("nb.ipynb")
            assert manager.find("nb.ipynb") is session and await manager.open("nb.ipynb") is session
            run = RunRequest("How many rows?", mode="react", model="tiny:1b", files=[str(tmp_path / "sales.csv")])
            events = [e async for e in session.run(run)]
            assert events[-1].status == "ok"
            assert {r.model for r in server.requests if r.path == "/api/chat"} == {"tiny:1b"}
            assert session.llm.config.model == LLMConfig().model  # the shared settings were not touched
            assert manager.history("nb.ipynb") == [
                {"role": "user", "content": "How many rows?"},
                {"role": "assistant", "content": "Two rows."},
            ]
            rows = {r.name: r for r in await manager.variables("nb.ipynb")}
            assert rows["sales"].size == "2x2" and rows["sales"].snapshot.startswith("dataframe")
            pulled = await manager.pull("nb.ipynb", "sales")
            assert list(pulled["price"]) == [10, 30]
            with pytest.raises(KeyError, match="ghost"):
                await manager.pull("nb.ipynb", "ghost")
        finally:
            await manager.close_all()
    assert manager.find("nb.ipynb") is None
    assert PathsConfig(config=manager.config()).data_root == str(tmp_path / "data")


def _coder(first: str, again: str) -> dict:
    """A ReAct script whose code is ``first``, or ``again`` once the conversation says "the total again"."""
    return {
        "rules": [
            {
                "purpose": "react",
                "match_last": "Observation from python_coder",
                "reply": {"thought": "done", "action": "finish", "action_input": "done"},
            },
            {"purpose": "react", "reply": {"thought": "code", "action": "python_coder", "action_input": "code"}},
            {"purpose": "code", "match": "the total again", "reply": f"```python\n{again}\n```"},
            {"purpose": "code", "reply": f"```python\n{first}\n```"},
            {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
            {"purpose": "answer", "reply": "Done."},
        ]
    }


@pytest.mark.slow
async def test_a_kernel_idle_past_the_timeout_on_the_managers_clock_stops_and_its_variables_come_back(tmp_path):
    now = [1000.0]
    with FakeOllama(_coder("total = 40 + 2\nprint(total)", "print(total + 1)")) as server:
        explicit = Config(
            {
                "LLMConfig": {"host": server.url},
                "PathsConfig": {"data_root": str(tmp_path / "data")},
                "SandboxConfig": {"idle_timeout": 60.0},
            }
        )
        manager = SessionManager(explicit=lambda: explicit, clock=lambda: now[0])
        try:
            session = await manager.open("s")
            chat = [e async for e in session.run(RunRequest("hello", mode="chat"))]
            assert chat[-1].status == "ok" and manager.live_kernels() == []  # no code, no kernel
            dry = [e async for e in session.run(RunRequest("make a total", mode="react", dry_run=True))]
            assert dry[-1].status == "ok" and "total = 40 + 2" in next(e for e in dry if isinstance(e, CodeCell)).source
            assert manager.live_kernels() == []  # a dry run runs nothing, and there is nothing to restore
            first = [e async for e in session.run(RunRequest("make a total", mode="react"))]
            assert first[-1].status == "ok" and manager.live_kernels() == ["s"]
            pid = session.sandbox.pid
            now[0] += 59
            await manager.sweep()
            assert manager.live_kernels() == ["s"]
            now[0] += 2
            await manager.sweep()
            assert manager.live_kernels() == [] and not pid_alive(pid)
            rows = {r.name: r for r in await manager.variables("s")}  # from the snapshots; starts nothing
            assert rows["total"].type == "int" and "restored when the sandbox starts" in rows["total"].snapshot
            assert manager.live_kernels() == []
            again = [e async for e in session.run(RunRequest("the total again", mode="react"))]
            assert again[-1].status == "ok" and manager.live_kernels() == ["s"]
            assert [o["text"] for e in again if isinstance(e, CellOutput) for o in e.outputs] == ["43\n"]
            now[0] += 61
            await manager.sweep()  # the kernel stops, then the session without one closes
            await manager.sweep()
            assert manager.sessions == {} and manager.history("s")[-1]["content"] == "Done."
        finally:
            await manager.close_all()


async def test_a_listing_reads_the_catalog_without_changing_it_and_bounds_what_it_says(tmp_path):
    data = tmp_path / "data"
    manager = SessionManager(explicit=lambda: Config({"PathsConfig": {"data_root": str(data)}}))
    with pytest.raises(SessionNotFound):
        await manager.variables("nobody")
    assert not data.exists()  # nothing made for a session that does not exist
    with ConversationStore.from_config(PathsConfig(data_root=str(data))) as store:
        store.ensure_session("s")
    folder = SessionPaths.for_session("s", PathsConfig(data_root=str(data))).snapshots
    folder.mkdir(parents=True)
    (folder / "catalog.json").write_text("[1, 2")
    rows = await manager.variables("s")
    assert [r.snapshot for r in rows] == [
        "refused: the catalog could not be used (JSONDecodeError: Expecting ',' "
        "delimiter: line 1 column 6 (char 5)); nothing can be restored from it"
    ]
    assert (folder / "catalog.json").read_text() == "[1, 2"  # a listing sets nothing aside

    entries = {f"v{i}": {"kind": "json", "file": f"v{i}.value.json", "type": "x" * 10_000} for i in range(2000)}
    catalog = {"variables": entries, "not_persisted": {}, "problems": {}}
    rows = variable_rows(None, catalog)
    assert len(rows) == MAX_LISTED and rows[-1].snapshot == f"{2000 - MAX_LISTED + 1} more not listed"
    assert {len(r.type) for r in rows[:-1]} == {MAX_LISTED_TEXT}
    assert manager.sessions == {} and manager.live_kernels() == []
