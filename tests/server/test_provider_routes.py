"""The server with models from two providers: the models route lists both, the status route checks both."""

from __future__ import annotations

import pytest
from conftest import body


@pytest.fixture
def jp_server_config(ollama, data_root):
    return {
        "ServerApp": {"jpserver_extensions": {"llm_agent_magic.server": True}},
        "LLMConfig": {
            "provider": "openai",
            "base_url": f"{ollama.url}/v1",
            "model": "big-planner",
            "coder_model": "ollama:qwen3:8b",
            "host": ollama.url,
            "max_retries": 0,
        },
        "PathsConfig": {"data_root": str(data_root)},
    }


async def test_models_of_every_configured_provider_are_listed(api, ollama):
    ollama.load({"models": ["big-planner", "qwen3:8b"]})
    models = body(await api("/llm-agent/api/models"))
    assert models["models"] == ["big-planner", "qwen3:8b", "ollama:big-planner", "ollama:qwen3:8b"]
    assert models["providers"] == {"openai": f"{ollama.url}/v1", "ollama": ollama.url}
    assert {r.path for r in ollama.requests} == {"/v1/models", "/api/tags"}


async def test_status_checks_each_provider_and_says_what_to_do(api, ollama):
    ollama.load({"models": ["qwen3:8b"], "api_key": "sk-not-given-0000000000000000"})
    checks = {c["name"]: c for c in body(await api("/llm-agent/api/status"))["checks"]}
    assert checks["openai"]["status"] == "fail" and "HTTP 401" in checks["openai"]["detail"]
    assert "export the server's API key as OPENAI_API_KEY" in checks["openai"]["fix"]
    assert checks["ollama"]["status"] == "ok"
    assert checks["model ollama:qwen3:8b"] == {
        "name": "model ollama:qwen3:8b",
        "status": "ok",
        "detail": "coder_model is pulled",
        "fix": "",
    }
    assert "model big-planner" not in checks  # its server failed its own check, which says what to do
