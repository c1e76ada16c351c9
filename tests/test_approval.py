"""Approval of generated cells through ``AgentSession``: run, edit, skip, fixes, stop, timeout, stray replies.

The scripted model writes the code; a real sandbox runs what the user let run. Each test answers the
``ApprovalRequested`` events as a front end would, and asserts on the events, on what the sandbox
executed (its outputs and variables) and on what the model was shown next.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import pytest
from agent_helpers import coder_script, of

from llm_agent_magic.cells import SKIPPED_TAG, cell_source, make_bundle
from llm_agent_magic.events import (
    ApprovalRequested,
    CellOutput,
    CodeCell,
    Error,
    Observation,
    RunFinished,
    StepFinished,
)
from llm_agent_magic.exceptions import NotWaitingForApproval
from llm_agent_magic.run_requests import ApprovalReply, RunRequest


def unique(name: str) -> str:
    """A variable name no other test of the module's shared sandbox uses."""
    return f"{name}_{uuid.uuid4().hex[:6]}"


async def answering(session, request: RunRequest, answer) -> list:
    """Every event of the run; ``answer(event)`` is called for each ``ApprovalRequested`` and returns the
    reply to send (or None to send nothing, having done something else, such as stopping the run)."""
    events = []
    async for event in session.run(request):
        events.append(event)
        if isinstance(event, ApprovalRequested):
            reply = answer(event)
            if reply is not None:
                session.approve(reply)
    return events


def outputs_text(event: CellOutput) -> str:
    return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in event.outputs)


async def test_run_executes_the_cell_as_generated(make_session):
    name = unique("ran")
    session, server = make_session(coder_script(f"{name} = 6 * 7\nprint('answer', {name})"))
    events = await answering(
        session, RunRequest("Compute it.", approval=True), lambda e: ApprovalReply(e.run_id, e.cell_id, "run")
    )
    kinds = [type(e).__name__ for e in events if isinstance(e, (CodeCell, ApprovalRequested, CellOutput))]
    assert kinds == ["CodeCell", "ApprovalRequested", "CodeCell", "CellOutput"]
    asked = of(events, ApprovalRequested)[0]
    first, approved = of(events, CodeCell)
    assert asked.cell_id == first.cell_id == approved.cell_id and asked.code == first.source
    assert asked.attempt == 1 and asked.task == "run the code" and asked.actions == ["run", "edit", "skip"]
    assert asked.timeout == session.config.approval_timeout and asked.run_id == events[0].run_id
    assert approved.approval == "approved" and approved.source == first.source
    assert "answer 42" in outputs_text(of(events, CellOutput)[0])
    assert events[-1].status == "ok"
    assert name in {v.name for v in await session.sandbox.async_variables()}
    (cell,) = make_bundle(events)["cells"]
    assert cell["metadata"]["llm_agent"]["approval"] == "approved" and cell["source"] == cell_source(first.source)
    # the stored run has the same events, the approval among them
    stored = [e["type"] for e in session.store.run_events(events[0].run_id)]
    assert stored.count("approval_requested") == 1 and stored.count("code_cell") == 2


async def test_edit_executes_the_users_code_and_the_model_is_told(make_session):
    generated, edited_name = unique("generated"), unique("edited")
    session, server = make_session(coder_script(f"{generated} = 1\nprint('model code')"))
    new_code = f"{edited_name} = 2\nprint('user code')"
    events = await answering(
        session, RunRequest("Compute it.", approval=True), lambda e: ApprovalReply(e.run_id, e.cell_id, "edit", new_code)
    )
    first, edited = of(events, CodeCell)
    assert edited.cell_id == first.cell_id and edited.approval == "edited"
    assert edited.source == new_code and edited.original_source == first.source
    out = outputs_text(of(events, CellOutput)[0])
    assert "user code" in out and "model code" not in out
    names = {v.name for v in await session.sandbox.async_variables()}
    assert edited_name in names and generated not in names
    (cell,) = make_bundle(events)["cells"]
    meta = cell["metadata"]["llm_agent"]
    assert cell["source"] == cell_source(new_code) and meta["approval"] == "edited" and meta["original_source"] == first.source
    # the next call of the model (the react step after the cell) saw the code that ran
    following = server.requests_for("react")[-1].body["messages"]
    told = next(m["content"] for m in following if "The user edited this cell" in m["content"])
    assert "The user edited this cell (attempt 1) before it ran" in told and new_code in told
    assert events[-1].status == "ok"


