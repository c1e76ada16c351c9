"""The new tools inside whole agent runs: scripted Ollama, a real sandbox kernel, the real store."""

from __future__ import annotations

from pathlib import Path

from agent_helpers import collect, of

from llm_agent_magic.events import Answer, Observation, ToolCall
from llm_agent_magic.testing.tavily_plugin import FAKE_TAVILY_KEY

SCENARIOS = Path(__file__).parent / "scenarios"


async def test_react_answers_from_attached_documents(make_session, tmp_path):
    (tmp_path / "warranty.md").write_text(
        "# Warranty\n\nThe warranty lasts three years from the date of delivery.\n\n"
        "# Returns\n\nReturns are accepted within thirty days."
    )
    (tmp_path / "shipping.txt").write_text("Parcels ship from the Hamburg warehouse every weekday.")
    session, server = make_session(SCENARIOS / "react_rag.json")
    events = await collect(
        session, "How long is the warranty?", files=[str(tmp_path / "warranty.md"), str(tmp_path / "shipping.txt")]
    )
    assert events[-1].status == "ok"
    (call,) = of(events, ToolCall)
    assert (call.tool, call.input) == ("rag_search", "How long does the warranty last?")
    observation = [o for o in of(events, Observation) if o.tool == "rag_search"][0].text
    assert "[1] warranty.md" in observation and "three years from the date of delivery" in observation
    assert of(events, Answer)[0].markdown == "The warranty lasts **three years** from delivery (source: `warranty.md`)."
    assert server.requests_for("embed") and not server.unused_rules()


async def test_react_searches_the_web(make_session, fake_tavily, agent_data_root):
    fake_tavily.load(
        {
            "results": [
                {
                    "title": "Pandas 3.0 released",
                    "url": "https://pandas.example/3.0",
                    "content": "Copy-on-write is now the default.",
                },
                {"title": "Changelog", "url": "https://pandas.example/changes", "content": "A string dtype."},
            ]
        }
    )
    session, server = make_session(SCENARIOS / "react_web.json")
    assert "web_search" in session.tools.names
    events = await collect(session, "What changed in pandas 3.0?")
    assert events[-1].status == "ok"
    assert [r.query for r in fake_tavily.requests] == ["pandas 3.0 release notes"]
    observation = [o for o in of(events, Observation) if o.tool == "web_search"][0].text
    assert "[1] Pandas 3.0 released\n    https://pandas.example/3.0" in observation
    assert of(events, Answer)[0].markdown == "pandas 3.0 made copy-on-write the default [[1]](https://pandas.example/3.0)."
    # The key is nowhere the agent writes: not in the store, the call log, or any other file of the data root.
    await session.llm.aclose()
    for path in agent_data_root.rglob("*"):
        if path.is_file():
            assert FAKE_TAVILY_KEY.encode() not in path.read_bytes(), path
