"""The magic's pure parts, without a kernel: request filling, session ids, the environment, rendering."""

from __future__ import annotations

import pandas as pd
import pytest
from html_checks import active_html
from IPython.core.error import UsageError

from llm_agent_magic.cells import CELLS_MIME, make_bundle
from llm_agent_magic.events import (
    Answer,
    CellOutput,
    Classified,
    CodeCell,
    Error,
    PlanCreated,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    Thought,
    Token,
    ToolCall,
    Waiting,
)
from llm_agent_magic.exceptions import SetupError
from llm_agent_magic.magic import default_session_id, interpolate
from llm_agent_magic.magic.render import LiveView, answer_data, bundle_data, table_data
from llm_agent_magic.magic.sessions import env_cassette

RID = "run-7f3a9c"


def test_interpolation_fills_names_escapes_braces_and_describes_dataframes():
    df = pd.DataFrame({"region": ["n", "s"], "price": [1, 2]})
    text, frames = interpolate("Rows of {df} above {limit}; keep {{literal}} and {not a name}.", {"df": df, "limit": 1.5})
    assert text.startswith("Rows of `df` above 1.5; keep {literal} and {not a name}.")
    assert text.endswith("The DataFrame `df` (2 rows x 2 columns: region, price) is available in the sandbox under that name.")
    assert frames == {"df": df}
    with pytest.raises(UsageError, match="no variable named 'missing'"):
        interpolate("What about {missing}?", {})


def test_session_id_prefers_the_environment_then_the_notebook_path(monkeypatch):
    for name in ("LLM_AGENT_SESSION", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    fallback = default_session_id({})
    assert fallback and fallback == default_session_id({})  # stable within the process
    assert default_session_id({"__vsc_ipynb_file__": "/work/vs.ipynb"}) == "/work/vs.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/lab.ipynb")
    assert default_session_id({"__vsc_ipynb_file__": "/work/vs.ipynb"}) == "/work/lab.ipynb"
    monkeypatch.setenv("LLM_AGENT_SESSION", "batch-7")
    assert default_session_id({"__vsc_ipynb_file__": "/work/vs.ipynb"}) == "batch-7"


def test_the_environment_cassette_is_checked(monkeypatch, tmp_path):
    monkeypatch.delenv("LLM_AGENT_CASSETTE_MODE", raising=False)
    assert env_cassette() is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM_AGENT_CASSETTE_MODE", "replay")
    monkeypatch.setenv("LLM_AGENT_CASSETTE_PATH", "c.jsonl")
    assert env_cassette() == ("replay", str(tmp_path / "c.jsonl"))
    monkeypatch.setenv("LLM_AGENT_CASSETTE_MODE", "rewind")
    with pytest.raises(SetupError, match="is not one of live, record, replay"):
        env_cassette()
    monkeypatch.setenv("LLM_AGENT_CASSETTE_MODE", "record")
    monkeypatch.delenv("LLM_AGENT_CASSETTE_PATH")
    with pytest.raises(SetupError, match="needs LLM_AGENT_CASSETTE_PATH"):
        env_cassette()


def _run_events() -> list:
    code = CodeCell("print(1 / 0)", attempt=1, run_id=RID)
    fixed = CodeCell("print(1)", attempt=2, run_id=RID)
    return [
        RunStarted("q", run_id=RID),
        Classified("plan_execute", "two steps", run_id=RID),
        PlanCreated([{"goal": "load"}, {"goal": "sum"}], run_id=RID),
        StepStarted(0, run_id=RID),
        code,
        CellOutput(
            code.cell_id,
            [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "x", "traceback": []}],
            status="error",
            failed=True,
            run_id=RID,
        ),
        fixed,
        CellOutput(fixed.cell_id, [{"output_type": "stream", "name": "stdout", "text": "1\n"}], final=True, run_id=RID),
        StepFinished(0, "ok", run_id=RID),
        Token("It is ", run_id=RID),
        Token("**1**.", run_id=RID),
        Answer("It is **1**.", run_id=RID),
        RunFinished("ok", duration=1.23, run_id=RID),
    ]


def test_the_live_view_follows_the_plan_code_and_tokens():
    view = LiveView()
    events = _run_events()
    for event in events[:5]:
        view.apply(event)
    text = view.markdown()
    assert "plan and execute — two steps" in text and "1. ▶ load\n2. ○ sum" in text
    assert "Attempt 1 (running…)" in text and "print(1 / 0)" in text
    for event in events[5:11]:
        view.apply(event)
    assert view.markdown().endswith("1. ✓ load\n2. ○ sum\n\nIt is **1**.")


