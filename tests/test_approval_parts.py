"""Approval without a kernel: the desk that routes replies, the requests, the magic's question, the
rendering of approved, edited and skipped cells, and the batch notebook holding each image once."""

from __future__ import annotations

import asyncio
import threading

import nbformat
import pytest

from llm_agent_magic.agents.approval import ApprovalDesk
from llm_agent_magic.cells import CELLS_MIME, SKIPPED_TAG, make_bundle, materialize, render_html
from llm_agent_magic.config import AgentConfig
from llm_agent_magic.events import Answer, ApprovalRequested, CellOutput, CodeCell, RunFinished, RunStarted
from llm_agent_magic.exceptions import ApprovalTimeout, BadRequest, NotWaitingForApproval
from llm_agent_magic.magic.approve import ask_approval, kernel_takes_input
from llm_agent_magic.magic.render import LiveView, answer_data, bundle_data
from llm_agent_magic.prompts import render_prompt
from llm_agent_magic.run_requests import ApprovalReply, RunRequest, request_from_dict

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
REQUEST = ApprovalRequested("c1", "print(1)", attempt=2, reason="attempt 1 failed (name_error)", run_id="r1")


# --- the desk ------------------------------------------------------------------------------------------


async def test_the_desk_emits_then_waits_and_takes_one_reply_from_any_thread():
    desk, emitted = ApprovalDesk(), []

    def emit(event):
        emitted.append(event)
        assert desk.waiting() == [("r1", "c1")]  # noted before the event goes out

    waiter = asyncio.create_task(desk.ask(REQUEST, emit=emit, timeout=0))
    await asyncio.sleep(0)
    assert emitted == [REQUEST]
    reply = ApprovalReply("r1", "c1", "edit", "print(2)")
    thread = threading.Thread(target=desk.reply, args=(reply,))
    thread.start()
    thread.join()
    assert await waiter == reply and desk.waiting() == []
    with pytest.raises(NotWaitingForApproval, match="Run 'r1' is not waiting for an approval of cell 'c1'"):
        desk.reply(reply)


async def test_the_desk_times_out_with_an_error_saying_what_to_do():
    desk = ApprovalDesk()
    with pytest.raises(ApprovalTimeout, match="attempt 2.*waited 0.05 s.*AgentConfig.approval_timeout"):
        await desk.ask(REQUEST, emit=lambda e: None, timeout=0.05)
    assert desk.waiting() == []


async def test_a_cancelled_wait_leaves_nothing_waiting():
    desk = ApprovalDesk()
    waiter = asyncio.create_task(desk.ask(REQUEST, emit=lambda e: None, timeout=0))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert desk.waiting() == []


# --- requests and settings ---------------------------------------------------------------------------


def test_requests_and_settings_of_approval_are_checked():
    assert RunRequest("x").approval is None and RunRequest("x", approval=True).approval is True
    assert request_from_dict({"type": "run", "request": "x", "approval": False}).approval is False
    with pytest.raises(BadRequest, match="approval must be true, false or left out"):
        RunRequest("x", approval="yes")  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="names the run_id and cell_id"):
        request_from_dict({"type": "approval", "run_id": "", "cell_id": "c"})
    with pytest.raises(BadRequest, match="Unknown approval action 'maybe'"):
        ApprovalReply("r", "c", "maybe")
    with pytest.raises(Exception, match="approval_timeout must be 0"):
        AgentConfig(approval_timeout=-1)
    assert AgentConfig().approval is False and AgentConfig().approval_timeout == 600


def test_the_skip_and_edit_notes_the_model_reads():
    skip = render_prompt("approval", action="skip", attempt=1, code="x = 1")
    assert skip.startswith("The user skipped this cell (attempt 1), so it did not run") and "x = 1" not in skip
    edit = render_prompt("approval", action="edit", attempt=2, code="x = 2")
    assert edit == "The user edited this cell (attempt 2) before it ran. This code ran instead of yours:\n```python\nx = 2\n```\n"


# --- the magic's question ----------------------------------------------------------------------------


def scripted(*answers: str):
    """An input function that answers in turn, and the prompts it was shown."""
    prompts, queue = [], list(answers)

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return queue.pop(0)

    return ask, prompts


def test_the_magic_asks_run_edit_skip_until_it_gets_an_answer():
    ask, prompts = scripted("", "maybe", "R")
    assert ask_approval(REQUEST, ask, show_code=True) == ApprovalReply("r1", "c1", "run")
    assert prompts[0] == (
        "Generated cell, attempt 2, after attempt 1 failed (name_error):\nprint(1)\nRun / edit / skip [r/e/s]? "
    )
    assert prompts[1] == prompts[2] == "Please answer r (run it), e (edit it first) or s (skip it). Run / edit / skip [r/e/s]? "
    ask, prompts = scripted("skip")
    assert ask_approval(REQUEST, ask, show_code=False).action == "skip"
    assert "print(1)" not in prompts[0]  # the live view shows the code


