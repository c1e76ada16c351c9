"""Agent scenarios end to end: scripted Ollama over HTTP, a real sandbox kernel, the real store.

Each scenario's script is a file in tests/scenarios/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from agent_helpers import coder_script, collect, of

from llm_agent_magic.agents.session import answer_part_end
from llm_agent_magic.events import (
    Answer,
    CellOutput,
    Classified,
    CodeCell,
    Error,
    Observation,
    PlanCreated,
    RunFinished,
    StepFinished,
    StepStarted,
    Thought,
    Token,
)
from llm_agent_magic.testing.fake_ollama import FakeOllama

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
def sales_csv(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("region,price\nnorth,10\nsouth,30\n")
    return str(path)


def scenario(name: str) -> Path:
    return SCENARIOS / f"{name}.json"


async def test_chat_route_streams_without_tools(make_session):
    session, server = make_session(scenario("route_chat"))
    events = await collect(session, "What is a p-value?")
    assert of(events, Classified)[0].mode == "chat"
    assert len(of(events, Token)) > 3
    answer = of(events, Answer)[0].markdown
    assert answer.startswith("A **p-value**") and "".join(t.text for t in of(events, Token)).strip() == answer
    assert not of(events, CodeCell)
    assert events[-1].status == "ok"
    assert [r.purpose for r in server.requests] == ["classify", "answer"]


async def test_explicit_mode_skips_the_classifier(make_session):
    session, server = make_session(scenario("route_chat"))
    events = await collect(session, "What is a p-value?", mode="chat")
    assert of(events, Classified)[0].reason == "chosen by the user"
    assert not server.requests_for("classify")


async def test_malformed_classifier_answer_falls_back_to_react(make_session):
    session, _ = make_session(
        {
            "rules": [
                {"purpose": "classify", "reply": "I would say it's a chat thing maybe"},
                {"purpose": "react", "reply": {"thought": "simple", "action": "finish", "action_input": "42"}},
                {"purpose": "answer", "reply": "42"},
            ]
        }
    )
    events = await collect(session, "What is six times seven?")
    classified = of(events, Classified)[0]
    assert classified.mode == "react" and classified.fallback and "could not be read" in classified.reason
    assert events[-1].status == "ok"


async def test_react_analyses_a_csv_end_to_end(make_session, sales_csv):
    session, server = make_session(scenario("react_csv"))
    events = await collect(session, "What is the mean price in sales.csv?", files=[sales_csv])
    (cell,) = of(events, CodeCell)
    (output,) = of(events, CellOutput)
    assert "pd.read_csv('sales.csv')" in cell.source and cell.attempt == 1
    assert output.cell_id == cell.cell_id and output.final and not output.failed
    assert output.outputs[0]["text"] == "mean price: 20.0\n"
    observation = [o for o in of(events, Observation) if o.tool == "python_coder"][0]
    assert "mean price: 20.0" in observation.text and "sales: DataFrame" in observation.text
    assert of(events, Answer)[0].markdown == "The mean price in `sales.csv` is **20.0**."
    # The coder saw the attached file's columns and first rows, and the answer prompt saw the result.
    code_prompt = server.requests_for("code")[0].text
    assert "sales.csv" in code_prompt and "price (int64)" in code_prompt and "north" in code_prompt
    assert "mean price: 20.0" in server.requests_for("answer")[0].text
    # The conversation and the run's events are in the store.
    messages = session.store.recent_messages(session.session_id)
    assert [m.role for m in messages] == ["user", "assistant"]
    stored = session.store.run_events(events[0].run_id)
    assert [e["type"] for e in stored][0] == "run_started" and stored[-1]["type"] == "run_finished"
    assert not any(e["type"] == "token" for e in stored)
    # What streamed is stored in parts (for a front end of another process), together the streamed text.
    streamed = "".join(e.text for e in events if e.type == "token")
    assert streamed and "".join(e["text"] for e in stored if e["type"] == "answer_part") == streamed


async def test_a_table_and_a_question_take_four_calls(make_session, sales_csv, monkeypatch):
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    session, server = make_session(scenario("react_csv"))
    events = await collect(session, "What is the mean price in sales.csv?", files=[sales_csv])
    classified = of(events, Classified)[0]
    assert classified.mode == "react" and "no classifier call" in classified.reason
    # No classifier, no review before the cell runs, no adequacy check of an output that printed the mean.
    assert [r.purpose for r in server.requests] == ["react", "code", "react", "answer"]
    react = server.requests_for("react")[0]
    assert react.body["format"]["properties"]["action"] == {"enum": ["python_coder", "file_analyzer", "finish"]}
    assert "- web_search:" not in react.text and "- rag_search:" not in react.text  # no key, no documents
    assert events[-1].status == "ok"


async def test_the_review_before_a_cell_runs_is_a_setting(make_session, sales_csv):
    session, server = make_session(scenario("react_csv"), review_before_run=True)
    events = await collect(session, "What is the mean price in sales.csv?", files=[sales_csv])
    assert [r.purpose for r in server.requests] == ["react", "code", "verify", "react", "answer"]
    assert "[review] Before it runs" in server.requests_for("verify")[0].text
    assert events[-1].status == "ok"


async def test_an_empty_output_gets_the_adequacy_check(make_session):
    session, server = make_session(coder_script("x = 1", answer="x is 1."))
    events = await collect(session, "Set x", mode="react")
    assert [r.purpose for r in server.requests] == ["react", "code", "verify", "react", "answer"]
    assert "[review] Is this output an adequate answer" in server.requests_for("verify")[0].text
    assert events[-1].status == "ok"


async def test_plan_execute_runs_checked_steps(make_session, sales_csv):
    session, server = make_session(scenario("plan_two_steps"))
    events = await collect(session, "Load sales.csv and total the price by region.", files=[sales_csv])
    plan = of(events, PlanCreated)[0]
    assert [s["goal"] for s in plan.steps] == ["Load sales.csv into a DataFrame called sales", "Compute total price by region"]
    assert plan.note == "read from a code fence; parsed with ast.literal_eval (a Python literal)"
    assert [(e.index, e.status) for e in of(events, StepFinished)] == [(0, "ok"), (1, "ok")]
    assert [e.index for e in of(events, StepStarted)] == [0, 1]
    outputs = of(events, CellOutput)
    assert "north    10" in outputs[1].outputs[0]["text"]
    assert [c.step for c in of(events, CodeCell)] == [0, 1]
    assert len(server.requests_for("verify")) >= 2  # each step was checked against its criteria
    assert of(events, Answer)[0].markdown == "North sold 10 and south 30."


async def test_retry_path_feeds_back_attempts_and_rethinks(make_session):
    session, server = make_session(scenario("retry_rethink"))
    events = await collect(session, "What is the first score?", mode="react")
    cells, outputs = of(events, CodeCell), of(events, CellOutput)
    assert [c.attempt for c in cells] == [1, 2, 3]
    assert [(o.status, o.failed, o.final) for o in outputs] == [
        ("error", True, False),
        ("error", True, False),
        ("ok", False, True),
    ]
    assert outputs[0].outputs[-1]["ename"] == "IndexError"
    first_fix, second_fix = [r.text for r in server.requests_for("fix")]
    assert "Error class: index_error" in first_fix and "rethink the approach" not in first_fix
    # The second fix prompt: both earlier attempts, the variables at the failure, and the rethink instruction.
    assert "Attempt 1 failed (index_error)" in second_fix and "scores = []" in second_fix
    assert "Attempt 2 failed (index_error)" in second_fix and "print(scores[3])" in second_fix
    assert "variables at the moment of the failure" in second_fix and "scores: list" in second_fix
    assert "rethink the approach" in second_fix
    # One growing conversation: the second fix prompt begins with the whole first one.
    assert second_fix.startswith(first_fix.rsplit("user: ", 1)[0])
    assert events[-1].status == "ok"


async def test_a_failed_cell_shows_the_model_its_own_frames_not_the_libraries(make_session):
    session, server = make_session(
        {
            "rules": [
                {
                    "purpose": "react",
                    "match_last": "Observation from python_coder",
                    "reply": {"thought": "Done.", "action": "finish", "action_input": "the mean of a"},
                },
                {"purpose": "react", "reply": {"thought": "Compute.", "action": "python_coder", "action_input": "mean of b"}},
                {
                    "purpose": "code",
                    "reply": "```python\nimport pandas as pd\nframe = pd.DataFrame({'a': [1, 3]})\n"
                    "def column(d):\n    return d['b']\nprint(column(frame).mean())\n```",
                },
                {"purpose": "fix", "reply": "```python\n# cause: the column is named a, not b\nprint(frame['a'].mean())\n```"},
                {"purpose": "answer", "reply": "The mean is 2.0."},
            ]
        }
    )
    events = await collect(session, "What is the mean of b?", mode="react")
    assert [o.status for o in of(events, CellOutput)] == ["error", "ok"]
    fix = server.requests_for("fix")[0].text
    failed = fix[fix.index("Attempt 1 failed (key_error)") : fix.rindex("[fix]")]
    # The user's frames and the exception; pandas' frames counted, not shown.
    assert "Traceback, your code's frames (" in failed and "library frames left out):" in failed
    assert "], line 5\n      4     return d['b']\n----> 5 print(column(frame).mean())\nCell In[" in failed
    assert "], line 4, in column(d)\n      3 def column(d):\n----> 4     return d['b']\nKeyError: 'b'\n" in failed
    assert "\nKeyError: 'b'\n" in failed and "site-packages" not in failed and "get_loc" not in failed
    assert "Start the cell with one comment line, `# cause:" in fix
    assert of(events, CodeCell)[1].source.startswith("# cause: ")
    assert events[-1].status == "ok"


async def test_attempt_limit_ends_with_a_clear_failure(make_session):
    session, server = make_session(scenario("attempt_limit"))
    events = await collect(session, "Divide by the count", mode="react")
    outputs = of(events, CellOutput)
    # Every fix is the second attempt's code again: it is not run again (asked twice to rethink, then the coder
    # stops), instead of failing the same way until the attempt limit.
    assert len(of(events, CodeCell)) == 2 and len(outputs) == 2
    assert all(o.failed and o.status == "error" for o in outputs)
    failure = [o for o in of(events, Observation) if o.tool == "python_coder"][0].text
    assert failure.startswith("The code failed and every fix the model wrote was the code of attempt 2 again")
    assert "zero_division" in failure
    assert len(server.requests_for("fix")) == 4
    # The run answers, and ends "error": its last attempt failed.
    assert of(events, Error)[-1].kind == "ZeroDivisionError" and events[-1].status == "error"


async def test_malformed_steps_are_fed_back_then_end_the_run(make_session):
    session, server = make_session({"rules": [{"purpose": "react", "reply": "let me think about this"}]})
    events = await collect(session, "Compute something", mode="react")
    notes = [o.text for o in of(events, Observation)]
    assert len(notes) == 2 and "not a valid step" in notes[0]
    assert "Observation: Your reply was not a valid step" in server.requests_for("react")[1].text
    error = of(events, Error)[0]
    assert error.kind == "MalformedSteps" and "3 malformed ReAct steps" in error.message
    assert events[-1].status == "error"


async def test_unknown_action_is_an_observation(make_session):
    session, _ = make_session(
        {
            "rules": [
                {
                    "purpose": "react",
                    "match_last": "Unknown action",
                    "reply": {"thought": "ok", "action": "finish", "action_input": "fine"},
                },
                {"purpose": "react", "reply": {"thought": "hm", "action": "telepathy", "action_input": "x"}},
                {"purpose": "answer", "reply": "fine"},
            ]
        }
    )
    events = await collect(session, "Do it", mode="react")
    assert "Unknown action 'telepathy'" in of(events, Observation)[0].text
    assert events[-1].status == "ok"


async def test_ollama_down_mid_run_then_the_session_still_works(make_session):
    session, server = make_session(scenario("slow_cell"))
    session.store  # noqa: B018 - the session keeps its store across the outage
    port = server.port
    events = []
    # The coder's cell is quick here; the server dies while the sandbox runs it.
    server.load(
        {
            "rules": [
                {"purpose": "react", "reply": {"thought": "run", "action": "python_coder", "action_input": "print 1"}},
                {"purpose": "code", "reply": "```python\nimport time\ntime.sleep(0.5)\nprint(1)\n```"},
                {"purpose": "verify", "times": 1, "reply": {"answers_question": True, "issues": ""}},
            ]
        }
    )
    async for event in session.run("print one", mode="react"):
        events.append(event)
        if isinstance(event, CodeCell):
            server.stop()
    error = of(events, Error)[0]
    assert error.kind == "OllamaUnavailable" and "ollama serve" in error.message and error.recoverable
    assert events[-1].status == "error"
    with FakeOllama({"rules": [{"purpose": "answer", "reply": "back again"}]}, port=port) as revived:
        events = await collect(session, "hello?", mode="chat")
        assert of(events, Answer)[0].markdown == "back again" and events[-1].status == "ok"
        assert revived.requests_for("answer")


async def until(condition, timeout: float = 30.0) -> None:
    """Wait for ``condition()`` to hold (a state of the world, not an amount of time)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_cancellation_interrupts_the_sandbox(make_session, sandbox):
    session, _ = make_session(scenario("slow_cell"))
    events = []
    marker = Path(sandbox.workspace) / "started.marker"
    marker.unlink(missing_ok=True)
    async for event in session.run("Wait, then say done", mode="react"):
        events.append(event)
        if isinstance(event, CodeCell):
            await until(marker.exists)  # the sandbox is inside the cell's sleep now
            assert session.cancel()
    assert events[-1] == of(events, RunFinished)[0] and events[-1].status == "cancelled"
    assert session.store.get_run(events[0].run_id).status == "cancelled"
    # The sandbox was interrupted, not left sleeping: the next execution runs at once.
    result = await sandbox.async_execute("print('after cancel')", timeout=10)
    assert result.ok and result.stdout == "after cancel\n"


