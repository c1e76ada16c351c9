"""Pieces of the agent core without a model: plan parsing, error classes, code extraction, context fitting."""

import pytest

from llm_agent_magic.agents.plan_execute import normalise_steps, parse_plan
from llm_agent_magic.prompts import Transcript, clip, fit, tokens_of
from llm_agent_magic.tools.base import ToolRegistry
from llm_agent_magic.tools.python_coder import PythonCoderTool, classify_error, extract_code

STEPS = [{"goal": "load", "tool": "python_coder", "success_criteria": "rows"}, {"goal": "plot"}]


@pytest.mark.parametrize(
    "text, note",
    [
        ('{"steps": [{"goal": "load", "tool": "python_coder", "success_criteria": "rows"}, {"goal": "plot"}]}', ""),
        (
            '```json\n{"steps": [{"goal": "load", "tool": "python_coder", "success_criteria": "rows"}, {"goal": "plot"}]}\n```',
            "read from a code fence",
        ),
        (
            'Here is my plan: {"steps": [{"goal": "load", "tool": "python_coder", "success_criteria": "rows"}, '
            '{"goal": "plot"}]} Good luck!',
            "extracted from narration around the JSON",
        ),
        (
            "{'steps': [{'goal': 'load', 'tool': 'python_coder', 'success_criteria': 'rows'}, {'goal': 'plot'}]}",
            "parsed with ast.literal_eval (a Python literal)",
        ),
        (
            '{"steps": [{"goal": "load", "tool": "python_coder", "success_criteria": "rows"}, {"goal": "plot"}',
            "repaired malformed JSON",
        ),
    ],
    ids=["strict", "fence", "narration", "literal_eval", "repair"],
)
def test_plan_forms(text, note):
    steps, how = parse_plan(text)
    assert steps == STEPS and how == note


def test_plan_from_a_numbered_list():
    steps, how = parse_plan("I will:\n1. Load the data\n2. Clean it\n3. Plot it")
    assert [s["goal"] for s in steps] == ["Load the data", "Clean it", "Plot it"] and how == "read from a numbered list"


def test_no_plan_at_all():
    assert parse_plan("I am not sure what you mean.") == (None, "")


def test_normalise_steps_defaults_and_limits():
    registry = ToolRegistry([PythonCoderTool()])
    raw = [{"goal": "a", "tool": "crystal_ball"}, {"description": "b"}, {"goal": ""}, {"goal": "c"}]
    steps = normalise_steps(raw, registry, limit=3)
    assert [(s.goal, s.tool) for s in steps] == [("a", "python_coder"), ("b", "python_coder")]


@pytest.mark.parametrize(
    "status, ename, evalue, expected",
    [
        ("error", "IndexError", "list index out of range", "index_error"),
        ("error", "KeyError", "'price'", "key_error"),
        ("error", "TypeError", "unsupported operand", "type_error"),
        ("error", "AttributeError", "'NoneType' object has no attribute 'head'", "none_attribute"),
        ("error", "AttributeError", "'DataFrame' object has no attribute 'foo'", "attribute_error"),
        ("error", "FileNotFoundError", "No such file", "file_not_found"),
        ("error", "JSONDecodeError", "Expecting value: line 1", "json_decode"),
        ("error", "ValueError", "could not convert string to float", "value_error"),
        ("error", "NameError", "name 'df' is not defined", "name_error"),
        ("error", "ModuleNotFoundError", "No module named 'polars'", "import_error"),
        ("error", "ImportError", "cannot import name", "import_error"),
        ("error", "ZeroDivisionError", "division by zero", "zero_division"),
        ("error", "UnicodeDecodeError", "'utf-8' codec", "unicode_decode"),
        ("error", "PermissionError", "llm-agent sandbox policy: network", "permission"),
        ("error", "MemoryError", "", "memory"),
        ("timeout", "", "", "timeout"),
        ("died", "", "", "died"),
        ("error", "RuntimeError", "boom", "other"),
    ],
)
def test_error_classes(status, ename, evalue, expected):
    error_class = classify_error(status, ename, evalue)
    assert error_class.name == expected and len(error_class.guidance) > 40


def test_extract_code():
    assert extract_code("Sure:\n```python\nx = 1\n```\nDone.") == "x = 1"
    assert extract_code("```\ny = 2\n```") == "y = 2"
    assert extract_code("```python\na=1\n```\nor\n```python\na = 1\nb = 2\n```") == "a = 1\nb = 2"
    assert extract_code("print('bare code')") == "print('bare code')"


def test_fit_drops_oldest_history_never_the_system_prompt_or_the_opening():
    system = {"role": "system", "content": "S" * 400}
    history = [{"role": "user", "content": f"{i} " + "x" * 4000} for i in range(10)]
    opening = {"role": "user", "content": "Request: mean price?"}
    last = {"role": "user", "content": "now"}
    fitted = fit([system, *history], opening, [], last, budget=5000)
    assert fitted[0] is system and fitted[-1] is last and fitted[-2] is opening
    kept = fitted[1:-2]
    assert kept == history[-len(kept) :] and 0 < len(kept) < 10


