"""Configuration: defaults, environment, config files, and the table of docs/configuration.md generated from the traits."""

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli
from traitlets import TraitError

from llm_agent_magic.config import LLMConfig, PathsConfig, markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_defaults(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    cfg = LLMConfig()
    assert cfg.host == "http://127.0.0.1:11434"
    assert cfg.model == "qwen3:8b" and cfg.num_ctx == 16384
    assert cfg.model_for("code") == "qwen3:8b"


def test_host_from_environment_and_normalised(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434/")
    assert LLMConfig().host == "http://gpu-box:11434"


def test_per_purpose_models():
    cfg = LLMConfig(classifier_model="small:1b", coder_model="coder:7b")
    assert cfg.model_for("classify") == "small:1b"
    assert cfg.model_for("fix") == "coder:7b"
    assert cfg.model_for("answer") == "qwen3:8b"
    assert cfg.temperature_for("code") == cfg.coder_temperature


def test_num_ctx_validated():
    with pytest.raises(TraitError, match="at least 512"):
        LLMConfig(num_ctx=100)


@pytest.mark.slow
def test_config_command_reports_value_and_source(tmp_path):
    (tmp_path / "llm_agent_config.json").write_text(json.dumps({"LLMConfig": {"num_ctx": 32768}}))
    out = run_cli("config", "--model=llama3.2:3b", cwd=tmp_path, env={"OLLAMA_HOST": "http://elsewhere:1"})
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert "'llama3.2:3b'" in lines["LLMConfig.model"] and "(command line)" in lines["LLMConfig.model"]
    assert "32768" in lines["LLMConfig.num_ctx"] and "llm_agent_config.json" in lines["LLMConfig.num_ctx"]
    assert "http://elsewhere:1" in lines["LLMConfig.host"] and "environment $OLLAMA_HOST" in lines["LLMConfig.host"]
    assert "(default)" in lines["AgentConfig.max_execution_attempts"]


@pytest.mark.slow
def test_the_environment_wins_over_a_config_file_and_the_command_line_over_both(tmp_path):
    (tmp_path / "llm_agent_config.json").write_text(json.dumps({"LLMConfig": {"host": "http://from-file:1"}}))
    out = run_cli("config", cwd=tmp_path, env={"OLLAMA_HOST": "http://from-env:2"})
    host = next(line for line in out.stdout.splitlines() if line.startswith("LLMConfig.host"))
    assert "http://from-env:2" in host and "environment $OLLAMA_HOST" in host
    out = run_cli("config", "--host=http://from-flag:3", cwd=tmp_path, env={"OLLAMA_HOST": "http://from-env:2"})
    host = next(line for line in out.stdout.splitlines() if line.startswith("LLMConfig.host"))
    assert "http://from-flag:3" in host and "(command line)" in host


@pytest.mark.slow
def test_python_config_file_is_read(tmp_path):
    (tmp_path / "llm_agent_config.py").write_text("c.AgentConfig.max_react_iterations = 3\n")
    out = run_cli("config", cwd=tmp_path)
    line = next(line for line in out.stdout.splitlines() if line.startswith("AgentConfig.max_react_iterations"))
    assert line.split()[1] == "3" and "llm_agent_config.py" in line


def test_the_documented_configuration_table_is_generated_from_the_traits():
    page = (ROOT / "docs" / "configuration.md").read_text()
    start = page.index("<!-- config-table:start")
    table = page[page.index("-->", start) + len("-->") : page.index("<!-- config-table:end -->")]
    assert table.strip() == markdown_table().strip(), (
        "docs/configuration.md's table is stale: regenerate it with `make docs-config`"
    )


def test_paths_layout(tmp_path):
    paths = PathsConfig(data_root=str(tmp_path / "root"))
    assert paths.logs_dir == tmp_path / "root" / "logs"
    assert paths.store_path.name == "store.sqlite"


@pytest.mark.slow
def test_sessions_command(tmp_path):
    from llm_agent_magic.config import PathsConfig
    from llm_agent_magic.store import ConversationStore

    root = tmp_path / "data"
    with ConversationStore.from_config(PathsConfig(data_root=str(root))) as store:
        store.create_session("nb.ipynb", title="Sales")
        store.add_message("nb.ipynb", "user", "What is the mean price?")
    args = [f"--data-root={root}"]
    listed = run_cli("sessions", *args, cwd=tmp_path)
    assert listed.returncode == 0 and "nb.ipynb" in listed.stdout and "1 messages" in listed.stdout
    assert run_cli("sessions", "rename", "nb.ipynb", "Q3 sales", *args, cwd=tmp_path).returncode == 0
    exported = run_cli("sessions", "export", "nb.ipynb", *args, cwd=tmp_path)
    assert "Q3 sales" in exported.stdout and "What is the mean price?" in exported.stdout
    assert run_cli("sessions", "delete", "nb.ipynb", *args, cwd=tmp_path).returncode == 0
    missing = run_cli("sessions", "export", "nb.ipynb", *args, cwd=tmp_path)
    assert missing.returncode == 1 and "llm-agent sessions" in missing.stderr
    assert run_cli("sessions", "rename", "only-one-arg", *args, cwd=tmp_path).returncode == 2


def test_probe_config_is_live_quick_and_unretried():
    cfg = LLMConfig(host="http://gpu:1", model="m:1", cassette_mode="replay", cassette_path="c.jsonl")
    probe = cfg.probe(3.0)
    assert (probe.host, probe.model, probe.cassette_mode) == ("http://gpu:1", "m:1", "live")
    assert probe.request_timeout == 3.0 and probe.max_retries == 0
