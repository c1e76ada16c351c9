"""Rules every front end shares, each written once: ``RunSummary`` (a run's answer, status, errors and usage
read from its events), the ``learn``/``forget`` grammar, and the code fence."""

from __future__ import annotations

import pytest

from llm_agent_magic.events import Answer, Error, RunFinished, RunStarted, Token, Usage
from llm_agent_magic.exceptions import BadRequest
from llm_agent_magic.learn_grammar import LibraryCommand, parse_library_words, parse_slash_command
from llm_agent_magic.run_summary import RunSummary
from llm_agent_magic.text import code_fence


def events() -> list:
    return [
        RunStarted("plot sales", run_id="r1"),
        Usage(10, 2, duration=0.5, purpose="classify", model="small"),
        Token("draft "),
        Error("CodeError", "NameError: x", recoverable=True),
        Usage(30, 8, duration=1.25, purpose="answer", model="big"),
        Answer("first"),
        Answer("final"),
        Error("Timeout", "gave up"),
        RunFinished("error"),
    ]


def test_a_finished_run_summed_once() -> None:
    summary = RunSummary.of(events())
    assert (summary.run_id, summary.request, summary.finished, summary.answer) == ("r1", "plot sales", "error", "final")
    assert summary.error_lines() == ["CodeError: NameError: x", "Timeout: gave up"]
    assert summary.error_dicts()[1] == {"kind": "Timeout", "message": "gave up"}
    assert (summary.calls, summary.call_seconds, summary.model) == (2, 1.75, "big")
    assert summary.usage() == {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50}
    assert summary.streamed == "draft "


def test_the_wire_form_gives_the_same_summary() -> None:
    run = events()
    assert RunSummary.of_dicts([e.to_dict() for e in run]) == RunSummary.of(run)


def test_a_run_without_its_end_has_no_status_and_no_answer() -> None:
    summary = RunSummary.of([RunStarted("q", run_id="r2"), Token("half an ")])
    assert summary.finished is None and summary.answer is None
    assert summary.status() == "unknown" and summary.status(unfinished="cancelled") == "cancelled"
    assert summary.usage()["total_tokens"] == 0 and summary.model == ""


def test_learn_and_forget_words() -> None:
    assert parse_library_words("learn", ["docs/", "a.md", "--collection", "papers", "--reembed"]) == LibraryCommand(
        "learn", ["docs/", "a.md"], "papers", reembed=True
    )
    assert parse_library_words("forget", ["--all", "--collection=notes"]) == LibraryCommand(
        "forget", [], "notes", everything=True
    )
    assert parse_slash_command("/forget old.md") == LibraryCommand("forget", ["old.md"])
    assert parse_slash_command("learn docs/") is None and parse_slash_command("") is None


@pytest.mark.parametrize(
    ("verb", "words", "said"),
    [
        ("learn", ["a.md", "--frobnicate"], "unrecognized arguments: --frobnicate\nusage: %agent learn PATH..."),
        ("learn", ["a.md", "--all"], "unrecognized arguments: --all"),  # forget's flag, not learn's
        ("forget", ["--reembed"], "unrecognized arguments: --reembed"),
        ("forget", ["a.md", "--collection"], "argument --collection: expected one argument"),
    ],
)
def test_mistakes_say_the_usage(verb: str, words: list[str], said: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_library_words(verb, words, prefix="%agent ")
    assert said in str(caught.value)


def test_a_fence_is_longer_than_any_backtick_run_inside() -> None:
    assert code_fence("print(1)\n\n", "python") == "```python\nprint(1)\n```"
    assert code_fence("a = '````'\n# ``` here", "python") == "`````python\na = '````'\n# ``` here\n`````"
    assert code_fence("`x` and ``y``") == "```\n`x` and ``y``\n```"
    # One pass over the text: a long run does not make it quadratic.
    assert code_fence("`" * 100_000).startswith("`" * 100_001 + "\n")