async def test_skip_runs_nothing_and_the_next_react_step_sees_it(make_session):
    name = unique("skipped")
    session, server = make_session(coder_script(f"{name} = 1\nprint('should not run')"))
    events = await answering(
        session, RunRequest("Compute it.", approval=True), lambda e: ApprovalReply(e.run_id, e.cell_id, "skip")
    )
    (code,) = of(events, CodeCell)
    (output,) = of(events, CellOutput)
    assert output.cell_id == code.cell_id and output.status == "skipped" and output.outputs == []
    assert not output.failed and not output.final
    assert name not in {v.name for v in await session.sandbox.async_variables()}
    observation = next(o for o in of(events, Observation) if o.tool == "python_coder")
    assert observation.text.startswith("The user skipped this cell (attempt 1), so it did not run")
    following = server.requests_for("react")[-1].body["messages"][-1]["content"]
    assert "Observation from python_coder:\nThe user skipped this cell" in following
    assert not server.requests_for("fix")  # no fix loop on a cell the user chose not to run
    assert events[-1].status == "ok"
    (cell,) = make_bundle(events)["cells"]
    assert cell["outputs"] == [] and cell["metadata"]["llm_agent"]["approval"] == "skipped"
    assert cell["metadata"]["tags"] == [SKIPPED_TAG] and cell["metadata"]["llm_agent"]["status"] == "skipped"
    # Marked in its source too: run again (Run All), it runs nothing, and a reader sees why.
    assert cell["source"].startswith("%%sandbox --skip\n# Not run: you skipped it when the agent asked.")


async def test_fixes_wait_for_approval_too(make_session):
    script = coder_script("print([][0])")
    script["rules"].insert(0, {"purpose": "fix", "reply": "```python\nprint('fixed')\n```"})
    session, server = make_session(script)
    events = await answering(session, RunRequest("Print it.", approval=True), lambda e: ApprovalReply(e.run_id, e.cell_id, "run"))
    first, fix = of(events, ApprovalRequested)
    assert (first.attempt, fix.attempt) == (1, 2) and fix.code == "print('fixed')"
    assert first.reason == "" and fix.reason == "attempt 1 failed (index_error)"
    assert [o.status for o in of(events, CellOutput)] == ["error", "ok"]
    assert len(server.requests_for("fix")) == 1 and events[-1].status == "ok"


async def test_a_stop_while_waiting_ends_the_run_cleanly(make_session):
    name = unique("stopped")
    session, _ = make_session(coder_script(f"{name} = 1"))

    def stop(event):
        assert session.waiting_for_approval == [(event.run_id, event.cell_id)]
        assert session.cancel()

    events = await answering(session, RunRequest("Compute it.", approval=True), stop)
    assert isinstance(events[-1], RunFinished) and events[-1].status == "cancelled"
    assert not of(events, CellOutput) and session.waiting_for_approval == []
    assert name not in {v.name for v in await session.sandbox.async_variables()}
    with pytest.raises(NotWaitingForApproval, match="is not waiting for an approval"):
        session.approve(ApprovalReply(events[0].run_id, of(events, CodeCell)[0].cell_id, "run"))


