"""Shared test configuration: the fake Ollama fixtures (fake_ollama, fake_ollama_factory)."""

pytest_plugins = ["llm_agent_magic.testing.pytest_plugin", "llm_agent_magic.testing.tavily_plugin"]