def test_fit_clips_a_huge_last_message_keeping_both_ends():
    last = {"role": "user", "content": "START " + "y" * 100_000 + " END"}
    fitted = fit([{"role": "system", "content": "sys"}], {"role": "user", "content": "Request"}, [], last, budget=1536)
    content = fitted[-1]["content"]
    assert content.startswith("START") and content.endswith("END") and "characters cut" in content
    assert len(content) < 8000


def test_a_transcript_grows_one_call_at_a_time_and_drops_its_oldest_turns_to_fit():
    transcript = Transcript("system", [{"role": "user", "content": "before"}], "Request: x", num_ctx=4096, reserve=2048)
    first = transcript.messages("[code] first")
    transcript.record("[code] first", "```python\n# attempt 1\n```")
    transcript.add("Attempt 1 failed (other):\n" + "e" * 3000)
    second = transcript.messages("[fix] second")
    assert second[: len(first) - 1] == first[:-1] and second[len(first)]["role"] == "assistant"
    assert second[-1]["content"].startswith("Attempt 1 failed") and second[-1]["content"].endswith("[fix] second")
    for attempt in range(2, 6):
        transcript.record("[fix] again", f"```python\n# attempt {attempt}\n```")
        transcript.add(f"Attempt {attempt} failed (other):\n" + "e" * 3000)
    fitted = transcript.messages("[fix] last")
    text = "\n".join(m["content"] for m in fitted)
    assert "# attempt 5" in text and "# attempt 1" not in text  # the oldest went first
    assert fitted[0]["content"] == "system" and fitted[-1]["content"].endswith("[fix] last")
    assert any(m["content"] == "Request: x" for m in fitted)  # the request always stays
    assert sum(tokens_of(m["content"]) for m in fitted) <= 2048


def test_clip():
    assert clip("short", 100) == "short"
    clipped = clip("a" * 1000 + "TAIL", 300)
    assert len(clipped) < 400 and clipped.endswith("TAIL")


def test_tools_are_data_a_name_a_description_and_an_input_schema():
    from llm_agent_magic.agents.session import default_tools
    from llm_agent_magic.prompts import render_prompt

    described = default_tools().describe()
    assert [t["name"] for t in described] == ["python_coder", "rag_search", "file_analyzer", "web_search"]
    for tool in described:
        assert tool["description"] and set(tool["input"]) == {"name", "type", "description"}
        assert tool["input"]["type"] == "string" and tool["input"]["description"]
    system = render_prompt("system", tools=described)
    assert "- python_coder: " in system and "Input (string): a precise description of what the code must do." in system


async def test_tools_that_cannot_work_are_not_offered(tmp_path, monkeypatch):
    from traitlets.config import Config

    from llm_agent_magic.agents.session import default_tools
    from llm_agent_magic.config import AgentConfig, LLMConfig, PathsConfig
    from llm_agent_magic.llm import LLMClient
    from llm_agent_magic.tools.base import ToolContext

    class Workspace:  # what the tools read of a sandbox here: its folder
        session_id = "s"
        workspace = str(tmp_path / "ws")

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "sales.csv").write_text("a\n1\n")
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    cfg = Config()
    cfg.PathsConfig.data_root = str(tmp_path / "data")
    llm = LLMClient(LLMConfig(config=cfg), paths=PathsConfig(config=cfg))
    ctx = ToolContext(llm=llm, config=AgentConfig(), emit=lambda e: None, request="?", sandbox=Workspace())
    try:
        # No Tavily key, nothing to search but a table: neither web_search nor rag_search is offered.
        assert default_tools(cfg).offered(ctx).names == ["python_coder", "file_analyzer"]
        (tmp_path / "ws" / "notes.md").write_text("# Notes\n")  # a document: rag_search has something to search
        assert default_tools(cfg).offered(ctx).names == ["python_coder", "rag_search", "file_analyzer"]
        monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
        assert "web_search" in default_tools(cfg).offered(ctx).names
    finally:
        await llm.aclose()


def test_rag_search_does_not_claim_csv_files():
    from llm_agent_magic.tools.rag import RagSearchTool

    assert "CSV" not in RagSearchTool.description and "csv" not in RagSearchTool.description


def test_react_actions_are_an_enum_of_the_tools_offered():
    from llm_agent_magic.llm.structured import parse_json_reply
    from llm_agent_magic.prompts import REACT_SCHEMA, react_schema

    schema = react_schema(["python_coder", "file_analyzer"])
    assert schema["properties"]["action"] == {"enum": ["python_coder", "file_analyzer", "finish"]}
    assert schema["required"] == REACT_SCHEMA["required"]
    # Replies are read with the looser schema: an unknown action is the model's mistake to be told about.
    step = parse_json_reply('{"thought": "t", "action": "telepathy", "action_input": ""}', REACT_SCHEMA)
    assert step["action"] == "telepathy"
