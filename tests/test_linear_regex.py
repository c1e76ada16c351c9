"""No regular expression over untrusted text backtracks: each is RE2 (``linear_regex``), and still reads the
crafted inputs that made ``re`` quadratic the way it read ordinary ones. No timing here: the bench
(``bench/untrusted_text.py``) measures how time grows."""

from __future__ import annotations

import importlib
import pkgutil
import re

import llm_agent_magic
from llm_agent_magic.agents.plan_execute import parse_plan
from llm_agent_magic.evaluation.scoring import extract
from llm_agent_magic.linear_regex import is_linear
from llm_agent_magic.llm.thinking import strip_thinking
from llm_agent_magic.sandbox.results import strip_ansi
from llm_agent_magic.sandbox.untrusted import clean_bundle
from llm_agent_magic.text import fenced_blocks
from llm_agent_magic.tools import file_analyzer
from llm_agent_magic.tools.rag import loaders

# The ``re`` patterns left, each over text that is not a stranger's or linear by its shape (anchored, one
# character, one run of one character); a new one must be added here by someone who checked it.
STILL_RE = {
    "llm_agent_magic.magic.magics._FIELD",  # the user's own template
    "llm_agent_magic.sandbox.paths._SAFE_ID",  # fullmatch of at most 64 characters
    "llm_agent_magic.store.markdown._BACKTICKS",  # one run of one character
    "llm_agent_magic.tools.rag.chunking._CUTS",
    "llm_agent_magic.tools.rag.chunking._PARAGRAPH_BREAK",
    "llm_agent_magic.tools.rag.keywords._WORD",
    "llm_agent_magic.tools.rag.keywords._JOINED",
    "llm_agent_magic.testing.fake_ollama._CHUNK",
    "llm_agent_magic.testing.fake_ollama._WORD",  # test stand-in
    # sandbox/untrusted.py: anchored or one-character patterns of the HTML/SVG cleaner ...
    "llm_agent_magic.sandbox.untrusted._BASE64",
    "llm_agent_magic.sandbox.untrusted._DATA_IMAGE",
    "llm_agent_magic.sandbox.untrusted._SCHEME",
    "llm_agent_magic.sandbox.untrusted._LOCAL_REFERENCE",
    "llm_agent_magic.sandbox.untrusted._INVISIBLE",
    "llm_agent_magic.sandbox.untrusted._TAG_START",
    "llm_agent_magic.sandbox.untrusted._LATEX_ACTIVE",  # fixed words after one backslash
    # safe_text.py: matched from the start, one character class then the end (or at most 40 of it)
    "llm_agent_magic.safe_text._INLINE_IMAGE",
    "llm_agent_magic.safe_text._LANGUAGE_CLASS",
}


def module_patterns() -> dict[str, object]:
    found: dict[str, object] = {}
    for info in pkgutil.walk_packages(llm_agent_magic.__path__, "llm_agent_magic."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            values = value if isinstance(value, tuple) else (value,)
            if values and all(isinstance(v, re.Pattern) or is_linear(v) for v in values):
                found[f"{info.name}.{name}"] = value
    return found


def test_the_patterns_over_untrusted_text_are_re2() -> None:
    found = module_patterns()
    left = {name for name, value in found.items() if not is_linear(value)}
    assert left <= STILL_RE, f"patterns on re to check (RE2 through linear_regex.linear, or STILL_RE): {left - STILL_RE}"
    for name in (
        "redaction._URL_CREDENTIALS",
        "redaction._SHAPES",
        "redaction._KEY_LINE",
        "text._FENCE",
        "sandbox.collector.ANSI",
        "evaluation.scoring.ANSWER",
        "agents.plan_execute._NUMBERED",
        "tools.rag.loaders._MD_HEADING",
        "tools.file_analyzer._LIST_ITEM",
        "llm.thinking._THINK_BLOCK",
        "sandbox.untrusted._URL_FUNCTION",
    ):
        assert is_linear(found[f"llm_agent_magic.{name}"]), name


def test_crafted_inputs_read_as_before() -> None:
    # Each of these made its ``re`` pattern scan to the end from every start: quadratic.
    assert strip_ansi("\x1b]" * 20000 + "ok \x1b[31mred\x1b[0m") == "\x1b]" * 20000 + "ok red"
    assert strip_ansi("\x1b]0;title\x07plain") == "plain"
    assert extract("@a[" * 20000 + "@x[1]") == {"a": "@a[" * 19999 + "@x[1"}
    assert extract("@mean_price[20.0] and @名前[1]") == {"mean_price": "20.0", "名前": "1"}
    steps, how = parse_plan("\n" * 20000 + "1. Load the data\n\n\n2) Plot it\n- check")
    assert [s["goal"] for s in steps or []] == ["Load the data", "Plot it", "check"] and how
    assert fenced_blocks("```" + " " * 50000 + "x") == []
    assert fenced_blocks("text\n```python\nprint(1)\n```\n```sql\nselect\n```", ("python",)) == ["print(1)\n"]
    assert strip_thinking("<think>" * 20000 + "x") == ""
    assert strip_thinking("<think>hmm</think>\n answer") == "answer"
    assert loaders._markdown_headings("# " + " " * 50000 + "Title ##\n\n## Next") == ["# Title", "## Next"]
    assert len(file_analyzer._LIST_ITEM.findall("\n" * 20000 + "- a\n  1. b\n\u00a0* c\n-no")) == 3
    assert file_analyzer._PARAGRAPH_BREAK.split("a\n \n\nb\n\u2003\nc") == ["a", "b", "c"]


def test_svg_url_functions_still_point_only_inside_the_drawing() -> None:
    def kept(style: str) -> bool:
        svg = f'<svg xmlns="http://www.w3.org/2000/svg"><rect clip-path="{style}"/></svg>'
        return "clip-path" in clean_bundle({"image/svg+xml": svg}, {})[0]["image/svg+xml"]

    assert kept("url(#clip)") and kept("url( '#clip' )") and kept("url(&quot;#clip&quot;)")
    assert not kept("url(https://evil.example/x)") and not kept("url(#a) url(javascript:x)")
    assert not kept("url(" * 20000)
