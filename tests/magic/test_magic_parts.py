"""The magic's pure parts, without a kernel: request filling, session ids, the environment, rendering."""

from __future__ import annotations

import pandas as pd
import pytest
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
    Token,
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
        RunStarted("q", run_id=RID), Classified("plan_execute", "two steps", run_id=RID),
        PlanCreated([{"goal": "load"}, {"goal": "sum"}], run_id=RID), StepStarted(0, run_id=RID),
        code, CellOutput(code.cell_id, [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "x",
                                          "traceback": []}], status="error", failed=True, run_id=RID),
        fixed, CellOutput(fixed.cell_id, [{"output_type": "stream", "name": "stdout", "text": "1\n"}], final=True,
                          run_id=RID),
        StepFinished(0, "ok", run_id=RID), Token("It is ", run_id=RID), Token("**1**.", run_id=RID),
        Answer("It is **1**.", run_id=RID), RunFinished("ok", duration=1.23, run_id=RID),
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
    view.apply(Waiting("a run started from the side panel (pid 7, since 18:02:05)", front_end="panel", pid=7,
                       timeout=60.0, run_id=RID))
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
    assert first == {"text/markdown": "It is **1**.", "text/plain": "It is **1**."}
    assert {k: v for k, v in second.items() if k != CELLS_MIME} == {k: v for k, v in again.items() if k != CELLS_MIME}
    assert second["text/plain"] == "llm-agent: 2 generated cells (1 failed attempt); run ok"
    assert "_Generated cell, attempt 1: failed (error)_" in second["text/markdown"]
    for mime in ("text/plain", "text/markdown", "text/html"):
        assert RID not in second[mime] and events[4].cell_id not in second[mime]
    failed = _run_events()[:-1] + [Error("ModelNotFound", "pull it", run_id=RID), RunFinished("error", run_id=RID)]
    assert answer_data(failed)["text/markdown"].startswith("**The agent could not finish this request.**")
    assert "> **ModelNotFound**: pull it" in answer_data(failed)["text/markdown"]
    stopped = _run_events()[:8] + [RunFinished("cancelled", run_id=RID)]
    assert answer_data(stopped)["text/plain"] == "Stopped: the run was interrupted before it finished."


def test_tables_render_as_text_and_html():
    data = table_data(["name", "type"], [["df", "DataFrame"], ["x", "int"]])
    assert data["text/plain"] == "name  type\ndf    DataFrame\nx     int"
    assert data["text/html"].startswith("<table><thead><tr><th>name</th>")
    assert table_data(None, [], "nothing")["text/plain"] == "nothing"
