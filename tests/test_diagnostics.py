"""The checks behind ``llm-agent doctor`` and ``%agent status`` (``agents/diagnostics.py``)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli
from llm_helpers import closed_port

from llm_agent_magic.agents.diagnostics import Diagnostic, check_models, check_ollama, check_tavily, run_checks
from llm_agent_magic.config import LLMConfig, PathsConfig, SandboxConfig, ToolsConfig


@pytest.mark.slow
def test_the_tavily_check_reads_tools_config_from_the_command_line_not_the_environment(tmp_path):
    host = f"--host=http://127.0.0.1:{closed_port()}"
    key = "tvly-from-the-command-line-0123456789"
    given = run_cli("doctor", "--json", host, f"--ToolsConfig.tavily_api_key={key}", cwd=tmp_path, env={"TAVILY_API_KEY": ""})
    tavily = {c["name"]: c for c in json.loads(given.stdout)}["tavily"]
    assert tavily["status"] == "ok" and "web search available" in tavily["detail"]
    assert key not in given.stdout  # never shown
    # A key in the environment that the command line empties is not there for web search either.
    emptied = run_cli(
        "doctor",
        "--json",
        host,
        "--ToolsConfig.tavily_api_key=",
        cwd=tmp_path,
        env={"TAVILY_API_KEY": "tvly-in-the-environment-0123456789"},
    )
    tavily = {c["name"]: c for c in json.loads(emptied.stdout)}["tavily"]
    assert tavily["status"] == "warn" and "ToolsConfig.tavily_api_key" in tavily["fix"]


def test_a_check_is_plain_data_and_renders_with_its_fix():
    check = check_tavily(ToolsConfig(tavily_api_key=""))
    assert isinstance(check, Diagnostic) and check.to_dict() == {
        "name": check.name,
        "status": "warn",
        "detail": check.detail,
        "fix": check.fix,
    }
    assert str(check) == f"! tavily: {check.detail}\n    fix: {check.fix}"
    given = check_tavily(ToolsConfig(tavily_api_key="tvly-k"))
    assert str(given) == "✓ tavily: a Tavily API key is set (web search available)"


async def test_one_check_per_model_naming_its_roles(fake_ollama, tmp_path):
    fake_ollama.load({"models": ["qwen3:8b"]})
    llm = LLMConfig(host=fake_ollama.url, coder_model="qwen2.5-coder:7b")
    checks = {c.name: c for c in await check_ollama(llm, PathsConfig(data_root=str(tmp_path)))}
    assert list(checks) == ["ollama", "model qwen3:8b", "model qwen2.5-coder:7b", "model nomic-embed-text"]
    assert checks["model qwen3:8b"].detail == "model and classifier_model are pulled"
    assert checks["model qwen2.5-coder:7b"].detail == "coder_model 'qwen2.5-coder:7b' is not pulled"
    replaying = LLMConfig(host=fake_ollama.url, cassette_mode="replay", cassette_path="answers.jsonl")
    assert [c.to_dict() for c in await check_ollama(replaying, PathsConfig(data_root=str(tmp_path)))] == [
        {"name": "ollama", "status": "ok", "detail": "not needed: replaying answers.jsonl", "fix": ""}
    ]


async def test_the_checks_come_in_one_order(fake_ollama, tmp_path):
    fake_ollama.load({"models": ["qwen3:8b", "nomic-embed-text"]})
    checks = await run_checks(
        LLMConfig(host=fake_ollama.url),
        SandboxConfig(),
        PathsConfig(data_root=str(tmp_path)),
        ToolsConfig(tavily_api_key=""),
        timeout=5,
    )
    assert [c.name for c in checks] == [
        "ollama",
        "model qwen3:8b",
        "model nomic-embed-text",
        "tavily",
        "sandbox bubblewrap",
        "sandbox user namespaces",
        "sandbox landlock",
        "sandbox resource limits",
        "sandbox seccomp",
        "sandbox audit hook",
        "sandbox isolation",
        "sandbox libraries",
        "data root",
    ]
    assert all(c.status in ("ok", "warn", "fail") for c in checks)


async def test_an_openai_provider_is_checked_with_its_models(fake_ollama, tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_LLM_KEY", "sk-team-0123456789abcdef0123")
    fake_ollama.load({"models": ["Qwen/Qwen3-32B", "qwen3:8b"], "api_key": "sk-team-0123456789abcdef0123"})
    paths = PathsConfig(data_root=str(tmp_path))
    llm = LLMConfig(
        provider="openai",
        base_url=f"{fake_ollama.url}/v1",
        api_key_env="TEAM_LLM_KEY",
        model="Qwen/Qwen3-32B",
        coder_model="ollama:qwen3:8b",
        embedding_model="bge-m3",
        host=fake_ollama.url,
    )
    checks = {c.name: c for c in await check_models(llm, paths)}
    assert list(checks) == ["openai", "ollama", "model Qwen/Qwen3-32B", "model ollama:qwen3:8b", "model bge-m3"]
    assert checks["openai"].status == "ok" and "key from $TEAM_LLM_KEY" in checks["openai"].detail
    assert "serving 2 model(s)" in checks["openai"].detail
    assert checks["model Qwen/Qwen3-32B"].status == "ok" and checks["model ollama:qwen3:8b"].status == "ok"
    missing = checks["model bge-m3"]
    assert missing.status == "fail" and "it serves: Qwen/Qwen3-32B, qwen3:8b" in missing.detail
    assert "LLMConfig.embedding_model" in missing.fix and "vllm serve bge-m3" in missing.fix


@pytest.mark.parametrize(
    ("base_url", "key", "detail", "fix"),
    [
        ("{url}", "sk-team-0123456789abcdef0123", "No OpenAI-compatible API answers at", "usually ends in /v1"),
        (
            "http://127.0.0.1:{port}/v1",
            "sk-team-0123456789abcdef0123",
            "Could not reach the openai server",
            "the server must run there",
        ),
        ("{url}/v1", "", "HTTP 401", "export the server's API key as TEAM_LLM_KEY"),
        ("", "", "needs the address", "set LLMConfig.base_url"),
    ],
    ids=["no-v1", "nothing-there", "missing-key", "no-base-url"],
)
async def test_an_openai_provider_that_cannot_be_used_says_what_to_do(
    fake_ollama, tmp_path, monkeypatch, base_url, key, detail, fix
):
    monkeypatch.setenv("TEAM_LLM_KEY", key)
    fake_ollama.load({"api_key": "sk-team-0123456789abcdef0123"})
    llm = LLMConfig(
        provider="openai", api_key_env="TEAM_LLM_KEY", base_url=base_url.format(url=fake_ollama.url, port=closed_port())
    )
    (check,) = await check_models(llm, PathsConfig(data_root=str(tmp_path)))
    assert check.name == "openai" and check.status == "fail"
    assert detail in check.detail and fix in check.fix


async def test_a_missing_embedding_model_is_a_warning_until_retrieval_is_in_use(fake_ollama, tmp_path):
    fake_ollama.load({"models": ["qwen3:8b"]})  # a CSV-only user: no embedding model pulled
    llm, paths = LLMConfig(host=fake_ollama.url), PathsConfig(data_root=str(tmp_path))

    async def embed_check(tools: ToolsConfig) -> Diagnostic:
        checks = await run_checks(llm, SandboxConfig(), paths, tools, timeout=5)
        return {c.name: c for c in checks}["model nomic-embed-text"]

    unused = await embed_check(ToolsConfig(tavily_api_key=""))
    assert unused.status == "warn" and "only for retrieval" in unused.detail
    assert unused.fix == "ollama pull nomic-embed-text"
    assert (await embed_check(ToolsConfig(tavily_api_key="", rag_folders=[str(tmp_path)]))).status == "fail"
    learned = tmp_path / "rag" / "notes"  # a collection learned earlier needs the model to be searched
    learned.mkdir(parents=True)
    (learned / "hashes.json").write_text(json.dumps({"settings": {"kind": "library"}, "files": {"a.md": "x"}}))
    assert (await embed_check(ToolsConfig(tavily_api_key=""))).status == "fail"
    # The chat model stays a problem either way.
    fake_ollama.load({"models": ["nomic-embed-text"]})
    assert {c.name: c for c in await check_models(llm, paths, retrieval=False)}["model qwen3:8b"].status == "fail"
