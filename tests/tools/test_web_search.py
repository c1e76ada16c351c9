"""web_search through the real tavily-python client against the Tavily stand-in."""

from __future__ import annotations

import logging

import pytest
from tool_helpers import make_ctx

from llm_agent_magic.agents.session import default_tools
from llm_agent_magic.config import ToolsConfig, trait_rows
from llm_agent_magic.exceptions import CassetteMiss
from llm_agent_magic.testing.fake_tavily import FakeTavily
from llm_agent_magic.testing.tavily_plugin import FAKE_TAVILY_KEY
from llm_agent_magic.tools.web_search import NO_KEY, WebSearchTool

RESULTS = [
    {"title": "Pandas 3.0 released", "url": "https://pandas.example/3.0", "content": "Copy-on-write is now the default."},
    {"title": "What is new", "url": "https://blog.example/pandas", "content": "Strings get a dedicated dtype."},
    {"title": "Old news", "url": "https://old.example", "content": "Not relevant."},
]


def tool(server: FakeTavily, **settings) -> WebSearchTool:
    return WebSearchTool(ToolsConfig(tavily_base_url=server.url, **settings))


async def test_results_become_numbered_sources(fake_tavily, caplog):
    caplog.set_level(logging.DEBUG)
    fake_tavily.load({"rules": [{"match": "pandas", "results": RESULTS}]})
    result = await tool(fake_tavily, web_max_results=2).run("what changed in pandas 3", make_ctx())
    assert result.success
    assert result.observation.splitlines() == [
        'Web results for "what changed in pandas 3". Cite a source as [n] with its URL.',
        "[1] Pandas 3.0 released",
        "    https://pandas.example/3.0",
        "    Copy-on-write is now the default.",
        "[2] What is new",
        "    https://blog.example/pandas",
        "    Strings get a dedicated dtype.",
    ]
    assert [s["url"] for s in result.data["sources"]] == ["https://pandas.example/3.0", "https://blog.example/pandas"]
    (request,) = fake_tavily.requests
    assert request.body == {"query": "what changed in pandas 3", "search_depth": "basic", "max_results": 2}
    # The key reached Tavily, and is nowhere else: not in the stand-in's record, the observation or the logs.
    assert request.authorized and request.headers["authorization"] == "Bearer <redacted>"
    assert FAKE_TAVILY_KEY not in repr(fake_tavily.requests) + result.observation + repr(result.data) + caplog.text


async def test_long_snippets_are_cut_and_answers_shown(fake_tavily):
    fake_tavily.load({"results": [{"title": "Long", "url": "https://x.example", "content": "word " * 400}], "answer": "42"})
    result = await tool(fake_tavily).run("anything", make_ctx())
    snippet = result.observation.splitlines()[3]
    assert snippet.endswith("...") and len(snippet) < 520


async def test_bad_key_is_an_observation(fake_tavily):
    fake_tavily.load({"api_key": "tvly-the-right-one"})
    result = await tool(fake_tavily, tavily_api_key="tvly-wrong-key").run("q", make_ctx())
    assert not result.success
    assert "rejected the API key (HTTP 401)" in result.observation and "TAVILY_API_KEY" in result.observation
    assert "tvly-wrong-key" not in result.observation and not fake_tavily.requests[0].authorized


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("http_500", "Tavily answered HTTP 500"),
        ("http_429", "usage limit"),
        ("timeout", "timed out after 0.3 s"),
    ],
)
async def test_service_failures_are_observations(fake_tavily, fault, expected):
    fake_tavily.load({"rules": [{"fault": fault}]})
    result = await tool(fake_tavily, web_timeout=0.3).run("q", make_ctx())
    assert not result.success and expected in result.observation


async def test_unreachable_server_is_an_observation(fake_tavily):
    url = fake_tavily.url
    fake_tavily.stop()
    result = await WebSearchTool(ToolsConfig(tavily_base_url=url)).run("q", make_ctx())
    assert not result.success and "could not reach Tavily" in result.observation


async def test_no_key_says_what_to_do(fake_tavily, monkeypatch):
    monkeypatch.delenv("TAVILY_API_KEY")
    result = await tool(fake_tavily).run("q", make_ctx())
    assert result.observation == NO_KEY and not result.success
    assert not fake_tavily.requests


def test_always_registered_so_prompts_do_not_depend_on_the_key(monkeypatch):
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    monkeypatch.delenv("TAVILY_BASE_URL", raising=False)
    without = default_tools()
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-from-env")
    with_key = default_tools()
    assert without.names == with_key.names == ["python_coder", "rag_search", "file_analyzer", "web_search"]
    assert without.describe() == with_key.describe()


