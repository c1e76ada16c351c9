"""The event stream's wire format: every event survives to_dict -> JSON -> event_from_dict."""

from __future__ import annotations

import json
import re
import time

import pytest

from llm_agent_magic import events as ev

SAMPLES: list[ev.Event] = [
    ev.RunStarted("plot sales by month", mode_requested="auto", session_id="nb/analysis.ipynb", run_id="r1"),
    ev.Waiting(
        "a run started from the side panel (pid 123, since 18:02:05)",
        front_end="panel",
        pid=123,
        since=1764612125.0,
        timeout=60.0,
        run_id="r1",
    ),
    ev.ContextGathered(
        cells=12,
        files=40,
        variables=3,
        summary="Context: 12 cells, 40 files, 3 variables",
        file_names=["sales.csv"],
        variable_names=["df"],
        trimmed=["files"],
        run_id="r1",
    ),
    ev.Classified("plan_execute", "needs data loading and a chart", fallback=True, run_id="r1"),
    ev.PlanCreated(
        [{"goal": "load sales.csv", "tool": "python_coder", "success_criteria": "a DataFrame `df`"}],
        note="parsed with ast.literal_eval fallback",
    ),
    ev.StepStarted(0, "load sales.csv"),
    ev.StepFinished(0, "ok", summary="df has 120 rows"),
    ev.Thought("I should look at the columns first."),
    ev.ToolCall("web_search", "population of Lyon 2023"),
    ev.CodeCell(
        "import pandas as pd\ndf = pd.read_csv('sales.csv')",
        attempt=2,
        step=0,
        cell_id="c1",
        approval="edited",
        original_source="df = pd.read_csv('sales.csv')",
    ),
    ev.ApprovalRequested(
        "c1",
        "df = pd.read_csv('sales.csv')",
        attempt=2,
        step=0,
        task="load sales.csv",
        reason="attempt 1 failed (name_error)",
        timeout=600.0,
    ),
    ev.CellOutput(
        "c1",
        [
            {"output_type": "stream", "name": "stdout", "text": "120\n"},
            {"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": "3"}, "metadata": {}},
        ],
        status="error",
        duration=0.25,
        final=True,
        failed=True,
    ),
    ev.Observation("df has columns: month, amount", tool="python_coder"),
    ev.Token("The "),
    ev.Answer("**Sales** peaked in March."),
    ev.FixProposed("df.plot(x='a')", "df.plot(x='b')\n", "--- the cell\n+++ proposed fix\n"),
    ev.Usage(812, 95, duration=3.5, purpose="plan", model="qwen3:8b"),
    ev.Error("LLMTimeout", "The model did not answer in time.", recoverable=True),
    ev.RunFinished("cancelled", duration=12.0),
]


def test_samples_cover_every_event_type():
    assert sorted(type(e).type for e in SAMPLES) == sorted(ev.EVENT_TYPES)
    assert set(ev.EVENT_TYPES.values()) == set(ev.Event.__subclasses__())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).type)
def test_round_trip_through_json(event: ev.Event):
    data = event.to_dict()
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", data["type"])
    assert data["type"] == type(event).type
    assert {"run_id", "ts"} <= data.keys()
    wire = json.loads(json.dumps(data))
    assert ev.event_from_dict(wire) == event
    assert type(ev.event_from_dict(wire)) is type(event)


def test_defaults():
    before = time.time()
    event = ev.Thought("hmm")
    assert event.run_id == ""
    assert before <= event.ts <= time.time()
    cell = ev.CodeCell("x = 1")
    assert cell.attempt == 1 and cell.step is None and cell.cell_id
    assert ev.CodeCell("x = 1").cell_id != cell.cell_id


def test_dict_is_a_copy():
    event = ev.PlanCreated([{"goal": "a", "tool": "python_coder", "success_criteria": "b"}])
    event.to_dict()["steps"].append({"goal": "x"})
    assert len(event.steps) == 1


def test_unknown_keys_are_ignored_so_newer_writers_stay_readable():
    data = ev.Token("hi", run_id="r").to_dict() | {"added_in_a_later_version": 1}
    assert ev.event_from_dict(data) == ev.Token("hi", run_id="r", ts=data["ts"])


def test_unknown_type_and_missing_fields_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown event type 'nope'.*run_started"):
        ev.event_from_dict({"type": "nope"})
    with pytest.raises(ValueError, match="Malformed 'answer' event"):
        ev.event_from_dict({"type": "answer"})


def test_statuses_are_checked():
    with pytest.raises(ValueError, match="CellOutput.status"):
        ev.CellOutput("c", [], status="weird")
    with pytest.raises(ValueError, match="RunFinished.status"):
        ev.RunFinished("done")
