"""Approval over the session WebSocket: run, edit and skip answered as the side panel answers them."""

from __future__ import annotations

import json

import pytest
from agent_helpers import coder_script
from conftest import receive

pytestmark = pytest.mark.slow  # real sandbox kernels


def fix_script() -> dict:
    """A first cell that fails and its fix, then finish: two cells to answer in one run."""
    script = coder_script("print('first try')\nraise ValueError('no')")
    script["rules"].insert(0, {"purpose": "fix", "reply": "```python\nprint('second try')\n```"})
    return script


def cell_outputs(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["status"], json.dumps(e["outputs"])) for e in events if e["type"] == "cell_output"]


async def test_edit_then_skip_through_the_websocket(ws, ollama, api):
    ollama.load(fix_script())
    conn = await ws("approve-me")
    conn.write_message(json.dumps({"type": "run", "request": "Print something.", "approval": True}))
    first = await receive(conn, until="approval_requested")
    asked = first[-1]
    code = [e for e in first if e["type"] == "code_cell"]
    assert asked["cell_id"] == code[-1]["cell_id"] and asked["code"] == code[-1]["source"]
    assert asked["attempt"] == 1 and asked["actions"] == ["run", "edit", "skip"] and asked["seq"] == len(first)
    assert not cell_outputs(first)  # nothing ran before the answer

    conn.write_message(
        json.dumps(
            {
                "type": "approval",
                "run_id": asked["run_id"],
                "cell_id": asked["cell_id"],
                "action": "edit",
                "source": "print('edited')\nraise ValueError('still no')",
            }
        )
    )
    second = await receive(conn, until="approval_requested")
    edited = next(e for e in second if e["type"] == "code_cell")
    assert edited["cell_id"] == asked["cell_id"] and edited["approval"] == "edited"
    assert edited["original_source"] == asked["code"]
    ((status, outputs),) = cell_outputs(second)
    assert status == "error" and "edited" in outputs and "first try" not in outputs
    fix = second[-1]
    assert fix["attempt"] == 2 and fix["code"] == "print('second try')" and "failed" in fix["reason"]

    conn.write_message(json.dumps({"type": "approval", "run_id": fix["run_id"], "cell_id": fix["cell_id"], "action": "skip"}))
    rest = await receive(conn)
    assert cell_outputs(rest) == [("skipped", "[]")]
    observation = next(e for e in rest if e["type"] == "observation" and e["tool"] == "python_coder")
    assert observation["text"].startswith("The user skipped this cell (attempt 2)")
    assert rest[-1]["status"] == "ok"
    assert not ollama.requests_for("fix")[1:]  # one fix (after the edited cell failed), none after the skip
    stored = json.loads((await api(f"/llm-agent/api/runs/{asked['run_id']}/events")).body)["events"]
    assert [e["type"] for e in stored].count("approval_requested") == 2


async def test_run_as_generated_and_replies_the_run_cannot_take(ws, ollama):
    ollama.load(coder_script("print('as generated')"))
    conn = await ws("approve-run")
    other = await ws("someone-else")
    conn.write_message(json.dumps({"type": "run", "request": "Print something.", "approval": True}))
    asked = (await receive(conn, until="approval_requested"))[-1]
    run_id, cell_id = asked["run_id"], asked["cell_id"]

    for socket, message, says in [
        (conn, {"run_id": "nope", "cell_id": cell_id}, "Run 'nope' is not running on this server"),
        (conn, {"run_id": run_id, "cell_id": "nope"}, f"it waits for cell {cell_id!r}"),
        (conn, {"run_id": run_id, "cell_id": cell_id, "action": "edit"}, "An edit needs the cell's new source"),
        (conn, {"run_id": run_id, "cell_id": cell_id, "action": "later"}, "Unknown approval action 'later'"),
        (other, {"run_id": run_id, "cell_id": cell_id}, "belongs to another session"),
    ]:
        socket.write_message(json.dumps({"type": "approval", **message}))
        reply = json.loads(await socket.read_message())
        assert reply["type"] == "error" and says in reply["message"], (message, reply)

    conn.write_message(json.dumps({"type": "approval", "run_id": run_id, "cell_id": cell_id, "action": "run"}))
    rest = await receive(conn)
    approved = next(e for e in rest if e["type"] == "code_cell")
    assert approved["approval"] == "approved" and approved["source"] == "print('as generated')"
    assert cell_outputs(rest)[0][0] == "ok" and "as generated" in cell_outputs(rest)[0][1]
    assert rest[-1]["status"] == "ok"
    conn.write_message(json.dumps({"type": "approval", "run_id": run_id, "cell_id": cell_id, "action": "run"}))
    late = json.loads(await conn.read_message())
    assert late["type"] == "error" and "not waiting for an approval" in late["message"]


async def test_a_stop_while_a_cell_waits_cancels_the_run(ws, ollama):
    ollama.load(coder_script("print('never')"))
    conn = await ws("approve-stop")
    conn.write_message(json.dumps({"type": "run", "request": "Print something.", "approval": True}))
    asked = (await receive(conn, until="approval_requested"))[-1]
    conn.write_message(json.dumps({"type": "stop", "run_id": asked["run_id"]}))
    rest = await receive(conn)
    assert {"type": "stopping", "run_id": asked["run_id"]} in rest
    assert rest[-1]["status"] == "cancelled" and not cell_outputs(rest)