async def test_cancelling_a_streamed_answer(make_session):
    session, _ = make_session({"rules": [{"purpose": "answer", "reply": "word " * 300, "token_delay_ms": 20}]})
    events = []
    async for event in session.run("Tell me a long story", mode="chat"):
        events.append(event)
        if len(of(events, Token)) == 3:
            session.cancel()
    assert events[-1].status == "cancelled" and len(of(events, Token)) < 20
    assert not of(events, Answer)


async def test_thoughts_are_events(make_session, sales_csv):
    session, _ = make_session(scenario("react_csv"))
    events = await collect(session, "mean price?", files=[sales_csv], mode="react")
    assert [t.text for t in of(events, Thought)] == ["Load the file and compute the mean.", "I have the number."]


async def test_dry_run_shows_code_and_runs_nothing(make_session, sandbox):
    session, server = make_session(scenario("react_csv"))
    await sandbox.async_execute("sales = 'untouched'")
    events = await collect(session, "What is the mean price in sales.csv?", dry_run=True)
    (cell,) = of(events, CodeCell)
    assert "pd.read_csv('sales.csv')" in cell.source
    assert not of(events, CellOutput)
    assert of(events, Answer)[0].markdown.startswith("Dry run:")
    assert not server.requests_for("react")
    check = await sandbox.async_execute("print(sales)")
    assert check.stdout == "untouched\n"  # the drafted cell would have replaced it