def test_the_live_view_says_whom_a_run_waits_for_until_it_has_the_session():
    view = LiveView()
    view.apply(RunStarted("q", run_id=RID))
    view.apply(
        Waiting("a run started from the side panel (pid 7, since 18:02:05)", front_end="panel", pid=7, timeout=60.0, run_id=RID)
    )
    text = view.markdown()
    assert text.startswith("**Agent** · waiting for the session…")
    assert "_Waiting for a run started from the side panel (pid 7, since 18:02:05) to finish" in text
    assert "(giving up after 60 s)" in text
    view.apply(Classified("chat", "talk", run_id=RID))
    assert "Waiting" not in view.markdown() and "waiting" not in view.markdown()


def test_final_outputs_are_the_same_for_the_same_events_and_hold_no_ids():
    events = _run_events()
    bundle = make_bundle(events, session_id="s", model="m")
    first, second = answer_data(events), bundle_data(events, bundle)
    again = bundle_data(_run_events(), make_bundle(_run_events(), session_id="s", model="m"))
    assert first == {"text/html": "<p>It is <strong>1</strong>.</p>\n", "text/plain": "It is **1**."}
    assert {k: v for k, v in second.items() if k != CELLS_MIME} == {k: v for k, v in again.items() if k != CELLS_MIME}
    assert second["text/plain"] == "llm-agent: 2 generated cells (1 failed attempt); run ok"
    assert "<summary>Generated cell, attempt 1 (failed)</summary>" in second["text/html"]
    assert set(second) == {"text/html", "text/plain", CELLS_MIME}
    for mime in ("text/plain", "text/html"):
        assert RID not in second[mime] and events[4].cell_id not in second[mime]
    failed = _run_events()[:-1] + [Error("ModelNotFound", "pull it", run_id=RID), RunFinished("error", run_id=RID)]
    assert answer_data(failed)["text/html"].startswith("<p><strong>The agent could not finish this request.</strong>")
    assert "<blockquote>\n<p><strong>ModelNotFound</strong>: pull it</p>\n</blockquote>" in answer_data(failed)["text/html"]
    assert "> **ModelNotFound**: pull it" in answer_data(failed)["text/plain"]
    stopped = _run_events()[:8] + [RunFinished("cancelled", run_id=RID)]
    assert answer_data(stopped)["text/plain"] == "Stopped: the run was interrupted before it finished."
    # Stopped while the answer streamed: the text that had arrived stays, below the note.
    streaming = _run_events()[:10] + [RunFinished("cancelled", run_id=RID)]
    assert answer_data(streaming)["text/plain"] == "Stopped: the run was interrupted before it finished.\n\nIt is "
    assert answer_data(streaming)["text/html"].endswith("<p>It is</p>\n")


HOSTILE = 'Result:\n\n```\nx\n```\t\n\n```\n<img src=x onerror="window.__pwned=1">\n```'


def test_every_view_of_the_models_text_is_sanitized_html_and_plain_text():
    # The model chooses its thoughts, tool inputs, plan goals, tokens, answer, and the errors that quote it.
    events = [
        RunStarted("q", run_id=RID),
        Classified("plan_execute", HOSTILE, run_id=RID),
        PlanCreated([{"goal": HOSTILE, "tool": "python_coder"}], run_id=RID),
        StepStarted(0, HOSTILE, run_id=RID),
        Thought(HOSTILE, run_id=RID),
        ToolCall("web_search", HOSTILE, run_id=RID),
        CodeCell(f"print({HOSTILE!r})", cell_id="c1", run_id=RID),
        Error("BadReply", f"the model said: {HOSTILE}", recoverable=True, run_id=RID),
        Token(HOSTILE, run_id=RID),
        Answer(HOSTILE, run_id=RID),
        RunFinished("error", run_id=RID),
    ]
    view = LiveView()
    shown = []
    for event in events:
        view.apply(event)
        shown.append(view.display_data())
    final = answer_data(events)
    shown += [final, answer_data(events, dry_run=True), bundle_data(events, make_bundle(events, session_id="s"))]
    for data in shown:
        assert "text/markdown" not in data and active_html(data["text/html"]) == []
    assert final["text/html"].count('&lt;img src=x onerror="window.__pwned=1"&gt;') == 2  # the answer, the error
    assert final["text/plain"].count(HOSTILE) == 2


def test_tables_render_as_text_and_html():
    data = table_data(["name", "type"], [["df", "DataFrame"], ["x", "int"]])
    assert data["text/plain"] == "name  type\ndf    DataFrame\nx     int"
    assert data["text/html"].startswith("<table><thead><tr><th>name</th>")
    assert table_data(None, [], "nothing")["text/plain"] == "nothing"