def test_an_edit_is_typed_line_by_line_and_an_empty_one_asks_again():
    ask, prompts = scripted("e", ".", "e", "for i in range(2):", "", "    print(i)", ".")
    reply = ask_approval(REQUEST, ask, show_code=False)
    assert reply == ApprovalReply("r1", "c1", "edit", "for i in range(2):\n\n    print(i)")
    assert prompts[2] == "No new code was given. Run / edit / skip [r/e/s]? "
    assert prompts[1].startswith("New code, one line at a time; a line with only . ends it")


def test_a_kernel_without_stdin_is_told_apart():
    class Kernel:
        _allow_stdin = False

    class Shell:
        kernel = Kernel()

    assert not kernel_takes_input(Shell()) and kernel_takes_input(object())
    Kernel._allow_stdin = True
    assert kernel_takes_input(Shell())


# --- rendering -----------------------------------------------------------------------------------------


def approval_events() -> list:
    ran = CodeCell("print('model')", cell_id="a", run_id="r1")
    edited = CodeCell("print('user')", cell_id="a", approval="edited", original_source="print('model')", run_id="r1")
    skipped = CodeCell("import os", cell_id="b", attempt=1, run_id="r1")
    return [
        RunStarted("q", run_id="r1"),
        ran,
        ApprovalRequested("a", ran.source, run_id="r1"),
        edited,
        CellOutput("a", [{"output_type": "stream", "name": "stdout", "text": "user\n"}], final=True, run_id="r1"),
        skipped,
        ApprovalRequested("b", skipped.source, run_id="r1"),
        CellOutput("b", [], status="skipped", run_id="r1"),
        Answer("Done."),
        RunFinished("ok", run_id="r1"),
    ]


def test_edited_and_skipped_cells_render_once_each_and_say_so():
    events = approval_events()
    bundle = make_bundle(events)
    edited, skipped = bundle["cells"]
    assert edited["source"] == "%%sandbox\nprint('user')" and edited["metadata"]["llm_agent"]["approval"] == "edited"
    assert skipped["metadata"]["tags"] == [SKIPPED_TAG] and skipped["outputs"] == []
    html = render_html(bundle)
    assert html.count("Generated cell") == 2
    assert "attempt 1 (edited by you)" in html and "attempt 1 (skipped by you, not run)" in html
    assert bundle_data(events, bundle)["text/html"] == f'<div class="llm-agent-cells">{html}</div>'
    assert bundle_data(events, bundle)["text/plain"] == "llm-agent: 2 generated cells (1 skipped cell); run ok"


def test_the_live_view_shows_a_cell_waiting_for_approval():
    view = LiveView()
    for event in approval_events()[:3]:
        view.apply(event)
    assert "Attempt 1 (waiting for your approval)" in view.markdown()
    view.apply(approval_events()[3])
    assert "edited by you, running" in view.markdown() and "print('user')" in view.markdown()
    for event in approval_events()[4:8]:
        view.apply(event)
    assert "skipped by you, not run" in view.markdown()


# --- llm-agent run: once the cells are real, the %%agent cell keeps the answer, not a second copy ------------


def agent_cell_with_a_chart() -> nbformat.NotebookNode:
    events = [
        RunStarted("Plot it.", run_id="r9"),
        CodeCell("plot()", cell_id="p", run_id="r9"),
        CellOutput(
            "p",
            [{"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Figure>"}, "metadata": {}}],
            final=True,
            run_id="r9",
        ),
        Answer("Here is the **chart**.", run_id="r9"),
        RunFinished("ok", run_id="r9"),
    ]
    bundle = make_bundle(events, session_id="s", model="m")
    cell = nbformat.v4.new_code_cell("%%agent\nPlot it.")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=answer_data(events)),
        nbformat.v4.new_output("display_data", data=bundle_data(events, bundle)),
    ]
    return cell


def test_materialized_notebooks_hold_each_image_once_and_keep_the_answer():
    nb = nbformat.v4.new_notebook()
    nb.cells = [agent_cell_with_a_chart()]
    assert nbformat.writes(nb).count(PNG) == 2  # before: in the rendering and in the bundle
    assert materialize(nb) == 1
    text = nbformat.writes(nb)
    assert text.count(PNG) == 1 and CELLS_MIME not in text
    agent, generated = nb.cells
    answer, cells_note = agent.outputs
    assert answer.data == {"text/html": "<p>Here is the <strong>chart</strong>.</p>\n", "text/plain": "Here is the **chart**."}
    assert cells_note.data == {"text/plain": "llm-agent: 1 generated cell; run ok"}
    assert cells_note.metadata["llm_agent"] == {"run_id": "r9", "status": "ok", "cells_written": 1}
    assert generated.outputs[0].data["image/png"] == PNG
    nbformat.validate(nb)
    assert materialize(nb) == 0  # nothing left to write twice