def test_the_key_is_never_shown(monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-very-secret")
    config = ToolsConfig()
    assert config.tavily_api_key == "tvly-very-secret"
    rows = {r["name"]: r for r in trait_rows([config])}
    assert "very-secret" not in repr(rows["tavily_api_key"]["value"]) and "hidden" in repr(config.tavily_api_key)
    assert rows["tavily_api_key"]["env"] == "TAVILY_API_KEY"


async def test_stand_in_speaks_tavily_to_the_official_client():
    from tavily import AsyncTavilyClient

    script = {"rules": [{"match": "^capital", "answer": "Oslo", "results": RESULTS[:1], "times": 1}]}
    with FakeTavily(script) as server:
        client = AsyncTavilyClient(api_key="tvly-k", api_base_url=server.url)
        try:
            first = await client.search("Capital of Norway?", include_answer=True, max_results=3)
            second = await client.search("capital of Norway?")
        finally:
            await client.close()
    assert first["answer"] == "Oslo" and first["query"] == "Capital of Norway?"
    assert first["results"][0]["title"] == "Pandas 3.0 released" and first["results"][0]["score"] == 0.9
    assert second["answer"] is None and second["results"][0]["content"].startswith("A made-up page")  # rule used up
    assert [r.rule_index for r in server.requests] == [0, None]
    for bad, message in [({"rules": [{"fault": "nope"}]}, "unknown fault"), ({"rezults": []}, "unknown key")]:
        with pytest.raises(ValueError, match=message):
            FakeTavily(bad)


async def test_searches_are_recorded_and_replayed_with_the_models_answers(tmp_path, monkeypatch):
    from llm_agent_magic.config import LLMConfig, PathsConfig
    from llm_agent_magic.llm import LLMClient

    cassette = tmp_path / "c.jsonl"
    paths = PathsConfig(data_root=str(tmp_path / "root"))
    monkeypatch.setenv("TAVILY_API_KEY", FAKE_TAVILY_KEY)
    with FakeTavily({"results": RESULTS}) as server:
        base_url = server.url
        recorder = LLMClient(LLMConfig(cassette_mode="record", cassette_path=str(cassette)), paths=paths)
        live = await tool(server).run("pandas news", make_ctx(recorder))
        await recorder.aclose()
    assert live.success and FAKE_TAVILY_KEY not in cassette.read_text()
    # Tavily is gone; the cassette answers.
    player = LLMClient(LLMConfig(cassette_mode="replay", cassette_path=str(cassette)), paths=paths)
    monkeypatch.delenv("TAVILY_API_KEY")  # a replay needs no key
    replayed = await WebSearchTool(ToolsConfig(tavily_base_url=base_url)).run("pandas news", make_ctx(player))
    assert replayed.observation == live.observation
    # A search the cassette does not hold stops the run, naming the query (a replay is a configuration, not a model error).
    with pytest.raises(CassetteMiss, match="other news"):
        await WebSearchTool(ToolsConfig(tavily_base_url=base_url)).run("other news", make_ctx(player))
    await player.aclose()


async def test_results_are_cached_per_query_for_the_configured_time(fake_tavily, llm, monkeypatch):
    fake_tavily.load({"rules": [{"match": "pandas", "results": RESULTS}]})
    search = tool(fake_tavily, web_cache_minutes=30)
    monkeypatch.setenv("LLM_AGENT_NOW", "2026-11-28T09:00:00+00:00")
    first = await search.run("what changed in pandas 3", make_ctx(llm))
    assert len(fake_tavily.requests) == 1 and "cached" not in first.data
    monkeypatch.setenv("LLM_AGENT_NOW", "2026-11-28T09:29:00+00:00")
    second = await search.run("what changed  in pandas 3", make_ctx(llm))  # the same query, spaced otherwise
    assert len(fake_tavily.requests) == 1  # answered from the cache
    assert second.observation.splitlines()[1:] == first.observation.splitlines()[1:]
    assert second.data["cached"] and second.data["age_minutes"] == 29.0
    other = await search.run("pandas release date", make_ctx(llm))
    assert len(fake_tavily.requests) == 2 and "cached" not in other.data  # another query is asked
    monkeypatch.setenv("LLM_AGENT_NOW", "2026-11-28T09:31:00+00:00")
    await search.run("what changed in pandas 3", make_ctx(llm))
    assert len(fake_tavily.requests) == 3  # older than 30 minutes: asked again
    assert list((llm.paths.root / "web_cache").iterdir())
    assert FAKE_TAVILY_KEY not in "".join(p.read_text() for p in (llm.paths.root / "web_cache").iterdir())
    # 0 turns the cache off; so does a cassette (it must hold every search).
    await tool(fake_tavily, web_cache_minutes=0).run("what changed in pandas 3", make_ctx(llm))
    assert len(fake_tavily.requests) == 4


async def test_failed_searches_are_not_cached(fake_tavily, llm):
    fake_tavily.load({"rules": [{"fault": "http_500", "times": 1}]})
    search = tool(fake_tavily, web_cache_minutes=30)
    failed = await search.run("anything", make_ctx(llm))
    assert not failed.success
    ok = await search.run("anything", make_ctx(llm))
    assert ok.success and len(fake_tavily.requests) == 2 and "cached" not in ok.data
