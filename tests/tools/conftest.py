"""Fixtures for the tool tests: an LLM client on the scripted Ollama, and the Tavily stand-in."""

from __future__ import annotations

import pytest

from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.llm import LLMClient


@pytest.fixture
async def llm(fake_ollama, tmp_path):
    """An LLMClient on the scripted Ollama (bag-of-words embeddings), data root in tmp."""
    client = LLMClient(LLMConfig(host=fake_ollama.url, max_retries=0), paths=PathsConfig(data_root=str(tmp_path / "root")))
    yield client
    await client.aclose()
