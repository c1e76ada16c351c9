"""SessionManager: one order of settings for every front end; typed requests; what front ends ask of a session."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from llm_agent_magic.agents.manager import SessionManager, environment_config, resolve_config
from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.run_requests import ApprovalReply, BadRequest, RunRequest, StopRequest, request_from_dict
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
    cfg = environment_config({"OLLAMA_HOST": "http://h:1", "LLM_AGENT_DATA_ROOT": "/data", "TAVILY_API_KEY": "  ",
                              "UNRELATED": "x"})
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
    script = {"rules": [
        {"purpose": "react", "match_last": "Observation from python_coder",
         "reply": {"thought": "done", "action": "finish", "action_input": "20"}},
        {"purpose": "react", "reply": {"thought": "load", "action": "python_coder", "action_input": "load sales"}},
        {"purpose": "code", "reply": "```python\nimport pandas as pd\nsales = pd.read_csv('sales.csv')\nprint(len(sales))\n```"},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "Two rows."},
    ]}
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
            assert manager.history("nb.ipynb") == [{"role": "user", "content": "How many rows?"},
                                                   {"role": "assistant", "content": "Two rows."}]
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
