"""pytest fixture for testing web search without Tavily.

Enable it in a ``conftest.py``::

    pytest_plugins = ["llm_agent_magic.testing.tavily_plugin"]

Then::

    def test_search(fake_tavily):
        fake_tavily.load({"results": [{"title": "T", "url": "https://t.example", "content": "..."}]})
        ...  # code under test finds the stand-in through $TAVILY_BASE_URL and $TAVILY_API_KEY
        assert fake_tavily.requests[0].query == "..."
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_tavily import FakeTavily

__all__ = ["FAKE_TAVILY_KEY", "fake_tavily"]

#: The key the fixture sets; the stand-in accepts any non-empty key unless its script names one.
FAKE_TAVILY_KEY = "tvly-fake-test-key-0123456789"


@pytest.fixture
def fake_tavily(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTavily]:
    """A running FakeTavily (empty script: one made-up result per query).

    ``TAVILY_BASE_URL`` points at it and ``TAVILY_API_KEY`` is `FAKE_TAVILY_KEY` for the test.
    """
    with FakeTavily() as server:
        monkeypatch.setenv("TAVILY_BASE_URL", server.url)
        monkeypatch.setenv("TAVILY_API_KEY", FAKE_TAVILY_KEY)
        yield server