async def test_no_reply_within_the_timeout_stops_the_run_with_a_clear_error(make_session):
    name = unique("timed_out")
    session, _ = make_session(coder_script(f"{name} = 1"), approval_timeout=0.2)
    events = await answering(session, RunRequest("Compute it.", approval=True), lambda e: None)
    (error,) = of(events, Error)
    assert error.kind == "ApprovalTimeout" and "waited 0.2 s for Run / Edit / Skip" in error.message
    assert "AgentConfig.approval_timeout" in error.message and not error.recoverable
    assert events[-1].status == "error" and not of(events, CellOutput)
    assert name not in {v.name for v in await session.sandbox.async_variables()}


async def test_stray_and_repeated_replies_are_refused_saying_what_waits(make_session):
    session, _ = make_session(coder_script("print('once')"))
    refusals = []

    def answer(event):
        for wrong in (ApprovalReply(event.run_id, "no-such-cell", "run"), ApprovalReply("other-run", event.cell_id)):
            with pytest.raises(NotWaitingForApproval) as refused:
                session.approve(wrong)
            refusals.append(str(refused.value))
        session.approve(ApprovalReply(event.run_id, event.cell_id, "run"))
        with pytest.raises(NotWaitingForApproval):  # a cell takes one reply
            session.approve(ApprovalReply(event.run_id, event.cell_id, "skip"))
        return None

    events = await answering(session, RunRequest("Print it.", approval=True), answer)
    cell_id = of(events, ApprovalRequested)[0].cell_id
    assert f"it waits for cell {cell_id!r}" in refusals[0]
    assert "Run 'other-run' is not waiting" in refusals[1]
    assert [o.status for o in of(events, CellOutput)] == ["ok"] and events[-1].status == "ok"


async def test_the_config_default_applies_unless_the_request_says(make_session):
    session, _ = make_session(coder_script("print('hi')"), approval=True)
    asked = await answering(session, RunRequest("Print it."), lambda e: ApprovalReply(e.run_id, e.cell_id, "run"))
    assert len(of(asked, ApprovalRequested)) == 1
    not_asked = await answering(session, RunRequest("Print it.", approval=False), lambda e: pytest.fail("asked"))
    assert not of(not_asked, ApprovalRequested) and of(not_asked, CellOutput)[0].status == "ok"
    dry = await answering(session, RunRequest("Print it.", dry_run=True), lambda e: pytest.fail("asked"))
    assert not of(dry, ApprovalRequested) and not of(dry, CellOutput)


async def test_a_reply_from_another_thread_reaches_the_run(make_session):
    # The magic answers on the kernel's main thread while the run is on the private loop.
    session, _ = make_session(coder_script("print('from a thread')"))

    def answer(event):
        thread = threading.Thread(target=session.approve, args=(ApprovalReply(event.run_id, event.cell_id, "run"),))
        thread.start()
        thread.join()
        return None

    events = await asyncio.wait_for(answering(session, RunRequest("Print it.", approval=True), answer), 120)
    assert "from a thread" in outputs_text(of(events, CellOutput)[0]) and events[-1].status == "ok"


async def test_plan_steps_ask_for_their_cells_and_a_skipped_step_goes_on(make_session, tmp_path):
    (tmp_path / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    session, server = make_session(Path(__file__).parent / "scenarios" / "plan_two_steps.json")
    request = RunRequest("Load sales.csv and total the price by region.", files=[str(tmp_path / "sales.csv")], approval=True)
    events = await answering(session, request, lambda e: ApprovalReply(e.run_id, e.cell_id, "run" if e.step == 0 else "skip"))
    asked = of(events, ApprovalRequested)
    assert [(a.step, a.task) for a in asked] == [(0, "Load sales.csv as sales"), (1, "Total price by region")]
    assert [(o.status, o.cell_id) for o in of(events, CellOutput)] == [("ok", asked[0].cell_id), ("skipped", asked[1].cell_id)]
    assert [e.index for e in of(events, StepFinished)] == [0, 1] and events[-1].status == "ok"
    names = {v.name for v in await session.sandbox.async_variables()}
    assert "sales" in names and "totals" not in names
    step_two = [r for r in server.requests_for("react") if "The user skipped this cell" in r.text]
    assert step_two and not server.requests_for("fix")