async def test_reset_forgets_the_conversation_and_the_sandbox(make_session, sandbox):
    session, _ = make_session(scenario("route_chat"))
    await collect(session, "What is a p-value?", mode="chat")
    await sandbox.async_execute("kept_before_reset = 1")
    assert session.store.recent_messages(session.session_id)
    await session.reset()
    assert session.store.recent_messages(session.session_id) == []
    after = await sandbox.async_execute("print('kept_before_reset' in dir())")
    assert after.stdout == "False\n"
    assert not any(Path(sandbox.snapshots_dir).iterdir())  # noqa: ASYNC240  # a test's own check


async def test_a_run_cancelled_after_it_finished_still_has_its_status_stored(make_session):
    session, _ = make_session(scenario("route_chat"))
    async for event in session.run("What is a p-value?", mode="chat"):
        if isinstance(event, RunFinished):
            session._task.cancel()  # e.g. a server stopping right after the run's last event went out
    run = session.store.get_run(event.run_id)
    assert run.status == "ok"
    assert [e["type"] for e in session.store.run_events(event.run_id)][-1] == "run_finished"


def test_a_streamed_answer_is_stored_in_parts_that_never_cut_a_word():
    streaming = "The key is sk-abc"  # the token "def123" of the same word is still to come
    assert streaming[: answer_part_end(streaming, final=False)] == "The key is "
    assert answer_part_end("sk-abc", final=False) == 0  # no whole word yet: nothing stored
    assert answer_part_end("line one\nsk-ab", final=False) == len("line one\n")
    assert answer_part_end("sk-abc", final=True) == len("sk-abc")  # the run went on to another event
