"""Reading JSON out of real-world model answers, and keeping thinking out of them."""

import pytest

from llm_agent_magic.exceptions import JSONReplyError
from llm_agent_magic.llm.structured import parse_json_reply
from llm_agent_magic.llm.thinking import ThinkFilter, strip_thinking

CLASSIFY = {
    "type": "object",
    "properties": {"mode": {"enum": ["chat", "react", "plan_execute"]}, "reason": {"type": "string"}},
    "required": ["mode", "reason"],
}


@pytest.mark.parametrize(
    "text",
    [
        '{"mode": "react", "reason": "needs code"}',
        '```json\n{"mode": "react", "reason": "needs code"}\n```',
        '```\n{"mode": "react", "reason": "needs code"}\n```',
        'Sure! Here is my decision:\n{"mode": "react", "reason": "needs code"}\nLet me know.',
        '{"mode": "react", "reason": "needs code",}',
        "{'mode': 'react', 'reason': 'needs code'}",
        '<think>maybe {"mode": "chat"}</think>\n{"mode": "react", "reason": "needs code"}',
        '{"mode": "react", "reason": "needs code", "confidence": 0.9}',
    ],
    ids=["plain", "fence-json", "fence-bare", "narration", "trailing-comma", "single-quotes", "think", "extra-key"],
)
def test_malformed_variants_are_read(text):
    value = parse_json_reply(text, CLASSIFY)
    assert value["mode"] == "react" and value["reason"] == "needs code"


def test_braces_inside_strings_do_not_confuse_the_scan():
    value = parse_json_reply('Answer: {"mode": "chat", "reason": "a } and a { inside"} done', CLASSIFY)
    assert value["reason"] == "a } and a { inside"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ('{"mode": "dance", "reason": "x"}', "mode must be one of"),
        ('{"reason": "no mode"}', r"must contain \['mode'\] properties"),
    ],
)
def test_unusable_answers_say_why(text, reason):
    with pytest.raises(JSONReplyError, match=reason):
        parse_json_reply(text, CLASSIFY)


def test_strip_thinking_whole_answers():
    assert strip_thinking("<think>plan it</think>\n\nThe answer.") == "The answer."
    assert strip_thinking("<think>never closed") == ""
    assert strip_thinking("no tags at all") == "no tags at all"


@pytest.mark.parametrize("cut", range(1, 12))
def test_think_filter_handles_tags_split_across_chunks(cut):
    text = "<think>secret reasoning</think>\n\nVisible <b>answer</b> with a < sign."
    chunks = [text[i : i + cut] for i in range(0, len(text), cut)]
    filt = ThinkFilter()
    visible = "".join(filt.feed(c) for c in chunks) + filt.flush()
    assert visible == "Visible <b>answer</b> with a < sign."
    assert filt.thinking == "secret reasoning"


def test_think_filter_keeps_a_trailing_partial_tag_that_was_plain_text():
    filt = ThinkFilter()
    assert filt.feed("x <thi") == "x "
    assert filt.flush() == "<thi"
